// The causal attention step (see native_attention.h). Per batch matrix of T rows, head width
// D and v of width E:
//  - k^T is packed into panels of 32 columns once, and so is v unless its rows are read in
//    place (contiguous, E a multiple of 32);
//  - for each block of 12 rows, the scores' tiles run up to the vector of 16 columns holding
//    the block's last diagonal entry, into a buffer of 12 rows;
//  - each row's softmax covers its columns up to its diagonal: the max, exp(x - max) (a
//    polynomial, about 1 ulp), their sum, then a product with its reciprocal (the reference
//    divides: at most an ulp apart); the entries right of the diagonal are written 0
//    (exp(-inf - max) in the reference);
//  - the block's result tiles multiply the buffer by v over k up to the block's last row.
// A node returning the probabilities (a training step's) computes each block's rows in its
// result instead of the buffer, zeros right of the diagonal included. Each product sums in k order, one FMA chain per entry, as the triangular step does.
#include "runtime/cpu/native_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/fused_attention.h"
#include "runtime/cpu/triangular_tiles.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

using ir::ValueId;

/// What the step computes, read from the node.
struct Attention {
  TriangularProblem scores, result;
  int q = -1, k = -1, v = -1;  ///< the node's operands holding q, k (scores' lhs, rhs) and v (result's rhs)
  bool probabilitiesOnly = false;  ///< the node returns the probabilities (row-major), no result product
};

std::optional<Attention> attentionOf(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  if (ir::fusedKind(node) != "attention" || ir::attentionBodyProblem(*node.body))
    return std::nullopt;
  const ir::Graph& body = *node.body;
  const ir::AttentionParts parts = ir::attentionParts(body);
  std::optional<TriangularProblem> scores = triangularProblemOf(body, parts.scores);
  if (!scores || !scores->lowerOnly || scores->n != scores->m) return std::nullopt;
  const int64_t t = scores->m;
  Attention a{*scores, {}};
  a.q = bodyInputIndex(body, body.node(parts.scores).operands[0]);
  a.k = bodyInputIndex(body, body.node(parts.scores).operands[1]);
  if (parts.result < 0) {  // the probabilities, written row-major as the node's result
    a.probabilitiesOnly = true;
    return a;
  }
  std::optional<TriangularProblem> result = triangularProblemOf(body, parts.result);
  if (!result || result->lhsZeros != 1 || result->m != t || result->k != t || scores->batch != result->batch)
    return std::nullopt;
  // The probabilities row-major as the rows kernel writes them: the result reads no view of them.
  if (!result->lhsIsSquareRowMajor(false)) return std::nullopt;
  a.result = *result;
  a.v = bodyInputIndex(body, body.node(parts.result).operands[1]);
  return a;
}

// The masked forms with every lane set: the plain intrinsics pass GCC 12 an undefined source
// that -Wmaybe-uninitialized reports once they are inlined.
[[gnu::target("avx512f")]] inline __m512 maximum(__m512 a, __m512 b) { return _mm512_mask_max_ps(a, 0xFFFF, a, b); }

// Every lane of the results holds the largest or the sum of x's lanes: halves, quarters,
// pairs and neighbours swapped in turn.
[[gnu::target("avx512f")]] inline __m512 largestLanes(__m512 x) {
  x = maximum(x, _mm512_mask_shuffle_f32x4(x, 0xFFFF, x, x, 0x4E));
  x = maximum(x, _mm512_mask_shuffle_f32x4(x, 0xFFFF, x, x, 0xB1));
  x = maximum(x, _mm512_mask_permute_ps(x, 0xFFFF, x, 0x4E));
  return maximum(x, _mm512_mask_permute_ps(x, 0xFFFF, x, 0xB1));
}
[[gnu::target("avx512f")]] inline __m512 laneSums(__m512 x) {
  x = _mm512_add_ps(x, _mm512_mask_shuffle_f32x4(x, 0xFFFF, x, x, 0x4E));
  x = _mm512_add_ps(x, _mm512_mask_shuffle_f32x4(x, 0xFFFF, x, x, 0xB1));
  x = _mm512_add_ps(x, _mm512_mask_permute_ps(x, 0xFFFF, x, 0x4E));
  return _mm512_add_ps(x, _mm512_mask_permute_ps(x, 0xFFFF, x, 0xB1));
}

/// exp(x) for x <= 0 (and -inf): 2^n e^r with r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2] and
/// e^r by its Taylor polynomial of degree 7.
[[gnu::target("avx512f")]] inline __m512 exp16(__m512 x) {
  x = maximum(x, _mm512_set1_ps(-104.0f));  // e^-104 is below the smallest float
  const __m512 scaled = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504f));
  const __m512 n = _mm512_mask_roundscale_ps(scaled, 0xFFFF, scaled, _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 5040), r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_mask_scalef_ps(p, 0xFFFF, p, n);
}

/// The lanes of the vector at column `c` that lie before column `end`.
inline __mmask16 lanesBefore(int64_t c, int64_t end) {
  const int64_t lanes = std::clamp<int64_t>(end - c, 0, 16);
  return static_cast<__mmask16>(lanes == 16 ? 0xFFFF : (1u << lanes) - 1);
}

/// Row r of `rows` (stride `stride`), the scores of matrix row first + r, becomes its
/// probabilities over columns [0, first + r], each exp(x - max) times the reciprocal of
/// their sum; columns after it, up to `columns`, become 0.
[[gnu::target("avx512f")]] void softmaxRows(float* rows, int64_t stride, int64_t count, int64_t first,
                                            int64_t columns) {
  const __m512 minusInf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 sums[kTileRows];
  for (int64_t r = 0; r < count; ++r) {
    float* row = rows + r * stride;
    const int64_t valid = first + r + 1, written = (valid + 15) / 16 * 16;
    __m512 max = minusInf;
    for (int64_t c = 0; c < valid; c += 16) max = maximum(max, _mm512_mask_loadu_ps(minusInf, lanesBefore(c, valid), row + c));
    max = largestLanes(max);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t c = 0; c < valid; c += 16) {
      const __mmask16 lanes = lanesBefore(c, valid);
      const __m512 e = _mm512_maskz_mov_ps(lanes, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, row + c), max)));
      sum = _mm512_add_ps(sum, e);
      _mm512_mask_storeu_ps(row + c, lanesBefore(c, columns), e);
    }
    for (int64_t c = written; c < columns; c += 16) _mm512_mask_storeu_ps(row + c, lanesBefore(c, columns), _mm512_setzero_ps());
    sums[r] = sum;
  }
  for (int64_t r = 0; r < count; ++r) {  // apart from the sums: the divisions overlap
    float* row = rows + r * stride;
    const int64_t valid = first + r + 1;
    const __m512 reciprocal = _mm512_div_ps(_mm512_set1_ps(1.0f), laneSums(sums[r]));
    for (int64_t c = 0; c < valid; c += 16)
      _mm512_mask_storeu_ps(row + c, lanesBefore(c, valid),
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(lanesBefore(c, valid), row + c), reciprocal));
  }
}

/// Every lane of the results holds the largest or the sum of x's lanes.
[[gnu::target("avx2")]] inline __m256 largestLanes8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_permute2f128_ps(x, x, 0x01));
  x = _mm256_max_ps(x, _mm256_permute_ps(x, 0x4E));
  return _mm256_max_ps(x, _mm256_permute_ps(x, 0xB1));
}
[[gnu::target("avx2")]] inline __m256 laneSums8(__m256 x) {
  x = _mm256_add_ps(x, _mm256_permute2f128_ps(x, x, 0x01));
  x = _mm256_add_ps(x, _mm256_permute_ps(x, 0x4E));
  return _mm256_add_ps(x, _mm256_permute_ps(x, 0xB1));
}

/// exp(x) for x <= 0 (and -inf) as exp16 computes it, x first raised to -87 (e^-87 is about
/// the smallest normal float, and 2^n is formed in the exponent bits, n >= -126).
[[gnu::target("avx2,fma")]] inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 5040), r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

/// The vector of 8 at row + c with the lanes from column `end` on replaced by `fill`: a plain
/// load where all 8 lie before it.
[[gnu::target("avx2")]] inline __m256 loadBefore(const float* row, int64_t c, int64_t end, __m256 fill) {
  if (c + 8 <= end) return _mm256_loadu_ps(row + c);
  const __m256i lanes = lanesBefore8(c, end);
  return _mm256_blendv_ps(fill, _mm256_maskload_ps(row + c, lanes), _mm256_castsi256_ps(lanes));
}

/// Stores the lanes of `x` before column `end` at row + c: a plain store where all 8 lie
/// before it (AMD's masked stores take tens of cycles).
[[gnu::target("avx2")]] inline void storeBefore(float* row, int64_t c, int64_t end, __m256 x) {
  if (c + 8 <= end)
    _mm256_storeu_ps(row + c, x);
  else
    _mm256_maskstore_ps(row + c, lanesBefore8(c, end), x);
}

/// softmaxRows with AVX2: vectors of 8.
[[gnu::target("avx2,fma")]] void softmaxRowsAvx2(float* rows, int64_t stride, int64_t count, int64_t first,
                                                 int64_t columns) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const __m256 minusInf = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), zero = _mm256_setzero_ps();
  __m256 sums[kTileRows];
  for (int64_t r = 0; r < count; ++r) {
    float* row = rows + r * stride;
    const int64_t valid = first + r + 1, written = (valid + 7) / 8 * 8;
    __m256 max = minusInf;
    for (int64_t c = 0; c < valid; c += 8) max = _mm256_max_ps(max, loadBefore(row, c, valid, minusInf));
    max = largestLanes8(max);
    __m256 sum = zero;
    for (int64_t c = 0; c < valid; c += 8) {
      const __m256 e = _mm256_sub_ps(loadBefore(row, c, valid, minusInf), max);  // -inf past the diagonal
      const __m256 exp = exp8(e);
      const __m256 kept = c + 8 <= valid ? exp : _mm256_and_ps(_mm256_castsi256_ps(lanesBefore8(c, valid)), exp);
      sum = _mm256_add_ps(sum, kept);
      storeBefore(row, c, columns, kept);
    }
    for (int64_t c = written; c < columns; c += 8) storeBefore(row, c, columns, zero);
    sums[r] = sum;
  }
  for (int64_t r = 0; r < count; ++r) {  // apart from the sums: the divisions overlap
    float* row = rows + r * stride;
    const int64_t valid = first + r + 1;
    const __m256 reciprocal = _mm256_div_ps(_mm256_set1_ps(1.0f), laneSums8(sums[r]));
    // Lanes past the diagonal hold 0 (or lie past the columns): scaled, they stay 0.
    for (int64_t c = 0; c < valid; c += 8)
      storeBefore(row, c, columns, _mm256_mul_ps(loadBefore(row, c, columns, zero), reciprocal));
  }
}

/// One batch matrix through `isa`'s tiles and softmax (avx2 or avx512; see the top of the file).
void attend(const Attention& at, const float* q, const float* k, const float* v, float* out,
            std::vector<float>& packedK, std::vector<float>& packedV, std::vector<float>& rows, TileIsa isa) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const TriangularProblem& s = at.scores;
  const TriangularProblem& o = at.result;
  const int64_t t = s.m, d = s.k, e = at.probabilitiesOnly ? 0 : o.n;
  const int64_t panelsK = (t + kTilePanel - 1) / kTilePanel, panelsV = (e + kTilePanel - 1) / kTilePanel;
  const bool kInPlace = s.b.col == 1 && t % kTilePanel == 0, vInPlace = o.b.col == 1 && e % kTilePanel == 0;
  if (!kInPlace) {
    packedK.resize(static_cast<size_t>(panelsK * d * kTilePanel));
    for (int64_t p = 0; p < panelsK; ++p) packPanel(k, s.b, d, t, p * kTilePanel, packedK.data() + p * d * kTilePanel, isa);
  }
  if (!vInPlace) {
    packedV.resize(static_cast<size_t>(panelsV * t * kTilePanel));
    for (int64_t p = 0; p < panelsV; ++p) packPanel(v, o.b, t, e, p * kTilePanel, packedV.data() + p * t * kTilePanel, isa);
  }
  // The block's rows: in the buffer, or (probabilities only) in the result itself.
  const int64_t stride = at.probabilitiesOnly ? t : panelsK * kTilePanel;
  if (!at.probabilitiesOnly) rows.resize(static_cast<size_t>(kTileRows * stride));
  const TileMatrix block{stride, 1};
  for (int64_t r0 = 0; r0 < t; r0 += kTileRows) {
    const int64_t count = std::min<int64_t>(kTileRows, t - r0), last = r0 + count - 1;
    const int64_t columns = std::min(t, (last / 16 + 1) * 16);
    float* blockRows = at.probabilitiesOnly ? out + r0 * t : rows.data();
    for (int64_t p = 0; p * kTilePanel < columns; ++p) {
      const float* panel = kInPlace ? k + p * kTilePanel : packedK.data() + p * d * kTilePanel;
      const int64_t width = std::min<int64_t>(kTilePanel, columns - p * kTilePanel);
      tileFor(count, width > 16 ? 2 : 1, isa)(q + r0 * s.a.row, s.a, panel, kInPlace ? s.b.row : kTilePanel, 0, d,
                                         blockRows + p * kTilePanel, stride, width, s.alpha, s.beta);
    }
    if (isa == TileIsa::avx512)
      softmaxRows(blockRows, stride, count, r0, columns);
    else
      softmaxRowsAvx2(blockRows, stride, count, r0, columns);
    if (at.probabilitiesOnly) {
      for (int64_t r = 0; r < count && columns < t; ++r)
        std::fill(blockRows + r * stride + columns, blockRows + (r + 1) * stride, 0.0f);
      continue;
    }
    for (int64_t p = 0; p * kTilePanel < e; ++p) {
      const float* panel = vInPlace ? v + p * kTilePanel : packedV.data() + p * t * kTilePanel;
      const int64_t width = std::min<int64_t>(kTilePanel, e - p * kTilePanel);
      tileFor(count, width > 16 ? 2 : 1, isa)(rows.data(), block, panel, vInPlace ? o.b.row : kTilePanel, 0, last + 1,
                                         out + r0 * o.c.row + p * kTilePanel, o.c.row, width, o.alpha, o.beta);
    }
  }
}

/// One batch matrix through plain loops, for CPUs with neither AVX2 nor AVX-512.
void attendPlainly(const Attention& at, const float* q, const float* k, const float* v, float* out,
                   std::vector<float>& row) {
  const TriangularProblem& s = at.scores;
  const TriangularProblem& o = at.result;
  row.resize(static_cast<size_t>(s.m));
  for (int64_t i = 0; i < s.m; ++i) {
    float max = -std::numeric_limits<float>::infinity(), sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      float dot = 0;
      for (int64_t c = 0; c < s.k; ++c) dot = std::fma(q[i * s.a.row + c * s.a.col], k[c * s.b.row + j * s.b.col], dot);
      row[static_cast<size_t>(j)] = std::fma(dot, s.alpha, s.beta);
      max = std::max(max, row[static_cast<size_t>(j)]);
    }
    for (int64_t j = 0; j <= i; ++j) sum += row[static_cast<size_t>(j)] = std::exp(row[static_cast<size_t>(j)] - max);
    for (int64_t j = 0; j <= i; ++j) row[static_cast<size_t>(j)] /= sum;
    if (at.probabilitiesOnly) {
      for (int64_t j = 0; j < s.m; ++j) out[i * s.m + j] = j <= i ? row[static_cast<size_t>(j)] : 0.0f;
      continue;
    }
    for (int64_t c = 0; c < o.n; ++c) {
      float dot = 0;
      for (int64_t j = 0; j <= i; ++j) dot = std::fma(row[static_cast<size_t>(j)], v[j * o.b.row + c * o.b.col], dot);
      out[i * o.c.row + c] = std::fma(dot, o.alpha, o.beta);
    }
  }
}

}  // namespace

bool runsCausalAttention(const ir::Graph& g, ValueId v) { return attentionOf(g, v).has_value(); }

namespace {

void runAttention(const NativeCall& call, TileIsa isa) {
  const Attention at = *attentionOf(call.graph, call.value);
  const auto* q = static_cast<const float*>(call.operands[static_cast<size_t>(at.q)]) + at.scores.aOffset;
  const auto* k = static_cast<const float*>(call.operands[static_cast<size_t>(at.k)]) + at.scores.bOffset;
  const auto* v = at.probabilitiesOnly ? nullptr
                                       : static_cast<const float*>(call.operands[static_cast<size_t>(at.v)]) +
                                             at.result.bOffset;
  auto* out = static_cast<float*>(call.result) + (at.probabilitiesOnly ? 0 : at.result.cOffset);
  const int64_t count = ir::numElements(at.scores.batch);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    thread_local std::vector<float> packedK, packedV, rows;
    int64_t qo = 0, ko = 0, unused = 0, vo = 0, oo = 0;
    at.scores.batchOffsets(i, qo, ko, unused);
    if (at.probabilitiesOnly)
      oo = i * at.scores.m * at.scores.m;
    else
      at.result.batchOffsets(i, unused, vo, oo);
    if (isa != TileIsa::plain)
      attend(at, q + qo, k + ko, v + vo, out + oo, packedK, packedV, rows, isa);
    else
      attendPlainly(at, q + qo, k + ko, v + vo, out + oo, rows);
  }
}

}  // namespace

void runCausalAttention(const NativeCall& call) { runAttention(call, hostTileIsa()); }

void runCausalAttentionWith(const NativeCall& call, TileIsa isa) { runAttention(call, isa); }

}  // namespace weft::cpu
