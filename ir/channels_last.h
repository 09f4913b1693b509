#pragma once
/// The channels-last layout of the windowed ops (conv, conv_transpose, conv_weight_grad,
/// max_pool, avg_pool, max_pool_grad): with `channels_last=1` their data operands and data
/// result are stored [N, spatial..., C] instead of [N, C, spatial...]; weights (conv's w,
/// conv_weight_grad's result) keep [O, C/groups, kernel...]. Type rules and kernels see such a
/// node through its channels-first view.
#include <cstddef>
#include <vector>

#include "ir/attrs.h"
#include "ir/ops.h"
#include "ir/types.h"

namespace weft::ir {

/// True for the ops that take a `channels_last` attribute.
bool takesChannelsLast(OpKind op);
/// True when `attrs` of an `op` node set channels_last=1.
bool isChannelsLast(OpKind op, const Attrs& attrs);
/// True when operand `i` of windowed op `op` is data (permuted in channels-last), not a weight.
bool isDataOperand(OpKind op, size_t i);
/// True when the result of windowed op `op` is data (conv_weight_grad's is a weight).
bool hasDataResult(OpKind op);

/// The permutation (transpose's perm) from [N, C, S...] to [N, S..., C] for rank `rank`.
std::vector<int64_t> toChannelsLastPerm(size_t rank);
/// The permutation from [N, S..., C] back to [N, C, S...] for rank `rank`.
std::vector<int64_t> toChannelsFirstPerm(size_t rank);
/// `shape` [N, C, S...] as [N, S..., C].
Shape toChannelsLast(const Shape& shape);
/// `shape` [N, S..., C] as [N, C, S...].
Shape toChannelsFirst(const Shape& shape);

}  // namespace weft::ir
