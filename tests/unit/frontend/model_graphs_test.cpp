// The registered reference models build, verify, match PyTorch's parameter counts and are
// deterministic.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "ir/error.h"
#include "ir/verifier.h"
#include "models/registry.h"

using namespace weft;
using ir::OpKind;

namespace {

int64_t paramCount(const ir::Graph& g) {
  int64_t n = 0;
  for (ir::ValueId v : g.params()) n += g.type(v).numel();
  return n;
}

std::vector<std::string> outputNames(const ir::Graph& g) {
  std::vector<std::string> names;
  for (const auto& o : g.outputs()) names.push_back(o.name);
  return names;
}

int countOps(const ir::Graph& g, OpKind k) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node.op == k;
  return n;
}

bool sameAttr(const ir::AttrValue& a, const ir::AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (auto* p = std::get_if<ir::TensorDataPtr>(&a)) return **p == *std::get<ir::TensorDataPtr>(b);
  return a == b;
}

void expectSameGraph(const ir::Graph& a, const ir::Graph& b) {
  ASSERT_EQ(a.size(), b.size());
  for (ir::ValueId v = 0; v < a.size(); ++v) {
    const ir::Node &x = a.node(v), &y = b.node(v);
    EXPECT_EQ(x.op, y.op) << v;
    EXPECT_EQ(x.operands, y.operands) << v;
    EXPECT_EQ(x.type, y.type) << v;
    EXPECT_EQ(x.name, y.name) << v;
    EXPECT_EQ(x.loc, y.loc) << v;
    ASSERT_EQ(x.attrs.size(), y.attrs.size()) << v;
    for (const auto& [k, val] : x.attrs) EXPECT_TRUE(y.attrs.count(k) && sameAttr(val, y.attrs.at(k))) << v << " " << k;
  }
  ASSERT_EQ(a.outputs().size(), b.outputs().size());
  for (size_t i = 0; i < a.outputs().size(); ++i) {
    EXPECT_EQ(a.outputs()[i].name, b.outputs()[i].name);
    EXPECT_EQ(a.outputs()[i].value, b.outputs()[i].value);
  }
}

struct Expected {
  std::vector<std::string> outputs;
  int64_t params;
  std::string firstOutputType;
};

// Parameter counts of torch_models.py (sum of p.numel() over net.parameters()):
//   mlp   784*512+512 + 512*256+256 + 256*10+10                              = 535818
//   lenet (1*32*9+32) + (32*64*9+64) + (1600*128+128) + (128*10+10)          = 225034
//   vae   (784*400+400) + 2*(400*20+20) + (20*400+400) + (400*784+784)      = 652824
//   gpt   2 * [2*(2*256) + (256*768+768) + (256*256+256) + (256*1024+1024) + (1024*256+256)] = 1579520
// and of the tiny variants with the same structure:
//   mlp_tiny 16-12-8-5: 204 + 104 + 45 = 353;  lenet_tiny: 20 + 76 + 136 + 45 = 277
//   vae_tiny 12-8-(2,2)-8-12: 104 + 18 + 18 + 24 + 108 = 272
//   gpt_tiny d 8, ff 16: 2 * (16 + 16 + 216 + 72 + 144 + 136) = 1200
const std::map<std::string, Expected> kExpected = {
    {"mlp", {{"logits", "loss"}, 535818, "f32[128,10]"}},
    {"mlp_tiny", {{"logits", "loss"}, 353, "f32[4,5]"}},
    {"lenet", {{"logits", "loss"}, 225034, "f32[64,10]"}},
    {"lenet_tiny", {{"logits", "loss"}, 277, "f32[2,5]"}},
    {"vae", {{"logits", "loss"}, 652824, "f32[128,784]"}},
    {"vae_tiny", {{"logits", "loss"}, 272, "f32[3,12]"}},
    {"gpt", {{"out", "loss"}, 1579520, "f32[8,128,256]"}},
    {"gpt_tiny", {{"out", "loss"}, 1200, "f32[2,4,8]"}},
};

}  // namespace

TEST(Models, EveryRegisteredModelBuildsAndVerifies) {
  std::set<std::string> names;
  for (const auto& m : models::allModels()) {
    SCOPED_TRACE(m.name);
    EXPECT_TRUE(names.insert(m.name).second) << "registered twice";
    EXPECT_FALSE(m.description.empty());
    ir::Graph g = m.build();
    EXPECT_EQ(g.name(), m.name);
    EXPECT_EQ(ir::verifyErrors(g), std::vector<std::string>{});
    ASSERT_FALSE(g.outputs().empty());
    EXPECT_EQ(g.outputs().back().name, "loss");
    EXPECT_EQ(g.type(g.outputs().back().value).str(), "f32[]");
    for (const auto& node : g.nodes())
      if (node.op != OpKind::Constant) {
        EXPECT_FALSE(node.loc.empty()) << ir::opName(node.op);
      }
  }
  for (const auto& [name, want] : kExpected) EXPECT_TRUE(names.count(name)) << name << " is not registered";
}

TEST(Models, OutputsAndParameterCountsMatchPyTorch) {
  for (const auto& [name, want] : kExpected) {
    SCOPED_TRACE(name);
    ir::Graph g = models::buildModel(name);
    EXPECT_EQ(outputNames(g), want.outputs);
    EXPECT_EQ(paramCount(g), want.params);
    EXPECT_EQ(g.type(g.outputs()[0].value).str(), want.firstOutputType);
  }
}

TEST(Models, ClassifiersTakeFloatImagesAndIntLabels) {
  ir::Graph g = models::buildModel("lenet");
  EXPECT_EQ(g.type(*g.find("x")).str(), "f32[64,1,28,28]");
  EXPECT_EQ(g.type(*g.find("y")).str(), "i32[64]");
  EXPECT_EQ(g.type(*g.find("fc1.weight")).str(), "f32[1600,128]");
  EXPECT_EQ(g.type(*g.find("conv2.weight")).str(), "f32[64,32,3,3]");
  EXPECT_EQ(countOps(g, OpKind::MaxPool), 2);
  EXPECT_EQ(countOps(g, OpKind::CrossEntropy), 1);
  ir::Graph m = models::buildModel("mlp");
  EXPECT_EQ(m.type(*m.find("fc3.weight")).str(), "f32[256,10]");
  EXPECT_EQ(countOps(m, OpKind::Relu), 2);
}

TEST(Models, GptMatchesTheTorchBlock) {
  ir::Graph g = models::buildModel("gpt");
  EXPECT_EQ(g.type(*g.find("target")).str(), "f32[8,128,256]");
  EXPECT_EQ(g.type(*g.find("blocks.1.qkv.weight")).str(), "f32[256,768]");
  EXPECT_EQ(g.type(*g.find("blocks.0.ln2.bias")).str(), "f32[256]");
  EXPECT_EQ(countOps(g, OpKind::Attention), 2);
  EXPECT_EQ(countOps(g, OpKind::LayerNorm), 4);  // ln1, ln2 per block, no final norm
  EXPECT_EQ(countOps(g, OpKind::MseLoss), 1);
  for (const auto& node : g.nodes()) {
    if (node.op == OpKind::Attention) {
      EXPECT_EQ(std::get<int64_t>(node.attrs.at("causal")), 1);
      EXPECT_DOUBLE_EQ(std::get<double>(node.attrs.at("scale")), 1.0 / 8.0);  // head dim 64
      EXPECT_EQ(g.type(node.operands[0]).str(), "f32[8,4,128,64]");
    }
    if (node.op == OpKind::Gelu) {
      EXPECT_EQ(std::get<int64_t>(node.attrs.at("approximate")), 0);
    }
    if (node.op == OpKind::LayerNorm) {
      EXPECT_DOUBLE_EQ(std::get<double>(node.attrs.at("eps")), 1e-5);
    }
  }
}

TEST(Models, VaeDrawsItsNoiseOnce) {
  ir::Graph g = models::buildModel("vae");
  EXPECT_EQ(countOps(g, OpKind::RandomNormal), 1);
  EXPECT_EQ(countOps(g, OpKind::BceWithLogits), 1);
  EXPECT_EQ(g.inputs().size(), 1u);
  for (const auto& node : g.nodes())
    if (node.op == OpKind::RandomNormal) {
      EXPECT_EQ(node.type.str(), "f32[128,20]");
    }
}

TEST(Models, BuildingTwiceGivesIdenticalGraphs) {
  for (const auto& m : models::allModels()) {
    SCOPED_TRACE(m.name);
    expectSameGraph(m.build(), m.build());
  }
}

TEST(Models, UnknownModelListsTheKnownOnes) {
  EXPECT_EQ(models::findModel("nope"), nullptr);
  try {
    models::buildModel("nope");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("unknown model 'nope'"), std::string::npos);
    EXPECT_NE(msg.find("mlp_tiny"), std::string::npos);
  }
}
