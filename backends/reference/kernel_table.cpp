// The dispatch table of the reference backend: one kernel per op of ir/ops.def.
#include "backends/reference/kernels.h"
#include "ir/error.h"
#include "ir/verifier.h"

namespace weft::reference {
namespace {

// Every op of ir/ops.def names its kernel here; a missing kernel function fails to link.
constexpr Kernel kKernels[] = {
#define WEFT_OP(Id, name, operands, attrs, rule, flags) &kernel##Id,
#include "ir/ops.def"
#undef WEFT_OP
};
static_assert(sizeof(kKernels) / sizeof(kKernels[0]) == ir::kNumOps, "every op needs a reference kernel");

}  // namespace

std::string KernelContext::where() const {
  std::string w = std::string(ir::opName(node().op)) + " " + ir::valueRef(graph, value);
  if (!node().loc.empty()) w += " at " + node().loc;
  return w;
}

void KernelContext::fail(const std::string& why) const { throw Error(where() + ": " + why); }

bool hasKernel(ir::OpKind op) {
  auto i = static_cast<size_t>(op);
  return i < sizeof(kKernels) / sizeof(kKernels[0]) && kKernels[i] != nullptr;
}

Kernel kernelFor(ir::OpKind op) {
  if (!hasKernel(op))
    throw Error("the reference backend has no kernel for op #" + std::to_string(static_cast<int>(op)));
  return kKernels[static_cast<size_t>(op)];
}

}  // namespace weft::reference
