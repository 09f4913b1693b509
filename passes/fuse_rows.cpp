// fuse-rows: merges the kernels of a row-wise normalization into one `fused` node of kind
// "rows" (ir/fused_rows.h). fuse-elementwise ends every group in its reduction and starts a
// new one at each value reading a reduction, so softmax over the last axis is four kernels
// (the row max; exp(x - max); its row sum; the division), each a pass over memory. A rows
// kernel runs them one row at a time: a loop per reduction, then one that writes the row,
// while the row stays in the first-level cache.
//
// Algorithm: repeat until nothing merges. For each fused node C of kind "loop" or "rows" (of
// shape S), the last first, collect the fused nodes that only C and the nodes collected so far read, going
// back from C: reduction kernels with one value per row, and loop or rows kernels of shape S
// or one value per row (rowMembers). Of those, a loop kernel stays only when it reads a
// collected reduction (directly or through others; a rows kernel holds its own): exp(x - max) joins, while a GELU
// feeding a layer norm stays a kernel of its own, computed once rather than in each loop of
// the row. When the collected bodies, inlined into one (names made distinct, common values
// merged by cse, dead ones dropped), form a row body (ir::rowsBodyProblem), the merged node
// replaces C (its name, type and location) with kind "rows", and the others go.
//
// Softmax over the last axis merges whole (max; exp(x - max); sum; division), and so does a
// layer norm whose mean and variance nothing else reads (inference): two reductions, the
// per-row values computed from them, and the normalized row.

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "ir/attrs.h"
#include "ir/fused_rows.h"
#include "passes/builtin_passes.h"
#include "passes/fused_names.h"
#include "passes/rewriter.h"
#include "passes/sole_users.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;

/// A merged node: its operands (values of the outer graph) and body.
struct Merged {
  std::vector<ValueId> operands;
  ir::Graph body;
};

/// The bodies of `members` (fused nodes of `g`, in graph order, the consumer last) as one:
/// each member's inputs read the earlier members' values or the merged node's operands.
Merged merge(const ir::Graph& g, const std::vector<ValueId>& members) {
  auto isMember = [&](ValueId v) { return std::find(members.begin(), members.end(), v) != members.end(); };
  Merged m;
  std::set<std::string> taken;
  for (ValueId member : members) {
    for (ValueId o : g.node(member).operands)
      if (!isMember(o) && std::find(m.operands.begin(), m.operands.end(), o) == m.operands.end())
        m.operands.push_back(o);
    for (const ir::Node& n : g.node(member).body->nodes())
      if (n.op != OpKind::Input) taken.insert(n.name);  // inputs are not copied
  }
  std::set<std::string> used;      // names given in the merged body
  std::map<ValueId, ValueId> local;  // outer value (operand or member) -> merged body value
  for (size_t i = 0; i < m.operands.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    while (taken.count(name)) name += "_";
    used.insert(name);
    local[m.operands[i]] = m.body.addInput(name, g.type(m.operands[i]));
  }
  for (ValueId member : members) {
    const ir::Node& node = g.node(member);
    const ir::Graph& body = *node.body;
    std::map<ValueId, ValueId> inner;  // member's body value -> merged body value
    const std::vector<ValueId> inputs = body.inputs();
    for (size_t i = 0; i < inputs.size(); ++i) inner[inputs[i]] = local.at(node.operands[i]);
    for (ValueId v = 0; v < body.size(); ++v) {
      if (body.node(v).op == OpKind::Input) continue;
      ir::Node copy = body.node(v);
      for (ValueId& o : copy.operands) o = inner.at(o);
      if (!copy.name.empty())
        for (std::string base = copy.name; !used.insert(copy.name).second;)
          copy.name = base + "_" + std::to_string(used.size());
      inner[v] = m.body.addNode(std::move(copy));
    }
    local[member] = inner.at(body.outputs()[0].value);
  }
  m.body.addOutput("out", local.at(members.back()));
  eliminateCommonSubexpressions(m.body);
  eliminateDeadCode(m.body);
  m.body.setName(fusedBodyName(m.body));
  return m;
}

/// The fused nodes that merge into `consumer` (a loop or rows kernel of shape S), in graph
/// order with the consumer last: its producers (and theirs) that only it and the other
/// merged nodes read, of kind reduce (one value per row) or loop/rows (of shape S or one
/// value per row), the loop ones only when they read a merged reduction (directly or through
/// other merged nodes; a rows kernel holds its own): what is independent of the row's
/// reductions stays a kernel of its own, computed once rather than in each loop of the row.
std::vector<ValueId> rowMembers(const ir::Graph& g, ValueId consumer, const std::vector<int>& reads) {
  const ir::Shape& shape = g.type(consumer).shape;
  ir::Shape perRow = shape;
  perRow.back() = 1;
  std::set<ValueId> set = {consumer};
  auto readsOnlyFromSet = [&](ValueId p) {
    int inside = 0;
    for (ValueId m : set)
      inside += static_cast<int>(std::count(g.node(m).operands.begin(), g.node(m).operands.end(), p));
    return inside == reads[static_cast<size_t>(p)];
  };
  for (bool grew = true; grew;) {
    grew = false;
    for (auto it = set.rbegin(); it != set.rend() && !grew; ++it)
      for (ValueId p : g.node(*it).operands) {
        const std::string kind = ir::fusedKind(g.node(p));
        const bool fits = kind == "reduce" ? g.type(p).shape == perRow
                          : kind == "loop" || kind == "rows" ? g.type(p).shape == shape || g.type(p).shape == perRow
                                                             : false;
        if (set.count(p) || !fits || g.node(p).body->outputs().size() != 1 || !readsOnlyFromSet(p)) continue;
        set.insert(p);
        grew = true;
        break;
      }
  }
  // Keep the loop and rows producers that read a merged reduction, and what reads them.
  for (bool shrank = true; shrank;) {
    shrank = false;
    std::set<ValueId> dependsOnReduction;
    for (ValueId m : set) {  // graph order: operands first
      if (ir::fusedKind(g.node(m)) == "rows") dependsOnReduction.insert(m);  // holds reductions of its own
      for (ValueId o : g.node(m).operands)
        if (set.count(o) && (ir::fusedKind(g.node(o)) == "reduce" || dependsOnReduction.count(o)))
          dependsOnReduction.insert(m);
    }
    for (ValueId m : set)
      if (m != consumer && ir::fusedKind(g.node(m)) != "reduce" && !dependsOnReduction.count(m)) {
        set.erase(m);
        shrank = true;
        break;
      }
    for (ValueId m : set)  // a member some non-member reads again stays out
      if (m != consumer && !readsOnlyFromSet(m)) {
        set.erase(m);
        shrank = true;
        break;
      }
  }
  return std::vector<ValueId>(set.begin(), set.end());
}

/// One merge into a consumer, or false when none applies.
bool mergeOnce(ir::Graph& g) {
  const std::vector<int> reads = readerCounts(g);
  for (ValueId c = g.size(); c-- > 0;) {  // the last consumer first: it collects the most
    const ir::Node& consumer = g.node(c);
    const std::string kind = ir::fusedKind(consumer);
    if ((kind != "loop" && kind != "rows") || consumer.body->outputs().size() != 1) continue;
    if (consumer.type.shape.empty() || consumer.type.shape.back() < 2) continue;
    const std::vector<ValueId> members = rowMembers(g, c, reads);
    if (members.size() < 2) continue;
    Merged m = merge(g, members);
    if (ir::rowsBodyProblem(m.body)) continue;
    // The merged node replaces the consumer; the other members, read by nothing now, go.
    Rewriter rw(g);
    for (ValueId v = 0; v < g.size(); ++v) {
      rw.begin(v);
      if (v != c) {
        if (std::find(members.begin(), members.end(), v) == members.end()) rw.copy(v);
        continue;
      }
      ir::Node rows = g.node(c);
      rows.name.clear();  // replace() gives it the consumer's
      rows.operands.clear();
      for (ValueId o : m.operands) rows.operands.push_back(rw.map(o));
      rows.attrs["kind"] = std::string("rows");
      rows.body = std::make_shared<const ir::Graph>(std::move(m.body));
      rw.replace(c, rw.target().addNode(std::move(rows)));
    }
    g = rw.finish();
    return true;
  }
  return false;
}

}  // namespace

bool fuseRows(ir::Graph& g) {
  bool changed = false;
  while (mergeOnce(g)) changed = true;
  return changed;
}

}  // namespace weft::passes
