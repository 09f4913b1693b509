#pragma once
/// Fashion-MNIST (Xiao et al. 2017) from Debian's dataset-fashion-mnist package: gzip'd IDX
/// files read with zlib, and a seeded, resumable mini-batch iterator over any image Dataset.
#include <cstdint>
#include <string>
#include <vector>

#include "ir/tensor_data.h"

namespace weft::runtime {

/// Where `apt-get install dataset-fashion-mnist` puts the files.
inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";
/// Environment variable that overrides the directory when no directory argument is given.
inline constexpr const char* kFashionMnistDirEnv = "WEFT_FASHION_MNIST_DIR";
/// Mean and standard deviation of the training pixels scaled to [0, 1].
inline constexpr double kFashionMnistMean = 0.2860;
/// See kFashionMnistMean.
inline constexpr double kFashionMnistStd = 0.3530;
/// Number of classes (labels are 0..9).
inline constexpr int32_t kFashionMnistClasses = 10;

/// Which half of the dataset: 60000 training or 10000 test examples.
enum class Split { train, test };

/// How pixel bytes become floats: x/255 in [0, 1], or (x/255 - mean) / std.
enum class Normalization { unit, standardized };

/// Grayscale images with integer labels, in memory.
struct Dataset {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<float> images;    ///< count * rows * cols pixels, row-major, normalized
  std::vector<int32_t> labels;  ///< count labels
};

/// Raw pixels of an IDX3 (magic 2051) image file.
struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  ///< count * rows * cols bytes
};

/// Reads a gzip'd (or plain) IDX3 image file; at most `limit` images when limit >= 0.
/// Throws weft::Error naming the file for a missing file, bad magic, bad dims or truncation.
IdxImages readIdxImages(const std::string& path, int64_t limit = -1);

/// Reads a gzip'd (or plain) IDX1 label file (magic 2049); at most `limit` labels when
/// limit >= 0. Throws weft::Error naming the file like readIdxImages.
std::vector<uint8_t> readIdxLabels(const std::string& path, int64_t limit = -1);

/// The directory loadFashionMnist reads: `dir` if non-empty, else $WEFT_FASHION_MNIST_DIR
/// if set and non-empty, else kFashionMnistDefaultDir.
std::string fashionMnistDir(const std::string& dir = "");

/// Loads a split of Fashion-MNIST from `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` in
/// fashionMnistDir(dir), keeping the first `limit` examples when limit >= 0. Checks that
/// images and labels agree in count, images are 28x28 and labels are 0..9. Throws
/// weft::Error ("Fashion-MNIST not found at DIR: install it with 'apt-get install
/// dataset-fashion-mnist'") when the files are missing.
Dataset loadFashionMnist(Split split, Normalization norm, const std::string& dir = "", int64_t limit = -1);

/// The English name of a Fashion-MNIST class ("T-shirt/top", ..., "Ankle boot").
std::string fashionMnistClassName(int32_t label);

/// How a Batcher lays out image batches.
enum class ImageLayout {
  nchw,  ///< f32[B, 1, rows, cols]
  flat,  ///< f32[B, rows * cols]
};

/// Options of a Batcher.
struct BatcherOptions {
  int64_t batchSize = 64;
  uint64_t seed = 0;       ///< the shuffle of epoch e depends only on (seed, e)
  bool shuffle = true;     ///< false: examples in dataset order (evaluation)
  bool dropLast = true;    ///< drop the final incomplete batch (keeps shapes static)
  ImageLayout layout = ImageLayout::nchw;
};

/// One mini-batch: images f32 (see ImageLayout) and labels i32[B].
struct Batch {
  ir::TensorData images;
  ir::TensorData labels;
};

/// Iterates over a Dataset in mini-batches, epoch after epoch. The order of epoch e is a
/// Fisher-Yates shuffle drawn from Philox keyed by (seed, e), so it is the same on every
/// run and platform, and a resumed run calls reset(epoch, batch) to continue exactly.
/// The Dataset must outlive the Batcher.
class Batcher {
 public:
  /// Starts at epoch 0, batch 0. Throws weft::Error for a batch size < 1, an empty
  /// dataset or (with dropLast) a dataset smaller than one batch.
  Batcher(const Dataset& data, BatcherOptions options);

  /// Moves to batch `batch` of epoch `epoch` (both >= 0).
  void reset(int64_t epoch, int64_t batch = 0);
  /// The next batch of the current epoch; false (and `out` untouched) when the epoch is over.
  bool next(Batch& out);
  /// Like next, but moves on to the next epoch when the current one is over.
  Batch nextWrapping();

  /// Batches per epoch (the incomplete last one counts only without dropLast).
  int64_t batchesPerEpoch() const;
  /// The current epoch.
  int64_t epoch() const { return epoch_; }
  /// Index within the epoch of the batch that next() returns.
  int64_t batchIndex() const { return batch_; }
  /// The example order of the current epoch.
  const std::vector<int64_t>& order() const { return order_; }

 private:
  const Dataset* data_;
  BatcherOptions options_;
  int64_t epoch_ = 0;
  int64_t batch_ = 0;
  std::vector<int64_t> order_;
};

/// The example order of `epoch` for a dataset of `count` examples: a permutation that
/// depends only on (seed, epoch, count).
std::vector<int64_t> epochPermutation(int64_t count, uint64_t seed, int64_t epoch);

}  // namespace weft::runtime
