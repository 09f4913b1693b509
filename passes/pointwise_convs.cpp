// pointwise-convs-to-matmuls: a convolution with a 1x1 kernel (no padding, no dilation, one
// group) is a matrix product per image over the flattened spatial positions P (with a
// stride s, over every s-th position; a strided forward convolution stays one):
//   conv(x [N,C,..], w [O,C,1..])              = matmul(w [O,C], x [N,C,P])                -> [N,O,..]
//   conv_transpose(dy [N,O,..], w [O,C,1..])   = matmul(w [O,C], dy [N,O,P], transpose_lhs) -> [N,C,..]
//                                                (strided: spread over every s-th position)
//   conv_weight_grad(x [N,C,..], dy [N,O,..])  = sum over n of matmul(dy [N,O,P], x [N,C,P], transpose_rhs)
// Channels-last gradients (data [N, spatial.., C], M = N * P rows) are plain matrix products
// (strided: over every s-th position, a strided slice of x, dy's product spread with zeros):
//   conv_transpose(dy [N,..,O], w [O,C,1..])   = matmul(dy [M,O], w [O,C])                 -> [N,..,C]
//   conv_weight_grad(x [N,..,C], dy [N,..,O])  = matmul(dy [M,O], x [M,C], transpose_lhs)  -> [O,C,1..]
// Matrix products read the plain row-major tensors as they are, where a convolution library
// converts its operands into blocked layouts and back. An unstrided channels-last data
// gradient stays a convolution (see isPointwise).
#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;

bool allEqual(const std::vector<int64_t>& values, int64_t v) {
  for (int64_t x : values)
    if (x != v) return false;
  return true;
}

/// True when node `n` (conv, conv_transpose, conv_weight_grad) is a pointwise convolution.
bool isPointwise(const ir::Graph& g, const ir::Node& n) {
  if (n.op != OpKind::Conv && n.op != OpKind::ConvTranspose && n.op != OpKind::ConvWeightGrad) return false;
  // A channels-last forward convolution stays one: oneDNN reads it in place, its epilogue as
  // post-ops. So does its unstrided data gradient (ddpm's skip connections: oneDNN's 1x1
  // kernels ran it as fast as a matmul). Its unstrided weight gradient, one product over all
  // N * P rows, runs as a matmul (split along those rows: split-long-contractions): on the AMD EPYC
  // Zen 4 of stop 43 ddpm's 96 -> 32 at 28x28 took 0.73-0.79 ms against 1.24-1.35 for oneDNN's
  // 1x1 kernel on channels-last data, 32 -> 32 0.24 against 0.39-0.41. (Until weft's Winograd
  // steps ran every 3x3 convolution, oneDNN's ran them on blocked data, and matmuls reading
  // channels-last rows there made the convolutions around them convert it: 7 ms a ddpm step.)
  ir::AttrReader a(n.attrs, n.op);
  const bool unstrided = allEqual(a.ints("stride"), 1);
  if (ir::isChannelsLast(n.op, n.attrs) && (n.op == OpKind::Conv || (n.op == OpKind::ConvTranspose && unstrided)))
    return false;
  if (a.i("groups") != 1 || !allEqual(a.ints("padding"), 0) || !allEqual(a.ints("dilation"), 1)) return false;
  // Strided: the weight gradient reads every s-th position of x (a strided slice first), the
  // data gradient spreads its product over every s-th position (zeros between); the forward
  // convolution stays one, since a library convolution takes its epilogue as post-ops.
  if (n.op == OpKind::Conv && !allEqual(a.ints("stride"), 1)) return false;
  const ir::Shape& kernel = n.op == OpKind::ConvWeightGrad ? n.type.shape : g.type(n.operands[1]).shape;
  for (size_t d = 2; d < kernel.size(); ++d)
    if (kernel[d] != 1) return false;
  return true;
}

/// x [N, C, spatial...] at every `stride`-th position of each spatial dim (x itself for 1s),
/// covering `spatial` positions per dim.
ValueId everyNth(Emitter& e, ValueId x, const std::vector<int64_t>& stride, const ir::Shape& spatial) {
  if (allEqual(stride, 1)) return x;
  const ir::Shape shape = e.shape(x);
  std::vector<int64_t> start(shape.size(), 0), limit = shape, step(shape.size(), 1);
  for (size_t d = 2; d < shape.size(); ++d) {
    step[d] = stride[d - 2];
    limit[d] = (spatial[d - 2] - 1) * step[d] + 1;
  }
  return e.op(OpKind::Slice, {x}, {{"start", start}, {"limit", limit}, {"stride", step}});
}

/// m [N, C, P] (P the positions of `spatial`) placed at every `stride`-th position of an
/// [N, C, result spatial...] tensor, zeros between: each spatial dim d gets a dim of s_d - 1
/// zeros padded after it, then the trailing positions past the result are sliced off.
ValueId spread(Emitter& e, ValueId m, const ir::Shape& spatial, const std::vector<int64_t>& stride,
               const ir::Shape& result) {
  const ir::Shape mShape = e.shape(m);
  ir::Shape interleaved = {mShape[0], mShape[1]}, spreadShape = {mShape[0], mShape[1]};
  std::vector<int64_t> low, high;
  for (size_t d = 0; d < spatial.size(); ++d) {
    interleaved.insert(interleaved.end(), {spatial[d], 1});
    spreadShape.push_back(spatial[d] * stride[d]);
  }
  low.assign(interleaved.size(), 0);
  high.assign(interleaved.size(), 0);
  for (size_t d = 0; d < spatial.size(); ++d) high[3 + 2 * d] = stride[d] - 1;
  ValueId padded = e.op(OpKind::Pad, {e.reshape(m, interleaved)}, {{"low", low}, {"high", high}, {"value", 0.0}});
  ValueId out = e.reshape(padded, spreadShape);
  if (spreadShape == result) return out;
  std::vector<int64_t> start(result.size(), 0), limit(result.begin(), result.end()), step(result.size(), 1);
  return e.op(OpKind::Slice, {out}, {{"start", start}, {"limit", limit}, {"stride", step}});
}

/// [N, C, spatial...] as [N, C, P].
ValueId flattenSpatial(Emitter& e, ValueId x) {
  const ir::Shape shape = e.shape(x);
  int64_t positions = 1;
  for (size_t d = 2; d < shape.size(); ++d) positions *= shape[d];
  return e.reshape(x, {shape[0], shape[1], positions});
}

/// A weight [O, C, 1...] as [O, C].
ValueId weightMatrix(Emitter& e, ValueId w) {
  const ir::Shape shape = e.shape(w);
  return e.reshape(w, {shape[0], shape[1]});
}

/// Channels-last data [N, spatial..., C] as rows [N * P, C].
ValueId rows(Emitter& e, ValueId x) {
  const ir::Shape shape = e.shape(x);
  return e.reshape(x, {ir::numElements(shape) / shape.back(), shape.back()});
}

/// The channels-last forms of the header's table: conv_transpose and conv_weight_grad of node
/// `node` on mapped operands `in`, strided (unstrided ones stay convolutions, isPointwise).
ValueId channelsLastGradient(Emitter& e, const ir::Node& node, const std::vector<ValueId>& in,
                             const std::vector<int64_t>& stride) {
  const ir::Shape result = node.type.shape;
  if (node.op == OpKind::ConvWeightGrad) {
    const ir::Shape dyShape = e.shape(in[1]), xShape = e.shape(in[0]);
    std::vector<int64_t> start(xShape.size(), 0), limit = xShape, step(xShape.size(), 1);
    for (size_t d = 1; d + 1 < xShape.size(); ++d) {  // every s-th position, as many as dy has
      step[d] = stride[d - 1];
      limit[d] = (dyShape[d] - 1) * step[d] + 1;
    }
    ValueId x = e.op(OpKind::Slice, {in[0]}, {{"start", start}, {"limit", limit}, {"stride", step}});
    ValueId m = e.op(OpKind::Matmul, {rows(e, in[1]), rows(e, x)}, {{"transpose_lhs", int64_t{1}}});
    return e.reshape(m, result);
  }
  // conv_transpose: the product lands on every s-th position, zeros between (a unit dim
  // padded with s - 1 zeros after each spatial dim), trailing positions past the result cut.
  const ir::Shape dyShape = e.shape(in[0]);
  ValueId m = e.op(OpKind::Matmul, {rows(e, in[0]), weightMatrix(e, in[1])});
  ir::Shape interleaved = {dyShape[0]}, spreadShape = {dyShape[0]};
  std::vector<int64_t> high = {0};
  for (size_t d = 1; d + 1 < dyShape.size(); ++d) {
    interleaved.insert(interleaved.end(), {dyShape[d], 1});
    high.insert(high.end(), {0, stride[d - 1] - 1});
    spreadShape.push_back(dyShape[d] * stride[d - 1]);
  }
  interleaved.push_back(result.back());
  spreadShape.push_back(result.back());
  high.push_back(0);
  std::vector<int64_t> low(high.size(), 0);
  ValueId padded = e.op(OpKind::Pad, {e.reshape(m, interleaved)}, {{"low", low}, {"high", high}, {"value", 0.0}});
  ValueId out = e.reshape(padded, spreadShape);
  if (spreadShape == result) return out;
  std::vector<int64_t> start(result.size(), 0), limit(result.begin(), result.end()), step(result.size(), 1);
  return e.op(OpKind::Slice, {out}, {{"start", start}, {"limit", limit}, {"stride", step}});
}

}  // namespace

bool lowerPointwiseConvs(ir::Graph& g) {
  return rewriteNodes(g, [](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    const ir::Node& node = rw.source().node(v);
    if (!isPointwise(rw.source(), node) || node.type.dtype != ir::DType::f32) return std::nullopt;
    Emitter e = rw.emitterFor(v);
    std::vector<ValueId> in = rw.mappedOperands(v);
    const ir::Shape result = node.type.shape;
    const ir::Attrs lhsT = {{"transpose_lhs", int64_t{1}}}, rhsT = {{"transpose_rhs", int64_t{1}}};
    const std::vector<int64_t> stride = ir::AttrReader(node.attrs, node.op).ints("stride");
    if (ir::isChannelsLast(node.op, node.attrs)) return channelsLastGradient(e, node, in, stride);
    switch (node.op) {
      case OpKind::Conv:  // stride 1 (isPointwise)
        return e.reshape(e.op(OpKind::Matmul, {weightMatrix(e, in[1]), flattenSpatial(e, in[0])}), result);
      case OpKind::ConvTranspose: {
        ValueId m = e.op(OpKind::Matmul, {weightMatrix(e, in[1]), flattenSpatial(e, in[0])}, lhsT);
        if (allEqual(stride, 1)) return e.reshape(m, result);
        const ir::Shape dyShape = e.shape(in[0]);
        return spread(e, m, ir::Shape(dyShape.begin() + 2, dyShape.end()), stride, result);
      }
      default: {  // conv_weight_grad
        const ir::Shape dyShape = e.shape(in[1]);
        ValueId x = everyNth(e, in[0], stride, ir::Shape(dyShape.begin() + 2, dyShape.end()));
        ValueId perImage = e.op(OpKind::Matmul, {flattenSpatial(e, in[1]), flattenSpatial(e, x)}, rhsT);
        return e.reshape(e.reduceSum(perImage, {0}, false), result);
      }
    }
  });
}

}  // namespace weft::passes
