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

}  // namespace weft::cpu::codegen
