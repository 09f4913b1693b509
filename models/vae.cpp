// The VAE of BENCH.md: encoder 784-400 ReLU -> (mu, logvar) 20 each, z = mu + eps * exp(logvar/2)
// with eps ~ N(0, 1), decoder 20-400 ReLU -400-784 logits;
// loss = (BCE-with-logits(logits, x, sum) - 0.5 * sum(1 + logvar - mu^2 - exp(logvar))) / batch.
// Parameter names follow torch_models.py's VAE: e, mu, lv, d1, d2.
#include "frontend/weft.h"
#include "models/families.h"

namespace weft::models {

ir::Graph buildVae(const std::string& name, const VaeConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  BuildScope scope(builder);
  nn::Linear enc("e", c.in, c.hidden), toMu("mu", c.hidden, c.latent), toLogvar("lv", c.hidden, c.latent);
  nn::Linear dec1("d1", c.latent, c.hidden), dec2("d2", c.hidden, c.in);

  Tensor x = input("x", {c.batch, c.in});
  Tensor h = relu(enc(x));
  Tensor mu = toMu(h), logvar = toLogvar(h);
  Tensor noise = random_normal(mu.shape());
  Tensor z = mu + noise * exp(0.5 * logvar);
  Tensor logits = dec2(relu(dec1(z)));
  Tensor reconstruction = bce_with_logits(logits, x, Reduction::sum);
  Tensor kl = -0.5 * sum(1.0 + logvar - mu * mu - exp(logvar));
  output("logits", logits);
  output("loss", (reconstruction + kl) / static_cast<double>(c.batch));
  return builder.finish();
}

void registerVaeModels(std::vector<ModelInfo>& out) {
  out.push_back({"vae", "VAE 784-400-(20,20)-400-784, reparameterized, BCE-with-logits + KL; batch 128",
                 [] { return buildVae("vae", VaeConfig{}); }});
  out.push_back({"vae_tiny", "VAE 12-8-(2,2)-8-12, reparameterized, BCE-with-logits + KL; batch 3", [] {
                   return buildVae("vae_tiny", VaeConfig{.batch = 3, .in = 12, .hidden = 8, .latent = 2});
                 }});
}

}  // namespace weft::models
