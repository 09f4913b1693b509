#pragma once
/// The native direct weight gradient of a strided convolution (resnet's 3x3 stride-2 ones,
/// ddpm's down-sampling one): conv_weight_grad(x, dy) as one product per kernel tap,
/// dw[tap]^T [C, O] = sum over dy's positions p of x[p's tap position, C] dy[p, O], the
/// positions in k order. oneDNN 2.6's direct kernel ran these at 160-170 GFLOP/s on the 2-core
/// AMD EPYC Zen 4 of stop 46 (resnet's 64 <- 32 at 32x32, batch 32: 1.7-1.9 ms), weft's
/// phase steps slower still (stop 45); this step's register tiles run them at ~220.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// True when node `v` of `g` is a conv_weight_grad this step runs: on a CPU with AVX-512 (and
/// WEFT_CPU_ISA not capping it), 2-D, channels_last=1, f32, one group, a stride above 1 along
/// some dim, a kernel of at most 3x3, x of at least 8 channels and dy of 16k (either stored
/// channels-last or channel-blocked).
bool runsDirectWeightGrad(const ir::Graph& g, ir::ValueId v);

/// The scratch bytes of such a node's step on `threads` workers: each worker's sums.
int64_t directWeightGradScratchBytes(const ir::Graph& g, ir::ValueId v, int threads);

/// Such a node (x [N, H, W, C], dy [N, OH, OW, O]) -> w [O, C, KH, KW]: the sum over images
/// and dy's positions of dy[oh, ow, o] x[oh * stride - padding + kh * dilation, ow * stride -
/// padding + kw * dilation, c] (taps outside x add nothing). Images run on the worker threads
/// (as many as the scratch holds sums for), whose sums are added in thread order: the same
/// numbers for a given thread count.
void runDirectWeightGrad(const NativeCall& call);

}  // namespace weft::cpu
