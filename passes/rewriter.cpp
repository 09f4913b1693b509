#include "passes/rewriter.h"

#include <stdexcept>

namespace weft::passes {

using ir::ValueId;

Rewriter::Rewriter(const ir::Graph& source)
    : source_(source), target_(source.name()), map_(static_cast<size_t>(source.size()), -1) {}

bool Rewriter::isMapped(ValueId old) const {
  return old >= 0 && old < source_.size() && map_[static_cast<size_t>(old)] >= 0;
}

ValueId Rewriter::map(ValueId old) const {
  if (!isMapped(old))
    throw std::logic_error("rewriter: value %" + std::to_string(old) + " of @" + source_.name() +
                           " has no new value");
  return map_[static_cast<size_t>(old)];
}

std::vector<ValueId> Rewriter::mappedOperands(ValueId old) const {
  std::vector<ValueId> r;
  for (ValueId o : source_.node(old).operands) r.push_back(map(o));
  return r;
}

void Rewriter::begin(ValueId old) {
  (void)old;
  firstFresh_ = target_.size();
}

ValueId Rewriter::copy(ValueId old) {
  ir::Node n = source_.node(old);
  n.operands = mappedOperands(old);
  if (!n.name.empty()) usedNames_.insert(n.name);
  ValueId v = target_.addNode(std::move(n));
  map_[static_cast<size_t>(old)] = v;
  return v;
}

void Rewriter::replace(ValueId old, ValueId replacement) {
  const ir::Node& was = source_.node(old);
  ir::Node& now = target_.node(replacement);
  bool fresh = replacement >= firstFresh_;
  if (!was.name.empty() && now.name.empty() && !usedNames_.count(was.name)) {
    now.name = was.name;
    usedNames_.insert(was.name);
  }
  if (fresh)
    for (ValueId v = firstFresh_; v < target_.size(); ++v)
      if (target_.node(v).loc.empty()) target_.node(v).loc = was.loc;
  map_[static_cast<size_t>(old)] = replacement;
}

void Rewriter::erase(ValueId old) { map_[static_cast<size_t>(old)] = -1; }

ir::Graph Rewriter::finish() {
  for (const auto& out : source_.outputs()) target_.addOutput(out.name, map(out.value));
  for (const auto& u : source_.updates()) target_.addUpdate(map(u.param), map(u.value));
  return std::move(target_);
}

bool rewriteNodes(ir::Graph& g, const NodeRewrite& rewrite) {
  Rewriter rw(g);
  bool changed = false;
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    if (auto replacement = rewrite(rw, v)) {
      rw.replace(v, *replacement);
      changed = true;
    } else if (!rw.isMapped(v)) {
      rw.copy(v);
    }
  }
  if (changed) g = rw.finish();
  return changed;
}

}  // namespace weft::passes
