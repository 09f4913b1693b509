// Kernels of the loss composites: cross_entropy, bce_with_logits and mse_loss, each with
// `reduce` = mean (over all elements), sum, or none (elementwise).
#include <cmath>

#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"
#include "ir/verifier.h"

namespace weft::reference {

using ir::TensorData;

namespace {

/// Applies the node's `reduce` mode to per-element losses.
TensorData reduceLosses(const KernelContext& ctx, const std::vector<double>& losses) {
  const std::string& mode = ctx.attr().s("reduce");
  if (mode == "none") return fromDoubles(ctx.outType(), losses);
  double total = 0;
  for (double l : losses) total += l;
  if (mode == "mean") total /= static_cast<double>(losses.size());
  else if (mode != "sum") ctx.fail("unknown reduce mode '" + mode + "'");
  return fromDoubles(ctx.outType(), {total});
}

}  // namespace

TensorData kernelCrossEntropy(const KernelContext& ctx) {
  // Per row of logits [..., C]: logsumexp(row) - row[label].
  std::vector<double> logits = toDoubles(ctx.in(0));
  const TensorData& labels = ctx.in(1);
  int64_t classes = ctx.in(0).type.shape.back();
  std::vector<double> losses(static_cast<size_t>(labels.numel()));
  for (int64_t r = 0; r < labels.numel(); ++r) {
    int64_t label = getInt(labels, r);
    if (label < 0 || label >= classes)
      ctx.fail(ir::checkIndexMessage("label", label, r, ir::valueRef(ctx.graph, ctx.node().operands[1]), classes));
    const double* row = logits.data() + r * classes;
    double peak = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) peak = std::fmax(peak, row[c]);
    double total = 0;
    for (int64_t c = 0; c < classes; ++c) total += std::exp(row[c] - peak);
    losses[static_cast<size_t>(r)] = std::log(total) + peak - row[label];
  }
  return reduceLosses(ctx, losses);
}

TensorData kernelBceWithLogits(const KernelContext& ctx) {
  // max(x, 0) - x * t + log(1 + exp(-|x|)), the stable form of binary cross-entropy on logits.
  std::vector<double> x = toDoubles(ctx.in(0)), t = toDoubles(ctx.in(1));
  std::vector<double> losses(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    losses[i] = std::fmax(x[i], 0.0) - x[i] * t[i] + std::log1p(std::exp(-std::fabs(x[i])));
  return reduceLosses(ctx, losses);
}

TensorData kernelMseLoss(const KernelContext& ctx) {
  std::vector<double> a = toDoubles(ctx.in(0)), b = toDoubles(ctx.in(1));
  std::vector<double> losses(a.size());
  for (size_t i = 0; i < a.size(); ++i) losses[i] = (a[i] - b[i]) * (a[i] - b[i]);
  return reduceLosses(ctx, losses);
}

}  // namespace weft::reference
