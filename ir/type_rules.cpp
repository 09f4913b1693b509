// Type rules of the op table: each computes an op's result type from its operand types and
// attributes, or throws weft::Error naming the op, the operand types and what is wrong.
// The semantics each rule encodes are those of the reference interpreter.
#include <algorithm>
#include <numeric>

#include "ir/channels_last.h"
#include "ir/error.h"
#include "ir/graph.h"

namespace weft::ir {
namespace {

/// What a type rule sees.
struct Ctx {
  OpKind op;
  const std::vector<TensorType>& in;
  AttrReader attr;

  [[noreturn]] void fail(const std::string& why) const {
    std::string types;
    for (size_t i = 0; i < in.size(); ++i) types += (i ? ", " : "") + in[i].str();
    throw Error(std::string(opName(op)) + "(" + types + "): " + why);
  }
  void require(bool ok, const std::string& why) const {
    if (!ok) fail(why);
  }
  const TensorType& x() const { return in.at(0); }
  void axisInRange(int64_t axis, int64_t rank) const {
    require(axis >= 0 && axis < rank, "axis " + std::to_string(axis) + " is out of range for rank " +
                                          std::to_string(rank));
  }
  void sameDType() const {
    for (const auto& t : in)
      require(t.dtype == in[0].dtype, "operand dtypes differ (" + std::string(dtypeName(in[0].dtype)) +
                                          " vs " + std::string(dtypeName(t.dtype)) + ")");
  }
  Shape broadcastAll() const {
    Shape s = in.at(0).shape;
    for (size_t i = 1; i < in.size(); ++i) {
      auto b = broadcastShapes(s, in[i].shape);
      require(b.has_value(), "operand shapes do not broadcast");
      s = *b;
    }
    return s;
  }
  /// a + b and a * b, failing with "`what` overflows" where int64 would wrap (huge padding,
  /// strides or dilations would otherwise wrap into a small, plausible shape).
  int64_t add(int64_t a, int64_t b, const char* what) const {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) fail(std::string(what) + " overflows");
    return r;
  }
  int64_t mul(int64_t a, int64_t b, const char* what) const {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) fail(std::string(what) + " overflows");
    return r;
  }
  void spatialList(const std::vector<int64_t>& v, size_t n, const char* what, int64_t minValue) const {
    require(v.size() == n, std::string(what) + " needs " + std::to_string(n) + " values, got " +
                               std::to_string(v.size()));
    for (int64_t e : v) require(e >= minValue, std::string(what) + " values must be >= " +
                                                   std::to_string(minValue));
  }
};

using Rule = TensorType (*)(const Ctx&);

TensorType ruleNone(const Ctx& c) { c.fail("source nodes carry their own type"); }

TensorType ruleFused(const Ctx& c) { c.fail("a fused node takes its type from its body"); }

TensorType ruleConstant(const Ctx& c) { return c.attr.tensor("value")->type; }

TensorType ruleIota(const Ctx& c) {
  TensorType t{c.attr.dtype("dtype"), c.attr.ints("shape")};
  c.axisInRange(c.attr.i("axis"), t.rank());
  return t;
}

TensorType ruleRandom(const Ctx& c) {
  TensorType t{c.attr.dtype("dtype"), c.attr.ints("shape")};
  c.require(isFloat(t.dtype), "random values must have a float dtype");
  return t;
}

TensorType ruleSameAsFirst(const Ctx& c) { return c.x(); }

TensorType ruleUnaryNumeric(const Ctx& c) {
  c.require(c.x().dtype != DType::boolean, "operand must be numeric");
  return c.x();
}

TensorType ruleUnaryFloat(const Ctx& c) {
  c.require(isFloat(c.x().dtype), "operand must be a float tensor");
  return c.x();
}

TensorType ruleUnaryBool(const Ctx& c) {
  c.require(c.x().dtype == DType::boolean, "operand must be bool");
  return c.x();
}

TensorType ruleCast(const Ctx& c) { return {c.attr.dtype("dtype"), c.x().shape}; }

TensorType ruleBinaryNumeric(const Ctx& c) {
  c.sameDType();
  c.require(c.x().dtype != DType::boolean, "operands must be numeric");
  return {c.x().dtype, c.broadcastAll()};
}

TensorType ruleBinaryFloat(const Ctx& c) {
  c.sameDType();
  c.require(isFloat(c.x().dtype), "operands must be float tensors");
  return {c.x().dtype, c.broadcastAll()};
}

TensorType ruleBinaryBool(const Ctx& c) {
  c.sameDType();
  c.require(c.x().dtype == DType::boolean, "operands must be bool");
  return {DType::boolean, c.broadcastAll()};
}

TensorType ruleCompare(const Ctx& c) {
  c.sameDType();
  return {DType::boolean, c.broadcastAll()};
}

TensorType ruleSelect(const Ctx& c) {
  c.require(c.in[0].dtype == DType::boolean, "condition must be bool");
  c.require(c.in[1].dtype == c.in[2].dtype, "branches have different dtypes");
  return {c.in[1].dtype, c.broadcastAll()};
}

Shape reducedShape(const Ctx& c, const std::vector<int64_t>& axes, bool keep) {
  const Shape& s = c.x().shape;
  std::vector<bool> reduced(s.size(), false);
  for (int64_t a : axes) {
    c.axisInRange(a, c.x().rank());
    c.require(!reduced[static_cast<size_t>(a)], "axis " + std::to_string(a) + " is repeated");
    reduced[static_cast<size_t>(a)] = true;
  }
  Shape out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!reduced[i]) out.push_back(s[i]);
    else if (keep) out.push_back(1);
  }
  return out;
}

TensorType ruleReduce(const Ctx& c) {
  c.require(c.x().dtype != DType::boolean, "operand must be numeric");
  return {c.x().dtype, reducedShape(c, c.attr.ints("axes"), c.attr.i("keepdims") != 0)};
}

TensorType ruleArgReduce(const Ctx& c) {
  return {DType::i64, reducedShape(c, {c.attr.i("axis")}, c.attr.i("keepdims") != 0)};
}

TensorType ruleAxisFloat(const Ctx& c) {
  c.require(isFloat(c.x().dtype), "operand must be a float tensor");
  c.axisInRange(c.attr.i("axis"), c.x().rank());
  return c.x();
}

TensorType ruleReshape(const Ctx& c) {
  const Shape& s = c.attr.ints("shape");
  for (int64_t d : s) c.require(d >= 0, "target shape " + shapeStr(s) + " has a negative extent");
  c.require(numElements(s) == c.x().numel(),
            "cannot reshape " + std::to_string(c.x().numel()) + " elements to " + shapeStr(s));
  return {c.x().dtype, s};
}

TensorType ruleTranspose(const Ctx& c) {
  const auto& perm = c.attr.ints("perm");
  c.require(static_cast<int64_t>(perm.size()) == c.x().rank(), "perm must have one entry per dimension");
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    c.require(sorted[i] == static_cast<int64_t>(i), "perm " + shapeStr(perm) + " is not a permutation");
  Shape out;
  for (int64_t p : perm) out.push_back(c.x().shape[static_cast<size_t>(p)]);
  return {c.x().dtype, out};
}

TensorType ruleBroadcast(const Ctx& c) {
  const Shape& s = c.attr.ints("shape");
  auto b = broadcastShapes(c.x().shape, s);
  c.require(c.x().rank() <= static_cast<int64_t>(s.size()) && b && *b == s,
            "cannot broadcast to " + shapeStr(s));
  return {c.x().dtype, s};
}

TensorType ruleSlice(const Ctx& c) {
  const auto &start = c.attr.ints("start"), &limit = c.attr.ints("limit"), &stride = c.attr.ints("stride");
  size_t r = c.x().shape.size();
  c.require(start.size() == r && limit.size() == r && stride.size() == r,
            "start, limit and stride need one entry per dimension");
  Shape out;
  for (size_t i = 0; i < r; ++i) {
    c.require(stride[i] >= 1, "stride must be >= 1");
    c.require(0 <= start[i] && start[i] <= limit[i] && limit[i] <= c.x().shape[i],
              "slice [" + std::to_string(start[i]) + ":" + std::to_string(limit[i]) +
                  "] is out of bounds in dimension " + std::to_string(i));
    out.push_back(limit[i] == start[i] ? 0 : (limit[i] - start[i] - 1) / stride[i] + 1);
  }
  return {c.x().dtype, out};
}

TensorType ruleConcat(const Ctx& c) {
  c.require(!c.in.empty(), "needs at least one operand");
  c.sameDType();
  int64_t axis = c.attr.i("axis");
  c.axisInRange(axis, c.x().rank());
  Shape out = c.x().shape;
  for (size_t i = 1; i < c.in.size(); ++i) {
    c.require(c.in[i].rank() == c.x().rank(), "operands have different ranks");
    for (size_t d = 0; d < out.size(); ++d)
      if (static_cast<int64_t>(d) != axis)
        c.require(c.in[i].shape[d] == out[d], "operands differ outside the concat axis");
    out[static_cast<size_t>(axis)] += c.in[i].shape[static_cast<size_t>(axis)];
  }
  return {c.x().dtype, out};
}

TensorType rulePad(const Ctx& c) {
  const auto &lo = c.attr.ints("low"), &hi = c.attr.ints("high");
  size_t r = c.x().shape.size();
  c.spatialList(lo, r, "low", 0);
  c.spatialList(hi, r, "high", 0);
  Shape out = c.x().shape;
  for (size_t i = 0; i < r; ++i) out[i] = c.add(c.add(out[i], lo[i], "the padded size"), hi[i], "the padded size");
  return {c.x().dtype, out};
}

Shape gatheredShape(const Shape& x, const Shape& idx, int64_t axis) {
  Shape out(x.begin(), x.begin() + axis);
  out.insert(out.end(), idx.begin(), idx.end());
  out.insert(out.end(), x.begin() + axis + 1, x.end());
  return out;
}

TensorType ruleGather(const Ctx& c) {
  int64_t axis = c.attr.i("axis");
  c.axisInRange(axis, c.x().rank());
  c.require(isInteger(c.in[1].dtype), "indices must be i32 or i64");
  return {c.x().dtype, gatheredShape(c.x().shape, c.in[1].shape, axis)};
}

TensorType ruleCheckIndex(const Ctx& c) {
  c.require(isInteger(c.x().dtype), "indices must be i32 or i64");
  c.require(c.attr.i("limit") >= 1, "limit must be at least 1, got " + std::to_string(c.attr.i("limit")));
  return c.x();
}

TensorType ruleScatterAdd(const Ctx& c) {
  int64_t axis = c.attr.i("axis");
  c.axisInRange(axis, c.x().rank());
  c.require(isInteger(c.in[1].dtype), "indices must be i32 or i64");
  c.require(c.in[2].dtype == c.x().dtype, "updates must have the dtype of base");
  Shape want = gatheredShape(c.x().shape, c.in[1].shape, axis);
  c.require(c.in[2].shape == want, "updates must have shape " + shapeStr(want));
  return c.x();
}

TensorType ruleMatmul(const Ctx& c) {
  c.sameDType();
  c.require(isFloat(c.x().dtype), "operands must be float tensors");
  c.require(c.in[0].rank() >= 2 && c.in[1].rank() >= 2, "operands need rank >= 2");
  Shape a = c.in[0].shape, b = c.in[1].shape;
  if (c.attr.i("transpose_lhs", 0)) std::swap(a[a.size() - 1], a[a.size() - 2]);
  if (c.attr.i("transpose_rhs", 0)) std::swap(b[b.size() - 1], b[b.size() - 2]);
  int64_t m = a[a.size() - 2], k = a.back(), k2 = b[b.size() - 2], n = b.back();
  c.require(k == k2, "contracted dimensions differ (" + std::to_string(k) + " vs " + std::to_string(k2) + ")");
  auto batch = broadcastShapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
  c.require(batch.has_value(), "batch dimensions do not broadcast");
  Shape out = *batch;
  out.push_back(m);
  out.push_back(n);
  if (c.attr.has("lhs_zeros")) {
    const std::string& side = c.attr.s("lhs_zeros");
    c.require(side == "upper" || side == "lower", "lhs_zeros must be \"upper\" or \"lower\", got \"" + side + "\"");
    c.require(m == k, "lhs_zeros needs a square lhs, got " + std::to_string(m) + "x" + std::to_string(k));
  }
  if (c.attr.has("needed")) {
    const std::string& part = c.attr.s("needed");
    c.require(part == "lower", "needed must be \"lower\", got \"" + part + "\"");
    c.require(m == n, "needed needs a square result, got " + std::to_string(m) + "x" + std::to_string(n));
  }
  return {c.x().dtype, out};
}

/// Checks the shared parts of conv-like ops; returns the number of spatial dims.
size_t checkWindowed(const Ctx& c, const char* layout) {
  c.require(isFloat(c.x().dtype), "operands must be float tensors");
  c.require(c.x().rank() >= 3, std::string("input must be ") + layout);
  return static_cast<size_t>(c.x().rank() - 2);
}

TensorType ruleConv(const Ctx& c) {
  size_t n = checkWindowed(c, "[N, C, spatial...]");
  const TensorType& w = c.in[1];
  c.sameDType();
  c.require(w.rank() == c.x().rank(), "weight must be [O, C/groups, kernel...]");
  int64_t g = c.attr.i("groups");
  c.require(g >= 1 && c.x().shape[1] % g == 0 && w.shape[0] % g == 0, "groups must divide channels");
  c.require(w.shape[1] * g == c.x().shape[1], "weight expects " + std::to_string(w.shape[1] * g) +
                                                  " input channels, input has " + std::to_string(c.x().shape[1]));
  const auto &st = c.attr.ints("stride"), &pad = c.attr.ints("padding"), &dil = c.attr.ints("dilation");
  c.spatialList(st, n, "stride", 1);
  c.spatialList(pad, n, "padding", 0);
  c.spatialList(dil, n, "dilation", 1);
  Shape out = {c.x().shape[0], w.shape[0]};
  for (size_t i = 0; i < n; ++i) {
    int64_t span = c.add(c.x().shape[i + 2], c.mul(2, pad[i], "the padding"), "the padded size") -
                   c.add(c.mul(dil[i], w.shape[i + 2] - 1, "the dilated kernel"), 1, "the dilated kernel");
    c.require(span >= 0, "kernel is larger than the padded input");
    out.push_back(span / st[i] + 1);
  }
  return {c.x().dtype, out};
}

TensorType ruleConvTranspose(const Ctx& c) {
  size_t n = checkWindowed(c, "[N, C, spatial...]");
  const TensorType& w = c.in[1];
  c.sameDType();
  c.require(w.rank() == c.x().rank(), "weight must be [C, O/groups, kernel...]");
  int64_t g = c.attr.i("groups");
  c.require(g >= 1 && c.x().shape[1] % g == 0, "groups must divide channels");
  c.require(w.shape[0] == c.x().shape[1], "weight expects " + std::to_string(w.shape[0]) +
                                              " input channels, input has " + std::to_string(c.x().shape[1]));
  const auto &st = c.attr.ints("stride"), &pad = c.attr.ints("padding"),
             &op = c.attr.ints("output_padding"), &dil = c.attr.ints("dilation");
  c.spatialList(st, n, "stride", 1);
  c.spatialList(pad, n, "padding", 0);
  c.spatialList(op, n, "output_padding", 0);
  c.spatialList(dil, n, "dilation", 1);
  Shape out = {c.x().shape[0], w.shape[1] * g};
  for (size_t i = 0; i < n; ++i) {
    const char* what = "the transposed convolution's size";
    int64_t grown = c.add(c.mul(c.x().shape[i + 2] - 1, st[i], what), c.mul(dil[i], w.shape[i + 2] - 1, what), what);
    int64_t size = c.add(c.add(grown, op[i], what), 1, what) - c.mul(2, pad[i], what);
    c.require(size >= 1, "output would be empty");
    out.push_back(size);
  }
  return {c.x().dtype, out};
}

TensorType rulePool(const Ctx& c) {
  size_t n = checkWindowed(c, "[N, C, spatial...]");
  const auto &win = c.attr.ints("window"), &st = c.attr.ints("stride"), &pad = c.attr.ints("padding");
  c.spatialList(win, n, "window", 1);
  c.spatialList(st, n, "stride", 1);
  c.spatialList(pad, n, "padding", 0);
  Shape out = {c.x().shape[0], c.x().shape[1]};
  for (size_t i = 0; i < n; ++i) {
    int64_t span = c.add(c.x().shape[i + 2], c.mul(2, pad[i], "the padding"), "the padded size") - win[i];
    c.require(span >= 0, "window is larger than the padded input");
    out.push_back(span / st[i] + 1);
  }
  return {c.x().dtype, out};
}

/// conv_weight_grad(x, dy): the weight gradient of conv(x, w) for the output cotangent dy.
TensorType ruleConvWeightGrad(const Ctx& c) {
  size_t n = checkWindowed(c, "[N, C, spatial...]");
  const TensorType& dy = c.in[1];
  c.sameDType();
  c.require(dy.rank() == c.x().rank(), "dy must be [N, O, spatial...] of x's rank");
  c.require(dy.shape[0] == c.x().shape[0], "x and dy have different batch sizes");
  int64_t g = c.attr.i("groups");
  c.require(g >= 1 && c.x().shape[1] % g == 0 && dy.shape[1] % g == 0, "groups must divide channels");
  const auto &st = c.attr.ints("stride"), &pad = c.attr.ints("padding"), &dil = c.attr.ints("dilation"),
             &kernel = c.attr.ints("kernel");
  c.spatialList(st, n, "stride", 1);
  c.spatialList(pad, n, "padding", 0);
  c.spatialList(dil, n, "dilation", 1);
  c.spatialList(kernel, n, "kernel", 1);
  Shape out = {dy.shape[1], c.x().shape[1] / g};
  for (size_t i = 0; i < n; ++i) {
    int64_t span = c.add(c.x().shape[i + 2], c.mul(2, pad[i], "the padding"), "the padded size") -
                   c.add(c.mul(dil[i], kernel[i] - 1, "the dilated kernel"), 1, "the dilated kernel");
    c.require(span >= 0, "kernel is larger than the padded input");
    c.require(dy.shape[i + 2] <= span / st[i] + 1,
              "dy has more positions than conv's output (" + std::to_string(span / st[i] + 1) + ") in spatial dim " +
                  std::to_string(i));
    out.push_back(kernel[i]);
  }
  return {c.x().dtype, out};
}

/// max_pool_grad(x, dy): dy must have max_pool(x)'s shape; the result has x's type.
TensorType ruleMaxPoolGrad(const Ctx& c) {
  TensorType pooled = rulePool(c);
  c.sameDType();
  c.require(c.in[1].shape == pooled.shape, "dy must have the pooled shape " + shapeStr(pooled.shape));
  return c.x();
}

TensorType ruleNorm(const Ctx& c) {
  c.require(isFloat(c.x().dtype), "input must be a float tensor");
  c.sameDType();
  Shape affine;
  switch (c.op) {
    case OpKind::LayerNorm: {
      int64_t axis = c.attr.i("axis");
      c.axisInRange(axis, c.x().rank());
      affine.assign(c.x().shape.begin() + axis, c.x().shape.end());
      break;
    }
    case OpKind::GroupNorm:
      c.require(c.x().rank() >= 2, "input must be [N, C, ...]");
      c.require(c.attr.i("groups") >= 1 && c.x().shape[1] % c.attr.i("groups") == 0,
                "groups must divide the channel count");
      affine = {c.x().shape[1]};
      break;
    default:
      c.require(c.x().rank() >= 2, "input must be [N, C, ...]");
      affine = {c.x().shape[1]};
  }
  for (size_t i = 1; i < c.in.size(); ++i)
    c.require(c.in[i].shape == affine, "operand " + std::to_string(i) + " must have shape " + shapeStr(affine));
  return c.x();
}

TensorType reduceByMode(const Ctx& c, const Shape& unreduced) {
  const std::string& mode = c.attr.s("reduce");
  c.require(mode == "mean" || mode == "sum" || mode == "none", "reduce must be mean, sum or none");
  return {c.x().dtype, mode == "none" ? unreduced : Shape{}};
}

TensorType ruleCrossEntropy(const Ctx& c) {
  c.require(isFloat(c.x().dtype), "logits must be a float tensor");
  c.require(c.x().rank() >= 1, "logits must be [..., classes]");
  c.require(isInteger(c.in[1].dtype), "labels must be i32 or i64 class indices");
  Shape batch(c.x().shape.begin(), c.x().shape.end() - 1);
  c.require(c.in[1].shape == batch, "labels must have shape " + shapeStr(batch));
  return reduceByMode(c, batch);
}

TensorType ruleLoss(const Ctx& c) {
  c.sameDType();
  c.require(isFloat(c.x().dtype), "operands must be float tensors");
  c.require(c.in[0].shape == c.in[1].shape, "operands must have the same shape");
  return reduceByMode(c, c.x().shape);
}

TensorType ruleAttention(const Ctx& c) {
  c.sameDType();
  c.require(isFloat(c.x().dtype), "operands must be float tensors");
  const Shape &q = c.in[0].shape, &k = c.in[1].shape, &v = c.in[2].shape;
  c.require(q.size() >= 2 && k.size() == q.size() && v.size() == q.size(), "q, k, v must be [..., T, D] of one rank");
  c.require(q.back() == k.back(), "q and k must have the same feature size");
  c.require(k[k.size() - 2] == v[v.size() - 2], "k and v must have the same length");
  c.require(Shape(q.begin(), q.end() - 2) == Shape(k.begin(), k.end() - 2) &&
                Shape(q.begin(), q.end() - 2) == Shape(v.begin(), v.end() - 2),
            "batch dimensions differ");
  Shape out = q;
  out.back() = v.back();
  return {c.x().dtype, out};
}

const Rule kRules[] = {
#define WEFT_OP(Id, name, operands, attrs, rule, flags) rule,
#include "ir/ops.def"
#undef WEFT_OP
};
static_assert(sizeof(kRules) / sizeof(kRules[0]) == kNumOps, "every op needs a type rule");

}  // namespace

TensorType inferType(OpKind op, const std::vector<TensorType>& operandTypes, const Attrs& attrs) {
  const OpInfo& info = opInfo(op);
  size_t want = info.operandNames.size();
  bool countOk = info.variadic ? operandTypes.size() >= 1 : operandTypes.size() == want;
  if (!countOk)
    throw Error(std::string(info.name) + ": expects " + (info.variadic ? "at least 1" : std::to_string(want)) +
                " operand(s), got " + std::to_string(operandTypes.size()));
  if (isChannelsLast(op, attrs)) {  // the rule sees the channels-first view
    std::vector<TensorType> view = operandTypes;
    for (size_t i = 0; i < view.size(); ++i)
      if (isDataOperand(op, i)) view[i].shape = toChannelsFirst(view[i].shape);
    Ctx ctx{op, view, AttrReader(attrs, op)};
    TensorType out = kRules[static_cast<size_t>(op)](ctx);
    if (hasDataResult(op)) out.shape = toChannelsLast(out.shape);
    return out;
  }
  Ctx ctx{op, operandTypes, AttrReader(attrs, op)};
  return kRules[static_cast<size_t>(op)](ctx);
}

}  // namespace weft::ir
