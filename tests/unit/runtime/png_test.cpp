#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "ir/error.h"
#include "runtime/png.h"

using namespace weft::runtime;
namespace fs = std::filesystem;

namespace {

struct PngTempDir {
  fs::path path;
  PngTempDir() {
    path = fs::temp_directory_path() / ("weft_png_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~PngTempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(Png, GridLayoutClampingAndRounding) {
  // Three 2x2 images in 2 columns with 1 pixel of padding: 7x7 pixels.
  std::vector<float> images = {0.0f, 1.0f, 0.5f, 2.0f,                                       // image 0
                               -1.0f, std::numeric_limits<float>::quiet_NaN(), 0.2f, 0.8f,  // image 1
                               1.0f, 1.0f, 1.0f, 1.0f};                                     // image 2
  GrayImage g = makeImageGrid(images, 3, 2, 2, 2, 1);
  EXPECT_EQ(g.width, 7);
  EXPECT_EQ(g.height, 7);
  auto at = [&](int r, int c) { return static_cast<int>(g.pixels[r * 7 + c]); };
  // image 0 at rows 1-2, cols 1-2
  EXPECT_EQ(at(1, 1), 0);
  EXPECT_EQ(at(1, 2), 255);
  EXPECT_EQ(at(2, 1), 128);  // 127.5 rounds away from zero
  EXPECT_EQ(at(2, 2), 255);  // 2.0 clamped
  // image 1 at rows 1-2, cols 4-5
  EXPECT_EQ(at(1, 4), 0);    // -1 clamped
  EXPECT_EQ(at(1, 5), 0);    // NaN
  EXPECT_EQ(at(2, 4), 51);   // 0.2 * 255
  EXPECT_EQ(at(2, 5), 204);  // 0.8 * 255
  // image 2 at rows 4-5, cols 1-2; the empty cell and padding stay black
  EXPECT_EQ(at(4, 1), 255);
  EXPECT_EQ(at(5, 2), 255);
  EXPECT_EQ(at(4, 4), 0);
  int lit = 0;
  for (uint8_t p : g.pixels) lit += p != 0;
  EXPECT_EQ(lit, 3 + 2 + 4);  // non-zero pixels of images 0, 1 and 2
}

TEST(Png, ColumnsBeyondTheCountAreCapped) {
  GrayImage g = makeImageGrid(std::vector<float>(2 * 3 * 4, 1.0f), 2, 3, 4, 10, 0);
  EXPECT_EQ(g.width, 8);
  EXPECT_EQ(g.height, 3);
  for (uint8_t p : g.pixels) EXPECT_EQ(p, 255);
}

TEST(Png, WriteAndReadBackTheGrid) {
  PngTempDir dir;
  std::string path = dir.file("grid.png");
  std::vector<float> images(5 * 28 * 28);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<float>(i % 256) / 255.0f;
  writePngGrid(path, images, 5, 28, 28, 3);
  std::string bytes = slurp(path);
  ASSERT_GE(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  GrayImage back = readPngGray(path);
  GrayImage expected = makeImageGrid(images, 5, 28, 28, 3, 2);
  EXPECT_EQ(back.width, 3 * 30 + 2);
  EXPECT_EQ(back.height, 2 * 30 + 2);
  EXPECT_EQ(back.pixels, expected.pixels);
  EXPECT_EQ(back.pixels[2 * back.width + 2 + 7], 7);  // first image, row 0, col 7
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);  // no temporary file left behind
}

TEST(Png, EncodeDecodeInMemory) {
  GrayImage img{2, 3, {0, 10, 20, 30, 40, 255}};
  GrayImage back = decodePngGray(encodePngGray(img), "mem");
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.width, 3);
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST(Png, BadArgumentsAreErrorsNamingThePath) {
  PngTempDir dir;
  std::string path = dir.file("x.png");
  auto errorOf = [&](auto&& f) {
    try {
      f();
    } catch (const weft::Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  std::string e = errorOf([&] { writePngGrid(path, std::vector<float>(5), 2, 2, 2, 1); });
  EXPECT_EQ(e.rfind(path + ": image grid: 5 pixel values given for 2 images of 2x2", 0), 0u) << e;
  EXPECT_NE(errorOf([&] { writePngGrid(path, {}, 0, 2, 2, 1); }).find(path), std::string::npos);
  EXPECT_NE(errorOf([&] { writePngGrid(path, std::vector<float>(4), 1, 2, 2, 0); }).find(path), std::string::npos);
  EXPECT_NE(errorOf([&] { writePngGrid(path, std::vector<float>(4), 1, 2, 2, 1, -1); }).find(path), std::string::npos);
  std::string nested = dir.file("missing/dir/x.png");
  EXPECT_NE(errorOf([&] { writePngGrid(nested, std::vector<float>(4), 1, 2, 2, 1); }).find(nested), std::string::npos);
  EXPECT_FALSE(fs::exists(path));
}

TEST(Png, ReadingGarbageOrTruncatedFilesIsAnError) {
  PngTempDir dir;
  std::string path = dir.file("bad.png");
  std::ofstream(path, std::ios::binary) << "not a png at all";
  std::string e;
  try {
    readPngGray(path);
  } catch (const weft::Error& err) {
    e = err.what();
  }
  EXPECT_EQ(e.rfind(path + ": not a readable PNG", 0), 0u) << e;

  std::string good = encodePngGray(GrayImage{4, 4, std::vector<uint8_t>(16, 9)});
  for (size_t keep : {size_t{8}, size_t{20}, good.size() / 2, good.size() - 13}) {
    EXPECT_THROW(decodePngGray(good.substr(0, keep), "cut.png"), weft::Error) << keep;
  }
  EXPECT_THROW(readPngGray(dir.file("missing.png")), weft::Error);
}
