#pragma once
/// Steps the CPU runtime runs with small hand-written kernels over its buffers: what neither
/// oneDNN nor the generated kernels take (concat, gather, the random sources), and what runs
/// faster here than on oneDNN: 2-D max_pool_grad, convolutions to few channels and their
/// weight gradients; and max_pool, where oneDNN's rule for NaNs differs from the reference's.
#include <cstdint>
#include <optional>
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
  /// Which values are stored channel-blocked (blocked_layout.h), by value id; null: none.
  const std::vector<bool>* blocked = nullptr;
  /// The step's scratch (nativeScratchBytes of it), or null when it needs none.
  void* scratch = nullptr;
  int64_t scratchBytes = 0;
  /// A buffer the step keeps between runs (nativeHeldBytes of it) for what it computes from
  /// constant operands alone, or null; heldReady: it holds that already (the Program's held
  /// results: false on the first run, after setState and after runs with fed parameters).
  void* held = nullptr;
  bool heldReady = false;

  /// True when value v is stored channel-blocked.
  bool isBlocked(ir::ValueId v) const {
    return blocked && static_cast<size_t>(v) < blocked->size() && (*blocked)[static_cast<size_t>(v)];
  }
};

/// Where element (position p, channel c) of one image [P, C] of rank-4 f32 data lies:
/// channels-last, p * C + c; stored channel-blocked ([C/16, P, 16], blocked_layout.h),
/// (c / 16) * P * 16 + p * 16 + c % 16.
struct ImageLayout {
  int64_t positionStride, blockStride;

  ImageLayout(bool blocked, int64_t positions, int64_t channels)
      : positionStride(blocked ? 16 : channels), blockStride(blocked ? positions * 16 : 16) {}
  int64_t at(int64_t p, int64_t c) const { return p * positionStride + (c / 16) * blockStride + c % 16; }
};

/// The index of `v` among the inputs of `body` (a fused node's body: the node's operand
/// holding it), or -1 when `v` is no input.
int bodyInputIndex(const ir::Graph& body, ir::ValueId v);

/// The nodes of `g` other than `except` that read value `v`, in node order; `v` being one of
/// the graph's outputs or a state update's new value counts as a reader too, at g.size().
std::vector<ir::ValueId> otherReaders(const ir::Graph& g, ir::ValueId v, ir::ValueId except);

/// A convolution as native steps see it: a conv or conv_transpose node, or a fused conv whose
/// body is conv(in0, in1) followed by an optional bias add (a body input, or a reshape of
/// one, f32 with one value or one per result channel), an optional residual add (a body
/// input of the result's type, in either order with the bias) and an optional ReLU (a
/// maximum with a one-element constant 0).
struct ConvEpilogue {
  const ir::Node* conv = nullptr;  ///< the conv or conv_transpose node
  int bias = -1;                   ///< the node's operand holding the bias, or -1
  bool relu = false;               ///< the body ends in a ReLU
  int residual = -1;               ///< the node's operand holding the residual, or -1
};

/// Node `v` of `g` as a ConvEpilogue, or nullopt for anything else.
std::optional<ConvEpilogue> convEpilogueOf(const ir::Graph& g, ir::ValueId v);

/// True when node `v` of `g`, whose convolution is `conv` (itself or its fused body's),
/// reads and writes channels-last f32 data of rank 4 with f32 weights.
bool isChannelsLastF32Conv(const ir::Graph& g, ir::ValueId v, const ir::Node& conv);

/// The image kernel of a native step whose kernels are templates over the result's blocks of
/// 16 channels (1 to 4) and a compile-time kernel extent and input channel count, given as
/// `kernel`, a generic lambda returning the instance for <Blocks, K, C>: <Blocks, 3, 1>
/// (unrolled) for a 3x3 kernel over one input channel, a grayscale image's first layer, else
/// <Blocks, 0, 0> (read at run time).
template <class Kernel>
auto pickImageKernel(int64_t outChannels, int64_t kernelHeight, int64_t kernelWidth, int64_t channels,
                     Kernel kernel) {
  const bool unrolled = kernelHeight == 3 && kernelWidth == 3 && channels == 1;
  auto pick = [unrolled, kernel]<int Blocks>() {
    return unrolled ? kernel.template operator()<Blocks, 3, 1>() : kernel.template operator()<Blocks, 0, 0>();
  };
  switch (outChannels / 16) {
    case 1: return pick.template operator()<1>();
    case 2: return pick.template operator()<2>();
    case 3: return pick.template operator()<3>();
    default: return pick.template operator()<4>();
  }
}

/// A hand-written step. Throws weft::Error naming the node for bad data (a gather index out of range).
using NativeStep = void (*)(const NativeCall& call);

/// The native step for node `v` of `g`, or null when there is none.
NativeStep nativeStepFor(const ir::Graph& g, ir::ValueId v);

/// The scratch bytes the native step of node `v` wants on `threads` workers (0: none).
int64_t nativeScratchBytes(const ir::Graph& g, ir::ValueId v, int threads);

/// The fewest scratch bytes the native step of node `v` runs on `threads` workers in, all of
/// them (a Winograd weight gradient in smaller blocks); nativeScratchBytes for most steps.
int64_t nativeLeastScratchBytes(const ir::Graph& g, ir::ValueId v, int threads);

/// The bytes the native step of node `v` keeps between runs (NativeCall::held) when the
/// operands `constantOperands` marks hold the same bytes every run (0: none): a Winograd
/// convolution's transformed weights.
int64_t nativeHeldBytes(const ir::Graph& g, ir::ValueId v, const std::vector<bool>& constantOperands);

/// The values a native step of node `v` may read on behalf of a node it computes along, at
/// `v`'s step rather than at that node's: a max pool's conv-pool step reads its conv's
/// operands (convPoolShape), a weight gradient's pool step its pool gradient's
/// (poolWeightGradShape). On any CPU, so that planMemory, a function of the graph alone,
/// keeps them until `v`'s step.
std::vector<ir::ValueId> foldedOperands(const ir::Graph& g, ir::ValueId v);

/// True when no step stores value `v`, which a native step computes along with its own
/// and nothing reads: a pool gradient of a weight gradient's pool step
/// (poolWeightGradSource), and a conv-pool step's conv that the step does not write
/// (convPoolWritesConv) nor its windows' winners (convPoolWritesWinners). The memory plan
/// gives it no bytes.
bool neverStored(const ir::Graph& g, ir::ValueId v);

/// The bytes the memory plan gives value `v`: its type's, but for a conv-pool step's conv
/// whose buffer holds its windows' winners (convPoolWritesWinners), a byte per pooled value.
int64_t storedBytes(const ir::Graph& g, ir::ValueId v);

/// True when the native step of node `v` reads operand `index` (-1: writes its result)
/// stored channel-blocked as well as channels-last: any data of a concat of rank-4 f32
/// tensors along their last axis whose channel counts are all multiples of 16, and the input
/// x with a multiple of 16 channels of a convolution to few channels (runsFewChannelConv) or
/// of the weight gradient of one (runsFewChannelWeightGrad), the result of a max pool run
/// with its convolution (convPoolSource) and that convolution's value where the step writes
/// it, the data and result of another channels-last 2-D max pool of 16k channels, and the
/// data of 16k channels that weft's 4x4 stride-2 Winograd steps read and write (x and the
/// result of one adding no residual; a weight gradient's x and dy).
bool nativeTakesBlocked(const ir::Graph& g, ir::ValueId v, int index);

}  // namespace weft::cpu
