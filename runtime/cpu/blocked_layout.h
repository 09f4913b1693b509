#pragma once
/// Channel-blocked storage of convolution data. oneDNN's convolutions (Winograd's above all)
/// compute in a layout that splits the channels into blocks of 16, [N, C/16, H, W, 16]
/// (nChw16c); a channels-last activation [N, H, W, C] that every convolution touching it
/// converts into that layout and back costs two copies per convolution. Such a value is
/// stored blocked instead when only convolutions and generated kernels touch it: the
/// convolutions read and write it as it is, and each generated kernel touching it runs its
/// body rewritten over the blocked five-dimensional views of its rank-4 values
/// (blockedBody). The choice is a function of the graph and its memory plan, made alike by
/// the compiler, the ahead-of-time writer and the bundle loader.
#include <functional>
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "runtime/cpu/memory_plan.h"

namespace weft::cpu {

/// Channels per block of the blocked layout.
inline constexpr int64_t kChannelBlock = 16;

/// True when oneDNN runs its convolutions in blocks of kChannelBlock channels on this CPU:
/// with AVX-512 (AVX2 machines, or DNNL_MAX_CPU_ISA=AVX2, use blocks of 8, and a step
/// given 16-channel blocks there would be oneDNN's reference code, or none with post-ops).
bool channelBlocksFit();

/// The blocked view [a, d/16, b, c, 16] of rank-4 channels-last shape [a, b, c, d]
/// ([a, 1, b, c, 1] when d is 1); nullopt when d is neither 1 nor a multiple of 16.
std::optional<ir::Shape> blockedShape(const ir::Shape& shape);

/// True when the blocked view of rank-4 `shape` orders its elements differently from the
/// row-major buffer (several channel blocks at several positions).
bool blockingMovesData(const ir::Shape& shape);

/// `body` computing the same elements over the blocked views of its rank-4 values: inputs
/// and outputs of rank 4 take their blockedShape (the kernel then reads and writes the
/// buffers of data stored blocked), elementwise ops and broadcasts follow, reductions map
/// their axes (W's channels are dims 1 and 4), and reshapes stay where both sides keep
/// their bytes. nullopt when a value or op does not carry over (a transpose, slice, pad,
/// concat or iota of rank-4 data; a channel count not a multiple of 16).
std::optional<ir::Graph> blockedBody(const ir::Graph& body);

/// Which values of `g` (planned as `plan`) are stored blocked: f32 channels-last data in
/// the arena whose blocking moves data, that no output, update or step other than a
/// convolution (conv, conv_transpose, conv_weight_grad, or a fused conv whose other operands
/// are per-channel: channels-last, ungrouped, run by oneDNN over the whole tensor), a 2-D
/// max_pool or avg_pool run by oneDNN, or a generated kernel with a blocked body reads or
/// writes, and that a convolution touches. A generated kernel's rank-4 data are blocked all
/// together or not at all. `runsKernel(v)` says whether fused node v runs a generated kernel
/// (default: every loop and reduce node does). None unless `blocking` (default: on a CPU
/// where channelBlocksFit; a bundle says whether its writer blocked, weft_bundle::channel_block).
std::vector<bool> blockedValues(const ir::Graph& g, const MemoryPlan& plan,
                                const std::function<bool(ir::ValueId)>& runsKernel = nullptr,
                                bool blocking = channelBlocksFit());

}  // namespace weft::cpu
