#pragma once
/// The loop structure of a generated kernel, decided from the body graph alone (no MLIR):
/// which ops are supported, the iteration space, and for reductions the loop order and the
/// dimension split across threads.
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::cpu::codegen {

/// How a body becomes loops.
struct KernelPlan {
  /// Loop: one output element per iteration. Reduce: the root folds a chain over some axes.
  /// Rows: a row body (ir/fused_rows.h): per row, a loop per reduction, then the outputs.
  enum class Kind { Loop, Reduce, Rows };
  Kind kind = Kind::Loop;
  /// The value the loops evaluate per iteration: the output (Loop), or the reduction's
  /// operand (Reduce), whose shape is then the iteration space.
  ir::ValueId root = -1;
  /// The reduction op (ReduceSum, ReduceMax or ReduceMin) of a Reduce plan.
  ir::OpKind reduceOp = ir::OpKind::ReduceSum;
  /// The nodes reachable from the output (only those are generated).
  std::vector<bool> live;

  /// Loop: every value has the output's size (and shape) or one element, so every buffer
  /// is seen as a flat vector and the loops are one range over all elements.
  bool flat = false;
  /// Loop: the iteration space: {numel} when flat; otherwise, of the output dimensions whose
  /// extent is not 1, {rows, last}: the product of all but the last one, and the last one
  /// ({extent} for a single one, {1} for none); for short rows (kShortRowExtent) of three or
  /// more dimensions, {rows, middle, last}: the product of all but the last two, then the
  /// last two. Dimension 0 is the parallel one.
  std::vector<int64_t> loopShape;

  /// Reduce: per dimension of the root's shape, whether it is reduced.
  std::vector<bool> reduced;
  /// Reduce: dimensions [suffixStart, rank) are reduced and fold into a register in the
  /// innermost loops; the dimensions before are looped over in order.
  int suffixStart = 0;
  /// Reduce: a reduced dimension lies before suffixStart, so the output slice of the thread
  /// is initialized first and accumulated into.
  bool accumulate = false;
  /// Reduce: the dimension whose range [begin, end) a call covers: the largest kept one, or
  /// with partialSums a reduced one; -1 when every dimension is reduced.
  int parallelDim = -1;
  /// Reduce: the parallel dimension is a reduced one, so each call writes the whole output
  /// as the sum over its range, and the caller adds the calls' outputs (an f32 reduce_sum
  /// with at most kMaxPartialElements outputs whose kept dimensions are too narrow to split:
  /// batch norm's per-channel sums, bias gradients).
  bool partialSums = false;

  /// Loop: the indices (into the body's outputs, from 1) of its side sums (ir/side_sums.h): each
  /// call sets them to 0 and adds the values of its iterations in, so that the calls'
  /// results are partial sums the caller adds up, as for partialSums. The loops are not flat.
  std::vector<size_t> sideSums;

  /// Rows: the body's reductions, in order (each folds its operand along the row into a
  /// value the later ones and the outputs read); loopShape is {rows, row length}.
  std::vector<ir::ValueId> rowReductions;
  /// Rows: when above 0, the outputs are [..., diagonal, diagonal] and zero right of their
  /// diagonals, and every row reduction's terms there are its identity (0 for a sum, -inf
  /// for a max), as ir/triangle_facts.h finds for causal attention's softmax: row i of each
  /// matrix then loops over columns 0..i, rounded up to a vector of 16 (the entries it
  /// computes past i are the zeros the body gives there), and writes 0 to the others.
  /// This holds for finite inputs and nonzero divisors (ir/triangle_facts.h).
  int64_t diagonal = 0;

  /// Iterations of the parallel loop.
  int64_t parallelExtent = 1;
  /// Elements evaluated by all calls together (the output's for Loop, the root's for
  /// Reduce): the work that decides whether a kernel is worth splitting across threads.
  int64_t work = 1;
};

/// A loop kernel's rows at most this long get a middle loop (see KernelPlan::loopShape):
/// blocked data's 16-channel rows, channels-last rows of few channels.
inline constexpr int64_t kShortRowExtent = 64;
/// ... when the loops outside it still split across threads.
inline constexpr int64_t kMinParallelRows = 8;
/// The most outputs a partial-sums reduction has (each extra thread adds up one copy).
inline constexpr int64_t kMaxPartialElements = 4096;
/// A partial-sums reduction reads at least this many elements per output (else the copies
/// the threads add up cost as much as the sums they split).
inline constexpr int64_t kMinPartialRatio = 16;
/// The shortest reduced dimension a partial-sums reduction splits.
inline constexpr int64_t kMinPartialExtent = 4;
/// A reduction of every dimension keeps its first one apart when at least this many elements
/// follow it (coalesceDims), and then splits it into partial sums (its innermost loop stays
/// long enough to vectorize).
inline constexpr int64_t kMinFullReductionRow = 256;
/// A kept dimension narrower than this does not split well across threads (a reduction
/// over rows of a channels-last tensor keeps its channels innermost: a thread's share of
/// 32 channels is part of one cache line per row).
inline constexpr int64_t kNarrowParallelExtent = 256;
/// The most kept elements a reduction sums in registers (the emitter's register reduce
/// kernel): 64 channels of channels-last data, 4 blocks of 16 of blocked data; each is a
/// copy of the body in the innermost loop. A single kept last dimension of a multiple of it
/// is summed in chunks of it, each a pass over the rows; such a reduction splits its rows
/// into partial sums however wide it is (gpt's bias gradients, 768 and 1024 columns over
/// 1024 rows: 0.12-0.20 ms each with the columns split and the sums in memory, about half
/// with the rows split and the sums in registers).
inline constexpr int64_t kMaxRegisterAccumulators = 64;

/// True when a reduction of `shape` keeping only its last dim (`reduced` marks the others)
/// sums that dim in register chunks of kMaxRegisterAccumulators: its extent is a multiple.
bool sumsLastDimInChunks(const ir::Shape& shape, const std::vector<bool>& reduced);

/// True for the reductions a kernel can end in: reduce_sum, reduce_max, reduce_min.
bool isReduction(ir::OpKind op);

/// The values of `g` that `root` depends on (itself included), by value id.
std::vector<bool> reachable(const ir::Graph& g, ir::ValueId root);

/// Why `body` cannot be generated (naming the op, value and dtype), or nullopt.
std::optional<std::string> unsupportedReason(const ir::Graph& body);

/// The plan of `body`; throws weft::Error when it cannot be generated.
KernelPlan planKernel(const ir::Graph& body);

}  // namespace weft::cpu::codegen
