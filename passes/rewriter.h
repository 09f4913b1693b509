#pragma once
/// Rewriter: builds a new graph from an old one node by node, keeping an old->new value map.
/// A pass copies each old node, or replaces it by a value of the new graph (an earlier value
/// or a small sub-graph it emits). Names, locations and outputs carry over:
///  - a copied node keeps its name and loc;
///  - a replaced node's name moves to its replacement when that value was made for it, or when
///    the replacement is an earlier unnamed value; nodes emitted for it get its loc;
///  - outputs are retargeted through the map and keep their names.
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/emitter.h"

namespace weft::passes {

/// Builds a new graph from `source` with an old->new value map.
class Rewriter {
 public:
  /// Starts an empty target graph named like `source`; `source` must outlive the rewriter.
  explicit Rewriter(const ir::Graph& source);

  /// The graph being rewritten.
  const ir::Graph& source() const { return source_; }
  /// The graph being built.
  ir::Graph& target() { return target_; }
  /// True when old value `old` has a value in the new graph.
  bool isMapped(ir::ValueId old) const;
  /// The new value of old value `old`; throws std::logic_error when it was erased or not yet visited.
  ir::ValueId map(ir::ValueId old) const;
  /// The new values of the operands of old node `old`.
  std::vector<ir::ValueId> mappedOperands(ir::ValueId old) const;
  /// The node of the new graph that old value `old` maps to.
  const ir::Node& mappedNode(ir::ValueId old) const { return target_.node(map(old)); }

  /// Starts work on old node `old`: nodes emitted from now on are made for it.
  void begin(ir::ValueId old);
  /// An emitter into the new graph stamping nodes with the loc of old node `old`.
  Emitter emitterFor(ir::ValueId old) { return Emitter(target_, source_.node(old).loc); }
  /// Copies old node `old` with its operands mapped; returns its new value.
  ir::ValueId copy(ir::ValueId old);
  /// Maps old value `old` to new value `replacement` (see the name rules above).
  void replace(ir::ValueId old, ir::ValueId replacement);
  /// Drops old node `old`; mapping it later is an error.
  void erase(ir::ValueId old);
  /// The finished graph, with outputs retargeted. Throws std::logic_error when an output's
  /// value was erased.
  ir::Graph finish();

 private:
  const ir::Graph& source_;
  ir::Graph target_;
  std::vector<ir::ValueId> map_;  // -1: not mapped
  std::set<std::string> usedNames_;
  ir::ValueId firstFresh_ = 0;  // first new value made for the current old node
};

/// What a "copy with substitutions" pass does with one old node: nullopt keeps it (copied
/// unless the function already mapped it itself), a value replaces it.
using NodeRewrite = std::function<std::optional<ir::ValueId>(Rewriter&, ir::ValueId old)>;

/// Rebuilds `g` visiting its nodes in order with `rewrite`. Returns true when some node was
/// replaced; `g` is only reassigned then, so an unchanged graph stays exactly as it was.
bool rewriteNodes(ir::Graph& g, const NodeRewrite& rewrite);

}  // namespace weft::passes
