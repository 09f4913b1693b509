#pragma once
/// The native transpose: a loop kernel that only moves f32 data, transposing it (reshapes
/// around one transpose), run as a batched 2-D transpose in 8 x 8 register blocks instead of
/// a generated kernel, whose loops LLVM vectorizes into gathers of one float per lane
/// (dcgan's [64, 128, 49] -> [64, 49, 128] flatten: 0.40 ms against 0.05 on the AMD EPYC of stop 41).
#include <optional>

#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// A transposition of `batch` row-major matrices of `rows` x `columns` floats each:
/// out[b][c][r] = in[b][r][c].
struct BatchedTranspose {
  int64_t batch = 1, rows = 0, columns = 0;
};

/// The batched 2-D transpose that fused node `node` computes when it is a loop kernel whose
/// body is one f32 transpose with reshapes before and after it, each reading the one before,
/// and whose permutation, once dims of size 1 are dropped and dims kept together merged, swaps
/// the last two of two or three dims (both 8 or more); else nullopt.
std::optional<BatchedTranspose> batchedTransposeOf(const ir::Node& node);

/// True when fused node `node` runs as the native transpose (batchedTransposeOf).
bool runsNativeTranspose(const ir::Node& node);

/// The native step of such a node.
void runTranspose(const NativeCall& call);

}  // namespace weft::cpu
