// Finite-difference checks of every differentiable op: walks the op table so that no kDiff op
// can lack a gradient rule (or decomposition) and a sample; checks first derivatives of every
// sample and second derivatives (the gradient of a gradient) of every sample too.
#include <gtest/gtest.h>

#include <set>

#include "gradcheck_harness.h"
#include "gradcheck_samples.h"
#include "passes/autodiff.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

std::vector<GradSample> allSamples() {
  std::vector<GradSample> all = primitiveGradSamples();
  for (auto& s : compositeGradSamples()) all.push_back(std::move(s));
  return all;
}

}  // namespace

TEST(GradCheck, EveryDifferentiableOpHasARuleAndASample) {
  std::set<OpKind> sampled;
  for (const auto& s : allSamples()) sampled.insert(s.op);
  for (const auto& info : allOps()) {
    if (info.has(kDiff)) {
      EXPECT_TRUE(isDifferentiable(info.kind)) << info.name << " is kDiff but has no gradient rule or decomposition";
      EXPECT_TRUE(sampled.count(info.kind)) << "no gradient-check sample for " << info.name;
      if (!info.has(kComposite)) {
        EXPECT_TRUE(hasGradRule(info.kind)) << "primitive " << info.name << " has no rule";
      }
    } else {
      EXPECT_FALSE(isDifferentiable(info.kind)) << info.name;
    }
    EXPECT_NE(info.has(kDiff), info.has(kNoGrad)) << info.name << " must be exactly one of kDiff and kNoGrad";
  }
}

TEST(GradCheck, FirstDerivativesOfEveryOpMatchFiniteDifferences) {
  for (const auto& s : allSamples()) {
    SCOPED_TRACE(s.label);
    std::vector<std::string> wrt = floatInputs(s.graph);
    for (uint64_t seed : {11u, 12u}) {
      GradCheckOptions opt;
      opt.seed = seed;
      try {
        expectGradientsMatch(s.graph, "result", wrt, sampleFeeds(s, seed * 977 + static_cast<uint64_t>(s.op)), opt);
      } catch (const std::exception& e) {
        ADD_FAILURE() << s.label << ": " << e.what();
      }
    }
  }
}

TEST(GradCheck, SecondDerivativesOfEveryOpMatchFiniteDifferences) {
  for (const auto& s : allSamples()) {
    SCOPED_TRACE(s.label);
    std::vector<std::string> wrt = floatInputs(s.graph);
    try {
      Graph h = withGradientDot(s.graph, "result", wrt, 5);
      GradCheckOptions opt;
      opt.seed = 6;
      expectGradientsMatch(h, "h", wrt, sampleFeeds(s, 4242 + static_cast<uint64_t>(s.op)), opt);
    } catch (const std::exception& e) {
      ADD_FAILURE() << s.label << ": " << e.what();
    }
  }
}
