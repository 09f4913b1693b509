// Fashion-MNIST IDX files (http://yann.lecun.com/exdb/mnist/ format): a big-endian u32
// magic (0x00000803 for u8 images of rank 3, 0x00000801 for u8 labels of rank 1), one
// big-endian u32 per dimension, then the bytes row-major. Debian ships them gzip'd.
#include "runtime/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "ir/error.h"
#include "runtime/random.h"

namespace weft::runtime {

namespace {

constexpr uint32_t kImagesMagic = 2051;
constexpr uint32_t kLabelsMagic = 2049;
constexpr int64_t kFashionMnistSide = 28;
constexpr int64_t kMaxImagePixels = int64_t{1} << 24;
constexpr size_t kReadChunk = size_t{1} << 20;
/// XORed into the seed so that batch shuffles never share Philox blocks with random ops.
constexpr uint64_t kShuffleSalt = 0x73687566666c6531ull;  // "shuffle1"

/// Owns a zlib gzFile.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": cannot read: it is a directory");
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) throw Error(path + ": cannot open: " + (errno ? std::strerror(errno) : "out of memory"));
  }
  ~GzFile() { gzclose(file_); }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  /// Reads up to n bytes; fewer only at the end of the data. Throws on a zlib error.
  size_t read(uint8_t* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      unsigned want = static_cast<unsigned>(std::min(n - done, kReadChunk));
      int got = gzread(file_, out + done, want);
      if (got < 0) throw Error(path_ + ": corrupt gzip data: " + errorText());
      if (got == 0) {
        int code = Z_OK;
        gzerror(file_, &code);
        if (code != Z_OK && code != Z_STREAM_END) throw Error(path_ + ": corrupt gzip data: " + errorText());
        break;
      }
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  std::string errorText() {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    return code == Z_ERRNO ? std::strerror(errno) : (message ? message : "unknown zlib error");
  }

  std::string path_;
  gzFile file_ = nullptr;
};

/// The dims (count first) and the first `limit` items of an IDX file of u8 elements.
struct IdxContents {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

uint32_t bigEndianU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

IdxContents readIdx(const std::string& path, uint32_t magic, size_t rank, int64_t limit) {
  GzFile file(path);
  std::array<uint8_t, 4> word{};
  if (file.read(word.data(), 4) != 4) throw Error(path + ": truncated: the file ends inside the IDX magic number");
  uint32_t found = bigEndianU32(word.data());
  if (found != magic)
    throw Error(path + ": bad magic number " + std::to_string(found) + " (expected " + std::to_string(magic) +
                (magic == kImagesMagic ? " for an IDX image file)" : " for an IDX label file)"));
  IdxContents c;
  for (size_t i = 0; i < rank; ++i) {
    if (file.read(word.data(), 4) != 4) throw Error(path + ": truncated: the file ends inside the IDX dimensions");
    c.dims.push_back(bigEndianU32(word.data()));
  }
  int64_t itemSize = 1;
  for (size_t i = 1; i < rank; ++i) {
    if (c.dims[i] == 0 || itemSize * c.dims[i] > kMaxImagePixels)
      throw Error(path + ": implausible image dimensions " + std::to_string(c.dims[1]) + "x" +
                  std::to_string(c.dims[2]));
    itemSize *= c.dims[i];
  }
  int64_t items = limit >= 0 ? std::min(limit, c.dims[0]) : c.dims[0];
  size_t total = static_cast<size_t>(items * itemSize);
  // Grow in chunks so that a header announcing absurd counts fails as truncated before any
  // huge allocation.
  while (c.data.size() < total) {
    size_t start = c.data.size();
    size_t chunk = std::min(total - start, kReadChunk);
    c.data.resize(start + chunk);
    size_t got = file.read(c.data.data() + start, chunk);
    if (got != chunk)
      throw Error(path + ": truncated: the header announces " + std::to_string(c.dims[0]) + " items of " +
                  std::to_string(itemSize) + " bytes but the data ends after " + std::to_string(start + got) +
                  " bytes");
  }
  if (items == c.dims[0]) {
    uint8_t extra = 0;
    if (file.read(&extra, 1) != 0)
      throw Error(path + ": trailing bytes after the " + std::to_string(c.dims[0]) + " items the header announces");
  }
  return c;
}

std::string notFound(const std::string& dir, const std::string& missing) {
  return "Fashion-MNIST not found at " + dir + ": install it with 'apt-get install dataset-fashion-mnist' (missing " +
         missing + "; set " + kFashionMnistDirEnv + " to read another directory)";
}

}  // namespace

IdxImages readIdxImages(const std::string& path, int64_t limit) {
  IdxContents c = readIdx(path, kImagesMagic, 3, limit);
  IdxImages images;
  images.rows = c.dims[1];
  images.cols = c.dims[2];
  images.count = static_cast<int64_t>(c.data.size()) / (images.rows * images.cols);
  images.pixels = std::move(c.data);
  return images;
}

std::vector<uint8_t> readIdxLabels(const std::string& path, int64_t limit) {
  return readIdx(path, kLabelsMagic, 1, limit).data;
}

std::string fashionMnistDir(const std::string& dir) {
  if (!dir.empty()) return dir;
  const char* env = std::getenv(kFashionMnistDirEnv);
  if (env && *env) return env;
  return kFashionMnistDefaultDir;
}

Dataset loadFashionMnist(Split split, Normalization norm, const std::string& dir, int64_t limit) {
  std::string root = fashionMnistDir(dir);
  std::string prefix = split == Split::train ? "train" : "t10k";
  std::string imagesPath = (std::filesystem::path(root) / (prefix + "-images-idx3-ubyte.gz")).string();
  std::string labelsPath = (std::filesystem::path(root) / (prefix + "-labels-idx1-ubyte.gz")).string();
  std::error_code ec;
  for (const std::string& p : {imagesPath, labelsPath})
    if (!std::filesystem::exists(p, ec)) throw Error(notFound(root, p));

  IdxContents images = readIdx(imagesPath, kImagesMagic, 3, limit);
  IdxContents labels = readIdx(labelsPath, kLabelsMagic, 1, limit);
  if (images.dims[0] != labels.dims[0])
    throw Error(imagesPath + ": count mismatch: it holds " + std::to_string(images.dims[0]) + " images but " +
                labelsPath + " holds " + std::to_string(labels.dims[0]) + " labels");
  if (images.dims[1] != kFashionMnistSide || images.dims[2] != kFashionMnistSide)
    throw Error(imagesPath + ": images are " + std::to_string(images.dims[1]) + "x" + std::to_string(images.dims[2]) +
                ", Fashion-MNIST images are 28x28");

  Dataset d;
  d.count = static_cast<int64_t>(labels.data.size());
  d.rows = images.dims[1];
  d.cols = images.dims[2];
  d.labels.resize(labels.data.size());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= kFashionMnistClasses)
      throw Error(labelsPath + ": label " + std::to_string(labels.data[i]) + " of example " + std::to_string(i) +
                  " is outside 0..9");
    d.labels[i] = labels.data[i];
  }
  std::array<float, 256> table{};
  for (int v = 0; v < 256; ++v) {
    double unit = v / 255.0;
    table[v] = static_cast<float>(norm == Normalization::unit ? unit : (unit - kFashionMnistMean) / kFashionMnistStd);
  }
  d.images.resize(images.data.size());
  for (size_t i = 0; i < images.data.size(); ++i) d.images[i] = table[images.data[i]];
  return d;
}

std::string fashionMnistClassName(int32_t label) {
  static const char* const kNames[kFashionMnistClasses] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  if (label < 0 || label >= kFashionMnistClasses)
    throw Error("Fashion-MNIST label " + std::to_string(label) + " is outside 0..9");
  return kNames[label];
}

// ---------------------------------------------------------------- batching

std::vector<int64_t> epochPermutation(int64_t count, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) order[i] = i;
  for (int64_t i = count - 1; i > 0; --i) {
    auto w = philox4x32(seed ^ kShuffleSalt, static_cast<uint64_t>(epoch), static_cast<uint64_t>(i));
    uint64_t r = (static_cast<uint64_t>(w[1]) << 32) | w[0];
    // Lemire's multiply-shift: j uniform in [0, i] up to a 2^-64 relative bias.
    auto j = static_cast<int64_t>((static_cast<unsigned __int128>(r) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

Batcher::Batcher(const Dataset& data, BatcherOptions options) : data_(&data), options_(options) {
  if (options_.batchSize < 1) throw Error("batcher: batch size must be at least 1, got " + std::to_string(options_.batchSize));
  if (data.count < 1 || data.rows < 1 || data.cols < 1) throw Error("batcher: the dataset is empty");
  if (static_cast<int64_t>(data.images.size()) != data.count * data.rows * data.cols ||
      static_cast<int64_t>(data.labels.size()) != data.count)
    throw Error("batcher: the dataset holds " + std::to_string(data.images.size()) + " pixels and " +
                std::to_string(data.labels.size()) + " labels, not " + std::to_string(data.count) + " examples of " +
                std::to_string(data.rows) + "x" + std::to_string(data.cols));
  if (options_.dropLast && data.count < options_.batchSize)
    throw Error("batcher: the dataset's " + std::to_string(data.count) + " examples do not fill one batch of " +
                std::to_string(options_.batchSize) + " (and dropLast is set)");
  reset(0);
}

int64_t Batcher::batchesPerEpoch() const {
  int64_t b = options_.batchSize;
  return options_.dropLast ? data_->count / b : (data_->count + b - 1) / b;
}

void Batcher::reset(int64_t epoch, int64_t batch) {
  if (epoch < 0 || batch < 0 || batch > batchesPerEpoch())
    throw Error("batcher: cannot resume at epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch) +
                " (an epoch has " + std::to_string(batchesPerEpoch()) + " batches)");
  epoch_ = epoch;
  batch_ = batch;
  if (options_.shuffle) {
    order_ = epochPermutation(data_->count, options_.seed, epoch);
  } else {
    order_.resize(static_cast<size_t>(data_->count));
    for (int64_t i = 0; i < data_->count; ++i) order_[i] = i;
  }
}

bool Batcher::next(Batch& out) {
  if (batch_ >= batchesPerEpoch()) return false;
  int64_t first = batch_ * options_.batchSize;
  int64_t size = std::min(options_.batchSize, data_->count - first);
  int64_t pixels = data_->rows * data_->cols;
  ir::Shape imageShape = options_.layout == ImageLayout::nchw ? ir::Shape{size, 1, data_->rows, data_->cols}
                                                              : ir::Shape{size, pixels};
  Batch b{ir::TensorData(ir::TensorType{ir::DType::f32, imageShape}),
          ir::TensorData(ir::TensorType{ir::DType::i32, {size}})};
  float* images = b.images.as<float>();
  int32_t* labels = b.labels.as<int32_t>();
  for (int64_t k = 0; k < size; ++k) {
    int64_t example = order_[first + k];
    std::memcpy(images + k * pixels, data_->images.data() + example * pixels, sizeof(float) * pixels);
    labels[k] = data_->labels[example];
  }
  out = std::move(b);
  ++batch_;
  return true;
}

Batch Batcher::nextWrapping() {
  Batch b;
  if (!next(b)) {
    reset(epoch_ + 1);
    next(b);
  }
  return b;
}

}  // namespace weft::runtime
