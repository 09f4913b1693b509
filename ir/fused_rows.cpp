// The rules of row bodies (see fused_rows.h).
#include "ir/fused_rows.h"

#include <vector>

#include "ir/attrs.h"
#include "ir/ops.h"
#include "ir/verifier.h"

namespace weft::ir {
namespace {

bool isReductionOp(OpKind op) { return op == OpKind::ReduceSum || op == OpKind::ReduceMax || op == OpKind::ReduceMin; }

/// The values the outputs of `body` depend on (themselves included), by value id.
std::vector<bool> liveValues(const Graph& body) {
  std::vector<bool> live(static_cast<size_t>(body.size()), false);
  for (const auto& out : body.outputs())
    if (out.value >= 0 && out.value < body.size()) live[static_cast<size_t>(out.value)] = true;
  for (ValueId v = body.size(); v-- > 0;)  // operands come first: one backward sweep marks them
    if (live[static_cast<size_t>(v)])
      for (ValueId o : body.node(v).operands) live[static_cast<size_t>(o)] = true;
  return live;
}

}  // namespace

bool reducesLastAxis(const Graph& g, const Node& n) {
  if (!isReductionOp(n.op) || n.operands.size() != 1) return false;
  const Shape& in = g.type(n.operands[0]).shape;
  if (in.empty()) return false;
  AttrReader attr(n.attrs, n.op);
  const std::vector<int64_t>& axes = attr.ints("axes");
  const auto last = static_cast<int64_t>(in.size()) - 1;
  if (axes.size() != 1 || axes[0] != last || attr.i("keepdims", 0) != 1) return false;
  Shape row = in;
  row.back() = 1;
  return n.type.shape == row;
}

std::optional<std::string> rowsBodyProblem(const Graph& body) {
  const std::string where = "row body @" + body.name();
  if (body.outputs().empty()) return where + " has no output";
  const Shape& shape = body.type(body.outputs()[0].value).shape;
  if (shape.empty() || shape.back() < 2) return where + ": its output's last extent must be at least 2";
  for (const auto& out : body.outputs())
    if (body.type(out.value).shape != shape) return where + ": its outputs must have one shape";
  Shape scalarShape = shape;
  scalarShape.back() = 1;
  const std::vector<bool> live = liveValues(body);
  // Values that depend on a reduction: the emitted kernel reads them at the current row only.
  std::vector<bool> ofRow(static_cast<size_t>(body.size()), false);
  bool reduces = false;
  for (ValueId v = 0; v < body.size(); ++v) {
    const Node& n = body.node(v);
    if (!live[static_cast<size_t>(v)]) continue;
    const std::string node = std::string(opName(n.op)) + " " + valueRef(body, v);
    for (ValueId o : n.operands) {
      if (!ofRow[static_cast<size_t>(o)]) continue;
      ofRow[static_cast<size_t>(v)] = true;
      // What reads a value of the row keeps to the row: elementwise values of the row's shape
      // or one per row, broadcasts of one per row to the row, reductions of the row.
      const bool elementwise = opInfo(n.op).has(kElementwise) && (n.type.shape == shape || n.type.shape == scalarShape);
      const bool broadcast = n.op == OpKind::Broadcast && n.type.shape == shape && body.type(o).shape == scalarShape;
      if (!elementwise && !broadcast && !isReductionOp(n.op))
        return where + ": " + node + " reads " + valueRef(body, o) +
               ", a value of the row's reductions (only elementwise values of the row's shape or of one per " +
               "row, broadcasts to the row and reductions of the row may)";
    }
    if (!isReductionOp(n.op)) continue;
    if (!reducesLastAxis(body, n) || body.type(n.operands[0]).shape != shape)
      return where + ": " + node + " must reduce the last axis of a " + TensorType{n.type.dtype, shape}.str() +
             " value with keepdims=1";
    ofRow[static_cast<size_t>(v)] = true;
    reduces = true;
  }
  if (!reduces) return where + " reduces nothing (a loop body)";
  return std::nullopt;
}

}  // namespace weft::ir
