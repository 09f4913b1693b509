// Packed calls of generated kernels, split across OpenMP threads.
#include "runtime/cpu/kernel_call.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "ir/error.h"

namespace weft::cpu {

namespace {

/// Throws weft::Error unless `kernel` can be called on `inputs` over [begin, end).
void checkCall(const KernelEntry& kernel, const std::vector<const void*>& inputs, int64_t begin, int64_t end) {
  if (static_cast<int>(inputs.size()) != kernel.numInputs)
    throw Error("kernel " + kernel.name + " takes " + std::to_string(kernel.numInputs) + " inputs, got " +
                std::to_string(inputs.size()));
  if (begin < 0 || begin > end || end > kernel.parallelExtent)
    throw Error("kernel " + kernel.name + ": range [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") is not within [0, " + std::to_string(kernel.parallelExtent) + ")");
  if (!kernel.packed) throw Error("kernel " + kernel.name + " has no entry point");
}

/// Calls the checked `kernel` through its packed entry point (never throws: it may run on
/// OpenMP workers).
void callPacked(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int64_t begin,
                int64_t end) noexcept {
  constexpr size_t kInline = 16;  // arguments of most kernels fit without allocating
  size_t count = inputs.size() + 3;
  void* pointerStorage[kInline];
  void* argStorage[kInline];
  std::vector<void*> pointerHeap, argHeap;
  void** pointers = pointerStorage;
  void** args = argStorage;
  if (count > kInline) {
    pointerHeap.resize(count);
    argHeap.resize(count);
    pointers = pointerHeap.data();
    args = argHeap.data();
  }
  pointers[0] = out;
  for (size_t i = 0; i < inputs.size(); ++i) pointers[i + 1] = const_cast<void*>(inputs[i]);
  for (size_t i = 0; i + 2 < count; ++i) args[i] = &pointers[i];
  args[count - 2] = &begin;
  args[count - 1] = &end;
  kernel.packed(args);
}

/// runKernel of a kernel whose calls write sums over their ranges, on `workers` threads: its
/// output (`outputSum` elements: a partialSums kernel; 0: calls write disjoint parts of it)
/// and its `sideSums`. Thread 0 writes them in place, thread t > 0 into its scratch rows (its
/// own output pointer and copy of the inputs point there); then the rows are added in thread
/// order, so that results depend on the thread count but not on timing.
void runSummingCalls(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int workers,
                     int64_t outputSum, const std::vector<SideSum>& sideSums) {
  const int64_t extent = kernel.parallelExtent;
  int64_t perThread = outputSum;
  for (const SideSum& s : sideSums) perThread += s.elements;
  thread_local std::vector<float> scratch;  // of the calling thread: one row per other worker
  scratch.resize(static_cast<size_t>((workers - 1) * perThread));
  // Thread t's output and inputs; its sums are the output (when summed) and the side sums.
  std::vector<void*> outOf(static_cast<size_t>(workers), out);
  std::vector<std::vector<const void*>> argsOf(static_cast<size_t>(workers), inputs);
  for (int t = 1; t < workers; ++t) {
    float* row = scratch.data() + (t - 1) * perThread;
    if (outputSum > 0) outOf[static_cast<size_t>(t)] = row;
    row += outputSum;
    for (const SideSum& s : sideSums) {
      argsOf[static_cast<size_t>(t)][s.input] = row;
      row += s.elements;
    }
  }
  int team = 1;  // the threads OpenMP gave (at most workers)
#pragma omp parallel num_threads(workers)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    if (t == 0) team = static_cast<int>(n);
    const int64_t begin = extent * t / n, end = extent * (t + 1) / n;
    const std::vector<const void*>& args = argsOf[static_cast<size_t>(t)];
    if (begin < end) {
      callPacked(kernel, outOf[static_cast<size_t>(t)], args, begin, end);
    } else {  // an empty range sums to 0
      std::fill_n(static_cast<float*>(outOf[static_cast<size_t>(t)]), outputSum, 0.0f);
      for (const SideSum& s : sideSums) std::fill_n(static_cast<float*>(const_cast<void*>(args[s.input])), s.elements, 0.0f);
    }
  }
  auto addRow = [](float* sum, const float* row, int64_t elements) {
    for (int64_t i = 0; i < elements; ++i) sum[i] += row[i];
  };
  for (int t = 1; t < team; ++t) {
    const float* row = scratch.data() + (t - 1) * perThread;
    addRow(static_cast<float*>(out), row, outputSum);
    row += outputSum;
    for (const SideSum& s : sideSums) {
      addRow(static_cast<float*>(const_cast<void*>(inputs[s.input])), row, s.elements);
      row += s.elements;
    }
  }
}

}  // namespace

void invoke(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int64_t begin,
            int64_t end) {
  checkCall(kernel, inputs, begin, end);
  callPacked(kernel, out, inputs, begin, end);
}

void runKernel(const KernelEntry& kernel, void* out, const std::vector<const void*>& inputs, int threads,
               int64_t resultElements, const std::vector<SideSum>& sideSums) {
  const int64_t extent = kernel.parallelExtent;
  checkCall(kernel, inputs, 0, extent);
  const int workers = static_cast<int>(std::min<int64_t>(threads, extent));
  if (workers <= 1 || kernel.work < kParallelElements) {
    callPacked(kernel, out, inputs, 0, extent);
    return;
  }
  if (kernel.partialSums || !sideSums.empty())
    return runSummingCalls(kernel, out, inputs, workers, kernel.partialSums ? resultElements : 0, sideSums);
#pragma omp parallel num_threads(workers)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t begin = extent * t / n, end = extent * (t + 1) / n;
    if (begin < end) callPacked(kernel, out, inputs, begin, end);
  }
}

}  // namespace weft::cpu
