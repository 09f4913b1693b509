#pragma once
/// When a convolution runs as oneDNN's Winograd convolution (F(4x4, 3x3) on AVX-512) rather
/// than its direct one. Winograd does 2.25x fewer multiplications for a 3x3 window but works
/// in a blocked layout, so it pays a conversion of its data in and out (channels-last data is
/// otherwise read in place). The step builders try it where it fits; a channels-last
/// convolution keeps it only where its copies find room in the arena at its step (Program),
/// so Winograd never grows the memory a graph needs; a channels-first one converts its data
/// either way, in the region conversionBound reserves. On CPUs without AVX-512, where oneDNN
/// 2.6 has no Winograd kernel, and on AVX-512 ones too, weft's own runs instead where it fits
/// (native_winograd.h; weftWinogradPreferred): oneDNN's then runs what weft's steps do not fit
/// (fewer than 16 channels, small planes) and everything under WEFT_WINOGRAD=onednn.
#include "ir/graph.h"

namespace weft::cpu {

/// True when conv-family node `node` (conv, conv_transpose, conv_weight_grad, never a fused
/// node) with operands of shapes `first` and `second` (as stored: channels-last or not)
/// should try Winograd: a 2-D 3x3 window, stride 1, no dilation, one group, input and output
/// channels multiples of 16, output planes of at least 8x8; a weight gradient also needs 64
/// or more input channels, or 32 over input planes of at least 24x24 (below that oneDNN's
/// direct weight gradient measured faster, its forward and data gradient slower, on the
/// 2-core AVX-512 machine of stop 13; on the Intel Xeon of stop 20, ddpm's 32-channel
/// weight gradients over 28x28 took 1.2 ms on Winograd against 2.0 direct, resnet's over
/// 32x32 2.1-2.8 against 3.5-4.5, ddpm's over 14x14 1.1 against 0.9), and a data
/// gradient (conv_transpose) padding 1, planes kept (lenet's 11x11 -> 13x13 of a padding-0
/// conv measured 1.3 ms on Winograd against 0.9 direct).
bool triesWinograd(const ir::Node& node, const ir::Shape& first, const ir::Shape& second);

}  // namespace weft::cpu
