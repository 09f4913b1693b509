// The causal attention gradient step (see native_attention.h). Per batch matrix of T rows:
//  - dp = dy v^T on and below the diagonal (the triangular step's tiles, columns right of the
//    last row tile's diagonal written 0) into a buffer of T rows;
//  - each row of it becomes the scores' gradient in place: ds = c p (dp - sum(dp p)) up to
//    the diagonal (p read from the saved probabilities), 0 after it;
//  - dq = ds k, dk = ds^T q (the buffer read by columns) and dv = p^T dy through the same
//    tiles, each skipping the products with its lhs's zeros, written straight into their
//    columns of the concatenated result.
// The buffer holds T x T floats per thread (64 KiB for T = 128): it stays in the cache
// between the four products instead of dp and ds passing through memory.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/fused_attention.h"
#include "runtime/cpu/native_attention.h"
#include "runtime/cpu/triangular_tiles.h"
#include "runtime/cpu/vector_state.h"

namespace weft::cpu {
namespace {

using ir::ValueId;

/// The most floats a thread's buffer of the scores' gradient holds (16 MiB: T up to 2048).
constexpr int64_t kMaxBufferFloats = int64_t{1} << 22;

/// What the step computes, read from the node.
struct AttentionGrad {
  TriangularProblem dp, dq, dk, dv;  ///< dq, dk, dv writing into the concatenated result
  float scale = 1;
  int dy = -1, v = -1, p = -1, q = -1, k = -1, dyOfDv = -1;  ///< the node's operands read
};

/// `stride` of a piece of width `width` stored row-major, as the same element's stride in
/// the concatenation along the last axis (of width `total`): nullopt when a step along it
/// would cross the piece's rows.
std::optional<int64_t> strideInConcat(int64_t stride, int64_t width, int64_t total) {
  if (stride % width == 0) return stride / width * total;
  if (stride < width) return stride;
  return std::nullopt;
}

/// `p`'s result moved into its columns [at, at + width) of a concatenation `total` wide.
bool placeInConcat(TriangularProblem& p, int64_t width, int64_t at, int64_t total) {
  std::optional<int64_t> row = strideInConcat(p.c.row, width, total);
  std::optional<int64_t> offset = strideInConcat(p.cOffset - p.cOffset % width, width, total);
  if (!row || !offset) return false;
  p.c.row = *row;
  p.cOffset = *offset + p.cOffset % width + at;
  for (int64_t& s : p.cBatch) {
    std::optional<int64_t> moved = strideInConcat(s, width, total);
    if (!moved) return false;
    s = *moved;
  }
  return true;
}

std::optional<AttentionGrad> attentionGradOf(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  if (ir::fusedKind(node) != "attention_grad" || ir::attentionGradBodyProblem(*node.body))
    return std::nullopt;
  const ir::Graph& body = *node.body;
  const ir::AttentionGradParts parts = ir::attentionGradParts(body);
  AttentionGrad a;
  std::optional<TriangularProblem> dp = triangularProblemOf(body, parts.scoresGrad);
  if (!dp || !dp->lowerOnly || dp->m != dp->n) return std::nullopt;
  a.dp = *dp;
  const int64_t t = dp->m;
  if (t * t > kMaxBufferFloats) return std::nullopt;  // each thread's buffer of T x T floats
  a.scale = static_cast<float>(*ir::causalSoftmaxGradScale(*body.node(parts.softmaxGrad).body));
  a.dy = bodyInputIndex(body, body.node(parts.scoresGrad).operands[0]);
  a.v = bodyInputIndex(body, body.node(parts.scoresGrad).operands[1]);
  a.p = bodyInputIndex(body, parts.probabilities);
  const ir::Shape& joined = node.type.shape;
  int64_t at = 0;
  bool haveQ = false, haveK = false, haveV = false;
  const ir::Node& concat = body.node(body.outputs()[0].value);
  for (size_t slot = 0; slot < 3; ++slot) {
    const ValueId product = parts.products[slot];
    std::optional<TriangularProblem> pr = triangularProblemOf(body, product);
    const ir::Node& n = body.node(product);
    const ir::Shape& piece = body.type(concat.operands[slot]).shape;
    if (!pr || pr->batch != dp->batch || pr->m != t || pr->k != t ||
        !placeInConcat(*pr, piece.back(), at, joined.back()))
      return std::nullopt;
    at += piece.back();
    const int rhs = bodyInputIndex(body, n.operands[1]);
    if (n.operands[0] == parts.probabilities) {  // p^T dy
      if (haveV || pr->lhsZeros != -1) return std::nullopt;
      a.dv = *pr;
      a.dyOfDv = rhs;
      haveV = true;
    } else if (pr->lhsZeros == 1 && pr->lhsIsSquareRowMajor(false)) {  // ds k
      if (haveQ) return std::nullopt;
      a.dq = *pr;
      a.k = rhs;
      haveQ = true;
    } else if (pr->lhsZeros == -1 && pr->lhsIsSquareRowMajor(true)) {  // ds^T q
      if (haveK) return std::nullopt;
      a.dk = *pr;
      a.q = rhs;
      haveK = true;
    } else {
      return std::nullopt;
    }
  }
  if (!haveQ || !haveK || !haveV) return std::nullopt;
  return a;
}

/// The rows of `grad` (stride `stride`, T of them), dp, become ds in place, reading the
/// probabilities `p` (row-major, T x T): up to the diagonal scale * p (dp - sum(dp p)), 0 after it.
[[gnu::target("avx512f")]] void softmaxGradRows(float* grad, int64_t stride, const float* p, int64_t t, float scale) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const __m512 factor = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < t; ++i) {
    float* row = grad + i * stride;
    const float* probabilities = p + i * t;
    const int64_t valid = i + 1;
    __m512 sum = _mm512_setzero_ps();
    for (int64_t c = 0; c < valid; c += 16) {
      const int64_t lanes = std::min<int64_t>(16, valid - c);
      const auto mask = static_cast<__mmask16>(lanes == 16 ? 0xFFFF : (1u << lanes) - 1);
      sum = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, row + c), _mm512_maskz_loadu_ps(mask, probabilities + c), sum);
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, sum);
    float total = 0;
    for (float lane : lanes) total += lane;
    const __m512 rowSum = _mm512_set1_ps(total);
    for (int64_t c = 0; c < valid; c += 16) {
      const int64_t count = std::min<int64_t>(16, valid - c);
      const auto mask = static_cast<__mmask16>(count == 16 ? 0xFFFF : (1u << count) - 1);
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, row + c), rowSum);
      const __m512 ds = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, probabilities + c), d), factor);
      _mm512_storeu_ps(row + c, _mm512_maskz_mov_ps(mask, ds));  // the rest of the vector: 0
    }
    for (int64_t c = (valid + 15) / 16 * 16; c < t; c += 16) _mm512_storeu_ps(row + c, _mm512_setzero_ps());
  }
}

/// softmaxGradRows with AVX2: vectors of 8.
[[gnu::target("avx2,fma")]] void softmaxGradRowsAvx2(float* grad, int64_t stride, const float* p, int64_t t, float scale) {
  UpperHalvesClearedOnExit clearUpperHalves;
  const __m256 factor = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < t; ++i) {
    float* row = grad + i * stride;
    const float* probabilities = p + i * t;
    const int64_t valid = i + 1;
    __m256 sum = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= valid; c += 8) sum = _mm256_fmadd_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(probabilities + c), sum);
    if (c < valid) {
      const __m256i mask = lanesBefore8(c, valid);
      sum = _mm256_fmadd_ps(_mm256_maskload_ps(row + c, mask), _mm256_maskload_ps(probabilities + c, mask), sum);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, sum);
    float total = 0;
    for (float lane : lanes) total += lane;
    const __m256 rowSum = _mm256_set1_ps(total);
    for (int64_t c = 0; c < valid; c += 8) {
      const __m256i mask = lanesBefore8(c, valid);
      const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(row + c, mask), rowSum);
      const __m256 ds = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(probabilities + c, mask), d), factor);
      _mm256_storeu_ps(row + c, _mm256_and_ps(_mm256_castsi256_ps(mask), ds));  // the rest of the vector: 0
    }
    for (int64_t c = (valid + 7) / 8 * 8; c < t; c += 8)  // whole vectors: the rows lie `stride` >= t apart
      _mm256_storeu_ps(row + c, _mm256_setzero_ps());
  }
}

/// One batch matrix's operands and results, past their offsets.
struct Matrices {
  const float *dy, *v, *p, *q, *k, *pOfDv, *dyOfDv;  ///< p: row-major; pOfDv: as dv reads it
  float *dq, *dk, *dv;
};

/// One batch matrix through `isa`'s tiles (avx2 or avx512; see the top of the file).
void attendBackward(const AttentionGrad& at, const Matrices& m, std::vector<float>& grad, std::vector<float>& packed,
                    TileIsa isa) {
  const int64_t t = at.dp.m, stride = (t + kTilePanel - 1) / kTilePanel * kTilePanel;
  grad.resize(static_cast<size_t>(t * stride));
  TriangularProblem dp = at.dp, dq = at.dq, dk = at.dk;
  dp.c = {stride, 1};
  dq.a = {stride, 1};
  dk.a = {1, stride};
  solveTriangular(dp, m.dy, m.v, grad.data(), packed, isa);
  if (isa == TileIsa::avx512)
    softmaxGradRows(grad.data(), stride, m.p, t, at.scale);
  else
    softmaxGradRowsAvx2(grad.data(), stride, m.p, t, at.scale);
  solveTriangular(dq, grad.data(), m.k, m.dq, packed, isa);
  solveTriangular(dk, grad.data(), m.q, m.dk, packed, isa);
  solveTriangular(at.dv, m.pOfDv, m.dyOfDv, m.dv, packed, isa);
}

/// C = alpha A B + beta of one batch matrix of `p` (its lhs at `a` read through `am`)
/// through plain loops: the hints' zeros left out, entries right of a needed="lower"
/// diagonal written 0.
void plainProduct(const TriangularProblem& p, const float* a, const TileMatrix& am, const float* b, float* c) {
  for (int64_t r = 0; r < p.m; ++r)
    for (int64_t n = 0; n < p.n; ++n) {
      if (p.lowerOnly && n > r) {
        c[r * p.c.row + n] = 0;
        continue;
      }
      const int64_t k0 = p.lhsZeros < 0 ? std::min(r, p.k) : 0, k1 = p.lhsZeros > 0 ? std::min(r + 1, p.k) : p.k;
      float dot = 0;
      for (int64_t kk = k0; kk < k1; ++kk) dot = std::fma(a[r * am.row + kk * am.col], b[kk * p.b.row + n * p.b.col], dot);
      c[r * p.c.row + n] = std::fma(dot, p.alpha, p.beta);
    }
}

/// One batch matrix through plain loops, for CPUs with neither AVX2 nor AVX-512.
void attendBackwardPlainly(const AttentionGrad& at, const Matrices& m, std::vector<float>& grad) {
  const int64_t t = at.dp.m;
  grad.resize(static_cast<size_t>(t * t));
  TriangularProblem dp = at.dp;
  dp.c = {t, 1};
  plainProduct(dp, m.dy, dp.a, m.v, grad.data());
  for (int64_t i = 0; i < t; ++i) {
    float* row = grad.data() + i * t;
    float sum = 0;
    for (int64_t j = 0; j <= i; ++j) sum += row[j] * m.p[i * t + j];
    for (int64_t j = 0; j < t; ++j) row[j] = j <= i ? m.p[i * t + j] * (row[j] - sum) * at.scale : 0.0f;
  }
  plainProduct(at.dq, grad.data(), TileMatrix{t, 1}, m.k, m.dq);
  plainProduct(at.dk, grad.data(), TileMatrix{1, t}, m.q, m.dk);
  plainProduct(at.dv, m.pOfDv, at.dv.a, m.dyOfDv, m.dv);
}

void runAttentionGrad(const NativeCall& call, TileIsa isa) {
  const AttentionGrad at = *attentionGradOf(call.graph, call.value);
  auto operand = [&](int index) { return static_cast<const float*>(call.operands[static_cast<size_t>(index)]); };
  auto* out = static_cast<float*>(call.result);
  const int64_t count = ir::numElements(at.dp.batch), t = at.dp.m;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    thread_local std::vector<float> grad, packed;
    int64_t dyo = 0, vo = 0, pvo = 0, dyvo = 0, ko = 0, qo = 0, dqo = 0, dko = 0, dvo = 0, unused = 0;
    at.dp.batchOffsets(i, dyo, vo, unused);
    at.dq.batchOffsets(i, unused, ko, dqo);
    at.dk.batchOffsets(i, unused, qo, dko);
    at.dv.batchOffsets(i, pvo, dyvo, dvo);
    const Matrices m{operand(at.dy) + at.dp.aOffset + dyo,
                     operand(at.v) + at.dp.bOffset + vo,
                     operand(at.p) + i * t * t,  // the probabilities as the rows kernel reads them
                     operand(at.q) + at.dk.bOffset + qo,
                     operand(at.k) + at.dq.bOffset + ko,
                     operand(at.p) + at.dv.aOffset + pvo,
                     operand(at.dyOfDv) + at.dv.bOffset + dyvo,
                     out + at.dq.cOffset + dqo,
                     out + at.dk.cOffset + dko,
                     out + at.dv.cOffset + dvo};
    if (isa != TileIsa::plain)
      attendBackward(at, m, grad, packed, isa);
    else
      attendBackwardPlainly(at, m, grad);
  }
}

}  // namespace

bool runsCausalAttentionGrad(const ir::Graph& g, ValueId v) { return attentionGradOf(g, v).has_value(); }

void runCausalAttentionGrad(const NativeCall& call) { runAttentionGrad(call, hostTileIsa()); }

void runCausalAttentionGradWith(const NativeCall& call, TileIsa isa) { runAttentionGrad(call, isa); }

}  // namespace weft::cpu
