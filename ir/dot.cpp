// Graphviz export: one DOT node per value (`v<id>`), labelled `%ref\nop\ntype` with the
// same value references as the text printer, an edge from each operand to its user, and one
// extra node per graph output (`out<i>`). Inputs, parameters and constants get their own
// shapes and colours so that the data a graph reads stands out from what it computes. A fused
// node is one box labelled `%ref\nfused KIND\nop, op, ...\ntype`, listing the ops its body
// computes in body order (inputs and constants left out, repeats kept once).
#include "ir/dot.h"

#include "ir/printer.h"

namespace weft::ir {
namespace {

/// `s` escaped for a double-quoted DOT string (a literal `\n` is added by the caller).
std::string escaped(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    if (c == '\n') {
      r += "\\n";
      continue;
    }
    r += c;
  }
  return r;
}


/// The DOT attributes giving a node of op `op` its shape and colour.
std::string style(OpKind op) {
  switch (op) {
    case OpKind::Input: return "shape=invhouse, style=filled, fillcolor=\"#cfe2ff\"";
    case OpKind::Param: return "shape=box, style=filled, fillcolor=\"#d1e7dd\"";
    case OpKind::Constant: return "shape=box, style=\"rounded,filled\", fillcolor=\"#fff3cd\"";
    case OpKind::Fused: return "shape=box, style=filled, fillcolor=\"#e2d9f3\"";
    default: return "shape=ellipse";
  }
}

std::string dotId(ValueId v) { return "v" + std::to_string(v); }

/// What the label says a node computes: its op, or for a fused node its kind and body ops.
std::string opLabel(const Node& n) {
  std::string label(opName(n.op));
  if (n.op != OpKind::Fused) return label;
  if (auto it = n.attrs.find("kind"); it != n.attrs.end())
    if (auto* kind = std::get_if<std::string>(&it->second)) label += " " + *kind;
  if (!n.body) return label;
  std::vector<std::string_view> ops;
  for (const Node& inner : n.body->nodes()) {
    if (inner.op == OpKind::Input || inner.op == OpKind::Constant) continue;
    std::string_view name = opName(inner.op);
    bool seen = false;
    for (auto o : ops) seen |= o == name;
    if (!seen) ops.push_back(name);
  }
  label += "\n";
  for (size_t i = 0; i < ops.size(); ++i) label += (i ? ", " : "") + std::string(ops[i]);
  return label;
}

}  // namespace

std::string toDot(const Graph& g) {
  std::vector<std::string> refs = valueRefs(g);
  std::string out = "digraph \"" + escaped(g.name()) + "\" {\n";
  out += "  node [fontname=\"monospace\"];\n";
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    std::string label = refs[static_cast<size_t>(v)] + "\n" + opLabel(n) + "\n" + n.type.str();
    out += "  " + dotId(v) + " [label=\"" + escaped(label) + "\", " + style(n.op) + "];\n";
  }
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId operand : g.node(v).operands)
      if (operand >= 0 && operand < g.size()) out += "  " + dotId(operand) + " -> " + dotId(v) + ";\n";
  for (size_t i = 0; i < g.outputs().size(); ++i) {
    const Output& o = g.outputs()[i];
    std::string id = "out" + std::to_string(i);
    out += "  " + id + " [label=\"" + escaped(o.name) +
           "\", shape=doubleoctagon, style=filled, fillcolor=\"#f8d7da\"];\n";
    if (o.value >= 0 && o.value < g.size()) out += "  " + dotId(o.value) + " -> " + id + ";\n";
  }
  return out + "}\n";
}

}  // namespace weft::ir
