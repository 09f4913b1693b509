// Walks the op table: no op may lack a type rule, a reference kernel, a decomposition (for
// composites) or a statement about differentiability.
#include <gtest/gtest.h>

#include "backends/reference/kernels.h"
#include "ir/ops.h"
#include "passes/decompositions.h"

using namespace weft;

TEST(OpTable, EveryOpIsComplete) {
  EXPECT_EQ(static_cast<int>(ir::allOps().size()), ir::kNumOps);
  for (const auto& info : ir::allOps()) {
    SCOPED_TRACE(std::string(info.name));
    EXPECT_TRUE(reference::hasKernel(info.kind)) << "no reference kernel";
    EXPECT_NE(info.has(ir::kDiff), info.has(ir::kNoGrad)) << "must be exactly one of kDiff and kNoGrad";
    if (info.has(ir::kComposite)) {
      EXPECT_NE(passes::findDecomposition(info.kind), nullptr) << "no decomposition";
    }
    if (info.has(ir::kSource)) {
      EXPECT_TRUE(info.operandNames.empty());
    }
  }
}
