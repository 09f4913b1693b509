// The ResNet of BENCH.md (torch_models.py's resnet): stem conv3x3 3->32 (no bias) + BN + ReLU,
// BasicBlocks 32, 64 (stride 2), 64, 128 (stride 2), global average pool, fc 10, cross-entropy;
// batch 32 of 3x32x32. A BasicBlock is relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
// the shortcut a 1x1 conv + BN where the stride or the width changes, else the identity.
// Parameter names: stem, stem_bn, blocks.i.{c1,b1,c2,b2,sc,sc_bn}, fc.
#include "frontend/weft.h"
#include "ir/error.h"
#include "models/families.h"

namespace weft::models {
namespace {

/// One BasicBlock (torch_models.py's Block).
struct BasicBlock {
  nn::Conv2d c1;
  nn::BatchNorm2d b1;
  nn::Conv2d c2;
  nn::BatchNorm2d b2;
  nn::Conv2d sc;        ///< the projection shortcut (unbuilt for the identity)
  nn::BatchNorm2d scBn;
  bool projection;

  BasicBlock(int64_t in, int64_t out, int64_t stride)
      : c1("c1", in, out, 3, {.stride = stride, .padding = 1}, /*withBias=*/false),
        b1("b1", out),
        c2("c2", out, out, 3, {.padding = 1}, /*withBias=*/false),
        b2("b2", out),
        projection(stride != 1 || in != out) {
    if (projection) {
      sc = nn::Conv2d("sc", in, out, 1, {.stride = stride}, /*withBias=*/false);
      scBn = nn::BatchNorm2d("sc_bn", out);
    }
  }

  Tensor operator()(const Tensor& x) const {
    Tensor h = relu(b1(c1(x)));
    h = b2(c2(h));
    return relu(h + (projection ? scBn(sc(x)) : x));
  }
};

}  // namespace

ir::Graph buildResnet(const std::string& name, const ResnetConfig& c) {
  GraphBuilder builder(name, c.seed, c.dtype);
  builder.setTraining(c.training);
  BuildScope scope(builder);
  if (c.blocks.empty()) throw Error("resnet: needs at least one block");
  nn::Conv2d stem("stem", c.channels, c.stem, 3, {.padding = 1}, /*withBias=*/false);
  nn::BatchNorm2d stemBn("stem_bn", c.stem);
  std::vector<BasicBlock> blocks;
  int64_t width = c.stem;
  for (size_t i = 0; i < c.blocks.size(); ++i) {
    NameScope blockScope("blocks." + std::to_string(i));
    blocks.push_back(BasicBlock(width, c.blocks[i].channels, c.blocks[i].stride));
    width = c.blocks[i].channels;
  }
  nn::Linear fc("fc", width, c.classes);

  Tensor x = input("x", {c.batch, c.channels, c.size, c.size});
  Tensor y = input("y", {c.batch}, DType::i32);
  Tensor h = relu(stemBn(stem(x)));
  for (const BasicBlock& block : blocks) h = block(h);
  Tensor logits = fc(mean(h, {2, 3}));  // global average pool, then fc
  output("logits", logits);
  output("loss", cross_entropy(logits, y));
  return builder.finish();
}

void registerResnetModels(std::vector<ModelInfo>& out) {
  const ResnetConfig full{};
  const ResnetConfig tiny{.batch = 2, .size = 8, .stem = 4, .blocks = {{4, 1}, {8, 2}, {8, 1}, {8, 2}}, .classes = 5};
  out.push_back({"resnet", "ResNet stem 32, BasicBlocks 32, 64/2, 64, 128/2, avg pool, fc 10, BN; batch 32x3x32x32",
                 [=](const BuildOptions& o) { return buildResnet("resnet", withOptions(full, o)); }});
  out.push_back({"resnet_tiny", "ResNet stem 4, BasicBlocks 4, 8/2, 8, 8/2, avg pool, fc 5, BN; batch 2x3x8x8",
                 [=](const BuildOptions& o) { return buildResnet("resnet_tiny", withOptions(tiny, o)); }});
}

}  // namespace weft::models
