#pragma once
/// Memory planning: where every value of a compiled graph lives during a run.
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace weft::cpu {

/// A buffer that must exist from the start of step `first` to the end of step `last`.
struct BufferLifetime {
  int64_t bytes = 0;
  int32_t first = 0;
  int32_t last = 0;
};

/// Byte alignment of every arena offset (a cache line; AVX-512 loads).
inline constexpr int64_t kArenaAlignment = 64;

/// Assigns each buffer an offset so that buffers whose lifetimes overlap never overlap in
/// memory: greedy placement (each buffer in turn at the lowest offset, or in the smallest
/// gap, that fits between the buffers already placed that are live at the same time) in
/// several orders (largest first, longest-lived first, earliest first, most byte-steps
/// first), keeping the smallest arena, then a bounded local search over the best order
/// (deterministic: a fixed seed). Returns the offsets, aligned to kArenaAlignment;
/// `arenaBytes` receives the arena size needed.
std::vector<int64_t> assignOffsets(const std::vector<BufferLifetime>& buffers, int64_t& arenaBytes);

/// Where a value lives.
enum class Storage : uint8_t {
  None,        ///< never materialized (unused)
  Arena,       ///< an activation in the arena, at `offset`
  Persistent,  ///< a parameter's buffer in the executable's state, at `offset` of the state block
  Constant,    ///< the constant node's own data
  Input,       ///< the caller's feed, bound at run time
  View,        ///< the same bytes as value `viewOf` (a reshape)
};

/// The placement of one value.
struct Placement {
  Storage storage = Storage::None;
  int64_t offset = 0;         ///< for Arena and Persistent
  ir::ValueId viewOf = -1;    ///< for View: the value whose bytes it shares (never itself a view)
  /// For Persistent: the value whose slot this one trades places with after each step (a
  /// parameter and the update value computed for it), or -1.
  ir::ValueId twin = -1;
  /// For an update value computed in its parameter's own slot (Persistent, at the
  /// parameter's offset): that parameter; -1 otherwise.
  ir::ValueId inPlaceOf = -1;
  /// For a convolution-family or matmul node: an arena region of `scratchBytes` at
  /// `scratchOffset` reserved for its step's copies while it runs (see conversionBound).
  int64_t scratchOffset = -1;
  int64_t scratchBytes = 0;
};

/// The bytes a convolution-family node (conv, conv_transpose, conv_weight_grad, a fused
/// "conv") may need for copies of its operands and result in blocked layouts: each
/// activation with its channels padded to 16 (but a convolution's one-channel source, read
/// as it is), each weight with both channel counts padded to 64 (but constant weights, which
/// the step holds converted: ProgramOptions::holdConstantCopies), 64-byte aligned, or the
/// scratch of a native Winograd step where that is more (winogradPlannedBytes); for a
/// matmul, the copies its oneDNN step makes on AVX2 CPUs (matmulCopyBytes); 0 for other
/// nodes. A function of the graph
/// alone, so that a compiler and a runtime on another CPU plan the same arena. A step that
/// needs more takes its scratch from a gap of the arena or the shared area instead.
int64_t conversionBound(const ir::Graph& g, ir::ValueId v);

/// The memory plan of a graph run in node order.
struct MemoryPlan {
  std::vector<Placement> values;  ///< index = ValueId
  int64_t arenaBytes = 0;         ///< activations, reused across lifetimes
  int64_t persistentBytes = 0;    ///< parameters (and optimizer state), one block
  /// The arena's buffers (one per group of values sharing bytes) with their offsets: the
  /// lifetime's steps are node indices, as in planMemory's run order.
  std::vector<std::pair<BufferLifetime, int64_t>> arenaBuffers;
};

/// The lowest arena offset (aligned to kArenaAlignment) where `bytes` fit without touching
/// any buffer of `plan` live at step `step`, or -1 when no gap of the arena holds them: a
/// step may use that space for its own temporaries while it runs. The region the plan
/// reserved for the step's own conversions (Placement::scratchOffset) counts as free.
int64_t freeArenaOffset(const MemoryPlan& plan, int32_t step, int64_t bytes);

/// True when node `v` of `g` is a generated elementwise kernel (a `fused` node of kind "loop")
/// that reads operand `i` only at the index of the element it writes, through elementwise
/// ops of the result's shape, or a fused convolution whose oneDNN step adds operand `i` as a
/// sum post-op (the residual, copied into the result first): its result may then overwrite
/// that operand's buffer.
bool readsOperandAtOwnIndex(const ir::Graph& g, ir::ValueId v, size_t i);

/// Plans `g` run in node order: parameters persistent, inputs bound, reshapes as views of
/// their operand, every other value in the arena for the steps from its definition to its
/// last use (outputs and update values live to the end, since they are read after the run).
/// In place, where legal (readsOperandAtOwnIndex):
///  - an update value (no output) whose parameter is read by no later node is computed in
///    the parameter's own slot (Placement::inPlaceOf): the step updates it as it runs;
///  - an arena value takes the buffer of an operand of the same size whose last reader it is.
/// Any other update value computed into the arena for one parameter, and no output, gets a
/// persistent slot of its own as the parameter's twin: a step writes it there and then the
/// two slots trade places (Program), so that no update is copied.
/// Each convolution-family node also gets conversionBound() bytes of the arena for the
/// duration of its own step (Placement::scratchOffset). A value that a loop kernel's step may
/// compute as a side sum (sideSumSources) is kept from that step on.
MemoryPlan planMemory(const ir::Graph& g);

}  // namespace weft::cpu
