#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/random.h"

using weft::runtime::normalAt;
using weft::runtime::philox4x32;
using weft::runtime::uniformAt;

using Block = std::array<uint32_t, 4>;

// Known-answer vectors published with Random123 (kat_vectors, philox4x32 10 rounds).
// Counter words c0..c3 map to (lo & 0xffffffff, lo >> 32, hi & 0xffffffff, hi >> 32).
TEST(Philox, KnownAnswerZeros) {
  EXPECT_EQ(philox4x32(0, 0, 0), (Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
}

TEST(Philox, KnownAnswerAllOnes) {
  EXPECT_EQ(philox4x32(~0ull, ~0ull, ~0ull), (Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
}

TEST(Philox, KnownAnswerPiDigits) {
  // counter 243f6a88 85a308d3 13198a2e 03707344, key a4093822 299f31d0
  EXPECT_EQ(philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull),
            (Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Uniform, UsesWordsZeroAndOneOfTheBlock) {
  // Block (key 0, counter 0) = 6627e8d5 e169c58d ...: 0xe169c58d6627e8d5 >> 11, times 2^-53.
  EXPECT_EQ(uniformAt(0, 0, 0), 0x1.c2d38b1acc4fdp-1);
  EXPECT_EQ(uniformAt(0, 0, 0), static_cast<double>(0xe169c58d6627e8d5ull >> 11) * 0x1.0p-53);
  // seed -> key, step -> counter hi, index -> counter lo (the pi-digits vector: d16cfe09 94fdcceb).
  EXPECT_EQ(uniformAt(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull),
            static_cast<double>(0x94fdccebd16cfe09ull >> 11) * 0x1.0p-53);
  EXPECT_EQ(uniformAt(7, 3, 11), 0x1.8d2f7aefc2049p-1);
}

TEST(Normal, MatchesBoxMullerOnTheSaltedBlock) {
  // Values from an independent Python implementation of the same formula.
  EXPECT_NEAR(normalAt(0, 0, 0), 1.3475390363938606, 1e-13);
  EXPECT_NEAR(normalAt(7, 3, 11), 0.6004889746837803, 1e-13);
  EXPECT_NEAR(normalAt(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull),
              1.5487347185368359, 1e-13);
}

TEST(Uniform, Deterministic) {
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(uniformAt(42, 5, i), uniformAt(42, 5, i));
    EXPECT_EQ(normalAt(42, 5, i), normalAt(42, 5, i));
  }
}

TEST(Uniform, SeedsStepsAndIndicesGiveDifferentNumbers) {
  int sameSeed = 0, sameStep = 0, sameNormalSeed = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    sameSeed += uniformAt(1, 0, i) == uniformAt(2, 0, i);
    sameStep += uniformAt(1, 0, i) == uniformAt(1, 1, i);
    sameNormalSeed += normalAt(1, 0, i) == normalAt(2, 0, i);
  }
  EXPECT_EQ(sameSeed, 0);
  EXPECT_EQ(sameStep, 0);
  EXPECT_EQ(sameNormalSeed, 0);
  EXPECT_NE(uniformAt(1, 0, 0), uniformAt(1, 0, 1));
}

namespace {
struct Moments {
  double mean, variance;
};
template <class F>
Moments moments(int n, F draw) {
  double sum = 0, sumSq = 0;
  for (int i = 0; i < n; ++i) {
    double x = draw(static_cast<uint64_t>(i));
    sum += x;
    sumSq += x * x;
  }
  double mean = sum / n;
  return {mean, sumSq / n - mean * mean};
}
}  // namespace

TEST(Uniform, StatisticsOf100kDraws) {
  const int n = 100000;
  double lo = 1, hi = 0;
  Moments m = moments(n, [&](uint64_t i) {
    double u = uniformAt(123, 7, i);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    return u;
  });
  EXPECT_GE(lo, 0.0);
  EXPECT_LT(hi, 1.0);
  EXPECT_LT(lo, 0.001);  // expected minimum ~1e-5
  EXPECT_GT(hi, 0.999);
  EXPECT_NEAR(m.mean, 0.5, 0.005);           // standard error ~0.0009
  EXPECT_NEAR(m.variance, 1.0 / 12, 0.002);  // standard error ~0.0003
}

TEST(Normal, StatisticsOf100kDraws) {
  const int n = 100000;
  int withinOne = 0;
  Moments m = moments(n, [&](uint64_t i) {
    double z = normalAt(123, 7, i);
    EXPECT_TRUE(std::isfinite(z));
    withinOne += std::fabs(z) < 1.0;
    return z;
  });
  EXPECT_NEAR(m.mean, 0.0, 0.02);      // standard error ~0.003
  EXPECT_NEAR(m.variance, 1.0, 0.03);  // standard error ~0.0045
  EXPECT_NEAR(static_cast<double>(withinOne) / n, 0.6827, 0.01);
}

TEST(Normal, IndependentOfTheUniformStream) {
  // Correlation between uniform and normal draws of the same (seed, step, index) is ~0.
  const int n = 20000;
  double su = 0, sz = 0, suz = 0, suu = 0, szz = 0;
  for (int i = 0; i < n; ++i) {
    double u = uniformAt(9, 0, i), z = normalAt(9, 0, i);
    su += u, sz += z, suz += u * z, suu += u * u, szz += z * z;
  }
  double cov = suz / n - (su / n) * (sz / n);
  double corr = cov / std::sqrt((suu / n - su * su / n / n) * (szz / n - sz * sz / n / n));
  EXPECT_LT(std::fabs(corr), 0.05);  // standard error ~0.007
}

// The batched streams give the per-index numbers bit for bit: ranges starting anywhere (at a
// batch boundary or not, across the 2^32 carry into the counter's second word), of lengths
// around the batch of 16, for several seeds and steps.
TEST(Batched, RangesMatchThePerIndexStreamsBitForBit) {
  const uint64_t firsts[] = {0, 5, 16, 1000, (1ull << 32) - 7};
  const int64_t counts[] = {0, 1, 15, 16, 17, 40};
  for (uint64_t seed : {0ull, 42ull, 0x299f31d0a4093822ull})
    for (uint64_t step : {0ull, 3ull})
      for (uint64_t first : firsts)
        for (int64_t count : counts) {
          std::vector<double> normals(static_cast<size_t>(count) + 1, -7.0), uniforms = normals;
          weft::runtime::normalsAt(seed, step, first, count, normals.data());
          weft::runtime::uniformsAt(seed, step, first, count, uniforms.data());
          for (int64_t i = 0; i < count; ++i) {
            const uint64_t index = first + static_cast<uint64_t>(i);
            ASSERT_EQ(normals[static_cast<size_t>(i)], normalAt(seed, step, index)) << seed << " " << step << " " << index;
            ASSERT_EQ(uniforms[static_cast<size_t>(i)], uniformAt(seed, step, index)) << seed << " " << step << " " << index;
          }
          EXPECT_EQ(normals[static_cast<size_t>(count)], -7.0);  // nothing past the range
          EXPECT_EQ(uniforms[static_cast<size_t>(count)], -7.0);
        }
}

TEST(Normal, WithinRoundingOfTheFormulaWithTheCLibrarysLogAndCos) {
  // The stream computes ln and cos itself (vectorizable); against libm's the difference is a
  // few units in the last place of a double, which all but never changes the f32 rounding.
  constexpr uint64_t kNormalSalt = 0x6E6F726D616C5F31ull;  // as runtime/random.cpp
  auto unit = [](uint32_t a, uint32_t b) { return static_cast<double>(((uint64_t{b} << 32) | a) >> 11) * 0x1.0p-53; };
  int floatMismatches = 0;
  double worst = 0;
  for (uint64_t i = 0; i < 200000; ++i) {
    const auto w = philox4x32(9, 4 ^ kNormalSalt, i);
    const double want = std::sqrt(-2.0 * std::log(1.0 - unit(w[0], w[1]))) * std::cos(2.0 * M_PI * unit(w[2], w[3]));
    const double got = normalAt(9, 4, i);
    worst = std::max(worst, std::abs(got - want));
    floatMismatches += static_cast<float>(got) != static_cast<float>(want);
  }
  EXPECT_LT(worst, 1e-14);
  EXPECT_LE(floatMismatches, 5);
}
