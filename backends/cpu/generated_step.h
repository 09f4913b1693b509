#pragma once
/// Running MLIR-generated kernels from the executable, split across worker threads.
#include <memory>
#include <vector>

#include "backends/cpu/codegen/kernel_compiler.h"

namespace weft::cpu {

/// The kernel compiler shared by every executable of the process without dump directories,
/// so identical kernels (same body text) compile once per process.
std::shared_ptr<KernelCompiler> sharedKernelCompiler();

/// sharedKernelCompiler()->compile(bodies), one caller at a time (the compiler is not thread-safe).
std::vector<const GeneratedKernel*> compileShared(const std::vector<const ir::Graph*>& bodies);

/// Runs `kernel` on `inputs` into `out`. When the result has at least `kParallelElements`
/// elements and the kernel's parallel extent allows it, the extent is split evenly over
/// `threads` OpenMP threads; otherwise the calling thread runs it all.
void runGenerated(const GeneratedKernel& kernel, void* out, const std::vector<const void*>& inputs, int threads,
                  int64_t resultElements);

/// Results smaller than this run on one thread (a parallel region costs a few microseconds).
inline constexpr int64_t kParallelElements = 1 << 14;

}  // namespace weft::cpu
