#include <gtest/gtest.h>

#include <cmath>

#include "ir/error.h"
#include "runtime/synthetic.h"

using namespace weft::runtime;

TEST(Synthetic, GaussianBlobsAreDeterministicAndBalanced) {
  ClassificationSet a = makeGaussianBlobs(30, 3, 4, 17);
  ClassificationSet b = makeGaussianBlobs(30, 3, 4, 17);
  ClassificationSet c = makeGaussianBlobs(30, 3, 4, 18);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_NE(a.features, c.features);
  ASSERT_EQ(a.features.size(), 120u);
  ASSERT_EQ(a.centers.size(), 12u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(a.labels[i], i % 3);
  // More points keep the earlier ones (each value has its own counter).
  ClassificationSet more = makeGaussianBlobs(60, 3, 4, 17);
  EXPECT_EQ(std::vector<float>(more.features.begin(), more.features.begin() + 120), a.features);
}

TEST(Synthetic, BlobPointsAreNearTheirOwnCenter) {
  ClassificationSet s = makeGaussianBlobs(200, 4, 3, 5, /*spread=*/0.05, /*centerScale=*/3.0);
  for (int64_t n = 0; n < s.count; ++n) {
    int best = -1;
    double bestDistance = 1e30;
    for (int k = 0; k < 4; ++k) {
      double d = 0;
      for (int j = 0; j < 3; ++j) d += std::pow(s.features[n * 3 + j] - s.centers[k * 3 + j], 2);
      if (d < bestDistance) bestDistance = d, best = k;
    }
    EXPECT_EQ(best, s.labels[n]) << n;
    EXPECT_LT(std::sqrt(bestDistance), 0.05 * 6) << n;  // far beyond 6 sigma in 3-D is not drawn
  }
  // With zero spread every point is exactly its center.
  ClassificationSet exact = makeGaussianBlobs(5, 5, 2, 1, 0.0);
  for (int64_t n = 0; n < 5; ++n)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(exact.features[n * 2 + j], exact.centers[n * 2 + j]);
}

TEST(Synthetic, BlobSpreadMatchesTheRequestedStd) {
  ClassificationSet s = makeGaussianBlobs(4000, 2, 2, 9, 0.5);
  double sum = 0, sumSquares = 0;
  for (int64_t n = 0; n < s.count; ++n)
    for (int j = 0; j < 2; ++j) {
      double d = s.features[n * 2 + j] - s.centers[s.labels[n] * 2 + j];
      sum += d;
      sumSquares += d * d;
    }
  double m = sum / 8000;
  EXPECT_NEAR(m, 0.0, 0.03);
  EXPECT_NEAR(std::sqrt(sumSquares / 8000 - m * m), 0.5, 0.03);
}

TEST(Synthetic, LinearRegressionTargetsFollowTheKnownWeights) {
  RegressionSet s = makeLinearRegression(10, 3, 2, 21);
  ASSERT_EQ(s.x.size(), 30u);
  ASSERT_EQ(s.weights.size(), 6u);
  ASSERT_EQ(s.bias.size(), 2u);
  ASSERT_EQ(s.y.size(), 20u);
  for (int n = 0; n < 10; ++n)
    for (int o = 0; o < 2; ++o) {
      double expected = s.bias[o];
      for (int k = 0; k < 3; ++k) expected += static_cast<double>(s.x[n * 3 + k]) * s.weights[k * 2 + o];
      EXPECT_NEAR(s.y[n * 2 + o], expected, 1e-5);
    }
  RegressionSet noisy = makeLinearRegression(2000, 3, 2, 21, 0.1);
  EXPECT_EQ(noisy.weights, s.weights);  // same seed, same problem
  double sumSquares = 0;
  for (int n = 0; n < 2000; ++n)
    for (int o = 0; o < 2; ++o) {
      double clean = noisy.bias[o];
      for (int k = 0; k < 3; ++k) clean += static_cast<double>(noisy.x[n * 3 + k]) * noisy.weights[k * 2 + o];
      sumSquares += std::pow(noisy.y[n * 2 + o] - clean, 2);
    }
  EXPECT_NEAR(std::sqrt(sumSquares / 4000), 0.1, 0.01);
  EXPECT_NE(makeLinearRegression(10, 3, 2, 22).weights, s.weights);
}

TEST(Synthetic, PatternPixelsByHand) {
  // Class 0: horizontal grating (angle 0), 2 cycles over 8 rows.
  EXPECT_NEAR(patternPixel(0, 6, 0, 5, 8, 8), 0.5, 1e-6);
  EXPECT_NEAR(patternPixel(0, 6, 1, 5, 8, 8), 1.0, 1e-6);  // sin(2 pi * 2 * 1/8) = 1
  EXPECT_NEAR(patternPixel(0, 6, 3, 0, 8, 8), 0.0, 1e-6);  // sin(2 pi * 2 * 3/8) = -1
  // Class 3 of 6: angle pi/2 (vertical grating), 2 + 3 % 3 = 2 cycles.
  EXPECT_NEAR(patternPixel(3, 6, 0, 1, 8, 8), 1.0, 1e-6);
  EXPECT_NEAR(patternPixel(3, 6, 1, 0, 8, 8), 0.5, 1e-6);
  // Class 1 of 6: 3 cycles at angle pi/6.
  double along = (2 * std::cos(M_PI / 6) + 1 * std::sin(M_PI / 6)) / 8;
  EXPECT_NEAR(patternPixel(1, 6, 2, 1, 8, 8), 0.5 + 0.5 * std::sin(2 * M_PI * 3 * along), 1e-6);
}

TEST(Synthetic, PatternImagesAreClassifiableAndInRange) {
  Dataset clean = makePatternImages(10, 5, 6, 7, 3, 0.0);
  for (int64_t n = 0; n < 10; ++n) {
    EXPECT_EQ(clean.labels[n], n % 5);
    for (int r = 0; r < 6; ++r)
      for (int c = 0; c < 7; ++c)
        EXPECT_EQ(clean.images[(n * 6 + r) * 7 + c], patternPixel(clean.labels[n], 5, r, c, 6, 7));
  }
  Dataset noisy = makePatternImages(100, 10, 12, 12, 3, 0.3);
  for (float v : noisy.images) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
  }
  // Nearest noise-free pattern recovers every label.
  for (int64_t n = 0; n < noisy.count; ++n) {
    int best = -1;
    double bestDistance = 1e30;
    for (int k = 0; k < 10; ++k) {
      double d = 0;
      for (int r = 0; r < 12; ++r)
        for (int c = 0; c < 12; ++c) d += std::pow(noisy.images[(n * 12 + r) * 12 + c] - patternPixel(k, 10, r, c, 12, 12), 2);
      if (d < bestDistance) bestDistance = d, best = k;
    }
    EXPECT_EQ(best, noisy.labels[n]) << n;
  }
  EXPECT_NE(makePatternImages(100, 10, 12, 12, 4, 0.3).images, noisy.images);
  EXPECT_EQ(makePatternImages(100, 10, 12, 12, 3, 0.3).images, noisy.images);
}

TEST(Synthetic, WorksWithTheBatcher) {
  Dataset d = makePatternImages(20, 4, 5, 5, 1);
  Batcher batcher(d, {.batchSize = 8, .seed = 2, .layout = ImageLayout::flat});
  Batch b;
  ASSERT_TRUE(batcher.next(b));
  EXPECT_EQ(b.images.type.shape, (weft::ir::Shape{8, 25}));
}

TEST(Synthetic, BadSizesAreErrors) {
  EXPECT_THROW(makeGaussianBlobs(0, 2, 2, 1), weft::Error);
  EXPECT_THROW(makeGaussianBlobs(4, 0, 2, 1), weft::Error);
  EXPECT_THROW(makeGaussianBlobs(4, 2, 2, 1, -1.0), weft::Error);
  EXPECT_THROW(makeLinearRegression(4, 0, 2, 1), weft::Error);
  EXPECT_THROW(makeLinearRegression(4, 2, 2, 1, -0.5), weft::Error);
  EXPECT_THROW(makePatternImages(4, 2, 0, 2, 1), weft::Error);
  EXPECT_THROW(makePatternImages(4, 2, 2, 2, 1, 1.5), weft::Error);
}
