// Convolutions, pooling, activations, normalizations, attention, dropout and losses.
#include "frontend/functional.h"

#include <cmath>

#include "frontend/emit.h"

namespace weft {

using detail::emit;
using detail::fail;
using ir::OpKind;

namespace {

/// `s` expanded to `n` spatial dims (one value repeats), or `dflt` when unset.
std::vector<int64_t> expand(const Spatial& s, size_t n, const char* what, std::string_view op,
                            const std::vector<Tensor>& xs, const SrcLoc& loc, int64_t dflt = 0) {
  if (s.empty()) return std::vector<int64_t>(n, dflt);
  if (s.values().size() == 1) return std::vector<int64_t>(n, s.values()[0]);
  if (s.values().size() != n)
    fail(op, xs, std::string(what) + " needs 1 or " + std::to_string(n) + " values, got " +
                     std::to_string(s.values().size()), loc);
  return s.values();
}

/// Number of spatial dims of a [N, C, spatial...] input (at least one).
size_t spatialRank(const Tensor& x, std::string_view op, const std::vector<Tensor>& xs, const SrcLoc& loc) {
  detail::builderOf(op, xs, loc);
  if (x.rank() < 3) fail(op, xs, "input must be [N, C, spatial...]", loc);
  return static_cast<size_t>(x.rank() - 2);
}

void require4d(const Tensor& x, std::string_view op, const std::vector<Tensor>& xs, const SrcLoc& loc) {
  detail::builderOf(op, xs, loc);
  if (x.rank() != 4) fail(op, xs, "input must be [N, C, H, W]", loc);
}

Tensor pool(OpKind op, const Tensor& x, const Spatial& window, const Spatial& stride, const Spatial& padding,
            const SrcLoc& loc) {
  std::string_view name = ir::opName(op);
  size_t n = spatialRank(x, name, {x}, loc);
  if (window.empty()) fail(name, {x}, "needs a window size", loc);
  auto win = expand(window, n, "window", name, {x}, loc);
  auto st = stride.empty() ? win : expand(stride, n, "stride", name, {x}, loc);
  return emit(op, {x}, {{"window", win}, {"stride", st}, {"padding", expand(padding, n, "padding", name, {x}, loc)}},
              loc);
}

std::string reductionName(Reduction r) {
  switch (r) {
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
    case Reduction::none: return "none";
  }
  return "mean";
}

}  // namespace

Tensor conv(const Tensor& x, const Tensor& w, const ConvOptions& o, SrcLoc loc) {
  size_t n = spatialRank(x, "conv", {x, w}, loc);
  return emit(OpKind::Conv, {x, w},
              {{"stride", expand(o.stride, n, "stride", "conv", {x, w}, loc)},
               {"padding", expand(o.padding, n, "padding", "conv", {x, w}, loc)},
               {"dilation", expand(o.dilation, n, "dilation", "conv", {x, w}, loc)},
               {"groups", o.groups}},
              loc);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const ConvOptions& o, SrcLoc loc) {
  require4d(x, "conv", {x, w}, loc);
  return conv(x, w, o, loc);
}

Tensor conv_transpose(const Tensor& x, const Tensor& w, const ConvTransposeOptions& o, SrcLoc loc) {
  const char* name = "conv_transpose";
  size_t n = spatialRank(x, name, {x, w}, loc);
  return emit(OpKind::ConvTranspose, {x, w},
              {{"stride", expand(o.stride, n, "stride", name, {x, w}, loc)},
               {"padding", expand(o.padding, n, "padding", name, {x, w}, loc)},
               {"output_padding", expand(o.output_padding, n, "output_padding", name, {x, w}, loc)},
               {"dilation", expand(o.dilation, n, "dilation", name, {x, w}, loc)},
               {"groups", o.groups}},
              loc);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const ConvTransposeOptions& o, SrcLoc loc) {
  require4d(x, "conv_transpose", {x, w}, loc);
  return conv_transpose(x, w, o, loc);
}

Tensor max_pool(const Tensor& x, Spatial window, Spatial stride, Spatial padding, SrcLoc loc) {
  return pool(OpKind::MaxPool, x, window, stride, padding, loc);
}

Tensor avg_pool(const Tensor& x, Spatial window, Spatial stride, Spatial padding, SrcLoc loc) {
  return pool(OpKind::AvgPool, x, window, stride, padding, loc);
}

Tensor max_pool2d(const Tensor& x, Spatial window, Spatial stride, Spatial padding, SrcLoc loc) {
  require4d(x, "max_pool", {x}, loc);
  return pool(OpKind::MaxPool, x, window, stride, padding, loc);
}

Tensor avg_pool2d(const Tensor& x, Spatial window, Spatial stride, Spatial padding, SrcLoc loc) {
  require4d(x, "avg_pool", {x}, loc);
  return pool(OpKind::AvgPool, x, window, stride, padding, loc);
}

Tensor relu(const Tensor& x, SrcLoc loc) { return emit(OpKind::Relu, {x}, {}, loc); }
Tensor leaky_relu(const Tensor& x, double alpha, SrcLoc loc) {
  return emit(OpKind::LeakyRelu, {x}, {{"alpha", alpha}}, loc);
}
Tensor gelu(const Tensor& x, bool tanhApproximation, SrcLoc loc) {
  return emit(OpKind::Gelu, {x}, {{"approximate", detail::flag(tanhApproximation)}}, loc);
}
Tensor silu(const Tensor& x, SrcLoc loc) { return emit(OpKind::Silu, {x}, {}, loc); }
Tensor softplus(const Tensor& x, SrcLoc loc) { return emit(OpKind::Softplus, {x}, {}, loc); }

Tensor softmax(const Tensor& x, int64_t axis, SrcLoc loc) {
  detail::builderOf("softmax", {x}, loc);
  return emit(OpKind::Softmax, {x}, {{"axis", detail::normAxis(axis, x.rank(), "softmax", {x}, loc)}}, loc);
}

Tensor log_softmax(const Tensor& x, int64_t axis, SrcLoc loc) {
  detail::builderOf("log_softmax", {x}, loc);
  return emit(OpKind::LogSoftmax, {x}, {{"axis", detail::normAxis(axis, x.rank(), "log_softmax", {x}, loc)}}, loc);
}

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, SrcLoc loc) {
  detail::builderOf("layer_norm", {x, gamma, beta}, loc);
  int64_t axis = x.rank() - gamma.rank();
  if (gamma.rank() < 1 || axis < 0)
    fail("layer_norm", {x, gamma, beta}, "gamma must cover 1 to " + std::to_string(x.rank()) + " trailing dims", loc);
  return emit(OpKind::LayerNorm, {x, gamma, beta}, {{"axis", axis}, {"eps", eps}}, loc);
}

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, SrcLoc loc) {
  return emit(OpKind::BatchNorm, {x, gamma, beta}, {{"eps", eps}}, loc);
}

Tensor batch_norm_infer(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                        const Tensor& var, double eps, SrcLoc loc) {
  return emit(OpKind::BatchNormInfer, {x, gamma, beta, mean, var}, {{"eps", eps}}, loc);
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, double eps, SrcLoc loc) {
  return emit(OpKind::GroupNorm, {x, gamma, beta}, {{"groups", groups}, {"eps", eps}}, loc);
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, std::optional<double> scale,
                 SrcLoc loc) {
  detail::builderOf("attention", {q, k, v}, loc);
  if (q.rank() < 2) fail("attention", {q, k, v}, "q, k, v must be [..., T, D] of one rank", loc);
  double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.shape().back()));
  return emit(OpKind::Attention, {q, k, v}, {{"causal", detail::flag(causal)}, {"scale", s}}, loc);
}

Tensor dropout(const Tensor& x, double p, SrcLoc loc) {
  GraphBuilder& b = detail::builderOf("dropout", {x}, loc);
  if (!(p >= 0 && p < 1)) fail("dropout", {x}, "p must be in [0, 1), got " + std::to_string(p), loc);
  if (!b.training() || p == 0) return x;
  if (!ir::isFloat(x.dtype())) fail("dropout", {x}, "input must be a float tensor", loc);
  Tensor u = emit(OpKind::RandomUniform, {},
                  {{"shape", x.shape()}, {"dtype", x.dtype()}, {"seed", b.nextRandomSeed()}, {"low", 0.0}, {"high", 1.0}},
                  loc);
  return where(ge(u, p, loc), mul(x, 1.0 / (1.0 - p), loc), 0.0, loc);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction r, SrcLoc loc) {
  return emit(OpKind::CrossEntropy, {logits, labels}, {{"reduce", reductionName(r)}}, loc);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction r, SrcLoc loc) {
  return emit(OpKind::BceWithLogits, {logits, targets}, {{"reduce", reductionName(r)}}, loc);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r, SrcLoc loc) {
  return emit(OpKind::MseLoss, {input, target}, {{"reduce", reductionName(r)}}, loc);
}

}  // namespace weft
