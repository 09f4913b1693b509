// The triangular matmul step (see native_triangular_matmul.h). Per batch matrix C = A B
// (A [M, K], B [K, N], each a strided view of its stored operand):
//  - B is packed into panels of 32 columns ([K][32] each; a transposed B, such as k^T in
//    q k^T, through 16 x 16 register transposes), or read in place when its rows are
//    contiguous and N is a multiple of 32;
//  - each tile of 12 rows x 32 columns accumulates in 24 registers: per k, two loads of B,
//    12 broadcasts of A, 24 FMAs (a tile of 16 columns: one load, 12 FMAs);
//  - needed="lower": a row tile stops at the vector of 16 columns holding its last row's
//    diagonal entry (a half panel where that is the panel's first), and the columns right
//    of it are written 0;
//  - lhs_zeros="upper" ("lower"): a row tile's k runs up to its last row (from its first
//    row), the products with A's zeros left out.
// Each result entry sums its products in k order, as one FMA chain.
#include "runtime/cpu/native_triangular_matmul.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/strided_view.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/onednn_postops.h"
#include "runtime/cpu/triangular_tiles.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

using ir::OpKind;
using ir::ValueId;
using Matrix = TileMatrix;
using Problem = TriangularProblem;

constexpr int kRows = kTileRows;
constexpr int kPanel = kTilePanel;
constexpr int64_t kMaxDim = 1 << 14;
constexpr int64_t kMaxPacked = int64_t{1} << 22;  ///< floats of B a thread packs (16 MiB)

}  // namespace

std::optional<TriangularProblem> triangularProblemOf(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  const ir::Node* matmul = &node;
  onednn::StoredLayouts layouts;
  Problem p;
  if (node.op == OpKind::Fused) {
    if (!node.body || ir::AttrReader(node.attrs, node.op).s("kind") != "matmul") return std::nullopt;
    std::optional<onednn::FusedContraction> fused = onednn::parseFusedContraction(*node.body);
    if (!fused || fused->contraction->op != OpKind::Matmul || fused->postOps.size() > 1) return std::nullopt;
    if (!fused->postOps.empty()) {
      const onednn::PostOp& op = fused->postOps[0];
      if (op.binary || op.algorithm != dnnl::algorithm::eltwise_linear) return std::nullopt;
      p.alpha = op.alpha;
      p.beta = op.beta;
    }
    matmul = fused->contraction;
    layouts = fused->layouts;
  } else if (node.op != OpKind::Matmul) {
    return std::nullopt;
  }
  if (matmul->type.dtype != ir::DType::f32) return std::nullopt;
  ir::AttrReader attrs(matmul->attrs, matmul->op);
  if (!attrs.has("needed") && !attrs.has("lhs_zeros")) return std::nullopt;
  p.lowerOnly = attrs.has("needed");
  p.lhsZeros = !attrs.has("lhs_zeros") ? 0 : attrs.s("lhs_zeros") == "upper" ? 1 : -1;

  const ir::Shape& result = matmul->type.shape;
  const size_t rank = result.size();
  std::optional<ir::StridedView> a = ir::matmulOperandView(g.type(node.operands.at(0)).shape, layouts.lhs, rank,
                                                 attrs.i("transpose_lhs", 0) != 0);
  std::optional<ir::StridedView> b = ir::matmulOperandView(g.type(node.operands.at(1)).shape, layouts.rhs, rank,
                                                 attrs.i("transpose_rhs", 0) != 0);
  if (!a || !b) return std::nullopt;
  // The result as stored: transpose(result, perm) row-major, seen in the matmul's dims.
  const ir::Shape cStrides = ir::stridesStoredTransposed(result, layouts.result);
  if (cStrides[rank - 1] != 1) return std::nullopt;
  p.m = result[rank - 2];
  p.n = result[rank - 1];
  p.k = a->dims[rank - 1];
  if (p.m > kMaxDim || p.n > kMaxDim || p.k > kMaxDim || p.m == 0 || p.n == 0) return std::nullopt;
  p.a = {a->strides[rank - 2], a->strides[rank - 1]};
  p.b = {b->strides[rank - 2], b->strides[rank - 1]};
  p.c = {cStrides[rank - 2], 1};
  p.aOffset = a->offset;
  p.bOffset = b->offset;
  for (size_t d = 0; d + 2 < rank; ++d) {
    p.batch.push_back(result[d]);
    p.aBatch.push_back(a->dims[d] == 1 ? 0 : a->strides[d]);
    p.bBatch.push_back(b->dims[d] == 1 ? 0 : b->strides[d]);
    p.cBatch.push_back(cStrides[d]);
  }
  // Batch matrices are what the threads share: one matrix alone stays with oneDNN.
  if (ir::numElements(p.batch) < 2 || p.k * ((p.n + kPanel - 1) / kPanel * kPanel) > kMaxPacked) return std::nullopt;
  return p;
}

namespace {

// The unpacks and lane shuffles through their masked forms with every lane set: the plain intrinsics pass
// GCC 12 an undefined source that -Wmaybe-uninitialized reports once they are inlined.
[[gnu::target("avx512f")]] inline __m512 unpackLow(__m512 a, __m512 b) { return _mm512_mask_unpacklo_ps(a, 0xFFFF, a, b); }
[[gnu::target("avx512f")]] inline __m512 unpackHigh(__m512 a, __m512 b) { return _mm512_mask_unpackhi_ps(a, 0xFFFF, a, b); }
template <int Lanes>
[[gnu::target("avx512f")]] inline __m512 shuffleLanes(__m512 a, __m512 b) {
  return _mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, Lanes);
}
[[gnu::target("avx512f")]] inline __m512 unpackLow64(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpacklo_pd(x, 0xFF, x, _mm512_castps_pd(b)));
}
[[gnu::target("avx512f")]] inline __m512 unpackHigh64(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpackhi_pd(x, 0xFF, x, _mm512_castps_pd(b)));
}

/// A 16 x 16 block transposed in registers: `rows[i]` holds row i; on return `rows[j]`
/// holds column j.
[[gnu::target("avx512f")]] inline void transpose16(__m512 rows[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {  // 32-bit pairs: t[i] lanes hold (r_i, r_i+1) of columns 0 1 | 4 5 | ...
    t[i] = unpackLow(rows[i], rows[i + 1]);
    t[i + 1] = unpackHigh(rows[i], rows[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // 64-bit pairs: rows[i + j] lanes hold column j, j + 4, ... of 4 rows
    rows[i] = unpackLow64(t[i], t[i + 2]);
    rows[i + 1] = unpackHigh64(t[i], t[i + 2]);
    rows[i + 2] = unpackLow64(t[i + 1], t[i + 3]);
    rows[i + 3] = unpackHigh64(t[i + 1], t[i + 3]);
  }
  for (int j = 0; j < 4; ++j) {  // 128-bit lanes: columns j and j + 8, j + 4 and j + 12, of 8 rows
    t[j] = shuffleLanes<0x88>(rows[j], rows[4 + j]);
    t[4 + j] = shuffleLanes<0xDD>(rows[j], rows[4 + j]);
    t[8 + j] = shuffleLanes<0x88>(rows[8 + j], rows[12 + j]);
    t[12 + j] = shuffleLanes<0xDD>(rows[8 + j], rows[12 + j]);
  }
  for (int j = 0; j < 8; ++j) {
    rows[j] = shuffleLanes<0x88>(t[j], t[8 + j]);      // column j
    rows[j + 8] = shuffleLanes<0xDD>(t[j], t[8 + j]);  // column j + 8
  }
}

}  // namespace

namespace {

[[gnu::target("avx512f")]] void packPanelAvx512(const float* b, const Matrix& bm, int64_t k, int64_t n, int64_t n0,
                                                float* panel) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const int64_t width = std::min<int64_t>(kPanel, n - n0);
  int64_t done = 0;  // rows of the panel (values of k) packed by the fast paths
  if (bm.col == 1 && width == kPanel) {
    for (int64_t kk = 0; kk < k; ++kk) std::memcpy(panel + kk * kPanel, b + kk * bm.row + n0, kPanel * sizeof(float));
    done = k;
  } else if (bm.row == 1 && width == kPanel) {  // B^T stored row-major: transpose 16 x 16 blocks
    const int64_t blocks = k / 16 * 16;
    for (int64_t half = 0; half < kPanel; half += 16)
      for (done = 0; done < blocks; done += 16) {
        __m512 rows[16];
        for (int j = 0; j < 16; ++j) rows[j] = _mm512_loadu_ps(b + (n0 + half + j) * bm.col + done);
        transpose16(rows);
        for (int kk = 0; kk < 16; ++kk) _mm512_storeu_ps(panel + (done + kk) * kPanel + half, rows[kk]);
      }
    done = blocks;
  }
  for (int64_t kk = done; kk < k; ++kk)
    for (int64_t j = 0; j < kPanel; ++j)
      panel[kk * kPanel + j] = j < width ? b[kk * bm.row + (n0 + j) * bm.col] : 0.0f;
}

/// One tile: rows [0, Rows) of `a` times the panel's k in [k0, k1) into `c` (columns
/// [0, width) of it, width at most 16 * Vectors), scaled by alpha and shifted by beta.
template <int Rows, int Vectors>
[[gnu::target("avx512f")]] void tile(const float* a, const Matrix& am, const float* panel, int64_t panelRow,
                                     int64_t k0, int64_t k1, float* c, int64_t cRow, int64_t width, float alpha,
                                     float beta) {
  __m512 acc[Rows][Vectors];
#pragma GCC unroll 12
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t kk = k0; kk < k1; ++kk) {
    __m512 b[Vectors];
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v) b[v] = _mm512_loadu_ps(panel + kk * panelRow + 16 * v);
    const float* ak = a + kk * am.col;
#pragma GCC unroll 12
    for (int r = 0; r < Rows; ++r) {
      const __m512 x = _mm512_set1_ps(ak[r * am.row]);
#pragma GCC unroll 2
      for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
    }
  }
  const __m512 scale = _mm512_set1_ps(alpha), shift = _mm512_set1_ps(beta);
#pragma GCC unroll 2
  for (int v = 0; v < Vectors; ++v) {
    const int64_t lanes = std::clamp<int64_t>(width - 16 * v, 0, 16);
    const auto mask = static_cast<__mmask16>(lanes == 16 ? 0xFFFF : (1u << lanes) - 1);
#pragma GCC unroll 12
    for (int r = 0; r < Rows; ++r)
      _mm512_mask_storeu_ps(c + r * cRow + 16 * v, mask, _mm512_fmadd_ps(acc[r][v], scale, shift));
  }
}

}  // namespace

TileIsa hostTileIsa() {
  return hostHasAvx512() ? TileIsa::avx512 : hostHasAvx2Fma() ? TileIsa::avx2 : TileIsa::plain;
}

void packPanel(const float* b, const TileMatrix& bm, int64_t k, int64_t n, int64_t n0, float* panel, TileIsa isa) {
  if (isa == TileIsa::avx512) return packPanelAvx512(b, bm, k, n, n0, panel);
  packPanelAvx2(b, bm, k, n, n0, panel);
}

TileFn tileFor(int64_t rows, int64_t vectors, TileIsa isa) {
  if (isa != TileIsa::avx512) return tileForAvx2(rows);
  static constexpr TileFn kHalf[] = {&tile<1, 1>, &tile<2, 1>, &tile<3, 1>, &tile<4, 1>,  &tile<5, 1>,  &tile<6, 1>,
                                     &tile<7, 1>, &tile<8, 1>, &tile<9, 1>, &tile<10, 1>, &tile<11, 1>, &tile<12, 1>};
  static constexpr TileFn kWhole[] = {&tile<1, 2>, &tile<2, 2>, &tile<3, 2>, &tile<4, 2>,  &tile<5, 2>,  &tile<6, 2>,
                                      &tile<7, 2>, &tile<8, 2>, &tile<9, 2>, &tile<10, 2>, &tile<11, 2>, &tile<12, 2>};
  return (vectors == 1 ? kHalf : kWhole)[rows - 1];
}

bool TriangularProblem::lhsIsSquareRowMajor(bool transposed) const {
  if (k != m || a.row != (transposed ? 1 : m) || a.col != (transposed ? m : 1) || aOffset != 0) return false;
  int64_t matrix = m * m;
  for (size_t d = batch.size(); d-- > 0; matrix *= batch[d])
    if (aBatch[d] != matrix && batch[d] != 1) return false;
  return true;
}

void TriangularProblem::batchOffsets(int64_t index, int64_t& ao, int64_t& bo, int64_t& co) const {
  ao = bo = co = 0;
  for (int64_t d = static_cast<int64_t>(batch.size()) - 1, rest = index; d >= 0; --d) {
    const auto at = static_cast<size_t>(d);
    const int64_t i = rest % batch[at];
    rest /= batch[at];
    ao += i * aBatch[at];
    bo += i * bBatch[at];
    co += i * cBatch[at];
  }
}

void solveTriangular(const TriangularProblem& p, const float* a, const float* b, float* c, std::vector<float>& packed,
                     TileIsa isa) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const int64_t panels = (p.n + kPanel - 1) / kPanel;
  const bool inPlace = p.b.col == 1 && p.n % kPanel == 0;
  if (!inPlace) {
    packed.resize(static_cast<size_t>(panels * p.k * kPanel));
    for (int64_t q = 0; q < panels; ++q) packPanel(b, p.b, p.k, p.n, q * kPanel, packed.data() + q * p.k * kPanel, isa);
  }
  for (int64_t r0 = 0; r0 < p.m; r0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, p.m - r0), last = r0 + rows - 1;
    const int64_t k0 = p.lhsZeros < 0 ? std::min(r0, p.k) : 0;
    const int64_t k1 = p.lhsZeros > 0 ? std::min(last + 1, p.k) : p.k;
    // Columns computed: all, or up to the last row's diagonal entry, rounded up to a vector.
    const int64_t columns = p.lowerOnly ? std::min(p.n, (last / 16 + 1) * 16) : p.n;
    for (int64_t q = 0; q * kPanel < columns; ++q) {
      const float* panel = inPlace ? b + q * kPanel : packed.data() + q * p.k * kPanel;
      const int64_t width = std::min<int64_t>(kPanel, columns - q * kPanel);
      tileFor(rows, width > 16 ? 2 : 1, isa)(a + r0 * p.a.row, p.a, panel, inPlace ? p.b.row : kPanel, k0, k1,
                                        c + r0 * p.c.row + q * kPanel, p.c.row, width, p.alpha, p.beta);
    }
    if (const int64_t from = columns; from < p.n)
      for (int64_t r = r0; r <= last; ++r) std::memset(c + r * p.c.row + from, 0, static_cast<size_t>(p.n - from) * sizeof(float));
  }
}

bool runsTriangularMatmul(const ir::Graph& g, ValueId v) {
  return hostTileIsa() != TileIsa::plain && triangularProblemOf(g, v).has_value();
}

void runTriangularMatmul(const NativeCall& call) {
  const Problem p = *triangularProblemOf(call.graph, call.value);
  const auto* a = static_cast<const float*>(call.operands[0]) + p.aOffset;
  const auto* b = static_cast<const float*>(call.operands[1]) + p.bOffset;
  auto* c = static_cast<float*>(call.result) + p.cOffset;
  const int64_t count = ir::numElements(p.batch);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    thread_local std::vector<float> packed;
    int64_t ao = 0, bo = 0, co = 0;
    p.batchOffsets(i, ao, bo, co);
    solveTriangular(p, a + ao, b + bo, c + co, packed, hostTileIsa());
  }
}

}  // namespace weft::cpu
