#pragma once
/// The graph IR: a list of nodes in SSA form and topological order.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/attrs.h"
#include "ir/ops.h"
#include "ir/types.h"

namespace weft::ir {

/// A value is named by the index of the node that defines it.
using ValueId = int32_t;

class Graph;

/// One node: an op applied to earlier values. Inputs, parameters and constants are nodes
/// too (ops `input`, `param`, `constant`), so every value has exactly one defining node.
struct Node {
  OpKind op = OpKind::Input;
  std::vector<ValueId> operands;
  Attrs attrs;
  TensorType type;
  std::string name;  ///< empty for unnamed values, which print as %0, %1, ...
  std::string loc;   ///< where the node was made (model source line), for messages; may be empty
  /// The sub-graph of a `fused` node (its inputs are the node's operands in order, its one
  /// output the node's result); null for every other op. Shared and immutable, so copying
  /// a graph copies no bodies.
  std::shared_ptr<const Graph> body;
};

/// The kind of fused node `n` ("loop", "matmul", ...: its `kind` attribute), or "" for any
/// other node.
std::string fusedKind(const Node& n);

/// A named result of the graph.
struct Output {
  std::string name;
  ValueId value;
};

/// A write-back of persistent state: after a run, parameter `param` takes the value `value`
/// (printed as `update %param = %value`). Training steps update weights and optimizer state so.
struct StateUpdate {
  ValueId param;
  ValueId value;
};

/// A static graph: nodes in topological order (each operand is defined by an earlier node),
/// named inputs, persistent parameters, constants and named outputs.
class Graph {
 public:
  /// Creates an empty graph called `name`.
  explicit Graph(std::string name = "main") : name_(std::move(name)) {}

  /// The graph's name (printed as `graph @name`).
  const std::string& name() const { return name_; }
  /// Renames the graph.
  void setName(std::string n) { name_ = std::move(n); }
  /// All nodes in order.
  const std::vector<Node>& nodes() const { return nodes_; }
  /// The node defining value `v`.
  const Node& node(ValueId v) const { return nodes_.at(static_cast<size_t>(v)); }
  /// The node defining value `v`, mutable.
  Node& node(ValueId v) { return nodes_.at(static_cast<size_t>(v)); }
  /// The type of value `v`.
  const TensorType& type(ValueId v) const { return node(v).type; }
  /// Number of nodes.
  int32_t size() const { return static_cast<int32_t>(nodes_.size()); }

  /// Adds a graph input.
  ValueId addInput(const std::string& name, TensorType type);
  /// Adds a persistent parameter with its initializer attributes (`init`, `seed`, `scale`).
  ValueId addParam(const std::string& name, TensorType type, Attrs init);
  /// Adds a constant holding `data`.
  ValueId addConstant(TensorDataPtr data, const std::string& name = "");
  /// Adds an op node, computing its type from the op table's type rule.
  /// Throws weft::Error naming the op and operand types when the rule rejects them.
  ValueId addOp(OpKind op, std::vector<ValueId> operands, Attrs attrs = {},
                const std::string& name = "", const std::string& loc = "");
  /// Appends a node as given (type included); the verifier checks it later.
  ValueId addNode(Node n);
  /// Marks `v` as the output called `name`.
  void addOutput(const std::string& name, ValueId v);

  /// Records that parameter `param` takes `value` after each run.
  void addUpdate(ValueId param, ValueId value) { updates_.push_back({param, value}); }
  /// The state write-backs in order.
  const std::vector<StateUpdate>& updates() const { return updates_; }
  /// Mutable state write-backs (passes retarget them).
  std::vector<StateUpdate>& updates() { return updates_; }

  /// The graph's outputs in order.
  const std::vector<Output>& outputs() const { return outputs_; }
  /// Mutable outputs (passes retarget them).
  std::vector<Output>& outputs() { return outputs_; }
  /// Values of `input` nodes in order.
  std::vector<ValueId> inputs() const { return valuesOf(OpKind::Input); }
  /// Values of `param` nodes in order.
  std::vector<ValueId> params() const { return valuesOf(OpKind::Param); }
  /// The value whose node is named `name`, if any.
  std::optional<ValueId> find(const std::string& name) const;
  /// The output named `name`, if any.
  std::optional<ValueId> findOutput(const std::string& name) const;

 private:
  std::vector<ValueId> valuesOf(OpKind k) const;
  std::string name_;
  std::vector<Node> nodes_;
  std::vector<Output> outputs_;
  std::vector<StateUpdate> updates_;
};

/// Computes the result type of `op` applied to operands of `operandTypes` with `attrs`,
/// using the type rule the op table names. Throws weft::Error on a mismatch.
TensorType inferType(OpKind op, const std::vector<TensorType>& operandTypes, const Attrs& attrs);

}  // namespace weft::ir
