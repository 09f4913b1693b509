// The register kernel of every native Winograd step (winograd_kernels.h, multiplySomeRows):
// c (+)= a * b for one to multiplyRowsAtATime() rows (6 or 12) and 16 or 32 columns, a read
// along either of its strides, against sums in double precision; columns past the ones asked
// for are left as they were.
// On an AVX-512 host it runs the 512-bit kernels, elsewhere the AVX2 ones.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/winograd_kernels.h"

using namespace weft::cpu;

namespace {

/// A value that varies with i and is exact in float.
float pattern(int64_t i) { return static_cast<float>((i * 37) % 23 - 11) / 8.0f; }

/// Runs multiplySomeRows on rows x columns of a 48-column c and checks every element of c.
void checkProduct(int64_t rows, int64_t columns, bool accumulate, bool rowMajor) {
  constexpr int64_t kDepth = 19, kLdb = 40, kLdc = 48;
  std::vector<float> a(12 * kDepth), b(kDepth * kLdb), c(12 * kLdc);
  for (size_t i = 0; i < a.size(); ++i) a[i] = pattern(static_cast<int64_t>(i));
  for (size_t i = 0; i < b.size(); ++i) b[i] = pattern(static_cast<int64_t>(i) + 5);
  for (size_t i = 0; i < c.size(); ++i) c[i] = pattern(static_cast<int64_t>(i) + 11);
  const std::vector<float> before = c;
  // a's element (r, i): at r * kDepth + i (row-major) or i * 12 + r (depth-major).
  const int64_t rowStride = rowMajor ? kDepth : 1, depthStride = rowMajor ? 1 : 12;
  if (accumulate)
    winograd::multiplySomeRows<true>(rows, columns, a.data(), rowStride, depthStride, b.data(), kLdb, kDepth, c.data(),
                                     kLdc);
  else
    winograd::multiplySomeRows<false>(rows, columns, a.data(), rowStride, depthStride, b.data(), kLdb, kDepth,
                                      c.data(), kLdc);
  for (int64_t r = 0; r < 12; ++r)
    for (int64_t j = 0; j < kLdc; ++j) {
      const size_t at = static_cast<size_t>(r * kLdc + j);
      if (r >= rows || j >= columns) {
        ASSERT_EQ(c[at], before[at]) << "row " << r << " column " << j << " was written";
        continue;
      }
      double sum = accumulate ? before[at] : 0.0;
      for (int64_t i = 0; i < kDepth; ++i)
        sum += double{a[static_cast<size_t>(r * rowStride + i * depthStride)]} * b[static_cast<size_t>(i * kLdb + j)];
      ASSERT_NEAR(c[at], sum, 1e-4) << rows << " rows, " << columns << " columns, row " << r << " column " << j;
    }
}

TEST(WinogradMultiply, EveryRowCountAndWidthMatchesDoublePrecisionSums) {
  if (!hostHasAvx2Fma()) GTEST_SKIP() << "the Winograd kernels need AVX2 with FMA";
  for (int64_t rows = 1; rows <= winograd::multiplyRowsAtATime(); ++rows)
    for (int64_t columns : {16, 32})
      for (bool accumulate : {false, true})
        for (bool rowMajor : {false, true}) checkProduct(rows, columns, accumulate, rowMajor);
}

}  // namespace
