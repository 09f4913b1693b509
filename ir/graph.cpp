#include "ir/graph.h"

#include "ir/error.h"

namespace weft::ir {

ValueId Graph::addNode(Node n) {
  nodes_.push_back(std::move(n));
  return static_cast<ValueId>(nodes_.size() - 1);
}

ValueId Graph::addInput(const std::string& name, TensorType type) {
  Node n;
  n.op = OpKind::Input;
  n.type = std::move(type);
  n.name = name;
  return addNode(std::move(n));
}

ValueId Graph::addParam(const std::string& name, TensorType type, Attrs init) {
  Node n;
  n.op = OpKind::Param;
  n.type = std::move(type);
  n.name = name;
  n.attrs = std::move(init);
  return addNode(std::move(n));
}

ValueId Graph::addConstant(TensorDataPtr data, const std::string& name) {
  Node n;
  n.op = OpKind::Constant;
  n.type = data->type;
  n.attrs["value"] = std::move(data);
  n.name = name;
  return addNode(std::move(n));
}

ValueId Graph::addOp(OpKind op, std::vector<ValueId> operands, Attrs attrs,
                     const std::string& name, const std::string& loc) {
  std::vector<TensorType> types;
  for (ValueId v : operands) {
    if (v < 0 || v >= size())
      throw Error(std::string(opName(op)) + ": operand %" + std::to_string(v) + " does not exist");
    types.push_back(type(v));
  }
  Node n;
  n.op = op;
  n.type = inferType(op, types, attrs);
  n.operands = std::move(operands);
  n.attrs = std::move(attrs);
  n.name = name;
  n.loc = loc;
  return addNode(std::move(n));
}

void Graph::addOutput(const std::string& name, ValueId v) { outputs_.push_back({name, v}); }

std::vector<ValueId> Graph::valuesOf(OpKind k) const {
  std::vector<ValueId> r;
  for (ValueId v = 0; v < size(); ++v)
    if (nodes_[static_cast<size_t>(v)].op == k) r.push_back(v);
  return r;
}

std::optional<ValueId> Graph::find(const std::string& name) const {
  for (ValueId v = 0; v < size(); ++v)
    if (nodes_[static_cast<size_t>(v)].name == name) return v;
  return std::nullopt;
}

std::optional<ValueId> Graph::findOutput(const std::string& name) const {
  for (const auto& o : outputs_)
    if (o.name == name) return o.value;
  return std::nullopt;
}

std::string fusedKind(const Node& n) {
  return n.op == OpKind::Fused && n.body ? AttrReader(n.attrs, n.op).s("kind") : std::string();
}

}  // namespace weft::ir
