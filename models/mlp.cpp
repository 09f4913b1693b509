// The MLP classifier of BENCH.md: 784-512-256-10 with ReLU and cross-entropy, batch 128.
// Parameters: fc1, fc2, fc3 (PyTorch's Sequential indices 0, 2, 4), weights stored [in, out].
#include "frontend/weft.h"
#include "models/families.h"

namespace weft::models {

ir::Graph buildMlp(const std::string& name, const MlpConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  std::vector<nn::Linear> layers;
  int64_t width = c.in;
  for (size_t i = 0; i <= c.hidden.size(); ++i) {
    int64_t out = i < c.hidden.size() ? c.hidden[i] : c.classes;
    layers.push_back(nn::Linear("fc" + std::to_string(i + 1), width, out));
    width = out;
  }

  Tensor x = input("x", {c.batch, c.in});
  Tensor y = input("y", {c.batch}, DType::i32);
  Tensor h = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    h = layers[i](h);
    if (i + 1 < layers.size()) h = relu(h);
  }
  output("logits", h);
  output("loss", cross_entropy(h, y));
  return builder.finish();
}

void registerMlpModels(std::vector<ModelInfo>& out) {
  out.push_back({"mlp", "MLP 784-512-256-10, ReLU, cross-entropy; batch 128",
                 [](const BuildOptions& o) { return buildMlp("mlp", withOptions(MlpConfig{}, o)); }});
  out.push_back(
      {"mlp_tiny", "MLP 16-12-8-5, ReLU, cross-entropy; batch 4", [](const BuildOptions& o) {
         return buildMlp("mlp_tiny", withOptions(MlpConfig{.batch = 4, .in = 16, .hidden = {12, 8}, .classes = 5}, o));
       }});
}

}  // namespace weft::models
