// Gradient rules of matmul, conv, conv_transpose, the pools and the backward primitives.
//  - matmul: the cotangent contracted with the other operand, with transpose flags chosen
//    so that no explicit transpose is emitted; broadcast batch dims are summed back.
//  - conv: x gets conv_transpose(g, w) with the output_padding that restores x's extent;
//    w gets conv_weight_grad(x, g). conv_transpose is conv's adjoint, so its x gets
//    conv(g, w) (sliced when output_padding >= stride made the output longer) and its w
//    gets conv_weight_grad(g, x). conv_weight_grad is bilinear: x gets conv_transpose(dy, G),
//    dy gets conv(x, G) (sliced to dy's extent).
//  - max_pool: max_pool_grad(x, g). max_pool_grad is piecewise constant in x (no cotangent)
//    and linear in dy: dy's cotangent reads G at each window's first maximum, built from a
//    gather of every window (a constant index table), argmax and a one-hot mask.
//  - avg_pool: conv_transpose of g, seen as [N*C, 1, ...], with a constant 1/window kernel.
#include <cmath>
#include <memory>

#include "passes/grad_rules.h"

namespace weft::passes::grad {
namespace {

using ir::Attrs;
using ir::OpKind;
using ir::Shape;
using ir::ValueId;

// ---- matmul ----------------------------------------------------------------------------

ValueId matmul(Emitter& e, ValueId a, ValueId b, bool transposeA, bool transposeB) {
  Attrs attrs;
  if (transposeA) attrs["transpose_lhs"] = int64_t{1};
  if (transposeB) attrs["transpose_rhs"] = int64_t{1};
  return e.op(OpKind::Matmul, {a, b}, std::move(attrs));
}

/// With A' = op(a), B' = op(b) and y = A'B': dA' = g B'^T and dB' = A'^T g, transposed back
/// when the operand was transposed.
Grads matmulRule(GradContext& c) {
  Emitter& e = c.e;
  bool ta = c.attr().i("transpose_lhs", 0) != 0, tb = c.attr().i("transpose_rhs", 0) != 0;
  ValueId a = c.operand(0), b = c.operand(1), g = c.cotangent;
  Grads r(2);
  if (c.wants(0)) {
    ValueId ga = ta ? matmul(e, b, g, tb, true) : matmul(e, g, b, false, !tb);
    r[0] = sumToShape(e, ga, c.operandShape(0));
  }
  if (c.wants(1)) {
    ValueId gb = tb ? matmul(e, g, a, true, ta) : matmul(e, a, g, !ta, false);
    r[1] = sumToShape(e, gb, c.operandShape(1));
  }
  return r;
}

// ---- conv family -----------------------------------------------------------------------

/// The geometry attributes a conv-like node shares.
struct ConvGeometry {
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups;

  static ConvGeometry of(const GradContext& c) {
    ir::AttrReader a = c.attr();
    return {a.ints("stride"), a.ints("padding"), a.ints("dilation"), a.i("groups")};
  }
  Attrs convAttrs() const {
    return {{"stride", stride}, {"padding", padding}, {"dilation", dilation}, {"groups", groups}};
  }
};

/// The spatial dims (2...) of a shape.
Shape spatial(const Shape& s) { return Shape(s.begin() + 2, s.end()); }

/// conv(x, w) with `geo`, sliced to `extent` in the spatial dims when it comes out longer.
ValueId convTo(Emitter& e, ValueId x, ValueId w, const ConvGeometry& geo, const Shape& extent) {
  ValueId y = e.op(OpKind::Conv, {x, w}, geo.convAttrs());
  Shape shape = e.shape(y);
  if (spatial(shape) == extent) return y;
  std::vector<int64_t> start(shape.size(), 0), stride(shape.size(), 1);
  Shape limit = shape;
  for (size_t d = 0; d < extent.size(); ++d) limit[d + 2] = extent[d];
  return e.op(OpKind::Slice, {y}, {{"start", start}, {"limit", limit}, {"stride", stride}});
}

/// conv_transpose(dy, w) with `geo` and the output_padding that makes its spatial extent `extent`.
ValueId convTransposeTo(Emitter& e, ValueId dy, ValueId w, const ConvGeometry& geo, const Shape& extent) {
  Shape dyShape = e.shape(dy), wShape = e.shape(w);
  std::vector<int64_t> outputPadding;
  for (size_t d = 0; d < extent.size(); ++d) {
    int64_t natural = (dyShape[d + 2] - 1) * geo.stride[d] - 2 * geo.padding[d] +
                      geo.dilation[d] * (wShape[d + 2] - 1) + 1;
    outputPadding.push_back(extent[d] - natural);
  }
  Attrs attrs = geo.convAttrs();
  attrs["output_padding"] = outputPadding;
  return e.op(OpKind::ConvTranspose, {dy, w}, std::move(attrs));
}

/// conv_weight_grad(x, dy) with `geo` for a kernel of spatial extent `kernel`.
ValueId convWeightGrad(Emitter& e, ValueId x, ValueId dy, const ConvGeometry& geo, const Shape& kernel) {
  Attrs attrs = geo.convAttrs();
  attrs["kernel"] = kernel;
  return e.op(OpKind::ConvWeightGrad, {x, dy}, std::move(attrs));
}

Grads conv(GradContext& c) {
  ConvGeometry geo = ConvGeometry::of(c);
  Grads r(2);
  if (c.wants(0)) r[0] = convTransposeTo(c.e, c.cotangent, c.operand(1), geo, spatial(c.operandShape(0)));
  if (c.wants(1)) r[1] = convWeightGrad(c.e, c.operand(0), c.cotangent, geo, spatial(c.operandShape(1)));
  return r;
}

Grads convTranspose(GradContext& c) {
  ConvGeometry geo = ConvGeometry::of(c);
  Grads r(2);
  if (c.wants(0)) r[0] = convTo(c.e, c.cotangent, c.operand(1), geo, spatial(c.operandShape(0)));
  if (c.wants(1)) r[1] = convWeightGrad(c.e, c.cotangent, c.operand(0), geo, spatial(c.operandShape(1)));
  return r;
}

Grads convWeightGradRule(GradContext& c) {
  ConvGeometry geo = ConvGeometry::of(c);
  Grads r(2);
  if (c.wants(0)) r[0] = convTransposeTo(c.e, c.operand(1), c.cotangent, geo, spatial(c.operandShape(0)));
  if (c.wants(1)) r[1] = convTo(c.e, c.operand(0), c.cotangent, geo, spatial(c.operandShape(1)));
  return r;
}

// ---- pools -----------------------------------------------------------------------------

Grads maxPool(GradContext& c) {
  Attrs attrs = {{"window", c.attr().ints("window")}, {"stride", c.attr().ints("stride")},
                 {"padding", c.attr().ints("padding")}};
  return {c.e.op(OpKind::MaxPoolGrad, {c.operand(0), c.cotangent}, std::move(attrs))};
}

/// For every pooled position p (row-major) and window offset k, the row-major position in
/// the padded grid that p reads through k.
ir::TensorDataPtr windowIndexTable(const Shape& padded, const Shape& pooled, const std::vector<int64_t>& window,
                                   const std::vector<int64_t>& stride) {
  int64_t positions = ir::numElements(pooled), offsets = ir::numElements(window);
  auto table = std::make_shared<ir::TensorData>(ir::TensorType{ir::DType::i64, {positions * offsets}});
  std::vector<int64_t> strides = ir::rowMajorStrides(padded), p(pooled.size(), 0);
  int64_t i = 0;
  for (int64_t pi = 0; pi < positions; ++pi) {
    for (int64_t d = static_cast<int64_t>(pooled.size()) - 1, rest = pi; d >= 0; --d) {
      p[static_cast<size_t>(d)] = rest % pooled[static_cast<size_t>(d)];
      rest /= pooled[static_cast<size_t>(d)];
    }
    for (int64_t ki = 0; ki < offsets; ++ki) {
      int64_t at = 0;
      for (int64_t d = static_cast<int64_t>(window.size()) - 1, rest = ki; d >= 0; --d) {
        auto u = static_cast<size_t>(d);
        at += (p[u] * stride[u] + rest % window[u]) * strides[u];
        rest /= window[u];
      }
      table->as<int64_t>()[i++] = at;
    }
  }
  return table;
}

/// Every window of `x` (padded with `fill`) as [N, C, positions, offsets].
ValueId windowsOf(Emitter& e, ValueId x, double fill, const std::vector<int64_t>& padding, ValueId table,
                  int64_t positions, int64_t offsets) {
  Shape shape = e.shape(x);
  std::vector<int64_t> low(shape.size(), 0);
  for (size_t d = 0; d < padding.size(); ++d) low[d + 2] = padding[d];
  ValueId padded = e.op(OpKind::Pad, {x}, {{"low", low}, {"high", low}, {"value", fill}});
  Shape paddedShape = e.shape(padded);
  ValueId flat = e.reshape(padded, {shape[0], shape[1], ir::numElements(spatial(paddedShape))});
  ValueId picked = e.op(OpKind::Gather, {flat, table}, {{"axis", int64_t{2}}});
  return e.reshape(picked, {shape[0], shape[1], positions, offsets});
}

Grads maxPoolGrad(GradContext& c) {
  if (!c.wants(1)) return {std::nullopt, std::nullopt};
  Emitter& e = c.e;
  const auto &window = c.attr().ints("window"), &stride = c.attr().ints("stride"),
             &padding = c.attr().ints("padding");
  const Shape& xs = c.operandShape(0);
  const Shape& dyShape = c.operandShape(1);
  Shape padded = spatial(xs);
  for (size_t d = 0; d < padded.size(); ++d) padded[d] += 2 * padding[d];
  Shape pooled = spatial(dyShape);
  int64_t positions = ir::numElements(pooled), offsets = ir::numElements(window);
  ValueId table = e.graph().addConstant(windowIndexTable(padded, pooled, window, stride));
  ValueId xWindows = windowsOf(e, frozen(e, c.operand(0)), -INFINITY, padding, table, positions, offsets);
  ValueId first = e.op(OpKind::Argmax, {xWindows}, {{"axis", int64_t{3}}, {"keepdims", int64_t{1}}});
  ValueId oneHot = indicator(e, e.op(OpKind::Eq, {first, e.iota({offsets}, 0, ir::DType::i64)}), c.resultType().dtype);
  ValueId gWindows = windowsOf(e, c.cotangent, 0.0, padding, table, positions, offsets);
  ValueId picked = e.reduceSum(e.mul(gWindows, oneHot), {3}, false);
  return {std::nullopt, e.reshape(picked, dyShape)};
}

Grads avgPool(GradContext& c) {
  Emitter& e = c.e;
  const auto& window = c.attr().ints("window");
  const Shape& xs = c.operandShape(0);
  const Shape& ys = c.resultType().shape;
  Shape kernelShape = {1, 1};
  kernelShape.insert(kernelShape.end(), window.begin(), window.end());
  auto kernel = std::make_shared<ir::TensorData>(ir::TensorType{c.resultType().dtype, kernelShape});
  double share = 1.0 / static_cast<double>(ir::numElements(window));
  for (int64_t i = 0; i < kernel->numel(); ++i) kernel->set(i, share);
  ValueId w = e.graph().addConstant(kernel);
  Shape planes = {ys[0] * ys[1], 1};
  for (size_t d = 2; d < ys.size(); ++d) planes.push_back(ys[d]);
  ConvGeometry geo{c.attr().ints("stride"), c.attr().ints("padding"), std::vector<int64_t>(window.size(), 1), 1};
  ValueId spread = convTransposeTo(e, e.reshape(c.cotangent, planes), w, geo, spatial(xs));
  return {e.reshape(spread, xs)};
}

}  // namespace

void addContractionGradRules(std::map<OpKind, GradRule>& table) {
  table[OpKind::Matmul] = matmulRule;
  table[OpKind::Conv] = conv;
  table[OpKind::ConvTranspose] = convTranspose;
  table[OpKind::ConvWeightGrad] = convWeightGradRule;
  table[OpKind::MaxPool] = maxPool;
  table[OpKind::MaxPoolGrad] = maxPoolGrad;
  table[OpKind::AvgPool] = avgPool;
}

}  // namespace weft::passes::grad
