// LeNet of BENCH.md: conv3x3(1->32) ReLU maxpool2, conv3x3(32->64) ReLU maxpool2,
// flatten, fc 1600-128 ReLU, fc 128-10, cross-entropy; batch 64 of 1x28x28.
#include "frontend/weft.h"
#include "ir/error.h"
#include "models/families.h"

namespace weft::models {

ir::Graph buildLenet(const std::string& name, const LenetConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  int64_t side = ((c.size - 2) / 2 - 2) / 2;  // two valid 3x3 convs, each followed by a 2x2 pool
  if (side < 1) throw Error("lenet: input size " + std::to_string(c.size) + " is too small");
  nn::Conv2d conv1("conv1", c.channels, c.c1, 3);
  nn::Conv2d conv2("conv2", c.c1, c.c2, 3);
  nn::Linear fc1("fc1", c.c2 * side * side, c.hidden);
  nn::Linear fc2("fc2", c.hidden, c.classes);

  Tensor x = input("x", {c.batch, c.channels, c.size, c.size});
  Tensor y = input("y", {c.batch}, DType::i32);
  Tensor h = max_pool2d(relu(conv1(x)), 2);
  h = max_pool2d(relu(conv2(h)), 2);
  Tensor logits = fc2(relu(fc1(flatten(h))));
  output("logits", logits);
  output("loss", cross_entropy(logits, y));
  return builder.finish();
}

void registerLenetModels(std::vector<ModelInfo>& out) {
  out.push_back({"lenet", "LeNet conv3x3 32, conv3x3 64, fc 1600-128-10, cross-entropy; batch 64x1x28x28",
                 [](const BuildOptions& o) { return buildLenet("lenet", withOptions(LenetConfig{}, o)); }});
  out.push_back(
      {"lenet_tiny", "LeNet conv3x3 2, conv3x3 4, fc 16-8-5, cross-entropy; batch 2x1x14x14",
       [](const BuildOptions& o) {
         return buildLenet(
             "lenet_tiny",
             withOptions(LenetConfig{.batch = 2, .size = 14, .c1 = 2, .c2 = 4, .hidden = 8, .classes = 5}, o));
       }});
}

}  // namespace weft::models
