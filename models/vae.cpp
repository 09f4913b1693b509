// The VAE of BENCH.md: encoder 784-400 ReLU -> (mu, logvar) 20 each, z = mu + eps * exp(logvar/2)
// with eps ~ N(0, 1), decoder 20-400 ReLU -400-784 logits;
// loss = (BCE-with-logits(logits, x, sum) - 0.5 * sum(1 + logvar - mu^2 - exp(logvar))) / batch.
// Parameter names follow torch_models.py's VAE: e, mu, lv, d1, d2.
#include "frontend/weft.h"
#include "models/families.h"

namespace weft::models {
namespace {

/// The decoder layers d1, d2 (created in this order in both graphs, so names and seeds agree).
struct Decoder {
  nn::Linear d1, d2;
  explicit Decoder(const VaeConfig& c) : d1("d1", c.latent, c.hidden), d2("d2", c.hidden, c.in) {}
  Tensor operator()(const Tensor& z) const { return d2(relu(d1(z))); }
};

}  // namespace

ir::Graph buildVae(const std::string& name, const VaeConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  nn::Linear enc("e", c.in, c.hidden), toMu("mu", c.hidden, c.latent), toLogvar("lv", c.hidden, c.latent);
  Decoder decoder(c);

  Tensor x = input("x", {c.batch, c.in});
  Tensor h = relu(enc(x));
  Tensor mu = toMu(h), logvar = toLogvar(h);
  Tensor noise = random_normal(mu.shape());
  Tensor z = mu + noise * exp(0.5 * logvar);
  Tensor logits = decoder(z);
  Tensor reconstruction = bce_with_logits(logits, x, Reduction::sum);
  Tensor kl = -0.5 * sum(1.0 + logvar - mu * mu - exp(logvar));
  output("logits", logits);
  output("loss", (reconstruction + kl) / static_cast<double>(c.batch));
  return builder.finish();
}

ir::Graph buildVaeDecoder(const std::string& name, const VaeConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  Decoder decoder(c);
  Tensor z = input("z", {c.batch, c.latent});
  output("images", sigmoid(decoder(z)));
  return builder.finish();
}

void registerVaeModels(std::vector<ModelInfo>& out) {
  const VaeConfig full{};
  const VaeConfig tiny{.batch = 3, .in = 12, .hidden = 8, .latent = 2};
  out.push_back({"vae", "VAE 784-400-(20,20)-400-784, reparameterized, BCE-with-logits + KL; batch 128",
                 [=](const BuildOptions& o) { return buildVae("vae", withOptions(full, o)); },
                 [=](const BuildOptions& o) { return buildVaeDecoder("vae_decoder", withOptions(full, o)); }});
  out.push_back({"vae_tiny", "VAE 12-8-(2,2)-8-12, reparameterized, BCE-with-logits + KL; batch 3",
                 [=](const BuildOptions& o) { return buildVae("vae_tiny", withOptions(tiny, o)); },
                 [=](const BuildOptions& o) { return buildVaeDecoder("vae_tiny_decoder", withOptions(tiny, o)); }});
}

}  // namespace weft::models
