// Whole-model checks: every registered model prints and parses back to the same text,
// and the tiny ones run on the reference interpreter.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/reference/interpreter.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "models/registry.h"
#include "tests/unit/common/model_feeds.h"

using namespace weft;

TEST(Models, EveryModelRoundTripsThroughText) {
  ASSERT_GE(models::allModels().size(), 8u);
  for (const auto& m : models::allModels()) {
    SCOPED_TRACE(m.name);
    ir::Graph g = m.build();
    ASSERT_TRUE(ir::verifyErrors(g).empty());
    ir::PrintOptions full;
    full.elideLargeConstants = false;
    std::string text = ir::printGraph(g, full);
    ir::Graph parsed = ir::parseGraph(text, m.name + ".weft");
    EXPECT_EQ(ir::printGraph(parsed, full), text);
    EXPECT_EQ(parsed.size(), g.size());
  }
}

TEST(Models, TinyModelsRunOnTheInterpreter) {
  for (const auto& m : models::allModels()) {
    if (m.name.find("_tiny") == std::string::npos) continue;
    SCOPED_TRACE(m.name);
    ir::Graph g = m.build();
    auto out = reference::run(g, weft::testing::modelFeeds(g));
    ASSERT_TRUE(out.count("loss"));
    double loss = out.at("loss").get(0);
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_GT(loss, 0.0);
  }
}
