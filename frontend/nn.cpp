#include "frontend/nn.h"

#include "frontend/emit.h"

namespace weft::nn {
namespace {

/// The two kernel extents of a 2-D layer.
std::pair<int64_t, int64_t> kernel2d(const std::string& name, const Spatial& k, const SrcLoc& loc) {
  const auto& v = k.values();
  if (v.size() == 1 && v[0] >= 1) return {v[0], v[0]};
  if (v.size() == 2 && v[0] >= 1 && v[1] >= 1) return {v[0], v[1]};
  failAt(loc, "layer '" + name + "': kernel size must be k or {kh, kw} with positive values");
}

void requirePositive(const std::string& name, std::initializer_list<int64_t> sizes, const SrcLoc& loc) {
  for (int64_t s : sizes)
    if (s < 1) failAt(loc, "layer '" + name + "': sizes must be positive, got " + std::to_string(s));
}

/// x + bias reshaped to [C, 1, ..., 1] so it broadcasts over [N, C, spatial...].
Tensor addChannelBias(const Tensor& x, const Tensor& bias, const SrcLoc& loc) {
  if (!bias.valid()) return x;
  Shape s(static_cast<size_t>(std::max<int64_t>(x.rank() - 1, 1)), 1);
  s[0] = bias.dim(0);
  return add(x, reshape(bias, s, loc), loc);
}

}  // namespace

Linear::Linear(const std::string& name, int64_t in, int64_t out, bool withBias, SrcLoc loc) {
  requirePositive(name, {in, out}, loc);
  weight = param(name + ".weight", {in, out}, init::torch_default(in), loc);
  if (withBias) bias = param(name + ".bias", {out}, init::torch_default(in), loc);
}

Tensor Linear::operator()(const Tensor& x, SrcLoc loc) const {
  if (!weight.valid()) failAt(loc, "nn::Linear used before it was built");
  Tensor y = matmul(x, weight, false, false, loc);
  return bias.valid() ? add(y, bias, loc) : y;
}

Conv2d::Conv2d(const std::string& name, int64_t in, int64_t out, Spatial kernel, ConvOptions opts, bool withBias,
               SrcLoc loc)
    : options(std::move(opts)) {
  requirePositive(name, {in, out, options.groups}, loc);
  auto [kh, kw] = kernel2d(name, kernel, loc);
  if (in % options.groups || out % options.groups)
    failAt(loc, "layer '" + name + "': groups must divide the in and out channels");
  int64_t fanIn = in / options.groups * kh * kw;
  weight = param(name + ".weight", {out, in / options.groups, kh, kw}, init::torch_default(fanIn), loc);
  if (withBias) bias = param(name + ".bias", {out}, init::torch_default(fanIn), loc);
}

Tensor Conv2d::operator()(const Tensor& x, SrcLoc loc) const {
  if (!weight.valid()) failAt(loc, "nn::Conv2d used before it was built");
  return addChannelBias(conv2d(x, weight, options, loc), bias, loc);
}

ConvTranspose2d::ConvTranspose2d(const std::string& name, int64_t in, int64_t out, Spatial kernel,
                                 ConvTransposeOptions opts, bool withBias, SrcLoc loc)
    : options(std::move(opts)) {
  requirePositive(name, {in, out, options.groups}, loc);
  auto [kh, kw] = kernel2d(name, kernel, loc);
  if (in % options.groups || out % options.groups)
    failAt(loc, "layer '" + name + "': groups must divide the in and out channels");
  // PyTorch computes the fan-in of a transposed conv from weight.shape[1] * kernel.
  int64_t fanIn = out / options.groups * kh * kw;
  weight = param(name + ".weight", {in, out / options.groups, kh, kw}, init::torch_default(fanIn), loc);
  if (withBias) bias = param(name + ".bias", {out}, init::torch_default(fanIn), loc);
}

Tensor ConvTranspose2d::operator()(const Tensor& x, SrcLoc loc) const {
  if (!weight.valid()) failAt(loc, "nn::ConvTranspose2d used before it was built");
  return addChannelBias(conv_transpose2d(x, weight, options, loc), bias, loc);
}

BatchNorm2d::BatchNorm2d(const std::string& name, int64_t channels, double eps, double momentum, SrcLoc loc)
    : eps(eps), momentum(momentum), training(currentBuilder(loc).training()) {
  requirePositive(name, {channels}, loc);
  if (!(momentum >= 0 && momentum <= 1))
    failAt(loc, "layer '" + name + "': momentum must be in [0, 1], got " + std::to_string(momentum));
  weight = param(name + ".weight", {channels}, init::ones(), loc);
  bias = param(name + ".bias", {channels}, init::zeros(), loc);
  running_mean = buffer(name + ".running_mean", {channels}, init::zeros(), loc);
  running_var = buffer(name + ".running_var", {channels}, init::ones(), loc);
}

Tensor BatchNorm2d::operator()(const Tensor& x, SrcLoc loc) const {
  if (!weight.valid()) failAt(loc, "nn::BatchNorm2d used before it was built");
  if (!training) return batch_norm_infer(x, weight, bias, running_mean, running_var, eps, loc);
  Tensor y = batch_norm(x, weight, bias, eps, loc);
  // The batch statistics for the running averages, the sums the normalization computes
  // (kept dims, as its decomposition keeps them, so that cse merges the two: one pass over x
  // for the mean and one for the squares, not a third).
  std::vector<int64_t> axes{0};
  for (int64_t d = 2; d < x.rank(); ++d) axes.push_back(d);
  Tensor batchMean = mean(x, axes, /*keepdims=*/true, loc);
  Tensor centered = sub(x, batchMean, loc);
  int64_t count = x.numel() / x.dim(1, loc);
  Tensor sumSquares = reshape(sum(mul(centered, centered, loc), axes, /*keepdims=*/true, loc), {x.dim(1, loc)}, loc);
  Tensor unbiasedVar = div(sumSquares, static_cast<double>(std::max<int64_t>(count - 1, 1)), loc);
  Tensor meanC = reshape(batchMean, {x.dim(1, loc)}, loc);
  update(running_mean, add(mul(running_mean, 1.0 - momentum, loc), mul(meanC, momentum, loc), loc), loc);
  update(running_var, add(mul(running_var, 1.0 - momentum, loc), mul(unbiasedVar, momentum, loc), loc), loc);
  return y;
}

LayerNorm::LayerNorm(const std::string& name, int64_t dim, double eps, SrcLoc loc)
    : LayerNorm(name, Shape{dim}, eps, loc) {}

LayerNorm::LayerNorm(const std::string& name, const Shape& normalized, double eps, SrcLoc loc) : eps(eps) {
  if (normalized.empty()) failAt(loc, "layer '" + name + "': normalized shape must not be empty");
  for (int64_t d : normalized) requirePositive(name, {d}, loc);
  weight = param(name + ".weight", normalized, init::ones(), loc);
  bias = param(name + ".bias", normalized, init::zeros(), loc);
}

Tensor LayerNorm::operator()(const Tensor& x, SrcLoc loc) const {
  if (!weight.valid()) failAt(loc, "nn::LayerNorm used before it was built");
  return layer_norm(x, weight, bias, eps, loc);
}

GroupNorm::GroupNorm(const std::string& name, int64_t groups, int64_t channels, double eps, SrcLoc loc)
    : groups(groups), eps(eps) {
  requirePositive(name, {groups, channels}, loc);
  if (channels % groups) failAt(loc, "layer '" + name + "': groups must divide the channel count");
  weight = param(name + ".weight", {channels}, init::ones(), loc);
  bias = param(name + ".bias", {channels}, init::zeros(), loc);
}

Tensor GroupNorm::operator()(const Tensor& x, SrcLoc loc) const {
  if (!weight.valid()) failAt(loc, "nn::GroupNorm used before it was built");
  return group_norm(x, groups, weight, bias, eps, loc);
}

Embedding::Embedding(const std::string& name, int64_t num, int64_t dim, SrcLoc loc) {
  requirePositive(name, {num, dim}, loc);
  weight = param(name + ".weight", {num, dim}, init::normal(1.0), loc);
}

Tensor Embedding::operator()(const Tensor& indices, SrcLoc loc) const {
  if (!weight.valid()) failAt(loc, "nn::Embedding used before it was built");
  return gather(weight, indices, 0, loc);
}

}  // namespace weft::nn
