// The native transpose (see native_transpose.h): 8 x 8 blocks loaded as rows, transposed in
// registers and stored as columns; the edges of matrices whose sides are not multiples of 8
// move one float at a time.
#include "runtime/cpu/native_transpose.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "ir/attrs.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/register_transpose.h"

namespace weft::cpu {
namespace {

constexpr int64_t kBlock = 8;

/// The transpose of `dims` by `perm` (output dim k is input dim perm[k]) with dims of size 1
/// dropped and input dims that stay next to each other, in order, merged: the merged input
/// dims and the permutation over them.
std::pair<ir::Shape, std::vector<int64_t>> simplified(const ir::Shape& dims, const std::vector<int64_t>& perm) {
  std::vector<std::pair<int64_t, int64_t>> groups;  // output order: [first, last] input dims
  for (int64_t p : perm) {
    if (dims[static_cast<size_t>(p)] == 1) continue;
    if (!groups.empty()) {
      // The previous group ends at the input dim before p, but for dims of size 1 between.
      int64_t before = p - 1;
      while (before >= 0 && dims[static_cast<size_t>(before)] == 1) --before;
      if (groups.back().second == before) {
        groups.back().second = p;
        continue;
      }
    }
    groups.emplace_back(p, p);
  }
  std::vector<size_t> inputOrder(groups.size());
  for (size_t i = 0; i < inputOrder.size(); ++i) inputOrder[i] = i;
  std::sort(inputOrder.begin(), inputOrder.end(),
            [&](size_t a, size_t b) { return groups[a].first < groups[b].first; });
  ir::Shape merged(groups.size());
  std::vector<int64_t> mergedPerm(groups.size());
  for (size_t i = 0; i < inputOrder.size(); ++i) {
    const auto [first, last] = groups[inputOrder[i]];
    merged[i] = 1;
    for (int64_t d = first; d <= last; ++d) merged[i] *= dims[static_cast<size_t>(d)];
    mergedPerm[inputOrder[i]] = static_cast<int64_t>(i);
  }
  return {merged, mergedPerm};
}

/// Rows [r0, r1) (r1 - r0 at most kBlock) of matrix `in` [rows, columns] into `out`
/// [columns, rows]: full 8 x 8 blocks in registers, the rest one float at a time.
[[gnu::target("avx2")]] void transposeRowsAvx2(const float* in, float* out, int64_t rows, int64_t columns, int64_t r0,
                                               int64_t r1) {
  int64_t c = 0;
  if (r1 - r0 == kBlock)
    for (; c + kBlock <= columns; c += kBlock) {
      __m256 block[kBlock];
      for (int64_t i = 0; i < kBlock; ++i) block[i] = _mm256_loadu_ps(in + (r0 + i) * columns + c);
      transpose8(block);
      for (int64_t j = 0; j < kBlock; ++j) _mm256_storeu_ps(out + (c + j) * rows + r0, block[j]);
    }
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t k = c; k < columns; ++k) out[k * rows + r] = in[r * columns + k];
}

/// The same one float at a time (CPUs without AVX2).
void transposeRows(const float* in, float* out, int64_t rows, int64_t columns, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t k = 0; k < columns; ++k) out[k * rows + r] = in[r * columns + k];
}

}  // namespace

std::optional<BatchedTranspose> batchedTransposeOf(const ir::Node& node) {
  if (node.op != ir::OpKind::Fused || !node.body || ir::AttrReader(node.attrs, node.op).s("kind") != "loop" ||
      node.type.dtype != ir::DType::f32)
    return std::nullopt;
  const ir::Graph& body = *node.body;
  if (body.outputs().size() != 1 || body.inputs().size() != 1) return std::nullopt;
  const ir::Node* transpose = nullptr;
  ir::ValueId previous = -1;
  for (ir::ValueId v = 0; v < body.size(); ++v) {
    const ir::Node& n = body.node(v);
    if (n.op == ir::OpKind::Input) {
      previous = v;
      continue;
    }
    if ((n.op != ir::OpKind::Reshape && n.op != ir::OpKind::Transpose) || n.operands.size() != 1 ||
        n.operands[0] != previous)
      return std::nullopt;
    if (n.op == ir::OpKind::Transpose) {
      if (transpose) return std::nullopt;
      transpose = &n;
    }
    previous = v;
  }
  if (!transpose || body.outputs()[0].value != previous) return std::nullopt;
  const auto [dims, perm] =
      simplified(body.type(transpose->operands[0]).shape, ir::AttrReader(transpose->attrs, transpose->op).ints("perm"));
  BatchedTranspose t;
  if (perm == std::vector<int64_t>{1, 0}) {
    t.rows = dims[0], t.columns = dims[1];
  } else if (perm == std::vector<int64_t>{0, 2, 1}) {
    t.batch = dims[0], t.rows = dims[1], t.columns = dims[2];
  } else {
    return std::nullopt;
  }
  if (t.rows < kBlock || t.columns < kBlock) return std::nullopt;
  return t;
}

bool runsNativeTranspose(const ir::Node& node) { return batchedTransposeOf(node).has_value(); }

void runTranspose(const NativeCall& call) {
  const BatchedTranspose t = *batchedTransposeOf(call.graph.node(call.value));
  const auto* in = static_cast<const float*>(call.operands[0]);
  auto* out = static_cast<float*>(call.result);
  const int64_t blocksPerMatrix = (t.rows + kBlock - 1) / kBlock, blocks = t.batch * blocksPerMatrix,
                matrix = t.rows * t.columns;
  const bool avx2 = hostHasAvx2Fma();
#pragma omp parallel for schedule(static) if (t.batch * matrix >= (int64_t{1} << 15))
  for (int64_t job = 0; job < blocks; ++job) {
    const int64_t b = job / blocksPerMatrix, r0 = (job % blocksPerMatrix) * kBlock, r1 = std::min(r0 + kBlock, t.rows);
    const float* from = in + b * matrix;
    float* to = out + b * matrix;
    if (avx2)
      transposeRowsAvx2(from, to, t.rows, t.columns, r0, r1);
    else
      transposeRows(from, to, t.rows, t.columns, r0, r1);
  }
}

}  // namespace weft::cpu
