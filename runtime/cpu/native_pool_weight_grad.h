#pragma once
/// The weight gradient of a convolution from few input channels under a 2x2 max pool, as one
/// native step: conv_weight_grad(x, max_pool_grad(c, dy)) where c is the map the pool read
/// (the conv's, after its ReLU) and the pool gradient has no other reader: a classifier's first
/// layer in training (lenet: x [64, 28, 28, 1], c [64, 26, 26, 32]). The pool gradient holds
/// each window's dy at the window's winner and zeros elsewhere; instead of writing it (5.5 MB
/// for lenet) for oneDNN's weight gradient to read again, the step finds each window's winners
/// in AVX-512 (or AVX2) registers and adds dy times the input under each tap into the sums.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// The most input channels (x's) of a weight gradient the step takes.
inline constexpr int64_t kMaxPoolWeightGradInputs = 4;

/// For a conv_weight_grad node `wgrad` of `g`: the max_pool_grad it reads when the two run as
/// one native step, on a CPU with AVX-512 or with AVX2 and FMA, or -1. The weight gradient is 2-D, channels_last=1,
/// f32, one group, stride and dilation 1, any padding, a kernel of at most 7x7, with x of at
/// most kMaxPoolWeightGradInputs channels; the pool gradient is f32, channels_last=1, window
/// and stride 2, no padding, read by the weight gradient alone (no output), with a multiple
/// of 16, at most 64, channels.
ir::ValueId poolWeightGradSource(const ir::Graph& g, ir::ValueId wgrad);

/// poolWeightGradSource on any CPU: the pool gradient when the pair has the shape the step takes.
ir::ValueId poolWeightGradShape(const ir::Graph& g, ir::ValueId wgrad);

/// For a conv_weight_grad node `wgrad` that runs with its pool gradient (poolWeightGradSource):
/// the map c the pool gradient reads when the step reads only c's windows' winners, or -1.
/// Then c is a conv-pool step's conv (convPoolSource) that nothing else reads, and that step
/// stores each window's winner per channel in c's buffer instead of c (convPoolWritesWinners):
/// lenet's first layer keeps 0.35 MB instead of a 5.5 MB map from its forward to its backward
/// pass. (Until stop 50 the step computed the map's windows again from x, which cost as many
/// FMAs again as the gradient's sums: on the AMD EPYC 0.39-0.50 ms of lenet's 3.1-3.9 ms
/// step.)
ir::ValueId poolWeightGradWinners(const ir::Graph& g, ir::ValueId wgrad);

/// Runs weight gradient node `call.value` with its pool gradient: `call.operands` are x, the
/// pool's input c (or its winners: poolWeightGradWinners) and its incoming gradient dy (c and
/// dy channels-last or channel-blocked as `call` says); the result is [O, C, KH, KW]. The
/// result equals the two nodes' up to the order of the additions. Images run on the worker
/// threads, whose sums are added in thread order (the same numbers for a given thread count).
void runPoolWeightGrad(const NativeCall& call);

}  // namespace weft::cpu
