// The GPT stack of BENCH.md: 2 pre-norm transformer blocks, d 256, 4 heads, ffn 1024, GELU
// (erf form), causal self-attention with scale 1/sqrt(head_dim), no final layer norm;
// loss = MSE(out, target) (mean); batch 8 x 128 tokens of width 256.
// Block i's parameters are blocks.i.{ln1,qkv,proj,ln2,fc1,fc2}.{weight,bias}.
#include <cmath>

#include "frontend/weft.h"
#include "ir/error.h"
#include "models/families.h"

namespace weft::models {
namespace {

/// One pre-norm block: x + proj(attn(ln1(x))), then h + fc2(gelu(fc1(ln2(h)))).
struct GptBlock {
  nn::LayerNorm ln1;
  nn::Linear qkv, proj;
  nn::LayerNorm ln2;
  nn::Linear fc1, fc2;
  int64_t heads;

  GptBlock(int64_t dim, int64_t heads, int64_t ff)
      : ln1("ln1", dim), qkv("qkv", dim, 3 * dim), proj("proj", dim, dim), ln2("ln2", dim),
        fc1("fc1", dim, ff), fc2("fc2", ff, dim), heads(heads) {}

  Tensor operator()(const Tensor& x) const {
    int64_t batch = x.dim(0), seq = x.dim(1), dim = x.dim(2), headDim = dim / heads;
    // [B, T, D] -> [B, H, T, D/H]
    auto splitHeads = [&](const Tensor& t) { return transpose(reshape(t, {batch, seq, heads, headDim}), 1, 2); };
    std::vector<Tensor> parts = split(qkv(ln1(x)), dim, 2);  // q, k, v
    Tensor q = splitHeads(parts[0]);
    Tensor k = splitHeads(parts[1]);
    Tensor v = splitHeads(parts[2]);
    Tensor att = attention(q, k, v, /*causal=*/true, 1.0 / std::sqrt(static_cast<double>(headDim)));
    Tensor merged = reshape(transpose(att, 1, 2), {batch, seq, dim});
    Tensor h = x + proj(merged);
    return h + fc2(gelu(fc1(ln2(h))));
  }
};

}  // namespace

ir::Graph buildGpt(const std::string& name, const GptConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  if (c.heads < 1 || c.dim % c.heads != 0)
    throw Error("gpt: dim " + std::to_string(c.dim) + " is not divisible by " + std::to_string(c.heads) + " heads");
  std::vector<GptBlock> blocks;
  for (int64_t i = 0; i < c.layers; ++i) {
    NameScope blockScope("blocks." + std::to_string(i));
    blocks.push_back(GptBlock(c.dim, c.heads, c.ff));
  }

  Tensor x = input("x", {c.batch, c.seq, c.dim});
  Tensor target = input("target", {c.batch, c.seq, c.dim});
  Tensor h = x;
  for (const GptBlock& block : blocks) h = block(h);
  output("out", h);
  output("loss", mse_loss(h, target));
  return builder.finish();
}

void registerGptModels(std::vector<ModelInfo>& out) {
  out.push_back({"gpt", "GPT 2 pre-norm blocks, d 256, 4 heads, ffn 1024, GELU, causal, MSE; batch 8x128",
                 [](const BuildOptions& o) { return buildGpt("gpt", withOptions(GptConfig{}, o)); }});
  out.push_back({"gpt_tiny", "GPT 2 pre-norm blocks, d 8, 2 heads, ffn 16, GELU, causal, MSE; batch 2x4",
                 [](const BuildOptions& o) {
                   return buildGpt("gpt_tiny",
                                   withOptions(GptConfig{.batch = 2, .seq = 4, .dim = 8, .heads = 2, .ff = 16}, o));
                 }});
}

}  // namespace weft::models
