#pragma once
/// Native Winograd convolutions, F(4x4, 3x3), and their weight gradients, for
/// CPUs where oneDNN 2.6 has none: its Winograd kernels need AVX-512, so on an
/// AVX2 CPU (the AMD EPYC kind) every 3x3 convolution ran oneDNN's direct kernel. Winograd computes
/// a 4x4 block of results from a 6x6 patch of input with 36 products per
/// channel pair instead of 144: the input patches and the weights are
/// transformed (B^T d B, G g G^T), the 36 transformed points each become one
/// matrix product over the channels, and the products are transformed back (A^T
/// m A) into the result, where the bias, a residual and a ReLU are applied
/// before the store.
///
/// Channels-last f32 data is read and written in place. A convolution works on
/// blocks of tiles, each worker thread on its own; the transformed weights (36
/// x C x K floats) and each worker's block (its tiles' transformed input and
/// products) live in the step's scratch (NativeCall::scratch: in the arena
/// where it has room at the step, as oneDNN's scratchpads). A weight gradient's
/// workers share each block and sum its products point by point
/// (native_winograd_weight_grad.cpp).
#include <cstdint>
#include <optional>

#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// A 3x3, stride 1 convolution of channels-last f32 data as the Winograd kernel
/// computes it: x [images, height, width, channels] into y [images, outHeight,
/// outWidth, outChannels], where y[n, i, j, k] = sum over c, a, b of x[n, i -
/// padTop + a, j - padLeft + b, c] * w'[k, c, a, b] (x is zero outside), w'
/// being the weight [outChannels, channels, 3, 3] of a conv, or the weight
/// [channels, outChannels, 3, 3] of a conv_transpose with its taps reversed
/// (`transposed`; a stride 1 conv_transpose of padding p is such a convolution
/// of padding 2 - p).
struct WinogradShape {
  int64_t images = 0, height = 0, width = 0, channels = 0;
  int64_t outHeight = 0, outWidth = 0, outChannels = 0;
  int64_t padTop = 0, padLeft = 0;
  bool transposed = false;
};

/// What is applied to each result before it is stored: + bias (one value, or
/// one per result channel), + residual (a tensor of y's shape), then max(0, .)
/// when relu.
struct WinogradEpilogue {
  const float* bias = nullptr;
  bool singleBias = false;
  const float* residual = nullptr;
  bool relu = false;
};

/// The workers the memory plan reserves a Winograd step's scratch for (the
/// default threads).
inline constexpr int kWinogradPlannedWorkers = 2;

/// True when this CPU runs the Winograd kernel (AVX2 and FMA) and shape `s`
/// fits it: input channels a multiple of 8, result channels a multiple of 16,
/// padding at most 2.
bool winogradFits(const WinogradShape& s);

/// The scratch bytes winogradConvolution needs for shape `s` to run on
/// `threads` workers (with fewer bytes, down to those for one, it runs on
/// fewer).
int64_t winogradScratchBytes(const WinogradShape& s, int threads);

/// The bytes of shape `s`'s transformed weights (winogradConvolution's heldWeights).
int64_t winogradHeldWeightBytes(const WinogradShape& s);

/// y = epilogue(convolution of x with w) as `s` describes, on the worker
/// threads, with `scratchBytes` of `scratch` (at least winogradScratchBytes(s,
/// 1); 32-byte aligned or not). Requires winogradFits(s). With `heldWeights`
/// (winogradHeldWeightBytes(s) of them) the transformed weights are kept there
/// instead of in the scratch, and made only when not `heldReady` (w unread).
void winogradConvolution(const WinogradShape& s, const float* x, const float* w, const WinogradEpilogue& epilogue,
                         float* y, void* scratch, int64_t scratchBytes, float* heldWeights = nullptr,
                         bool heldReady = false);

/// A 4x4 (or 3x3), stride-2 convolution or conv_transpose of channels-last f32
/// data, as the phase Winograd kernels compute it (native_phase_winograd.cpp and
/// its weight gradient): x [images, height, width, channels] into y
/// [images, outHeight, outWidth, outChannels] with the weight [outChannels,
/// channels, kernel, kernel] of a conv (y[n, i, j, k] = sum of x[n, 2i - padTop +
/// a, 2j - padLeft + b, c] * w[k, c, a, b]) or [channels, outChannels, kernel,
/// kernel] of a conv_transpose (`transposed`: x[n, i, j, c] * w[c, k, a, b] adds
/// to y[n, 2i - padTop + a, 2j - padLeft + b, k]). Either splits into 2x2,
/// stride-1 convolutions over the phases (even and odd rows and columns) of its
/// input (conv) or its result (conv_transpose), a 3x3 kernel being a 4x4 one whose
/// last row and column are zeros. A 4x4 kernel's are computed as F(7x7, 2x2): 64
/// products for 7x7 results instead of 196; a 3x3 kernel's (resnet's downsampling
/// convolutions, 8x8 and 16x16 results) as F(4x4, 2x2), 25 for 4x4 instead of 64.
struct PhaseWinogradShape {
  int64_t images = 0, height = 0, width = 0, channels = 0;
  int64_t outHeight = 0, outWidth = 0, outChannels = 0;
  int64_t padTop = 0, padLeft = 0;
  bool transposed = false;
  int64_t kernel = 4;  ///< 4, or 3
  /// The data read (x) and the data written (y; a weight gradient's dy, read) stored
  /// channel-blocked (blocked_layout.h) instead of channels-last: 4x4 kernels only, and y
  /// only without a residual (nativeTakesBlocked).
  bool xBlocked = false, yBlocked = false;

  /// Where x's channels lie at its positions (ImageLayout); its images are height * width *
  /// channels floats apart in either layout.
  ImageLayout xLayout() const { return ImageLayout(xBlocked, height * width, channels); }
  /// The same for y.
  ImageLayout yLayout() const { return ImageLayout(yBlocked, outHeight * outWidth, outChannels); }
};

/// True when this CPU runs the phase Winograd kernel (AVX2 and FMA) and shape
/// `s` fits it: input channels a multiple of 8, result channels a multiple of
/// 16, padding 0 to 2 and the result size a stride-2 window of the kernel gives
/// (a 3x3 conv_transpose's with an output padding of 0 or 1).
bool phaseWinogradFits(const PhaseWinogradShape& s);

/// The scratch bytes phaseWinogradConvolution needs for shape `s` on `threads`
/// workers (with fewer bytes, down to those for one, it runs on fewer).
int64_t phaseWinogradScratchBytes(const PhaseWinogradShape& s, int threads = kWinogradPlannedWorkers);

/// The bytes of all of shape `s`'s transformed weights, its four terms'
/// (phaseWinogradConvolution's heldWeights).
int64_t phaseWinogradHeldWeightBytes(const PhaseWinogradShape& s);

/// y = epilogue(convolution of x with w) as `s` describes, on the worker
/// threads, with `scratchBytes` (at least phaseWinogradScratchBytes(s, 1)) of
/// `scratch`. Requires phaseWinogradFits(s). With `heldWeights`
/// (phaseWinogradHeldWeightBytes(s) of them) every term's transformed weights are
/// kept there, and made only when not `heldReady` (w unread).
void phaseWinogradConvolution(const PhaseWinogradShape& s, const float* x, const float* w,
                              const WinogradEpilogue& epilogue, float* y, void* scratch, int64_t scratchBytes,
                              float* heldWeights = nullptr, bool heldReady = false);

/// A 4x4 phase conv (not transposed) term by term (native_phase_winograd_terms.cpp): its
/// scratch bytes, its held weights' bytes and the convolution, as
/// phaseWinogradScratchBytes, phaseWinogradHeldWeightBytes and phaseWinogradConvolution
/// describe them (its scratch whatever the workers).
int64_t termwisePhaseScratchBytes(const PhaseWinogradShape& s);
int64_t termwisePhaseHeldWeightBytes(const PhaseWinogradShape& s);
void termwisePhaseConvolution(const PhaseWinogradShape& s, const float* x, const float* w,
                              const WinogradEpilogue& epilogue, float* y, void* scratch, float* heldWeights,
                              bool heldReady);

/// The weight gradient of a 3x3 phase shape, in blocks
/// (native_phase_winograd_blocked_grad.cpp): its scratch bytes and the gradient, as
/// phaseWinogradWeightGradScratchBytes and phaseWinogradWeightGradient describe them.
int64_t blockedPhaseWeightGradScratchBytes(const PhaseWinogradShape& s);
void blockedPhaseWeightGradient(const PhaseWinogradShape& s, const float* x, const float* dy, float* dw,
                                void* scratch);

/// The shape of node `v` (read as convolution `found`) when its convolution is a
/// channels-last f32 4x4 or 3x3 conv or conv_transpose with stride 2, one group,
/// no dilation or output padding (a 3x3 conv_transpose's 0 or 1), whatever its
/// sizes; else nullopt.
std::optional<PhaseWinogradShape> phaseWinogradShapeOf(const ir::Graph& g, ir::ValueId v, const ConvEpilogue& found);

/// Node `v`'s shape when it is a 4x4 or 3x3, stride-2 convolution (a conv or
/// conv_transpose, or a fused conv with its epilogue: convEpilogueOf) the phase
/// step would run on an AVX2 CPU without oneDNN Winograd kernels, whatever this
/// CPU is: channels-last f32, one group, no dilation or output padding (but a
/// 3x3 conv_transpose's), 16 or more channels in and out, result planes of at
/// least one tile (7x7 for a 4x4 kernel; a 3x3 kernel's whole 4x4 tiles, of each
/// phase of a conv_transpose's result) and at most 24 MiB of scratch; else
/// nullopt.
std::optional<PhaseWinogradShape> phaseWinogradCandidate(const ir::Graph& g, ir::ValueId v);

/// The scratch bytes phaseWinogradWeightGradient needs for shape `s` (whatever
/// the workers).
int64_t phaseWinogradWeightGradScratchBytes(const PhaseWinogradShape& s);

/// dw [outChannels, channels, kernel, kernel] = the weight gradient of the 4x4 (or
/// 3x3), stride-2 conv `s` describes (not transposed): dw[k, c, a, b] = sum over n, i, j of
/// x[n, 2i - padTop + a, 2j - padLeft + b, c] * dy[n, i, j, k] with dy [images,
/// outHeight, outWidth, outChannels], on the worker threads, with
/// phaseWinogradWeightGradScratchBytes(s) of `scratch`. (A conv_transpose's
/// weight gradient is such a gradient with x and dy exchanged.) Requires
/// phaseWinogradFits(s) and channels a multiple of 16 (of 8 for a 3x3 kernel).
void phaseWinogradWeightGradient(const PhaseWinogradShape& s, const float* x, const float* dy, float* dw,
                                 void* scratch);

/// Conv_weight_grad node `v`'s shape when the phase step would run it on an
/// AVX2 CPU without oneDNN Winograd kernels, whatever this CPU is: x and dy
/// channels-last f32, one group, stride 2, no dilation, 16 or more channels out
/// and at most 24 MiB of scratch, a 4x4 kernel with 16k channels in and result
/// planes of at least 7x7, or a 3x3 kernel with 8k (16 or more) channels in and
/// result planes of whole 4x4 tiles; else nullopt.
std::optional<PhaseWinogradShape> phaseWinogradWeightGradCandidate(const ir::Graph& g, ir::ValueId v);

/// True when node `v` of `g` would run as a native Winograd step on an AVX2 CPU: a
/// conv or conv_transpose, or a fused conv whose body is a conv plus optional bias,
/// residual and ReLU (convEpilogueOf), 2-D, channels_last=1, f32, one group, no
/// dilation, no output padding, 16 or more channels in and out, either 3x3 with
/// stride 1 and result planes of at least 8x8 (winogradFits) or 4x4 or 3x3 with
/// stride 2 (phaseWinogradCandidate, phaseWinogradFits).
bool winogradConvFits(const ir::Graph& g, ir::ValueId v);

/// True when the 3x3 stride-1 convolutions that weft's Winograd steps fit (winogradConvFits,
/// winogradWeightGradFits) run on those steps rather than on oneDNN's (its Winograd kernels on
/// AVX-512 CPUs, its direct ones elsewhere): on every CPU unless WEFT_WINOGRAD=onednn. Since
/// the register kernel runs 512-bit vectors (stop 42) weft's steps beat oneDNN's Winograd
/// where 512-bit FMAs run at half rate too (AMD EPYC Zen 4, stop 43, sums of per-step minimums
/// over five alternating runs): resnet's training step 36.7 -> 33.4 ms and inference 11.2 ->
/// 9.4, ddpm's 51.9 -> 49.5 and 15.9 -> 14.9; at full rate (Intel Xeon, stop 42) ddpm 53.1 ->
/// 48.1, resnet 36.1 -> 32.5. (Stop 41's vote, oneDNN's Winograd where it would run most of a
/// graph's, was measured with an AVX2 register kernel.) Their data is channels-last, oneDNN's
/// Winograd data blocked, so a graph runs them all one way. WEFT_WINOGRAD=weft or unset, empty
/// or `auto` keeps weft's steps, =onednn runs oneDNN's; any other value is an error naming the
/// variable.
bool weftWinogradPreferred();

/// True when weft's phase steps run a stride-2 convolution of shape `s` (that fits them), its
/// weight gradient when `weightGradient`: always with a 4x4 kernel; with a 3x3 one where
/// oneDNN has no Winograd kernels (channelBlocksFit false), and where 512-bit FMAs run at half
/// rate (hostRunsWideVectorsAtFullRate false: Zen 4) for the convolution and its data gradient.
/// On the Intel Xeon of stop 42 oneDNN's direct kernels ran all three faster: ddpm's down
/// weight gradient 0.57 ms against 0.88, its stride-2 conv 0.42 against 0.70 (resnet 31.1 ->
/// 30.1 ms a step). On the AMD EPYC Zen 4 of stop 43, with the 512-bit register kernel, the
/// phase steps ran resnet's two stride-2 convolutions and their data gradients 8-10% faster
/// (1.33 -> 1.20 ms, 1.26 -> 1.14; its inference 9.7 -> 9.1 ms, the fused conv+bias+relu ones
/// 1.30-1.34 -> 1.02-1.11) but ddpm's weight gradient slower (0.70 -> 0.83).
bool runsPhaseSteps(const PhaseWinogradShape& s, bool weightGradient);

/// True when node `v` of `g` runs as a native Winograd step: winogradConvFits, and
/// runsPhaseSteps for a stride-2 one, weftWinogradPreferred for a stride-1 one.
bool runsWinogradConv(const ir::Graph& g, ir::ValueId v);

/// The native step of such a node (its scratch in NativeCall::scratch; its transformed
/// weights in NativeCall::held where it has that buffer).
void runWinogradConv(const NativeCall& call);

/// The bytes of the transformed weights of node `v`'s Winograd convolution
/// (runsWinogradConv): what its step holds between runs when its weights are constant.
int64_t winogradHeldWeightBytes(const ir::Graph& g, ir::ValueId v);

/// The scratch bytes winogradWeightGradient needs for shape `s` on `threads` workers.
int64_t winogradWeightGradScratchBytes(const WinogradShape& s, int threads);

/// The scratch bytes winogradWeightGradient runs fastest in for shape `s` on `threads`
/// workers: at least winogradWeightGradScratchBytes, more where its sums are shared (larger
/// blocks, fewer barriers).
int64_t winogradWeightGradWantedBytes(const WinogradShape& s, int threads);

/// dw [outChannels, channels, 3, 3] = the weight gradient of the convolution `s` describes
/// (not transposed): dw[k, c, a, b] = sum over n, i, j of x[n, i - padTop + a, j - padLeft +
/// b, c] * dy[n, i, j, k] with dy [images, outHeight, outWidth, outChannels], on the worker
/// threads (as many as `scratchBytes` of `scratch` holds room for: winogradWeightGradScratchBytes),
/// in larger blocks where it holds winogradWeightGradWantedBytes.
/// Requires winogradFits(s) and channels a multiple of 16.
void winogradWeightGradient(const WinogradShape& s, const float* x, const float* dy, float* dw, void* scratch,
                            int64_t scratchBytes);

/// True when conv_weight_grad node `v` of `g` would run as a native Winograd step on an
/// AVX2 CPU: x and dy channels-last f32, one group, no dilation, 16k channels in and out
/// (16 or more), either a 3x3 kernel with stride 1 and planes of at least 8x8 or a 4x4
/// kernel with stride 2 (phaseWinogradWeightGradCandidate).
bool winogradWeightGradFits(const ir::Graph& g, ir::ValueId v);

/// True when conv_weight_grad node `v` of `g` runs as a native Winograd step:
/// winogradWeightGradFits, and runsPhaseSteps for a stride-2 one, weftWinogradPreferred for
/// a stride-1 one.
bool runsWinogradWeightGrad(const ir::Graph& g, ir::ValueId v);

/// The native step of such a node (its scratch in NativeCall::scratch).
void runWinogradWeightGrad(const NativeCall& call);

/// The scratch bytes of conv_weight_grad node `v`'s Winograd step on `threads` workers when
/// it would run one on an AVX2 CPU without oneDNN Winograd kernels (whatever this CPU is), else 0.
int64_t winogradWeightGradPlannedBytes(const ir::Graph& g, ir::ValueId v, int threads);

/// The scratch bytes conv_weight_grad node `v`'s Winograd step runs fastest in on `threads`
/// workers (winogradWeightGradWantedBytes); winogradWeightGradPlannedBytes, the least it
/// runs in, is what the memory plan reserves.
int64_t winogradWeightGradWantedBytes(const ir::Graph& g, ir::ValueId v, int threads);

/// The scratch bytes the native step of node `v` (a convolution or weight gradient the
/// Winograd steps run) needs on `threads` workers.
int64_t winogradStepScratchBytes(const ir::Graph& g, ir::ValueId v, int threads);

/// The scratch bytes the memory plan reserves in the arena for node `v`'s step
/// (see conversionBound): for kWinogradPlannedWorkers when `v` is a convolution
/// or weight gradient that runs as a native Winograd step on CPUs where oneDNN
/// has none, on every CPU (the plan is a function of the graph alone); else 0.
int64_t winogradPlannedBytes(const ir::Graph& g, ir::ValueId v);

}  // namespace weft::cpu
