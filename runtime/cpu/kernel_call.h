#pragma once
/// Calling generated kernels: through their packed entry points, over a parallel range that
/// may be split across worker threads. The kernels come from weft's kernel compiler, either
/// JIT-compiled in this process or linked from an ahead-of-time bundle's object file.
#include <cstdint>
#include <string>
#include <vector>

namespace weft::cpu {

/// A generated kernel as the runtime calls it.
struct KernelEntry {
  std::string name;                  ///< for errors and profiles
  void (*packed)(void**) = nullptr;  ///< args[0] -> out, args[1..numInputs] -> inputs, then -> begin, -> end (int64)
  int numInputs = 0;                 ///< inputs read in order
  int64_t parallelExtent = 1;        ///< calls cover ranges within [0, parallelExtent)
};

/// Runs `kernel` over the parallel iterations [begin, end): reads `inputs` (dense row-major)
/// and writes its part of `out`; calls on disjoint ranges write disjoint parts of `out` and
/// may run concurrently. Throws weft::Error on a wrong input count or range.
void invoke(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int64_t begin, int64_t end);

/// Results smaller than this run on one thread (a parallel region costs a few microseconds).
inline constexpr int64_t kParallelElements = 1 << 14;

/// Runs `kernel` over its whole range. When the result has at least `kParallelElements`
/// elements and the extent allows it, the range is split evenly over `threads` OpenMP
/// threads; otherwise the calling thread runs it all.
void runKernel(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int threads,
               int64_t resultElements);

}  // namespace weft::cpu
