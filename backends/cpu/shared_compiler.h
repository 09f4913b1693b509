#pragma once
/// The process's shared kernel compiler: identical kernels compile once per process.
#include <memory>
#include <vector>

#include "backends/cpu/codegen/kernel_compiler.h"

namespace weft::cpu {

/// The kernel compiler shared by every executable of the process without dump directories,
/// so identical kernels (same body text) compile once per process.
std::shared_ptr<KernelCompiler> sharedKernelCompiler();

/// sharedKernelCompiler()->compile(bodies), one caller at a time (the compiler is not thread-safe).
std::vector<const GeneratedKernel*> compileShared(const std::vector<const ir::Graph*>& bodies);

}  // namespace weft::cpu
