#pragma once
/// The pieces of the triangular matmul step (native_triangular_matmul.cpp) that the causal
/// attention step (native_attention.cpp) computes with too: a matmul node read as strided
/// batch matrices, B packed into panels of 32 columns, and result tiles of up to 12 rows by
/// 32 columns, in AVX-512 or in AVX2 (triangular_tiles_avx2.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"

namespace weft::cpu {

constexpr int kTileRows = 12;   ///< rows of a result tile
constexpr int kTilePanel = 32;  ///< columns of a result tile (two vectors), and of a packed panel

/// One batch matrix's operand: element (r, c) at data[offset + r * row + c * col].
struct TileMatrix {
  int64_t row = 0, col = 0;
};

/// A matmul with a triangular hint as the step computes it: per batch matrix C = alpha A B +
/// beta (A [M, K], B [K, N], each a strided view of its stored operand).
struct TriangularProblem {
  int64_t m = 0, n = 0, k = 0;
  TileMatrix a, b, c;                   ///< c.col is 1
  int64_t aOffset = 0, bOffset = 0, cOffset = 0;
  ir::Shape batch;                      ///< the result's batch dims
  ir::Shape aBatch, bBatch, cBatch;     ///< element strides along them (0: broadcast)
  bool lowerOnly = false;               ///< needed="lower"
  int lhsZeros = 0;                     ///< +1: zero above the diagonal, -1: below, 0: none
  float alpha = 1, beta = 0;            ///< result = alpha * product + beta

  /// True when A is M x M, stored row-major (read transposed when `transposed`) matrix
  /// after matrix, without an offset: a value the attention steps compute in its place.
  bool lhsIsSquareRowMajor(bool transposed) const;

  /// The offsets of batch matrix `index` (row-major over `batch`) into A, B and C.
  void batchOffsets(int64_t index, int64_t& a, int64_t& b, int64_t& c) const;
};

/// Node `v` of `g` (a matmul, or a fused matmul with at most an eltwise_linear epilogue,
/// carrying lhs_zeros or needed) as a TriangularProblem, or nullopt when the step does not
/// take it: f32, views the operands' strides express, dims up to 16384, two or more batch
/// matrices and B at most 16 MiB packed.
std::optional<TriangularProblem> triangularProblemOf(const ir::Graph& g, ir::ValueId v);

/// The instruction sets the tiles come in; plain: neither (the steps' plain loops run).
enum class TileIsa { plain, avx2, avx512 };

/// The widest TileIsa this CPU runs: avx512 with AVX-512F, avx2 with AVX2 and FMA, else plain.
TileIsa hostTileIsa();

/// Packs B's columns [n0, n0 + 32) (zeros past N) into `panel` as [K][32] with `isa`'s
/// instructions (avx2 or avx512).
void packPanel(const float* b, const TileMatrix& bm, int64_t k, int64_t n, int64_t n0, float* panel, TileIsa isa);

/// The lanes of a vector of 8 floats at column `c` that lie before column `end`, as AVX2's
/// maskload and maskstore take them.
[[gnu::target("avx2")]] inline __m256i lanesBefore8(int64_t c, int64_t end) {
  const auto lanes = static_cast<int>(std::clamp<int64_t>(end - c, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// packPanel with AVX2 (triangular_tiles_avx2.cpp).
void packPanelAvx2(const float* b, const TileMatrix& bm, int64_t k, int64_t n, int64_t n0, float* panel);

/// A result tile: rows [0, rows) of `a` times the panel's k in [k0, k1) into `c` (columns
/// [0, width) of it), scaled by alpha and shifted by beta.
using TileFn = void (*)(const float* a, const TileMatrix& am, const float* panel, int64_t panelRow, int64_t k0,
                        int64_t k1, float* c, int64_t cRow, int64_t width, float alpha, float beta);

/// One batch matrix of `p` (A at `a`, B at `b`, C at `c`, each past its batch offset)
/// through tiles: B packed into `packed` unless read in place; columns right of what
/// needed="lower" computes written 0, with `isa`'s tiles (avx2 or avx512).
void solveTriangular(const TriangularProblem& p, const float* a, const float* b, float* c, std::vector<float>& packed,
                     TileIsa isa);

/// The tile kernel of `isa` (avx2 or avx512) for `rows` rows (1 to kTileRows) and up to
/// `vectors` x 16 columns (1 or 2).
TileFn tileFor(int64_t rows, int64_t vectors, TileIsa isa);

/// The AVX2 tile kernel for `rows` rows (1 to kTileRows) and up to kTilePanel columns
/// (triangular_tiles_avx2.cpp).
TileFn tileForAvx2(int64_t rows);

}  // namespace weft::cpu
