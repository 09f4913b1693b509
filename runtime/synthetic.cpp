// Synthetic datasets. Each draw is normalAt/uniformAt(seed, stream, index) with a distinct
// stream per quantity, so changing one size never shifts the values of another quantity.
#include "runtime/synthetic.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "ir/error.h"
#include "runtime/random.h"

namespace weft::runtime {

namespace {

/// Streams (the `step` argument of the generator) of each drawn quantity.
enum Stream : uint64_t { kCenters = 1, kPointNoise, kInputs, kWeights, kBias, kTargetNoise, kPixelNoise };

void requirePositive(const char* generator, const char* what, int64_t value) {
  if (value < 1)
    throw Error(std::string(generator) + ": " + what + " must be at least 1, got " + std::to_string(value));
}

}  // namespace

ClassificationSet makeGaussianBlobs(int64_t count, int64_t classes, int64_t dims, uint64_t seed, double spread,
                                    double centerScale) {
  const char* name = "makeGaussianBlobs";
  requirePositive(name, "count", count);
  requirePositive(name, "classes", classes);
  requirePositive(name, "dims", dims);
  if (!(spread >= 0) || !(centerScale >= 0)) throw Error("makeGaussianBlobs: spread and centerScale must be >= 0");
  ClassificationSet s;
  s.count = count;
  s.classes = classes;
  s.dims = dims;
  s.centers.resize(static_cast<size_t>(classes * dims));
  for (int64_t i = 0; i < classes * dims; ++i)
    s.centers[i] = static_cast<float>(centerScale * normalAt(seed, kCenters, static_cast<uint64_t>(i)));
  s.features.resize(static_cast<size_t>(count * dims));
  s.labels.resize(static_cast<size_t>(count));
  for (int64_t n = 0; n < count; ++n) {
    auto label = static_cast<int32_t>(n % classes);
    s.labels[n] = label;
    for (int64_t d = 0; d < dims; ++d) {
      int64_t i = n * dims + d;
      s.features[i] = static_cast<float>(s.centers[label * dims + d] +
                                         spread * normalAt(seed, kPointNoise, static_cast<uint64_t>(i)));
    }
  }
  return s;
}

RegressionSet makeLinearRegression(int64_t count, int64_t inputs, int64_t outputs, uint64_t seed, double noise) {
  const char* name = "makeLinearRegression";
  requirePositive(name, "count", count);
  requirePositive(name, "inputs", inputs);
  requirePositive(name, "outputs", outputs);
  if (!(noise >= 0)) throw Error("makeLinearRegression: noise must be >= 0");
  RegressionSet s;
  s.count = count;
  s.inputs = inputs;
  s.outputs = outputs;
  auto draw = [&](std::vector<float>& v, int64_t n, Stream stream) {
    v.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(normalAt(seed, stream, static_cast<uint64_t>(i)));
  };
  draw(s.x, count * inputs, kInputs);
  draw(s.weights, inputs * outputs, kWeights);
  draw(s.bias, outputs, kBias);
  s.y.resize(static_cast<size_t>(count * outputs));
  for (int64_t n = 0; n < count; ++n)
    for (int64_t o = 0; o < outputs; ++o) {
      double acc = s.bias[o];
      for (int64_t k = 0; k < inputs; ++k) acc += static_cast<double>(s.x[n * inputs + k]) * s.weights[k * outputs + o];
      int64_t i = n * outputs + o;
      if (noise > 0) acc += noise * normalAt(seed, kTargetNoise, static_cast<uint64_t>(i));
      s.y[i] = static_cast<float>(acc);
    }
  return s;
}

float patternPixel(int32_t label, int32_t classes, int64_t r, int64_t c, int64_t rows, int64_t cols) {
  double angle = std::numbers::pi * label / classes;
  double cycles = 2 + label % 3;
  double along = (static_cast<double>(r) * std::cos(angle) + static_cast<double>(c) * std::sin(angle)) /
                 static_cast<double>(std::max(rows, cols));
  return static_cast<float>(0.5 + 0.5 * std::sin(2 * std::numbers::pi * cycles * along));
}

Dataset makePatternImages(int64_t count, int32_t classes, int64_t rows, int64_t cols, uint64_t seed, double noise) {
  const char* name = "makePatternImages";
  requirePositive(name, "count", count);
  requirePositive(name, "classes", classes);
  requirePositive(name, "rows", rows);
  requirePositive(name, "cols", cols);
  if (!(noise >= 0 && noise <= 1)) throw Error("makePatternImages: noise must be in [0, 1]");
  Dataset d;
  d.count = count;
  d.rows = rows;
  d.cols = cols;
  d.labels.resize(static_cast<size_t>(count));
  d.images.resize(static_cast<size_t>(count * rows * cols));
  for (int64_t n = 0; n < count; ++n) {
    auto label = static_cast<int32_t>(n % classes);
    d.labels[n] = label;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        int64_t i = (n * rows + r) * cols + c;
        double jitter = noise * (2 * uniformAt(seed, kPixelNoise, static_cast<uint64_t>(i)) - 1);
        d.images[i] = static_cast<float>(std::clamp(patternPixel(label, classes, r, c, rows, cols) + jitter, 0.0, 1.0));
      }
  }
  return d;
}

}  // namespace weft::runtime
