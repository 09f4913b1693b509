#pragma once
/// Internal to weft_codegen: emits the MLIR function of one kernel. Implemented in
/// mlir_emitter.cpp, one of the two translation units that include MLIR headers.
#include <string>

#include "backends/cpu/codegen/kernel_plan.h"

namespace mlir {
class ModuleOp;
}  // namespace mlir

namespace weft::cpu::codegen {

/// Appends `func.func @name(%out, %in0, ..., %begin: index, %end: index)` computing `body`
/// as `plan` says to `module`, with the memref.global of each dense constant it reads.
/// Buffers are static-shaped memrefs (bool as i8); [begin, end) bounds the parallel loop.
void emitKernel(mlir::ModuleOp module, const ir::Graph& body, const KernelPlan& plan, const std::string& name);

/// The LLVM function attribute of kernels whose loops the loop vectorizer must leave alone
/// (their bodies are already unrolled for the SLP vectorizer); see optimize in mlir_jit.cpp.
inline constexpr const char* kNoLoopVectorizeAttribute = "weft-no-loop-vectorize";
/// Function attribute: the loops of the function are vectorized without interleaving (one
/// vector per iteration), so that a loop whose trip count is a multiple of the vector width
/// leaves no scalar remainder (a rows kernel stopping at the diagonal: KernelPlan::diagonal).
inline constexpr const char* kNoInterleaveAttribute = "weft-no-interleave";

}  // namespace weft::cpu::codegen
