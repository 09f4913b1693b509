#pragma once
/// A convolution from few input channels and the 2x2 max pool after it, as one native step:
/// a digit classifier's first layer (lenet: 1 -> 32 channels over 26x26, then a pool to
/// 13x13). oneDNN computes that convolution at a fraction of its GEMM rate (one input
/// channel: 85 GFLOP/s on the Intel Xeon) and writes the whole map (5.5 MB) for the pool to
/// read once more and reduce four to one; the native step keeps the four positions of each
/// pool window in AVX-512 (or AVX2) registers and writes only the pooled result.
#include <vector>

#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// For a max_pool node `pool` of `g`: the fused conv it reads when the pair runs as one
/// native step, on a CPU with AVX-512 or with AVX2 and FMA, or -1. The pool is 2-D, channels_last=1, f32, window
/// and stride 2, no padding; the conv value is no output and is read by the pool alone or,
/// when its height and width are even (the pool's windows cover it), also by nodes after
/// the pool (a training step's gradients); it is a fused conv with an optional bias and ReLU
/// (convEpilogueOf): 2-D, channels_last=1, f32, one group, stride and dilation 1, at most
/// kMaxConvPoolInputs input channels and a multiple of 16, at most 64, result channels, a
/// kernel of at most 7x7.
ir::ValueId convPoolSource(const ir::Graph& g, ir::ValueId pool);

/// convPoolSource on any CPU: the conv when the pair has the shape the step takes.
ir::ValueId convPoolShape(const ir::Graph& g, ir::ValueId pool);

/// True when the conv-pool step of max_pool `pool` also writes its conv's value, which other
/// nodes read (convPoolSource), but for a weight gradient's pool step that reads only the
/// windows' winners (convPoolWritesWinners).
bool convPoolWritesConv(const ir::Graph& g, ir::ValueId pool);

/// True when the conv-pool step of max_pool `pool` writes, instead of its conv's value c, the
/// winner of each window for each channel where c's one other reader is a pool gradient
/// that a weight gradient's pool step reads (poolWeightGradWinners): c's buffer then holds a
/// byte per pooled value, [N, PH, PW, O] channels-last (storedBytes), 0-3 for the window's
/// position (row-major) whose value max_pool_grad takes. lenet's first layer keeps 0.35 MB
/// from its forward to its backward pass instead of its 5.5 MB map, and the weight gradient
/// no longer computes the map's windows again.
bool convPoolWritesWinners(const ir::Graph& g, ir::ValueId pool);

/// A conv-pool conv's weight as its kernels read it, [KH][KW][C][O], and its bias (O
/// values, zeros without one).
struct ConvPoolWeights {
  std::vector<float> taps, bias;
};

/// ConvPoolWeights of fused conv `conv` (convPoolShape's), from `operands`, the conv node's
/// operands' data (x, the weight, then the bias where convEpilogueOf says).
ConvPoolWeights convPoolWeights(const ir::Graph& g, ir::ValueId conv, const std::vector<const void*>& operands);

/// The most input channels of a convolution the conv-pool step takes.
inline constexpr int64_t kMaxConvPoolInputs = 4;

/// Runs pool node `call.value` together with its conv: `call.operands` are the conv node's
/// operands (x [N, H, W, C], w [O, C, KH, KW], and the bias where ConvEpilogue::bias says),
/// then, when convPoolWritesConv or convPoolWritesWinners, the conv value's buffer, which the
/// step writes (the map, or the winners); the result
/// is the pool's. Both are channels-last or channel-blocked as `call` says. Each pooled
/// position is max(relu?(bias + conv)) over its window's four positions. Images run on the
/// worker threads.
void runConvPool(const NativeCall& call);

}  // namespace weft::cpu
