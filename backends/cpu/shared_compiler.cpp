// The process's shared kernel compiler, behind a lock.
#include "backends/cpu/shared_compiler.h"

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

}  // namespace weft::cpu
