// The process's shared kernel compiler, behind a lock.
#include "backends/cpu/shared_compiler.h"

#include <filesystem>
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

MatmulChoices& sharedMatmulChoices() {
  static MatmulChoices choices = [] {
    const std::string& dir = sharedKernelCompiler()->cacheDir();
    return MatmulChoices(dir.empty() ? std::string() : (std::filesystem::path(dir) / "matmul-choices.txt").string());
  }();
  return choices;
}

}  // namespace weft::cpu
