#pragma once
/// Merging of adjacent dimensions of a kernel body before it is planned, so that the
/// innermost loop of its kernel is as long (and as contiguous) as the data allows: a batch
/// norm over f32[32,32,32,32] with per-channel [1,32,1,1] operands loops over [32,32,1024].
#include <optional>

#include "ir/graph.h"

namespace weft::cpu::codegen {

/// `body` with adjacent dimensions of its iteration space (the output's shape, or for a
/// body whose output is a reduction, the reduction operand's) merged wherever every value
/// the loops read at the iteration's index treats them alike: each is broadcast in all of
/// them or spans all of them, and for a reduction all of them are reduced or all are kept.
/// The result computes the same bytes from and into the same buffers (row-major layouts do
/// not change). nullopt when nothing merges, or when a value read at the iteration's index
/// goes through an op that is not a plain broadcast of it (transpose, slice, pad, concat,
/// iota).
std::optional<ir::Graph> coalesceDims(const ir::Graph& body);

}  // namespace weft::cpu::codegen
