#pragma once
/// The native pooling gradient: max_pool_grad over 2-D windows of row-major f32 tensors.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// max_pool_grad(x, dy) of a row-major f32 [N, C, H, W] x, the reference's rule: each
/// window's dy goes to the first position holding its maximum (padding reads -inf and a
/// maximum there drops dy; the first NaN wins). Planes run on the worker threads; 2x2
/// windows with stride 2 and no padding take a branch-free AVX-512 path where the CPU has it.
/// oneDNN's version reruns the forward pooling for its workspace first: lenet's
/// [64,32,26,26] gradient took 1.2-1.3 ms there in a training step.
void runMaxPoolGrad2d(const NativeCall& call);
/// runMaxPoolGrad2d for channels_last=1 ([N, H, W, C] x, dy and result): images run on the
/// worker threads, the channels of a position side by side.
void runMaxPoolGrad2dChannelsLast(const NativeCall& call);

}  // namespace weft::cpu
