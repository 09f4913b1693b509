// Kernels of the normalization composites: layer_norm, batch_norm (training statistics),
// batch_norm_infer and group_norm. Statistics are computed in double with the two-pass
// biased variance; y = (x - mean) / sqrt(var + eps) * gamma + beta.
#include <algorithm>
#include <cmath>

#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"

namespace weft::reference {

using ir::TensorData;

namespace {

/// Mean and biased variance of a set of values.
struct Moments {
  double mean = 0, variance = 0;
};

/// The moments of `values[at(i)]` for i in [0, count).
template <class At>
Moments momentsOf(const std::vector<double>& values, int64_t count, At at) {
  Moments m;
  if (count == 0) return m;
  for (int64_t i = 0; i < count; ++i) m.mean += values[static_cast<size_t>(at(i))];
  m.mean /= static_cast<double>(count);
  for (int64_t i = 0; i < count; ++i) {
    double d = values[static_cast<size_t>(at(i))] - m.mean;
    m.variance += d * d;
  }
  m.variance /= static_cast<double>(count);
  return m;
}

/// A normalized and scaled element.
double normalize(double x, const Moments& m, double eps, double gamma, double beta) {
  return (x - m.mean) / std::sqrt(m.variance + eps) * gamma + beta;
}

/// Views x as [N, C, S] (S = product of the spatial dims).
struct ChannelLayout {
  int64_t batch, channels, spatial;
};
ChannelLayout channelLayout(const TensorData& x) {
  const ir::Shape& s = x.type.shape;
  return {s[0], s[1], extentProduct(s, 2, s.size())};
}

}  // namespace

TensorData kernelLayerNorm(const KernelContext& ctx) {
  // Statistics over the trailing dims [axis, rank) of each leading index.
  std::vector<double> x = toDoubles(ctx.in(0)), gamma = toDoubles(ctx.in(1)), beta = toDoubles(ctx.in(2));
  double eps = ctx.attr().f("eps");
  auto rows = static_cast<int64_t>(x.size() / std::max<size_t>(gamma.size(), 1));
  auto width = static_cast<int64_t>(gamma.size());
  TensorData out(ctx.outType());
  for (int64_t r = 0; r < rows; ++r) {
    Moments m = momentsOf(x, width, [&](int64_t i) { return r * width + i; });
    for (int64_t i = 0; i < width; ++i) {
      auto k = static_cast<size_t>(i);
      store(out, r * width + i, normalize(x[static_cast<size_t>(r * width + i)], m, eps, gamma[k], beta[k]));
    }
  }
  return out;
}

TensorData kernelBatchNorm(const KernelContext& ctx) {
  // Statistics per channel over the batch and all spatial positions.
  std::vector<double> x = toDoubles(ctx.in(0)), gamma = toDoubles(ctx.in(1)), beta = toDoubles(ctx.in(2));
  ChannelLayout l = channelLayout(ctx.in(0));
  double eps = ctx.attr().f("eps");
  TensorData out(ctx.outType());
  for (int64_t c = 0; c < l.channels; ++c) {
    auto at = [&](int64_t i) { return ((i / l.spatial) * l.channels + c) * l.spatial + i % l.spatial; };
    int64_t count = l.batch * l.spatial;
    Moments m = momentsOf(x, count, at);
    for (int64_t i = 0; i < count; ++i)
      store(out, at(i), normalize(x[static_cast<size_t>(at(i))], m, eps, gamma[static_cast<size_t>(c)],
                                  beta[static_cast<size_t>(c)]));
  }
  return out;
}

TensorData kernelBatchNormInfer(const KernelContext& ctx) {
  // The given running mean and variance per channel.
  std::vector<double> x = toDoubles(ctx.in(0)), gamma = toDoubles(ctx.in(1)), beta = toDoubles(ctx.in(2));
  std::vector<double> mean = toDoubles(ctx.in(3)), var = toDoubles(ctx.in(4));
  ChannelLayout l = channelLayout(ctx.in(0));
  double eps = ctx.attr().f("eps");
  TensorData out(ctx.outType());
  for (int64_t i = 0; i < out.numel(); ++i) {
    auto c = static_cast<size_t>((i / l.spatial) % l.channels);
    store(out, i, normalize(x[static_cast<size_t>(i)], {mean[c], var[c]}, eps, gamma[c], beta[c]));
  }
  return out;
}

TensorData kernelGroupNorm(const KernelContext& ctx) {
  // Statistics per (sample, group) over the group's channels and all spatial positions; the
  // group's elements are contiguous. gamma/beta are per channel.
  std::vector<double> x = toDoubles(ctx.in(0)), gamma = toDoubles(ctx.in(1)), beta = toDoubles(ctx.in(2));
  ChannelLayout l = channelLayout(ctx.in(0));
  int64_t groups = ctx.attr().i("groups"), perGroup = l.channels / groups;
  int64_t blockSize = perGroup * l.spatial;
  double eps = ctx.attr().f("eps");
  TensorData out(ctx.outType());
  for (int64_t block = 0; block < l.batch * groups; ++block) {
    int64_t start = block * blockSize;
    Moments m = momentsOf(x, blockSize, [&](int64_t i) { return start + i; });
    for (int64_t i = 0; i < blockSize; ++i) {
      auto c = static_cast<size_t>((block % groups) * perGroup + i / l.spatial);
      store(out, start + i, normalize(x[static_cast<size_t>(start + i)], m, eps, gamma[c], beta[c]));
    }
  }
  return out;
}

}  // namespace weft::reference
