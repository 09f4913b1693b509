// The triangular step's tiles for CPUs with AVX2 and FMA but no AVX-512 (triangular_tiles.h):
// the same panels of 32 columns and tiles of up to 12 rows by 32 columns, each computed as up
// to four register tiles of 6 rows by 16 columns (12 accumulators, two loads of B and six
// broadcasts of A per k). A transposed B is packed through 8 x 8 register transposes.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "runtime/cpu/register_transpose.h"
#include "runtime/cpu/triangular_tiles.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

constexpr int kMicroRows = 6;      ///< rows of a register tile
constexpr int kMicroColumns = 16;  ///< columns of a register tile (two vectors of 8)

/// A register tile: rows [0, Rows) of `a` times the panel's k in [k0, k1) into `c` (columns
/// [0, width) of it, width at most 8 * Vectors), scaled by alpha and shifted by beta.
template <int Rows, int Vectors>
[[gnu::target("avx2,fma")]] void microTile(const float* a, const TileMatrix& am, const float* panel, int64_t panelRow,
                                           int64_t k0, int64_t k1, float* c, int64_t cRow, int64_t width, float alpha,
                                           float beta) {
  __m256 acc[Rows][Vectors];
#pragma GCC unroll 6
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm256_setzero_ps();
  const float* ak = a + k0 * am.col;  // A's and B's elements at k, stepped along
  const float* bk = panel + k0 * panelRow;
  for (int64_t kk = k0; kk < k1; ++kk, ak += am.col, bk += panelRow) {
    __m256 b[Vectors];
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v) b[v] = _mm256_loadu_ps(bk + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < Rows; ++r) {
      const __m256 x = _mm256_broadcast_ss(ak + r * am.row);
#pragma GCC unroll 2
      for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm256_fmadd_ps(x, b[v], acc[r][v]);
    }
  }
  const __m256 scale = _mm256_set1_ps(alpha), shift = _mm256_set1_ps(beta);
#pragma GCC unroll 2
  for (int v = 0; v < Vectors; ++v) {
    const int64_t lanes = std::clamp<int64_t>(width - 8 * v, 0, 8);
    const __m256i mask = lanesBefore8(8 * v, width);
#pragma GCC unroll 6
    for (int r = 0; r < Rows; ++r) {
      const __m256 value = _mm256_fmadd_ps(acc[r][v], scale, shift);
      if (lanes == 8)
        _mm256_storeu_ps(c + r * cRow + 8 * v, value);
      else
        _mm256_maskstore_ps(c + r * cRow + 8 * v, mask, value);
    }
  }
}

using MicroFn = void (*)(const float*, const TileMatrix&, const float*, int64_t, int64_t, int64_t, float*, int64_t,
                         int64_t, float, float);

/// The register tile of `rows` rows (1 to 6) and `vectors` vectors of 8 columns (1 or 2).
MicroFn microTileFor(int64_t rows, int64_t vectors) {
  static constexpr MicroFn kOne[] = {&microTile<1, 1>, &microTile<2, 1>, &microTile<3, 1>,
                                     &microTile<4, 1>, &microTile<5, 1>, &microTile<6, 1>};
  static constexpr MicroFn kTwo[] = {&microTile<1, 2>, &microTile<2, 2>, &microTile<3, 2>,
                                     &microTile<4, 2>, &microTile<5, 2>, &microTile<6, 2>};
  return (vectors == 1 ? kOne : kTwo)[rows - 1];
}

/// A tile of `rows` rows (1 to kTileRows) and `width` columns (1 to kTilePanel) through
/// register tiles of 6 rows by 16 columns.
[[gnu::target("avx2,fma")]] void tile(int64_t rows, const float* a, const TileMatrix& am, const float* panel,
                                      int64_t panelRow, int64_t k0, int64_t k1, float* c, int64_t cRow, int64_t width,
                                      float alpha, float beta) {
  UpperHalvesClearedOnExit clearUpperHalves;
  for (int64_t c0 = 0; c0 < width; c0 += kMicroColumns) {
    const int64_t columns = std::min<int64_t>(kMicroColumns, width - c0);
    for (int64_t r0 = 0; r0 < rows; r0 += kMicroRows) {
      const int64_t count = std::min<int64_t>(kMicroRows, rows - r0);
      microTileFor(count, columns > 8 ? 2 : 1)(a + r0 * am.row, am, panel + c0, panelRow, k0, k1, c + r0 * cRow + c0,
                                               cRow, columns, alpha, beta);
    }
  }
}

/// tile() for a compile-time row count, as a TileFn.
template <int Rows>
void tileOf(const float* a, const TileMatrix& am, const float* panel, int64_t panelRow, int64_t k0, int64_t k1,
            float* c, int64_t cRow, int64_t width, float alpha, float beta) {
  tile(Rows, a, am, panel, panelRow, k0, k1, c, cRow, width, alpha, beta);
}

}  // namespace

[[gnu::target("avx2")]] void packPanelAvx2(const float* b, const TileMatrix& bm, int64_t k, int64_t n, int64_t n0,
                                           float* panel) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const int64_t width = std::min<int64_t>(kTilePanel, n - n0);
  int64_t done = 0;  // rows of the panel (values of k) packed by the fast paths
  if (bm.col == 1 && width == kTilePanel) {
    for (int64_t kk = 0; kk < k; ++kk)
      std::memcpy(panel + kk * kTilePanel, b + kk * bm.row + n0, kTilePanel * sizeof(float));
    done = k;
  } else if (bm.row == 1 && width == kTilePanel) {  // B^T stored row-major: transpose 8 x 8 blocks
    const int64_t blocks = k / 8 * 8;
    for (int64_t part = 0; part < kTilePanel; part += 8)
      for (done = 0; done < blocks; done += 8) {
        __m256 rows[8];
        for (int j = 0; j < 8; ++j) rows[j] = _mm256_loadu_ps(b + (n0 + part + j) * bm.col + done);
        transpose8(rows);
        for (int kk = 0; kk < 8; ++kk) _mm256_storeu_ps(panel + (done + kk) * kTilePanel + part, rows[kk]);
      }
    done = blocks;
  }
  for (int64_t kk = done; kk < k; ++kk)
    for (int64_t j = 0; j < kTilePanel; ++j)
      panel[kk * kTilePanel + j] = j < width ? b[kk * bm.row + (n0 + j) * bm.col] : 0.0f;
}

TileFn tileForAvx2(int64_t rows) {
  static constexpr TileFn kTiles[] = {&tileOf<1>, &tileOf<2>, &tileOf<3>, &tileOf<4>,  &tileOf<5>,  &tileOf<6>,
                                      &tileOf<7>, &tileOf<8>, &tileOf<9>, &tileOf<10>, &tileOf<11>, &tileOf<12>};
  return kTiles[rows - 1];
}

}  // namespace weft::cpu
