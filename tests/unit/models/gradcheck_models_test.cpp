// Whole-model gradient checks: the tiny models built in f64, their loss differentiated w.r.t.
// every parameter (and the input, for saliency), compared with central differences on a few
// random coordinates of each. The VAE's random_normal draw is fixed by the run's step.
#include <gtest/gtest.h>

#include <random>

#include "models/families.h"
#include "tests/unit/passes/gradcheck_harness.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes::testing;

namespace {

/// Random feeds for every input of `g`: floats from U[lo, hi], integer labels in [0, classes).
reference::TensorMap modelFeeds(const Graph& g, int64_t classes, double lo, double hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  reference::TensorMap feeds;
  for (ValueId v : g.inputs()) {
    const Node& n = g.node(v);
    bool labels = isInteger(n.type.dtype);
    feeds.emplace(n.name, randomTensor(n.type, rng, labels ? 0 : lo, labels ? double(classes - 1) : hi));
  }
  return feeds;
}

/// Every parameter's name, plus `extra`.
std::vector<std::string> paramNames(const Graph& g, std::vector<std::string> extra = {}) {
  for (ValueId p : g.params()) extra.push_back(g.node(p).name);
  return extra;
}

GradCheckOptions fewCoordinates() {
  GradCheckOptions opt;
  opt.coordinates = 3;
  opt.run.step = 5;
  return opt;
}

}  // namespace

TEST(ModelGradCheck, MlpTiny) {
  Graph g = models::buildMlp("mlp_tiny", {.batch = 4, .in = 16, .hidden = {12, 8}, .classes = 5, .dtype = DType::f64});
  expectGradientsMatch(g, "loss", paramNames(g, {"x"}), modelFeeds(g, 5, -1, 1, 1), fewCoordinates());
}

TEST(ModelGradCheck, LenetTiny) {
  Graph g = models::buildLenet(
      "lenet_tiny", {.batch = 2, .size = 14, .c1 = 2, .c2 = 4, .hidden = 8, .classes = 5, .dtype = DType::f64});
  expectGradientsMatch(g, "loss", paramNames(g, {"x"}), modelFeeds(g, 5, -1, 1, 2), fewCoordinates());
}

TEST(ModelGradCheck, VaeTiny) {
  Graph g = models::buildVae("vae_tiny", {.batch = 3, .in = 12, .hidden = 8, .latent = 2, .dtype = DType::f64});
  expectGradientsMatch(g, "loss", paramNames(g), modelFeeds(g, 1, 0, 1, 3), fewCoordinates());
}

TEST(ModelGradCheck, GptTiny) {
  Graph g = models::buildGpt("gpt_tiny",
                             {.batch = 2, .seq = 4, .dim = 8, .heads = 2, .ff = 16, .dtype = DType::f64});
  expectGradientsMatch(g, "loss", paramNames(g, {"x"}), modelFeeds(g, 1, -1, 1, 4), fewCoordinates());
}
