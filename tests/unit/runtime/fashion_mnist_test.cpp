#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "ir/error.h"
#include "runtime/fashion_mnist.h"

using namespace weft::runtime;
namespace fs = std::filesystem;

namespace {

struct MnistTempDir {
  fs::path path;
  MnistTempDir() {
    path = fs::temp_directory_path() / ("weft_mnist_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~MnistTempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void appendBigEndian(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

/// An IDX3 image file: header then `pixels` (which may be shorter or longer than announced).
std::string idxImages(uint32_t count, uint32_t rows, uint32_t cols, const std::string& pixels, uint32_t magic = 2051) {
  std::string out;
  appendBigEndian(out, magic);
  appendBigEndian(out, count);
  appendBigEndian(out, rows);
  appendBigEndian(out, cols);
  return out + pixels;
}

std::string idxLabels(uint32_t count, const std::string& labels, uint32_t magic = 2049) {
  std::string out;
  appendBigEndian(out, magic);
  appendBigEndian(out, count);
  return out + labels;
}

void writeGz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

void writePlain(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// Pixels of `count` 28x28 images: image k has pixel p = (k * 51 + p) % 256.
std::string testPixels(int count) {
  std::string s;
  for (int k = 0; k < count; ++k)
    for (int p = 0; p < 28 * 28; ++p) s += static_cast<char>((k * 51 + p) % 256);
  return s;
}

/// A complete fake train split of 3 examples with labels 9, 0, 4.
void writeFakeTrain(const MnistTempDir& dir) {
  writeGz(dir.file("train-images-idx3-ubyte.gz"), idxImages(3, 28, 28, testPixels(3)));
  writeGz(dir.file("train-labels-idx1-ubyte.gz"), idxLabels(3, std::string("\x09\x00\x04", 3)));
}

std::string loadError(const std::string& dir, Split split = Split::train) {
  try {
    loadFashionMnist(split, Normalization::unit, dir);
  } catch (const weft::Error& e) {
    return e.what();
  }
  return "<no error>";
}

/// Sets an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const std::string& n, const std::string& value) : name(n) { ::setenv(n.c_str(), value.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST(FashionMnistIdx, LoadsSmallGzipFilesWithUnitNormalization) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  Dataset d = loadFashionMnist(Split::train, Normalization::unit, dir.path.string());
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.rows, 28);
  EXPECT_EQ(d.cols, 28);
  ASSERT_EQ(d.images.size(), 3u * 784);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{9, 0, 4}));
  EXPECT_FLOAT_EQ(d.images[0], 0.0f);          // image 0, pixel 0: byte 0
  EXPECT_FLOAT_EQ(d.images[51], 0.2f);         // byte 51 = 0.2 * 255
  EXPECT_FLOAT_EQ(d.images[255], 1.0f);        // byte 255
  EXPECT_FLOAT_EQ(d.images[784 + 0], 0.2f);    // image 1 starts at byte 51
  EXPECT_FLOAT_EQ(d.images[2 * 784 + 3], 105.0f / 255.0f);  // (2*51 + 3) % 256
}

TEST(FashionMnistIdx, StandardizedNormalization) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  Dataset d = loadFashionMnist(Split::train, Normalization::standardized, dir.path.string());
  EXPECT_NEAR(d.images[0], (0.0 - 0.2860) / 0.3530, 1e-6);
  EXPECT_NEAR(d.images[51], (0.2 - 0.2860) / 0.3530, 1e-6);
  EXPECT_NEAR(d.images[255], (1.0 - 0.2860) / 0.3530, 1e-6);
}

TEST(FashionMnistIdx, LimitKeepsTheFirstExamples) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  Dataset d = loadFashionMnist(Split::train, Normalization::unit, dir.path.string(), 2);
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.images.size(), 2u * 784);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{9, 0}));
  EXPECT_EQ(loadFashionMnist(Split::train, Normalization::unit, dir.path.string(), 0).count, 0);
  EXPECT_EQ(loadFashionMnist(Split::train, Normalization::unit, dir.path.string(), 10).count, 3);
}

TEST(FashionMnistIdx, TestSplitUsesT10kFiles) {
  MnistTempDir dir;
  writeGz(dir.file("t10k-images-idx3-ubyte.gz"), idxImages(1, 28, 28, testPixels(1)));
  writeGz(dir.file("t10k-labels-idx1-ubyte.gz"), idxLabels(1, std::string("\x07", 1)));
  Dataset d = loadFashionMnist(Split::test, Normalization::unit, dir.path.string());
  EXPECT_EQ(d.count, 1);
  EXPECT_EQ(d.labels[0], 7);
  EXPECT_NE(loadError(dir.path.string(), Split::train).find("not found"), std::string::npos);
}

TEST(FashionMnistIdx, DirectoryFromArgumentThenEnvironmentThenDefault) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  ::unsetenv("WEFT_FASHION_MNIST_DIR");
  EXPECT_EQ(fashionMnistDir(), "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(fashionMnistDir("/a"), "/a");
  ScopedEnv env("WEFT_FASHION_MNIST_DIR", dir.path.string());
  EXPECT_EQ(fashionMnistDir(), dir.path.string());
  EXPECT_EQ(fashionMnistDir("/a"), "/a");
  EXPECT_EQ(loadFashionMnist(Split::train, Normalization::unit).count, 3);
  EXPECT_NE(loadError("/nonexistent-weft-dir").find("/nonexistent-weft-dir"), std::string::npos);
}

TEST(FashionMnistIdx, MissingDirectorySaysHowToInstall) {
  std::string e = loadError("/nonexistent-weft-dir/fashion");
  EXPECT_EQ(e.rfind("Fashion-MNIST not found at /nonexistent-weft-dir/fashion: install it with "
                    "'apt-get install dataset-fashion-mnist'",
                    0),
            0u)
      << e;
  EXPECT_NE(e.find("WEFT_FASHION_MNIST_DIR"), std::string::npos) << e;
}

TEST(FashionMnistIdx, MissingLabelFileIsNotFound) {
  MnistTempDir dir;
  writeGz(dir.file("train-images-idx3-ubyte.gz"), idxImages(3, 28, 28, testPixels(3)));
  std::string e = loadError(dir.path.string());
  EXPECT_NE(e.find("Fashion-MNIST not found at " + dir.path.string()), std::string::npos) << e;
  EXPECT_NE(e.find("train-labels-idx1-ubyte.gz"), std::string::npos) << e;
}

TEST(FashionMnistIdx, BadMagicNamesTheFile) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  writeGz(dir.file("train-images-idx3-ubyte.gz"), idxImages(3, 28, 28, testPixels(3), 2049));
  std::string e = loadError(dir.path.string());
  EXPECT_NE(e.find(dir.file("train-images-idx3-ubyte.gz")), std::string::npos) << e;
  EXPECT_NE(e.find("bad magic number 2049 (expected 2051"), std::string::npos) << e;

  writeFakeTrain(dir);
  writeGz(dir.file("train-labels-idx1-ubyte.gz"), idxLabels(3, std::string("\x09\x00\x04", 3), 2051));
  e = loadError(dir.path.string());
  EXPECT_NE(e.find(dir.file("train-labels-idx1-ubyte.gz")), std::string::npos) << e;
  EXPECT_NE(e.find("bad magic number 2051 (expected 2049"), std::string::npos) << e;
}

TEST(FashionMnistIdx, TruncatedDataNamesTheFile) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  std::string images = dir.file("train-images-idx3-ubyte.gz");
  writeGz(images, idxImages(3, 28, 28, testPixels(2) + "abc"));
  std::string e = loadError(dir.path.string());
  EXPECT_NE(e.find(images + ": truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("announces 3 items of 784 bytes but the data ends after 1571 bytes"), std::string::npos) << e;

  std::string labels = dir.file("train-labels-idx1-ubyte.gz");
  writeFakeTrain(dir);
  writeGz(labels, idxLabels(3, std::string("\x01", 1)));
  e = loadError(dir.path.string());
  EXPECT_NE(e.find(labels + ": truncated"), std::string::npos) << e;
}

TEST(FashionMnistIdx, TruncatedHeaderNamesTheFile) {
  MnistTempDir dir;
  std::string path = dir.file("x.gz");
  for (size_t keep : {0, 2, 4, 9, 15}) {
    writeGz(path, idxImages(3, 28, 28, "").substr(0, keep));
    try {
      readIdxImages(path);
      ADD_FAILURE() << "no error for " << keep << " header bytes";
    } catch (const weft::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": truncated"), std::string::npos) << e.what();
    }
  }
}

TEST(FashionMnistIdx, HugeAnnouncedCountFailsAsTruncatedWithoutAllocatingIt) {
  MnistTempDir dir;
  std::string path = dir.file("huge.gz");
  writeGz(path, idxImages(0xffffffffu, 4096, 4096, "xyz"));
  EXPECT_THROW(readIdxImages(path), weft::Error);
  writeGz(path, idxImages(1, 0, 28, ""));
  try {
    readIdxImages(path);
    ADD_FAILURE();
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("implausible image dimensions 0x28"), std::string::npos) << e.what();
  }
}

TEST(FashionMnistIdx, CountMismatchNamesBothFiles) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  writeGz(dir.file("train-labels-idx1-ubyte.gz"), idxLabels(2, std::string("\x09\x00", 2)));
  std::string e = loadError(dir.path.string());
  EXPECT_NE(e.find("count mismatch: it holds 3 images but " + dir.file("train-labels-idx1-ubyte.gz") +
                   " holds 2 labels"),
            std::string::npos)
      << e;
}

TEST(FashionMnistIdx, WrongImageSizeAndLabelRange) {
  MnistTempDir dir;
  writeFakeTrain(dir);
  writeGz(dir.file("train-images-idx3-ubyte.gz"), idxImages(3, 27, 28, std::string(3 * 27 * 28, '\0')));
  EXPECT_NE(loadError(dir.path.string()).find("images are 27x28, Fashion-MNIST images are 28x28"), std::string::npos);

  writeFakeTrain(dir);
  writeGz(dir.file("train-labels-idx1-ubyte.gz"), idxLabels(3, std::string("\x09\x0a\x04", 3)));
  EXPECT_NE(loadError(dir.path.string()).find("label 10 of example 1 is outside 0..9"), std::string::npos);
}

TEST(FashionMnistIdx, TrailingBytesAreAnError) {
  MnistTempDir dir;
  std::string path = dir.file("labels.gz");
  writeGz(path, idxLabels(2, "abc"));
  try {
    readIdxLabels(path);
    ADD_FAILURE();
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": trailing bytes"), std::string::npos) << e.what();
  }
  // With a limit the rest of the file is not read.
  EXPECT_EQ(readIdxLabels(path, 1), std::vector<uint8_t>{'a'});
}

TEST(FashionMnistIdx, CorruptGzipIsAnErrorNotACrash) {
  MnistTempDir dir;
  std::string good = dir.file("good.gz");
  writeGz(good, idxImages(2, 28, 28, testPixels(2)));
  std::ifstream in(good, std::ios::binary);
  std::string compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string bad = dir.file("bad.gz");
  // Cut the compressed stream at several points and flip bytes of the deflate data.
  for (size_t keep : {size_t{12}, compressed.size() / 2, compressed.size() - 4}) {
    writePlain(bad, compressed.substr(0, keep));
    EXPECT_THROW(readIdxImages(bad), weft::Error) << keep;
  }
  for (size_t at = 10; at < compressed.size(); at += 7) {
    std::string flipped = compressed;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x5a);
    writePlain(bad, flipped);
    try {
      IdxImages images = readIdxImages(bad);  // a flip may survive inflate only if the CRC still matched
      EXPECT_EQ(images.pixels.size(), images.count * 784u);
    } catch (const weft::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(FashionMnistIdx, PlainIdxFilesAreReadToo) {
  MnistTempDir dir;
  std::string path = dir.file("labels");
  writePlain(path, idxLabels(3, std::string("\x01\x02\x03", 3)));
  EXPECT_EQ(readIdxLabels(path), (std::vector<uint8_t>{1, 2, 3}));
  std::string images = dir.file("images");
  writePlain(images, idxImages(2, 2, 3, "abcdefghijkl"));
  IdxImages im = readIdxImages(images);
  EXPECT_EQ(im.count, 2);
  EXPECT_EQ(im.rows, 2);
  EXPECT_EQ(im.cols, 3);
  EXPECT_EQ(std::string(im.pixels.begin(), im.pixels.end()), "abcdefghijkl");
}

TEST(FashionMnistIdx, ReadingADirectoryOrMissingFileNamesIt) {
  MnistTempDir dir;
  EXPECT_THROW(readIdxLabels(dir.path.string()), weft::Error);
  try {
    readIdxLabels(dir.file("missing.gz"));
    ADD_FAILURE();
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("missing.gz") + ": cannot open"), std::string::npos) << e.what();
  }
}

TEST(FashionMnistIdx, ClassNames) {
  EXPECT_EQ(fashionMnistClassName(0), "T-shirt/top");
  EXPECT_EQ(fashionMnistClassName(9), "Ankle boot");
  EXPECT_THROW(fashionMnistClassName(10), weft::Error);
}

// The Debian package, when installed (dataset-fashion-mnist).
TEST(FashionMnistReal, TrainAndTestSplits) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  ::unsetenv("WEFT_FASHION_MNIST_DIR");
  Dataset train = loadFashionMnist(Split::train, Normalization::unit);
  EXPECT_EQ(train.count, 60000);
  EXPECT_EQ(train.rows, 28);
  EXPECT_EQ(train.cols, 28);
  EXPECT_EQ(train.labels[0], 9);  // the first training image is an ankle boot
  EXPECT_EQ(fashionMnistClassName(train.labels[0]), "Ankle boot");
  auto [lo, hi] = std::minmax_element(train.images.begin(), train.images.end());
  EXPECT_EQ(*lo, 0.0f);
  EXPECT_EQ(*hi, 1.0f);
  double sum = 0, sumSquares = 0;
  for (float v : train.images) {
    sum += v;
    sumSquares += static_cast<double>(v) * v;
  }
  double mean = sum / train.images.size();
  double std = std::sqrt(sumSquares / train.images.size() - mean * mean);
  EXPECT_NEAR(mean, kFashionMnistMean, 5e-4);
  EXPECT_NEAR(std, kFashionMnistStd, 5e-4);
  std::vector<int> perClass(10);
  for (int32_t l : train.labels) ++perClass.at(l);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(perClass[c], 6000) << c;

  Dataset test = loadFashionMnist(Split::test, Normalization::standardized, "", 100);
  EXPECT_EQ(test.count, 100);
  Dataset fullTest = loadFashionMnist(Split::test, Normalization::unit);
  EXPECT_EQ(fullTest.count, 10000);
  EXPECT_EQ(fullTest.labels[0], test.labels[0]);
  EXPECT_NEAR(test.images[400], (fullTest.images[400] - kFashionMnistMean) / kFashionMnistStd, 1e-5);
}
