#pragma once
/// Native convolutions to few channels: a conv or conv_transpose of channels-last f32 data
/// whose result has at most kFewChannels channels (a generator's image layer, a denoiser's
/// output layer, a gradient flowing back into a one-channel input). oneDNN 2.6's kernels are
/// slow there (on stop 14's 2-core AVX-512 machine: the deconvolution 64 -> 1 channels from
/// 14x14 to 28x28, batch 64, 1.04 ms; the convolution 32 -> 1 channels at 28x28, batch 32,
/// 0.53-0.70 ms), its GEMM kernels want channels-first data (a copy of the input, which needs
/// room in the arena). Channels-last, each input position's channels are one row of a matrix
/// product with the weight seen as [C, O * KH * KW]: the step computes a few positions' rows
/// at a time in vector registers, keeps an image's rows in the worker's scratch, and sums into
/// each result value the row values whose taps reach it, reading the input once.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// The most result channels the native convolutions take (at 4, oneDNN's deconvolution
/// kernels caught up).
inline constexpr int64_t kFewChannels = 3;
/// The most values an input position contributes (result channels x kernel taps): four
/// AVX-512 registers.
inline constexpr int64_t kFewChannelTaps = 64;

/// True when node `v` of `g` is a convolution the native step runs, on a CPU with AVX-512:
/// a conv_transpose, a conv, or a fused conv whose body is a conv plus a bias (one value, or
/// one per channel), 2-D, channels_last=1, f32, one group, with at most kFewChannels result
/// channels and kFewChannelTaps values per input position.
bool runsFewChannelConv(const ir::Graph& g, ir::ValueId v);

/// Such a node, x [N, H, W, C] into the result [N, OH, OW, O]. conv_transpose (w [C, O, KH,
/// KW]) adds x[n, h, w, :] . w[:, o, kh, kw] at (h * stride - padding + kh * dilation, w *
/// stride - padding + kw * dilation) where that lies in the result (positions no tap reaches
/// are zero); conv (w [O, C, KH, KW]) adds x[n, h, w, :] . w[o, :, kh, kw] at the result
/// position (oh, ow) whose window reads (h, w) at tap (kh, kw), over the bias when fused with
/// one. Images run on the worker threads.
void runFewChannelConv(const NativeCall& call);

}  // namespace weft::cpu
