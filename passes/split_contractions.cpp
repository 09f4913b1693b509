// split-long-contractions: a matrix product that contracts many rows of two row-major
// operands (a weight gradient: matmul(x [K, M], dy [K, N], transpose_lhs) over K rows of
// activations) runs as two halves of the rows side by side, added:
//   matmul(x, dy, transpose_lhs) = p[0] + p[1],
//   p = matmul(reshape(x, [2, K/2, M]), reshape(dy, [2, K/2, N]), transpose_lhs) : [2, M, N]
// oneDNN's matmul splits its work over blocks of the result, not over the contraction: a
// [32, 96] result (ddpm's 1x1 skip convolution over 25088 positions) has too few blocks for
// two threads, a [256, 1024] one (gpt's fc1) splits unevenly; the two halves give each thread
// a batch of its own. The add is elementwise: fuse-elementwise runs it inside the kernel that
// reads the gradient (the optimizer update), no pass of its own.
// Measured on the 2-core AVX-512 machine (oneDNN 2.6, interleaved runs, medians):
// K x M x N = 25088x32x96 0.70 -> 0.50 ms, 6272x64x64 0.165 -> 0.147, 1024x256x1024
// 2.02 -> 1.64, 1024x1024x256 1.72 -> 1.63; at K = 128 the halves were slower (128x784x512
// 0.339 -> 0.367), hence kMinRows.
#include "ir/attrs.h"
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::Shape;
using ir::ValueId;

/// The fewest contracted rows worth splitting in two.
constexpr int64_t kMinRows = 1024;

/// True when `n` is an f32 matmul(lhs [K, M], rhs [K, N], transpose_lhs) with K >= kMinRows, even.
bool isLongContraction(const ir::Graph& g, const ir::Node& n) {
  if (n.op != OpKind::Matmul || n.type.dtype != ir::DType::f32 || n.type.rank() != 2) return false;
  ir::AttrReader attr(n.attrs, n.op);
  if (attr.i("transpose_lhs", 0) != 1 || attr.i("transpose_rhs", 0) != 0) return false;
  const Shape &lhs = g.type(n.operands[0]).shape, &rhs = g.type(n.operands[1]).shape;
  return lhs.size() == 2 && rhs.size() == 2 && lhs[0] >= kMinRows && lhs[0] % 2 == 0;
}

}  // namespace

bool splitLongContractions(ir::Graph& g) {
  return rewriteNodes(g, [](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    const ir::Node& node = rw.source().node(v);
    if (!isLongContraction(rw.source(), node)) return std::nullopt;
    Emitter e = rw.emitterFor(v);
    const std::vector<ValueId> in = rw.mappedOperands(v);
    auto halves = [&](ValueId x) {  // a view of x's own tensor (a reshape of a reshape would be a copy kernel)
      const Shape s = e.shape(x);
      while (rw.target().node(x).op == OpKind::Reshape) x = rw.target().node(x).operands[0];
      return e.reshape(x, {2, s[0] / 2, s[1]});
    };
    ValueId parts = e.op(OpKind::Matmul, {halves(in[0]), halves(in[1])}, {{"transpose_lhs", int64_t{1}}});
    const Shape& result = node.type.shape;
    auto part = [&](int64_t i) {
      ValueId one = e.op(OpKind::Slice, {parts},
                         {{"start", std::vector<int64_t>{i, 0, 0}},
                          {"limit", std::vector<int64_t>{i + 1, result[0], result[1]}},
                          {"stride", std::vector<int64_t>{1, 1, 1}}});
      return e.reshape(one, result);
    };
    const ValueId first = part(0), second = part(1);
    return e.add(first, second);
  });
}

}  // namespace weft::passes
