// The benchmark models of BENCH.md: each builds, verifies, round-trips through the text form,
// runs at its tiny size on the interpreter, and has torch_models.py's parameter count at full
// size. Gradient checks of the new families at tiny size in f64, and the DCGAN's split of
// its two losses between D and G.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/reference/interpreter.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "models/families.h"
#include "passes/train_step.h"
#include "tests/unit/passes/gradcheck_harness.h"

using namespace weft;
using namespace weft::passes::testing;

namespace {

/// Elements of every trainable parameter (torch's sum(p.numel() for p in net.parameters());
/// buffers such as BatchNorm's running statistics are not counted).
int64_t trainableCount(const ir::Graph& g) {
  int64_t n = 0;
  for (ir::ValueId p : passes::trainableParams(g)) n += g.type(p).numel();
  return n;
}

/// Feeds for every input: floats from U[lo, hi], integer labels in [0, classes).
reference::TensorMap randomFeeds(const ir::Graph& g, int64_t classes, double lo, double hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  reference::TensorMap feeds;
  for (ir::ValueId v : g.inputs()) {
    const ir::Node& n = g.node(v);
    bool labels = ir::isInteger(n.type.dtype);
    feeds.emplace(n.name, randomTensor(n.type, rng, labels ? 0 : lo, labels ? double(classes - 1) : hi));
  }
  return feeds;
}

/// The names of the trainable parameters starting with `prefix`.
std::vector<std::string> paramsStartingWith(const ir::Graph& g, const std::string& prefix) {
  std::vector<std::string> names;
  for (ir::ValueId p : passes::trainableParams(g))
    if (g.node(p).name.rfind(prefix, 0) == 0) names.push_back(g.node(p).name);
  return names;
}

GradCheckOptions fewCoordinates() {
  GradCheckOptions opt;
  opt.coordinates = 3;
  opt.run.step = 5;
  return opt;
}

/// The Adam training step of registered model `name` with its inputs (random feeds, lr).
std::pair<ir::Graph, reference::TensorMap> adamStep(const std::string& name, double lr) {
  passes::TrainConfig cfg;
  cfg.optimizer.kind = passes::OptimizerKind::adam;
  ir::Graph forward = models::buildModel(name);
  reference::TensorMap inputs = randomFeeds(forward, 5, 0, 1, 3);
  ir::TensorData rate(ir::TensorType{ir::DType::f32, {}});
  rate.set(0, lr);
  inputs["lr"] = rate;
  return {passes::buildTrainStep(forward, cfg), inputs};
}

/// The build options of the evaluation form.
models::BuildOptions evalForm() {
  models::BuildOptions o;
  o.training = false;
  return o;
}

}  // namespace

// torch_models.py's parameter counts, by hand from its definitions (weight + bias per layer):
//  mlp     784*512+512 + 512*256+256 + 256*10+10                                     = 535818
//  lenet   (32*9+32) + (64*32*9+64) + (1600*128+128) + (128*10+10)                     = 225034
//  resnet  stem 32*3*9 + bn 64; Block(32,32) 2*32*32*9 + 2*64;
//          Block(32,64,2) 64*32*9 + 64*64*9 + sc 64*32 + 3*128;  Block(64,64) 2*64*64*9 + 2*128;
//          Block(64,128,2) 128*64*9 + 128*128*9 + sc 128*64 + 3*256;  fc 128*10+10
//          = 928 + 18560 + 57728 + 73984 + 230144 + 1290                               = 382634
//  vae     (784*400+400) + 2*(400*20+20) + (20*400+400) + (400*784+784)                = 652824
//  gpt     2 blocks of: ln 2*256, qkv 256*768+768, proj 256*256+256, ln 2*256,
//          fc1 256*1024+1024, fc2 1024*256+256 = 789760                                = 1579520
//  dcgan   G: fc 64*6272+6272, convT 128*64*16+64, bn 2*64, convT 64*1*16+1 = 539969;
//          D: conv 1*64*16+64, conv 64*128*16+128, fc 6272+1 = 138561                  = 678530
//  ddpm    t1, t2 2*(128*128+128) = 33024; inp 1*32*9+32 = 320; down 32*32*9+32 = 9248;
//          up 64*64*16+64 = 65600; out 32*9+1 = 289; blk(ci,co) = co*ci*9+co + 2co +
//          co*co*9+co + 2co + 128*co+co + co*ci+co: d1(32,32) 23808, d2(32,64) 66048,
//          mid(64,64) 86528, u1(96,32) 44288                                           = 329153
//  realnvp 4 couplings of 2 MLPs (784*512+512 + 512*784+784) = 4*2*804112              = 6432896
TEST(BenchModels, ParameterCountsMatchTorch) {
  const std::pair<const char*, int64_t> expected[] = {
      {"mlp", 535818},   {"lenet", 225034}, {"resnet", 382634}, {"vae", 652824},
      {"gpt", 1579520},  {"dcgan", 678530}, {"ddpm", 329153},   {"realnvp", 6432896},
  };
  for (const auto& [name, count] : expected) {
    SCOPED_TRACE(name);
    EXPECT_EQ(trainableCount(models::buildModel(name)), count);
  }
}

TEST(BenchModels, DcganGeneratorAndDiscriminatorCounts) {
  ir::Graph g = models::buildModel("dcgan");
  int64_t gen = 0, disc = 0;
  for (ir::ValueId p : passes::trainableParams(g)) (g.node(p).name.rfind("G.", 0) == 0 ? gen : disc) += g.type(p).numel();
  EXPECT_EQ(gen, 539969);
  EXPECT_EQ(disc, 138561);
  // The generator graph has G's parameters under the same names.
  ir::Graph generator = models::findModel("dcgan")->decoder(evalForm());
  EXPECT_EQ(trainableCount(generator), 539969);
  EXPECT_EQ(generator.type(*generator.findOutput("images")).shape, (ir::Shape{64, 784}));
}

TEST(BenchModels, BuildVerifyRoundTripAndRunTiny) {
  for (const char* family : {"resnet", "dcgan", "ddpm", "realnvp"}) {
    for (bool training : {true, false}) {
      SCOPED_TRACE(std::string(family) + (training ? " training" : " eval"));
      models::BuildOptions options;
      options.training = training;
      ir::Graph full = models::buildModel(family, options);
      EXPECT_TRUE(ir::verifyErrors(full).empty());
      ir::PrintOptions all;
      all.elideLargeConstants = false;
      std::string text = ir::printGraph(full, all);
      EXPECT_EQ(ir::printGraph(ir::parseGraph(text, "full.weft"), all), text);

      ir::Graph tiny = models::buildModel(std::string(family) + "_tiny", options);
      EXPECT_TRUE(ir::verifyErrors(tiny).empty());
      reference::TensorMap out = reference::run(tiny, randomFeeds(tiny, 5, -1, 1, 7));
      ASSERT_TRUE(out.count("loss"));
      EXPECT_TRUE(std::isfinite(out.at("loss").get(0)));
    }
  }
}

TEST(BenchModels, TinyTrainingStepsLowerTheLossOnAFixedBatch) {
  for (const char* name : {"resnet_tiny", "ddpm_tiny", "realnvp_tiny"}) {
    SCOPED_TRACE(name);
    auto [step, inputs] = adamStep(name, 1e-2);
    reference::TensorMap state;
    std::vector<double> losses;
    // The same random draws every step (RunOptions::step fixed), so the loss is a function
    // of the parameters alone.
    for (int i = 0; i < 6; ++i) losses.push_back(reference::runStep(step, inputs, state, {.step = 1}).at("loss").get(0));
    for (double l : losses) ASSERT_TRUE(std::isfinite(l));
    EXPECT_LT(losses.back(), losses.front());
  }
}

TEST(BenchModels, DcganTinyStepUpdatesBothNetworks) {
  auto [step, inputs] = adamStep("dcgan_tiny", 1e-2);
  reference::TensorMap state = reference::initialState(step);
  const reference::TensorMap before = state;
  reference::TensorMap out = reference::runStep(step, inputs, state);
  EXPECT_TRUE(std::isfinite(out.at("d_loss").get(0)));
  EXPECT_TRUE(std::isfinite(out.at("g_loss").get(0)));
  for (const char* p : {"G.fc.weight", "G.up2.bias", "D.conv1.weight", "D.fc.bias"}) {
    SCOPED_TRACE(p);
    const ir::TensorData &a = before.at(p), &b = state.at(p);
    bool changed = false;
    for (int64_t i = 0; i < a.numel(); ++i) changed = changed || a.get(i) != b.get(i);
    EXPECT_TRUE(changed);
  }
}

TEST(BenchModelsGradCheck, ResnetTiny) {
  ir::Graph g = models::buildResnet("resnet_tiny", {.batch = 2, .size = 8, .stem = 3, .blocks = {{3, 1}, {4, 2}},
                                                    .classes = 3, .dtype = ir::DType::f64});
  std::vector<std::string> wrt = paramsStartingWith(g, "");
  wrt.push_back("x");
  expectGradientsMatch(g, "loss", wrt, randomFeeds(g, 3, -1, 1, 11), fewCoordinates());
}

TEST(BenchModelsGradCheck, DdpmTiny) {
  ir::Graph g = models::buildDdpm(
      "ddpm_tiny", {.batch = 2, .size = 4, .c1 = 2, .c2 = 4, .temb = 4, .groups = 2, .steps = 20, .dtype = ir::DType::f64});
  std::vector<std::string> wrt = paramsStartingWith(g, "");
  wrt.push_back("x");
  expectGradientsMatch(g, "loss", wrt, randomFeeds(g, 1, -1, 1, 12), fewCoordinates());
}

TEST(BenchModelsGradCheck, RealnvpTiny) {
  ir::Graph g = models::buildRealnvp("realnvp_tiny", {.batch = 3, .dim = 6, .hidden = 5, .dtype = ir::DType::f64});
  std::vector<std::string> wrt = paramsStartingWith(g, "");
  wrt.push_back("x");
  expectGradientsMatch(g, "loss", wrt, randomFeeds(g, 1, 0, 1, 13), fewCoordinates());
}

// D's gradient is that of d_loss (varying D moves d_loss through real and detached fake
// images alike) and G's that of g_loss with D held fixed: both are plain derivatives, so
// central differences check them. Together with the split test below this is torch's pair
// of steps' gradients.
TEST(BenchModelsGradCheck, DcganTinyLossesPerNetwork) {
  ir::Graph g = models::buildDcgan("dcgan_tiny", {.batch = 2, .latent = 3, .base = 2, .g1 = 3, .g2 = 2, .d1 = 2,
                                                  .d2 = 3, .dtype = ir::DType::f64});
  reference::TensorMap feeds = randomFeeds(g, 1, -1, 1, 14);
  expectGradientsMatch(g, "d_loss", paramsStartingWith(g, "D."), feeds, fewCoordinates());
  expectGradientsMatch(g, "g_loss", paramsStartingWith(g, "G."), feeds, fewCoordinates());
}

TEST(BenchModels, DcganLossGradientSplitsBetweenTheNetworks) {
  ir::Graph g = models::buildDcgan("dcgan_tiny", {.batch = 2, .latent = 3, .base = 2, .g1 = 3, .g2 = 2, .d1 = 2,
                                                  .d2 = 3, .dtype = ir::DType::f64});
  std::vector<std::string> gen = paramsStartingWith(g, "G."), disc = paramsStartingWith(g, "D.");
  ASSERT_EQ(gen.size(), 8u);  // fc, up1, bn, up2: weight and bias each
  ASSERT_EQ(disc.size(), 6u);
  std::vector<std::string> all = gen;
  all.insert(all.end(), disc.begin(), disc.end());
  reference::TensorMap feeds = withParams(g, randomFeeds(g, 1, -1, 1, 15));
  auto gradients = [&](const std::string& output) {
    return reference::run(withGradients(g, output, all, 1).first, feeds, {.step = 2});
  };
  reference::TensorMap ofLoss = gradients("loss"), ofD = gradients("d_loss"), ofG = gradients("g_loss");
  auto expectSame = [](const ir::TensorData& a, const ir::TensorData& b, const std::string& what) {
    ASSERT_EQ(a.numel(), b.numel()) << what;
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.get(i), b.get(i), 1e-12) << what << "[" << i << "]";
  };
  auto expectZero = [](const ir::TensorData& a, const std::string& what) {
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.get(i), 0.0) << what << "[" << i << "]";
  };
  for (const auto& p : disc) {
    expectSame(ofLoss.at("__grad." + p), ofD.at("__grad." + p), "dloss/d" + p);
    expectZero(ofG.at("__grad." + p), "dg_loss/d" + p);
  }
  for (const auto& p : gen) {
    expectSame(ofLoss.at("__grad." + p), ofG.at("__grad." + p), "dloss/d" + p);
    expectZero(ofD.at("__grad." + p), "dd_loss/d" + p);
  }
}
