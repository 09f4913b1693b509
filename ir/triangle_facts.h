#pragma once
/// Facts about the two sides of a diagonal: for each value whose last two dims are square,
/// what its entries strictly above the diagonal hold, and what the others hold (zero, -inf,
/// the column > row mask of two integer iotas, finite values, anything), found by an
/// abstract interpretation of a graph in node order. The triangular-matmuls pass and the
/// CPU backend's rows kernels read them to skip what causal attention's mask makes useless.
/// Values are taken to be finite unless known otherwise (x * 0 = 0), and divisors nonzero
/// (0 / x = 0), as attention's masks assume.
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace weft::ir {

/// What a part of a value (its entries above the diagonal, or the others) is known to hold.
enum class Known : uint8_t {
  Anything,          ///< finite values, not known further
  Unbounded,         ///< any values, infinities and NaN among them
  Tainted,           ///< finite values that depend on a tainted value's entries above its diagonal
  TaintedUnbounded,  ///< depends on them and may be infinite (1 / x, where a skipped x is 0)
  Zero,
  MinusInf,
  True,              ///< booleans
  False,
  Column,            ///< an integer iota along the last dim
  Row,               ///< an integer iota along the second last dim
};

/// True for Tainted and TaintedUnbounded.
bool isTaint(Known k);
/// False for Unbounded, TaintedUnbounded and MinusInf.
bool isFinite(Known k);

/// Facts about one value: its entries strictly above the diagonal of its last two dims, and
/// the others. Values whose last two dims are not square hold the same fact in both.
struct Fact {
  Known above = Known::Anything, rest = Known::Anything;
};

/// True when `shape` has a diagonal: rank >= 2, the last two dims equal and above 1.
bool hasDiagonal(const Shape& shape);

/// The facts of every value of `g` (its inputs and parameters: Anything) when the values
/// marked in `tainted` (by value id) have tainted entries above their diagonals.
std::vector<Fact> triangleFacts(const Graph& g, const std::vector<bool>& tainted);

/// True when the rows of body `rows` (a fused node's, of kind "rows") need not go past the
/// diagonal: its outputs are square in their last two dims and zero above the diagonal,
/// and each reduction's terms above it are the reduction's identity (0 for a sum, -inf for
/// a max), so row i of each matrix may stop at column i and write zeros after it.
bool rowsStopAtDiagonal(const Graph& rows);

}  // namespace weft::ir
