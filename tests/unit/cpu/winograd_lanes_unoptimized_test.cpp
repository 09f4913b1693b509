// Lanes<W> without optimization (tests/CMakeLists.txt compiles this file -O0): the
// width-generic transforms, compiled for no target, then call Lanes' operations (compiled for
// AVX2 or AVX-512) out of line instead of inlining them, and vectors must cross those calls
// intact. Until stop 48 they did not (a struct of one vector went in a vector register on one
// side, in memory on the other), and a Debug build's Winograd steps computed garbage.
#include <gtest/gtest.h>

#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/winograd_kernels.h"

namespace {

using namespace weft::cpu;

/// F(4x4, 3x3)'s output transform A^T m over W's width, from and into plain floats.
template <class W>
void outputTransformOf(const float (&m)[6][16], float (&r)[4][16]) {
  winograd::Lanes<W> in[6], out[4];
  for (int i = 0; i < 6; ++i) in[i] = W::load(m[i]);
  winograd::outputTransform<W>(in, out);
  for (int i = 0; i < 4; ++i) W::store(r[i], out[i]);
}

/// A^T m for every lane of `width`, against the transform's formulas in scalars.
template <class W>
void expectOutputTransform(int width) {
  float m[6][16], r[4][16] = {};
  for (int i = 0; i < 6; ++i)
    for (int lane = 0; lane < 16; ++lane) m[i][lane] = static_cast<float>((i + 1) * (lane + 2) % 7 - 3);
  outputTransformOf<W>(m, r);
  for (int lane = 0; lane < width; ++lane) {
    SCOPED_TRACE(lane);
    const float sum12 = m[1][lane] + m[2][lane], diff12 = m[1][lane] - m[2][lane];
    const float sum34 = m[3][lane] + m[4][lane], diff34 = m[3][lane] - m[4][lane];
    EXPECT_EQ(r[0][lane], m[0][lane] + sum12 + sum34);
    EXPECT_EQ(r[1][lane], diff12 + 2 * diff34);
    EXPECT_EQ(r[2][lane], sum12 + 4 * sum34);
    EXPECT_EQ(r[3][lane], diff12 + 8 * diff34 + m[5][lane]);
  }
}

TEST(WinogradLanesUnoptimized, EightsCrossOutOfLineCalls) {
  if (!hostHasAvx2Fma()) GTEST_SKIP() << "needs AVX2 and FMA";
  expectOutputTransform<winograd::Eights>(8);
}

TEST(WinogradLanesUnoptimized, SixteensCrossOutOfLineCalls) {
  if (!hostHasAvx512()) GTEST_SKIP() << "needs AVX-512";
  expectOutputTransform<winograd::Sixteens>(16);
}

}  // namespace
