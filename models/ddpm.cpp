// The DDPM of BENCH.md (torch_models.py's TinyUNet and ddpm loss), batch 32 of 1x28x28:
// a two-level U-Net (32/64 channels, GroupNorm 8, SiLU) with a sinusoidal time embedding
// (128 wide, then t1, SiLU, t2), trained to predict the noise: t ~ U{0..999}, eps ~ N(0, 1),
// x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps with betas linear in [1e-4, 0.02],
// loss = MSE(unet(x_t, t), eps). t and eps are random ops of the graph, drawn per step as
// torch draws them in loss(). The evaluation form is the same graph (the U-Net has no
// mode-dependent layers); torch's inference timing runs the U-Net alone at t = 500.
// Parameter names follow torch: t1, t2, inp, d1, d2, down, mid, up, u1, out, with each
// residual block's c1, n1, c2, n2, t, sk.
#include <cmath>

#include "frontend/weft.h"
#include "ir/error.h"
#include "models/families.h"

namespace weft::models {
namespace {

/// One residual block (torch's blk + res): silu(n1(c1(x))) + t(emb), then silu(n2(c2(.))) + sk(x).
struct ResBlock {
  nn::Conv2d c1;
  nn::GroupNorm n1;
  nn::Conv2d c2;
  nn::GroupNorm n2;
  nn::Linear t;
  nn::Conv2d sk;

  ResBlock(int64_t in, int64_t out, const DdpmConfig& c)
      : c1("c1", in, out, 3, {.padding = 1}),
        n1("n1", c.groups, out),
        c2("c2", out, out, 3, {.padding = 1}),
        n2("n2", c.groups, out),
        t("t", c.temb, out),
        sk("sk", in, out, 1) {}

  Tensor operator()(const Tensor& x, const Tensor& emb) const {
    Tensor h = silu(n1(c1(x))) + reshape(t(emb), {emb.dim(0), -1, 1, 1});
    h = silu(n2(c2(h)));
    return h + sk(x);
  }
};

/// A residual block whose parameters are `name.*`.
ResBlock scopedBlock(const std::string& name, int64_t in, int64_t out, const DdpmConfig& c) {
  NameScope scope(name);
  return ResBlock(in, out, c);
}

/// A constant vector of `dtype`.
Tensor vectorConstant(const std::vector<double>& values, DType dtype) {
  return constant(values, {static_cast<int64_t>(values.size())}, dtype);
}

}  // namespace

ir::Graph buildDdpm(const std::string& name, const DdpmConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  if (c.size % 2 != 0 || c.temb % 2 != 0 || c.steps < 1)
    throw Error("ddpm: the image size and time embedding width must be even and steps positive");
  nn::Linear t1("t1", c.temb, c.temb), t2("t2", c.temb, c.temb);
  nn::Conv2d inp("inp", c.channels, c.c1, 3, {.padding = 1});
  ResBlock d1 = scopedBlock("d1", c.c1, c.c1, c), d2 = scopedBlock("d2", c.c1, c.c2, c);
  nn::Conv2d down("down", c.c1, c.c1, 3, {.stride = 2, .padding = 1});
  ResBlock mid = scopedBlock("mid", c.c2, c.c2, c);
  nn::ConvTranspose2d up("up", c.c2, c.c2, 4, {.stride = 2, .padding = 1});
  ResBlock u1 = scopedBlock("u1", c.c2 + c.c1, c.c1, c);
  nn::Conv2d out("out", c.c1, c.channels, 3, {.padding = 1});

  // The noise schedule: sqrt(abar) and sqrt(1 - abar) per step, abar = cumprod(1 - beta).
  std::vector<double> sqrtAbar, sqrtOneMinusAbar;
  double abar = 1;
  for (int64_t i = 0; i < c.steps; ++i) {
    double beta = c.steps == 1 ? 1e-4 : 1e-4 + (0.02 - 1e-4) * static_cast<double>(i) / static_cast<double>(c.steps - 1);
    abar *= 1 - beta;
    sqrtAbar.push_back(std::sqrt(abar));
    sqrtOneMinusAbar.push_back(std::sqrt(1 - abar));
  }
  // The embedding frequencies exp(-log(10000) i / half).
  int64_t half = c.temb / 2;
  std::vector<double> freqs;
  for (int64_t i = 0; i < half; ++i) freqs.push_back(std::exp(-std::log(10000.0) * static_cast<double>(i) / half));

  Tensor x = input("x", {c.batch, c.channels, c.size, c.size});
  Tensor step = minimum(floor(random_uniform({c.batch}, 0, static_cast<double>(c.steps))), c.steps - 1.0);
  Tensor stepIndex = cast(step, DType::i32);
  Tensor eps = random_normal(x.shape());
  auto perExample = [&](const std::vector<double>& table) {
    return reshape(gather(vectorConstant(table, c.dtype), stepIndex), {c.batch, 1, 1, 1});
  };
  Tensor xt = perExample(sqrtAbar) * x + perExample(sqrtOneMinusAbar) * eps;

  Tensor angles = reshape(step, {c.batch, 1}) * vectorConstant(freqs, c.dtype);  // [batch, half]
  Tensor emb = t2(silu(t1(concat({sin(angles), cos(angles)}, 1))));
  Tensor h1 = d1(inp(xt), emb);
  Tensor h2 = mid(d2(down(h1), emb), emb);
  Tensor u = u1(concat({up(h2), h1}, 1), emb);
  Tensor epsPred = out(u);
  output("eps_pred", epsPred);
  output("loss", mse_loss(epsPred, eps));
  return builder.finish();
}

void registerDdpmModels(std::vector<ModelInfo>& out) {
  const DdpmConfig full{};
  const DdpmConfig tiny{.batch = 2, .size = 8, .c1 = 4, .c2 = 8, .temb = 8, .groups = 2, .steps = 50};
  out.push_back({"ddpm", "DDPM U-Net 32/64, GroupNorm 8, SiLU, sinusoidal time embedding, noise MSE; batch 32x1x28x28",
                 [=](const BuildOptions& o) { return buildDdpm("ddpm", withOptions(full, o)); }});
  out.push_back({"ddpm_tiny", "DDPM U-Net 4/8, GroupNorm 2, SiLU, time embedding 8, noise MSE; batch 2x1x8x8",
                 [=](const BuildOptions& o) { return buildDdpm("ddpm_tiny", withOptions(tiny, o)); }});
}

}  // namespace weft::models
