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
  int64_t work = 0;                  ///< elements evaluated by all calls together (decides the threading)
  /// False: calls on disjoint ranges write disjoint parts of the output. True: the kernel is
  /// an f32 sum whose parallel range is a reduced dimension: each call writes the whole
  /// output, summed over its range, and the sum of the calls' outputs is the result.
  bool partialSums = false;
};

/// Runs `kernel` over the parallel iterations [begin, end): reads `inputs` (dense row-major)
/// and writes its part of `out` (all of it, the sum over the range, for a partialSums
/// kernel); calls writing disjoint memory may run concurrently. Throws weft::Error on a
/// wrong input count or range.
void invoke(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int64_t begin, int64_t end);

/// Kernels with less work than this run on one thread (a parallel region costs a few
/// microseconds).
inline constexpr int64_t kParallelElements = 1 << 14;

/// A further output that each call of a kernel writes whole, as the f32 sum over the call's
/// range (a side sum, ir/side_sums.h): its position among the call's inputs and its size.
struct SideSum {
  size_t input = 0;
  int64_t elements = 0;
};

/// Runs `kernel` over its whole range, writing `out` (of `resultElements` elements). When its
/// work is at least `kParallelElements` and the extent allows it, the range is split evenly
/// over `threads` OpenMP threads; otherwise the calling thread runs it all. The threads of a
/// partialSums kernel but the first write into scratch of the calling thread, added into
/// `out` in thread order afterwards (so results depend on the thread count, not on timing);
/// so do they write the kernel's `sideSums`.
void runKernel(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int threads,
               int64_t resultElements, const std::vector<SideSum>& sideSums = {});

}  // namespace weft::cpu
