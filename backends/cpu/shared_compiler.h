#pragma once
/// The process's shared kernel compiler: identical kernels compile once per process.
#include <memory>
#include <vector>

#include "backends/cpu/codegen/kernel_compiler.h"
#include "runtime/cpu/matmul_tuning.h"

namespace weft::cpu {

/// The kernel compiler shared by every executable of the process without dump directories,
/// so identical kernels (same body text) compile once per process.
std::shared_ptr<KernelCompiler> sharedKernelCompiler();

/// sharedKernelCompiler()->compile(bodies), one caller at a time (the compiler is not thread-safe).
std::vector<const GeneratedKernel*> compileShared(const std::vector<const ir::Graph*>& bodies);

/// The matmul choices shared by every compile of the process (tuneMatmuls), kept in the
/// file matmul-choices.txt of the shared compiler's cache folder (in memory only when it has
/// none).
MatmulChoices& sharedMatmulChoices();

}  // namespace weft::cpu
