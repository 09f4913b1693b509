// Runs generated kernels over [0, parallelExtent), split across OpenMP threads.
#include "backends/cpu/generated_step.h"

#include <omp.h>

#include <algorithm>
#include <mutex>

namespace weft::cpu {

std::shared_ptr<KernelCompiler> sharedKernelCompiler() {
  static std::shared_ptr<KernelCompiler> compiler = std::make_shared<KernelCompiler>();
  return compiler;
}

std::vector<const GeneratedKernel*> compileShared(const std::vector<const ir::Graph*>& bodies) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  return sharedKernelCompiler()->compile(bodies);
}

void runGenerated(const GeneratedKernel& kernel, void* out, const std::vector<const void*>& inputs, int threads,
                  int64_t resultElements) {
  const int64_t extent = kernel.parallelExtent;
  const int workers = static_cast<int>(std::min<int64_t>(threads, extent));
  if (workers <= 1 || resultElements < kParallelElements) {
    invoke(kernel, out, inputs, 0, extent);
    return;
  }
#pragma omp parallel num_threads(workers)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t begin = extent * t / n, end = extent * (t + 1) / n;
    if (begin < end) invoke(kernel, out, inputs, begin, end);
  }
}

}  // namespace weft::cpu
