#pragma once
/// Deterministic synthetic datasets for tests and examples: every value is drawn from the
/// counter-based generator (runtime/random.h), so a seed gives the same data everywhere.
#include <cstdint>
#include <vector>

#include "runtime/fashion_mnist.h"

namespace weft::runtime {

/// Points with class labels.
struct ClassificationSet {
  int64_t count = 0, dims = 0, classes = 0;
  std::vector<float> features;  ///< count * dims, row-major
  std::vector<int32_t> labels;  ///< count labels in [0, classes)
  std::vector<float> centers;   ///< classes * dims: the mean of each class
};

/// Gaussian blobs: class centers drawn from N(0, centerScale^2) per coordinate, then each
/// point is its class center plus N(0, spread^2) noise per coordinate. Labels are balanced
/// (example i has class i % classes). Throws weft::Error for non-positive sizes.
ClassificationSet makeGaussianBlobs(int64_t count, int64_t classes, int64_t dims, uint64_t seed,
                                    double spread = 0.5, double centerScale = 3.0);

/// A linear regression problem y = x W + b + noise with known W and b.
struct RegressionSet {
  int64_t count = 0, inputs = 0, outputs = 0;
  std::vector<float> x;        ///< count * inputs, each N(0, 1)
  std::vector<float> y;        ///< count * outputs
  std::vector<float> weights;  ///< inputs * outputs (row-major [inputs, outputs]), each N(0, 1)
  std::vector<float> bias;     ///< outputs, each N(0, 1)
};

/// A linear regression set; `noise` is the standard deviation of the N(0, noise^2) added to
/// each target (0: exact). Throws weft::Error for non-positive sizes or negative noise.
RegressionSet makeLinearRegression(int64_t count, int64_t inputs, int64_t outputs, uint64_t seed,
                                   double noise = 0.0);

/// The noise-free pattern of class `label` at pixel (r, c) of a rows x cols image: a
/// sinusoidal grating 0.5 + 0.5 sin(2 pi f (r cos t + c sin t) / max(rows, cols)) with
/// angle t = pi * label / classes and f = 2 + label % 3 cycles.
float patternPixel(int32_t label, int32_t classes, int64_t r, int64_t c, int64_t rows, int64_t cols);

/// Images in [0, 1] whose class decides their pattern (patternPixel) plus uniform noise in
/// [-noise, noise], clamped; labels are balanced (example i has class i % classes), so the
/// set works with Batcher. Throws weft::Error for non-positive sizes or noise outside [0, 1].
Dataset makePatternImages(int64_t count, int32_t classes, int64_t rows, int64_t cols, uint64_t seed,
                          double noise = 0.1);

}  // namespace weft::runtime
