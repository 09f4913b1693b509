// The DCGAN of BENCH.md (torch_models.py's DCGAN), batch 64:
//   G: z [64] -> fc 128*7*7, ReLU -> [128,7,7] -> convT4x4/2 to 64, BN, ReLU -> convT4x4/2 to 1, tanh
//   D: conv4x4/2 to 64, LeakyReLU 0.2 -> conv4x4/2 to 128, LeakyReLU 0.2 -> flatten -> fc 1
// torch's step() is two optimizer steps: D on BCE(D(real), 1) + BCE(D(G(z).detach()), 0), then
// G on BCE(D(G(z)), 1) with the updated D. Here both losses are one graph, so one training
// step updates D and G together: loss = d_loss + g_loss, with G's output detached in d_loss
// and D's parameters wrapped in stop_gradient in g_loss, so D's gradient is that of d_loss
// and G's that of g_loss, as in torch. Differences: G's step sees D before (not after) its
// update, G runs once per step (torch runs it twice), and G's batch norm updates its running
// statistics once. z ~ N(0, 1) is drawn in the graph (torch keeps one fixed z).
// Parameter names: G.fc, G.up1, G.bn, G.up2, D.conv1, D.conv2, D.fc.
#include "frontend/weft.h"
#include "models/families.h"

namespace weft::models {
namespace {

/// The generator.
struct Generator {
  nn::Linear fc;
  nn::ConvTranspose2d up1;
  nn::BatchNorm2d bn;
  nn::ConvTranspose2d up2;
  int64_t g1, base;

  explicit Generator(const DcganConfig& c)
      : fc("fc", c.latent, c.g1 * c.base * c.base),
        up1("up1", c.g1, c.g2, 4, {.stride = 2, .padding = 1}),
        bn("bn", c.g2),
        up2("up2", c.g2, c.channels, 4, {.stride = 2, .padding = 1}),
        g1(c.g1),
        base(c.base) {}

  /// Images in [-1, 1], [batch, channels, 4 base, 4 base].
  Tensor operator()(const Tensor& z) const {
    Tensor h = reshape(relu(fc(z)), {z.dim(0), g1, base, base});
    return tanh(up2(relu(bn(up1(h)))));
  }
};

/// The discriminator.
struct Discriminator {
  nn::Conv2d conv1, conv2;
  nn::Linear fc;
  double slope;

  explicit Discriminator(const DcganConfig& c)
      : conv1("conv1", c.channels, c.d1, 4, {.stride = 2, .padding = 1}),
        conv2("conv2", c.d1, c.d2, 4, {.stride = 2, .padding = 1}),
        fc("fc", c.d2 * c.base * c.base, 1),
        slope(c.slope) {}

  /// One logit per image, [batch, 1].
  Tensor operator()(const Tensor& x) const {
    Tensor h = leaky_relu(conv2(leaky_relu(conv1(x), slope)), slope);
    return fc(flatten(h));
  }

  /// The same discriminator with every parameter behind stop_gradient: its loss moves only
  /// what feeds its input.
  Discriminator frozen() const {
    Discriminator d = *this;
    for (Tensor* p : {&d.conv1.weight, &d.conv1.bias, &d.conv2.weight, &d.conv2.bias, &d.fc.weight, &d.fc.bias})
      *p = stop_gradient(*p);
    return d;
  }
};

/// The generator built under the name scope `G`.
Generator scopedGenerator(const DcganConfig& c) {
  NameScope scope("G");
  return Generator(c);
}

/// The discriminator built under the name scope `D`.
Discriminator scopedDiscriminator(const DcganConfig& c) {
  NameScope scope("D");
  return Discriminator(c);
}

}  // namespace

ir::Graph buildDcgan(const std::string& name, const DcganConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  Generator gen = scopedGenerator(c);
  Discriminator disc = scopedDiscriminator(c);

  int64_t side = 4 * c.base;
  Tensor real = input("x", {c.batch, c.channels, side, side});
  Tensor z = random_normal({c.batch, c.latent});
  Tensor ones = full({c.batch, 1}, 1.0, c.dtype), zeros = full({c.batch, 1}, 0.0, c.dtype);
  Tensor fake = gen(z);
  Tensor dLoss = bce_with_logits(disc(real), ones) + bce_with_logits(disc(stop_gradient(fake)), zeros);
  Tensor gLoss = bce_with_logits(disc.frozen()(fake), ones);
  output("d_loss", dLoss);
  output("g_loss", gLoss);
  output("loss", dLoss + gLoss);
  return builder.finish();
}

ir::Graph buildDcganGenerator(const std::string& name, const DcganConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  Generator gen = scopedGenerator(c);
  Tensor z = input("z", {c.batch, c.latent});
  output("images", flatten((gen(z) + 1.0) * 0.5));
  return builder.finish();
}

void registerDcganModels(std::vector<ModelInfo>& out) {
  const DcganConfig full{};
  const DcganConfig tiny{.batch = 2, .latent = 4, .base = 2, .g1 = 8, .g2 = 4, .d1 = 4, .d2 = 8};
  out.push_back({"dcgan", "DCGAN G 64-fc 128x7x7-convT 64 (BN)-convT 1, D conv 64-conv 128-fc 1, BCE; batch 64",
                 [=](const BuildOptions& o) { return buildDcgan("dcgan", withOptions(full, o)); },
                 [=](const BuildOptions& o) { return buildDcganGenerator("dcgan_generator", withOptions(full, o)); }});
  out.push_back({"dcgan_tiny", "DCGAN G 4-fc 8x2x2-convT 4 (BN)-convT 1, D conv 4-conv 8-fc 1, BCE; batch 2",
                 [=](const BuildOptions& o) { return buildDcgan("dcgan_tiny", withOptions(tiny, o)); },
                 [=](const BuildOptions& o) {
                   return buildDcganGenerator("dcgan_tiny_generator", withOptions(tiny, o));
                 }});
}

}  // namespace weft::models
