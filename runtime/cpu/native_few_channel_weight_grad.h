#pragma once
/// The native weight gradient of a convolution to few channels (a denoiser's output layer,
/// 32 -> 1 channels): conv_weight_grad(x, dy) whose dy has at most kFewGradChannels channels
/// and x at most kVectorChannels. oneDNN 2.6 blocks it over channels, which one channel fills
/// none of (ddpm's [1, 32, 3, 3] at 28x28, batch 32: 0.55 ms on the 2-core AVX-512 machine of
/// stop 18, 0.14 ms here). Here x's channels are the vector: per dy channel and kernel row,
/// one pass over dy's positions keeps the row's taps' sums in registers, adding dy's value
/// times the x row each tap reads.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// The most channels dy may have.
inline constexpr int64_t kFewGradChannels = 3;
/// The most channels x may have: four AVX-512 registers.
inline constexpr int64_t kVectorChannels = 64;
/// The widest kernel (a row of taps' sums stays in registers).
inline constexpr int64_t kMaxGradKernelWidth = 4;
/// On AVX2 (16 registers of eight): the most channels x may have, and the widest kernel.
inline constexpr int64_t kAvx2GradChannels = 32;
inline constexpr int64_t kAvx2GradKernelWidth = 3;

/// True when node `v` of `g` is a conv_weight_grad the native step runs, on a CPU with
/// AVX-512: 2-D, channels_last=1, f32, one group, dy with at most kFewGradChannels channels,
/// x with at most kVectorChannels, a kernel at most kMaxGradKernelWidth wide; with AVX2 and
/// FMA, x of at most kAvx2GradChannels and a kernel at most kAvx2GradKernelWidth wide.
bool runsFewChannelWeightGrad(const ir::Graph& g, ir::ValueId v);

/// Such a node (x [N, H, W, C], dy [N, OH, OW, O]) -> w [O, C, KH, KW]: the sum over images
/// and dy's positions of dy[oh, ow, o] x[oh * stride - padding + kh * dilation, ow * stride -
/// padding + kw * dilation, c] (taps outside x add nothing). Images run on the worker threads,
/// whose sums are added in thread order (the same numbers for a given thread count).
void runFewChannelWeightGrad(const NativeCall& call);

}  // namespace weft::cpu
