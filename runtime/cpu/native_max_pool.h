#pragma once
/// The native max pool: 1-D and 2-D max_pool of f32 data with the reference's rule.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// True when node `v` of `g` is a max_pool runMaxPool takes: f32 data with one or two
/// spatial dims (rank 3 or 4), in either channel order.
bool runsNativeMaxPool(const ir::Graph& g, ir::ValueId v);

/// max_pool(x) as the reference computes it: each window's first largest value, a NaN in
/// the window wins (PyTorch's max_pool2d propagates NaNs as well), the padding reads -inf and
/// an all -inf window gives -inf. oneDNN's pooling skips NaNs and starts its maximum from the
/// lowest finite float, which nothing at compile time can rule out. Channels-first data runs
/// per plane (sixteen output columns at a time on AVX-512), channels-last data per output row
/// (sixteen channels at a time), also stored channel-blocked (call.isBlocked).
void runMaxPool(const NativeCall& call);

}  // namespace weft::cpu
