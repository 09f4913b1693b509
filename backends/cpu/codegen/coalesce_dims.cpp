// Dimension coalescing of kernel bodies. Algorithm:
//  1. The iteration space is the output's shape, or for an output reduction its operand's
//     (the root), of rank R.
//  2. The aligned values are those evaluated at the iteration's index, broadcast numpy-style
//     (right-aligned): the root and the operands of aligned elementwise ops and broadcasts.
//     A reshape reads its operand through its own index map, so that operand is not aligned
//     by it. Any other op among the aligned values, or another consumer of one, stops here.
//  3. Padded with leading 1s to rank R, every aligned value is 1 or the full extent in each
//     dimension. Dimensions are grouped greedily from the left: d joins the group before it
//     when every aligned value is 1 in all of the group's dimensions and d, or full in all of
//     them, and d is reduced exactly when the group is.
//  4. A copy of the body gets each aligned value's shape as the product over each group,
//     with its broadcast or reshape shape, constant type and the reduction's axes to match.
//     The copy is verified (types re-inferred); a copy that does not verify is dropped.
#include "backends/cpu/codegen/coalesce_dims.h"

#include <vector>

#include "ir/attrs.h"
#include "ir/ops.h"
#include "ir/verifier.h"

namespace weft::cpu::codegen {
namespace {

using ir::OpKind;
using ir::Shape;
using ir::ValueId;

bool isReduction(OpKind op) { return op == OpKind::ReduceSum || op == OpKind::ReduceMax || op == OpKind::ReduceMin; }

/// The values reachable from `from`.
std::vector<bool> liveFrom(const ir::Graph& g, ValueId from) {
  std::vector<bool> live(static_cast<size_t>(g.size()), false);
  std::vector<ValueId> stack = {from};
  while (!stack.empty()) {
    ValueId v = stack.back();
    stack.pop_back();
    if (live[static_cast<size_t>(v)]) continue;
    live[static_cast<size_t>(v)] = true;
    for (ValueId o : g.node(v).operands) stack.push_back(o);
  }
  return live;
}

/// The values read at the iteration's index (step 2), or nullopt when one is read otherwise.
std::optional<std::vector<bool>> alignedValues(const ir::Graph& g, ValueId root, ValueId out, size_t rank) {
  std::vector<bool> aligned(static_cast<size_t>(g.size()), false);
  std::vector<ValueId> stack = {root};
  while (!stack.empty()) {
    ValueId v = stack.back();
    stack.pop_back();
    if (aligned[static_cast<size_t>(v)]) continue;
    aligned[static_cast<size_t>(v)] = true;
    const ir::Node& n = g.node(v);
    if (n.type.shape.size() > rank) return std::nullopt;
    if (n.op == OpKind::Input || n.op == OpKind::Constant || n.op == OpKind::Reshape) continue;
    if (n.op != OpKind::Broadcast && !ir::opInfo(n.op).has(ir::kElementwise)) return std::nullopt;
    for (ValueId o : n.operands) stack.push_back(o);
  }
  std::vector<bool> live = liveFrom(g, out);
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!live[static_cast<size_t>(v)] || aligned[static_cast<size_t>(v)] || v == out || n.op == OpKind::Reshape)
      continue;
    for (ValueId o : n.operands)
      if (aligned[static_cast<size_t>(o)]) return std::nullopt;
  }
  return aligned;
}

/// `shape` with leading 1s up to `rank`.
Shape padded(Shape shape, size_t rank) {
  shape.insert(shape.begin(), rank - shape.size(), 1);
  return shape;
}

/// True when `shape` is 1 in every dimension of `dims`, or `full`'s extent in every one.
bool uniform(const Shape& shape, const Shape& full, const std::vector<size_t>& dims) {
  bool ones = true, whole = true;
  for (size_t d : dims) {
    ones = ones && shape[d] == 1;
    whole = whole && shape[d] == full[d];
  }
  return ones || whole;
}

/// The groups of step 3.
std::vector<std::vector<size_t>> mergeGroups(const std::vector<Shape>& shapes, const Shape& full,
                                             const std::vector<bool>& reduced) {
  std::vector<std::vector<size_t>> groups = {{0}};
  for (size_t d = 1; d < full.size(); ++d) {
    std::vector<size_t> candidate = groups.back();
    candidate.push_back(d);
    bool joins = reduced[d] == reduced[candidate[0]];
    for (const Shape& shape : shapes) joins = joins && uniform(shape, full, candidate);
    if (joins) groups.back() = std::move(candidate);
    else groups.push_back({d});
  }
  return groups;
}

/// `shape` (of the iteration's rank) with each group's dimensions multiplied into one.
Shape merged(const Shape& shape, const std::vector<std::vector<size_t>>& groups) {
  Shape result;
  for (const auto& group : groups) {
    int64_t extent = 1;
    for (size_t d : group) extent *= shape[d];
    result.push_back(extent);
  }
  return result;
}

}  // namespace

std::optional<ir::Graph> coalesceDims(const ir::Graph& body) {
  if (body.outputs().size() != 1) return std::nullopt;
  ValueId out = body.outputs()[0].value;
  if (out < 0 || out >= body.size()) return std::nullopt;
  const ir::Node& outNode = body.node(out);
  bool reduces = isReduction(outNode.op);
  std::vector<int64_t> axes;
  if (reduces) {
    axes = ir::AttrReader(outNode.attrs, outNode.op).ints("axes");
    if (axes.empty()) return std::nullopt;
  }
  ValueId root = reduces ? outNode.operands[0] : out;
  const Shape full = body.type(root).shape;
  size_t rank = full.size();
  if (rank < 2) return std::nullopt;
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) reduced[static_cast<size_t>(a)] = true;

  auto aligned = alignedValues(body, root, out, rank);
  if (!aligned) return std::nullopt;
  std::vector<Shape> shapes;
  for (ValueId v = 0; v < body.size(); ++v) {
    if (!(*aligned)[static_cast<size_t>(v)]) continue;
    Shape shape = padded(body.type(v).shape, rank);
    for (size_t d = 0; d < rank; ++d)
      if (shape[d] != 1 && shape[d] != full[d]) return std::nullopt;
    shapes.push_back(std::move(shape));
  }
  auto groups = mergeGroups(shapes, full, reduced);
  if (groups.size() == rank) return std::nullopt;

  ir::Graph copy = body;
  for (ValueId v = 0; v < body.size(); ++v) {
    if (!(*aligned)[static_cast<size_t>(v)]) continue;
    ir::Node& n = copy.node(v);
    n.type.shape = merged(padded(n.type.shape, rank), groups);
    if (n.op == OpKind::Broadcast || n.op == OpKind::Reshape) n.attrs["shape"] = n.type.shape;
    if (n.op == OpKind::Constant) {
      auto data = std::make_shared<ir::TensorData>(*ir::AttrReader(n.attrs, n.op).tensor("value"));
      data->type = n.type;
      n.attrs["value"] = ir::TensorDataPtr(std::move(data));
    }
  }
  if (reduces) {
    ir::Node& n = copy.node(out);
    bool keepdims = ir::AttrReader(n.attrs, n.op).i("keepdims") != 0;
    std::vector<int64_t> newAxes;
    Shape shape;
    for (size_t k = 0; k < groups.size(); ++k) {
      if (reduced[groups[k][0]]) {
        newAxes.push_back(static_cast<int64_t>(k));
        if (keepdims) shape.push_back(1);
      } else {
        shape.push_back(merged(full, {groups[k]})[0]);
      }
    }
    n.attrs["axes"] = newAxes;
    n.type.shape = shape;
  }
  if (!ir::verifyErrors(copy).empty()) return std::nullopt;
  return copy;
}

}  // namespace weft::cpu::codegen
