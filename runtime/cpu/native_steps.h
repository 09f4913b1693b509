#pragma once
/// Steps the CPU runtime runs with small hand-written kernels over its buffers: what neither
/// oneDNN nor the generated kernels take (concat, gather, the random sources), and what runs
/// faster here than on oneDNN: 2-D max_pool_grad, convolutions to few channels and their
/// weight gradients.
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace weft::cpu {

/// One call of a native step: node `value` of `graph` from `operands` into `result`.
struct NativeCall {
  const ir::Graph& graph;
  ir::ValueId value;
  const std::vector<const void*>& operands;
  void* result;
  uint64_t step;  ///< keys random draws (with each random op's seed)
};

/// A hand-written step. Throws weft::Error naming the node for bad data (a gather index out of range).
using NativeStep = void (*)(const NativeCall& call);

/// The native step for node `v` of `g`, or null when there is none.
NativeStep nativeStepFor(const ir::Graph& g, ir::ValueId v);

}  // namespace weft::cpu
