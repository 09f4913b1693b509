#pragma once
/// The native deconvolution to few channels: conv_transpose of channels-last f32 data whose
/// result has at most kNativeDeconvChannels channels (a generator's image layer, a gradient
/// flowing back into a one-channel input). oneDNN 2.6's direct kernel is slow there (64 -> 1
/// channels from 14x14 to 28x28, batch 64: 1.04 ms on stop 14's 2-core AVX-512 machine) and
/// its GEMM kernel wants channels-first data (0.20 ms, plus 0.13 ms to copy the input, and the
/// copy needs room in the arena). Channels-last, each input position's channels are one row
/// of a matrix product with the weight seen as [C, O * KH * KW]: the step computes a few
/// positions' rows at a time in AVX-512 registers and adds each row's values into the output
/// positions its taps reach (col2im), reading the input once and needing no scratch.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// The most result channels the native deconvolution takes (at 4, oneDNN's kernels caught up).
inline constexpr int64_t kNativeDeconvChannels = 3;
/// The most values an input position contributes (result channels x kernel taps): four
/// AVX-512 registers.
inline constexpr int64_t kNativeDeconvTaps = 64;

/// True when node `v` of `g` is a conv_transpose the native step runs: 2-D, channels_last=1,
/// f32, one group, at most kNativeDeconvChannels result channels and kNativeDeconvTaps values
/// per input position, on a CPU with AVX-512.
bool runsNativeDeconv(const ir::Graph& g, ir::ValueId v);

/// conv_transpose(x, w) of such a node: x [N, H, W, C], w [C, O, KH, KW], the result
/// [N, OH, OW, O] with x[n, h, w, :] . w[:, o, kh, kw] added at (h * stride - padding +
/// kh * dilation, w * stride - padding + kw * dilation) where that lies in the result
/// (positions no tap reaches are zero). Images run on the worker threads.
void runNativeDeconv(const NativeCall& call);

}  // namespace weft::cpu
