// RealNVP of BENCH.md (torch_models.py's RealNVP), batch 128 of 784 features: 4 affine
// couplings with alternating parity masks m (m_j = 1 where j % 2 == parity, parity = i % 2),
// each  xm = x m,  s = tanh-MLP(xm) (1 - m),  t = MLP(xm) (1 - m),
//       x' = xm + (1 - m) (x exp(s) + t),  logdet += sum_j s_j,
// with s/t MLPs dim-512-dim (ReLU; s ends in tanh); loss = -mean(logp(z) + logdet) with
// logp(z) = -0.5 |z|^2 - 0.5 dim log(2 pi). Parameter names follow torch: layers.i.s.0,
// layers.i.s.2, layers.i.t.0, layers.i.t.2 (the masks are constants).
#include <cmath>
#include <numbers>

#include "frontend/weft.h"
#include "models/families.h"

namespace weft::models {
namespace {

/// One affine coupling layer.
struct Coupling {
  nn::Linear s0, s2, t0, t2;
  Tensor mask;  ///< [dim], 1 on the features this layer keeps

  Coupling(int64_t dim, int64_t hidden, int64_t parity, DType dtype)
      : s0("s.0", dim, hidden), s2("s.2", hidden, dim), t0("t.0", dim, hidden), t2("t.2", hidden, dim) {
    std::vector<double> m;
    for (int64_t j = 0; j < dim; ++j) m.push_back(j % 2 == parity ? 1.0 : 0.0);
    mask = constant(m, {dim}, dtype);
  }

  /// The transformed x and the log-determinant per example.
  std::pair<Tensor, Tensor> operator()(const Tensor& x) const {
    Tensor xm = x * mask;
    Tensor free = 1.0 - mask;
    Tensor s = tanh(s2(relu(s0(xm)))) * free;
    Tensor t = t2(relu(t0(xm))) * free;
    return {xm + free * (x * exp(s) + t), sum(s, 1)};
  }
};

}  // namespace

ir::Graph buildRealnvp(const std::string& name, const RealnvpConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  std::vector<Coupling> layers;
  for (int64_t i = 0; i < c.couplings; ++i) {
    NameScope layerScope("layers." + std::to_string(i));
    layers.push_back(Coupling(c.dim, c.hidden, i % 2, c.dtype));
  }

  Tensor x = input("x", {c.batch, c.dim});
  Tensor z = x;
  Tensor logdet;
  for (const Coupling& layer : layers) {
    auto [next, ld] = layer(z);
    z = next;
    logdet = logdet.valid() ? logdet + ld : ld;
  }
  double logNormalizer = 0.5 * static_cast<double>(c.dim) * std::log(2 * std::numbers::pi);
  Tensor logp = -0.5 * sum(z * z, 1) - logNormalizer;
  if (logdet.valid()) logp = logp + logdet;
  output("z", z);
  output("loss", -mean(logp));
  return builder.finish();
}

void registerRealnvpModels(std::vector<ModelInfo>& out) {
  const RealnvpConfig full{};
  const RealnvpConfig tiny{.batch = 3, .dim = 8, .hidden = 6};
  out.push_back({"realnvp", "RealNVP 4 affine couplings on 784-d, s/t MLPs 784-512-784, NLL; batch 128",
                 [=](const BuildOptions& o) { return buildRealnvp("realnvp", withOptions(full, o)); }});
  out.push_back({"realnvp_tiny", "RealNVP 4 affine couplings on 8-d, s/t MLPs 8-6-8, NLL; batch 3",
                 [=](const BuildOptions& o) { return buildRealnvp("realnvp_tiny", withOptions(tiny, o)); }});
}

}  // namespace weft::models
