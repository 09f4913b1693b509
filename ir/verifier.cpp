// The verifier: every invariant of ir/verifier.h, checked node by node; a fused node's body
// is verified recursively (as a graph of its own, plus the rules that tie it to the node).
#include "ir/verifier.h"

#include <set>

#include "ir/error.h"
#include "ir/fused_attention.h"
#include "ir/fused_rows.h"
#include "ir/param_init.h"
#include "ir/printer.h"

namespace weft::ir {

std::string valueRef(const Graph& g, ValueId v) {
  if (v < 0 || v >= g.size()) return "%<invalid " + std::to_string(v) + ">";
  const Node& n = g.node(v);
  if (!n.name.empty()) return "%" + n.name;
  // The printer's number (ir/printer.h valueRefs): unnamed inputs first, then the other
  // unnamed nodes in graph order.
  int64_t number = 0;
  for (ValueId u : g.inputs()) {
    if (u == v) return "%" + std::to_string(number);
    number += g.node(u).name.empty();
  }
  if (n.op != OpKind::Input)
    for (ValueId u = 0; u < v; ++u) number += g.node(u).op != OpKind::Input && g.node(u).name.empty();
  return "%" + std::to_string(number);
}

std::string checkIndexMessage(const std::string& what, int64_t index, int64_t position, const std::string& ref,
                              int64_t limit) {
  return what + " " + std::to_string(index) + " (at position " + std::to_string(position) + " of " + ref +
         ") is out of range [0, " + std::to_string(limit) + ")";
}

static void checkAttrs(const Node& n, const std::string& where, std::vector<std::string>& errs) {
  const OpInfo& info = opInfo(n.op);
  for (const auto& spec : info.attrs) {
    auto it = n.attrs.find(spec.name);
    if (it == n.attrs.end()) {
      if (!spec.optional) errs.push_back(where + ": missing attribute '" + spec.name + "'");
      continue;
    }
    AttrKind k = attrKindOf(it->second);
    if (k != spec.kind && !(spec.kind == AttrKind::Float && k == AttrKind::Int))
      errs.push_back(where + ": attribute '" + spec.name + "' must be " +
                     std::string(attrKindName(spec.kind)) + ", got " + std::string(attrKindName(k)));
    else if (const auto* flag = std::get_if<int64_t>(&it->second); spec.flag && flag && *flag != 0 && *flag != 1)
      errs.push_back(where + ": attribute '" + spec.name + "' must be 0 or 1, got " + std::to_string(*flag));
  }
  for (const auto& [name, value] : n.attrs)
    if (!info.attr(name)) errs.push_back(where + ": unknown attribute '" + name + "'");
}

/// The kinds a fused node may have.
static bool isFusedKind(const std::string& kind) {
  return kind == "loop" || kind == "reduce" || kind == "rows" || kind == "matmul" || kind == "conv" ||
         kind == "attention" || kind == "attention_grad";
}

/// Checks fused node `n` and its body: a valid graph whose inputs have the operand types in
/// order, with no parameters or updates and exactly one output of the node's type.
static void checkFused(const Graph& g, const Node& n, const std::string& where, int depth,
                       std::vector<std::string>& errs);

static std::vector<std::string> verifyGraph(const Graph& g, int depth);

std::vector<std::string> verifyErrors(const Graph& g) { return verifyGraph(g, 0); }

/// Bodies nested deeper than this are reported instead of followed (bounds the recursion).
static constexpr int kMaxBodyDepth = 64;

static void checkFused(const Graph& g, const Node& n, const std::string& where, int depth,
                       std::vector<std::string>& errs) {
  const size_t errorsBefore = errs.size();
  if (auto it = n.attrs.find("kind"); it != n.attrs.end())
    if (auto* kind = std::get_if<std::string>(&it->second); kind && !isFusedKind(*kind))
      errs.push_back(where + ": kind must be loop, reduce, rows, matmul, conv, attention or attention_grad, got \"" + *kind + "\"");
  if (!n.body) {
    errs.push_back(where + ": fused node has no body");
    return;
  }
  const Graph& body = *n.body;
  std::string in = where + ": body @" + body.name();
  if (depth >= kMaxBodyDepth) {
    errs.push_back(in + ": fused bodies nest more than " + std::to_string(kMaxBodyDepth) + " deep");
    return;
  }
  for (const std::string& e : verifyGraph(body, depth + 1)) errs.push_back(in + ": " + e);
  std::vector<ValueId> inputs = body.inputs();
  if (inputs.size() != n.operands.size()) {
    errs.push_back(in + ": takes " + std::to_string(inputs.size()) + " inputs but the node has " +
                   std::to_string(n.operands.size()) + " operands");
  } else {
    for (size_t i = 0; i < inputs.size(); ++i)
      if (body.type(inputs[i]) != g.type(n.operands[i]))
        errs.push_back(in + ": input " + valueRef(body, inputs[i]) + " has type " + body.type(inputs[i]).str() +
                       " but operand " + valueRef(g, n.operands[i]) + " has " + g.type(n.operands[i]).str());
  }
  if (!body.params().empty()) errs.push_back(in + ": a body cannot have parameters");
  if (!body.updates().empty()) errs.push_back(in + ": a body cannot update parameters");
  if (body.outputs().size() != 1) {
    errs.push_back(in + ": must have exactly one output, has " + std::to_string(body.outputs().size()));
  } else if (ValueId out = body.outputs()[0].value; out >= 0 && out < body.size() && body.type(out) != n.type) {
    errs.push_back(in + ": returns " + body.type(out).str() + " but the node's type is " + n.type.str());
  }
  if (auto it = n.attrs.find("kind"); it != n.attrs.end() && errs.size() == errorsBefore)
    if (auto* kind = std::get_if<std::string>(&it->second)) {
      if (*kind == "rows")
        if (auto problem = rowsBodyProblem(body)) errs.push_back(where + ": " + *problem);
      if (*kind == "attention")
        if (auto problem = attentionBodyProblem(body)) errs.push_back(where + ": " + *problem);
      if (*kind == "attention_grad")
        if (auto problem = attentionGradBodyProblem(body)) errs.push_back(where + ": " + *problem);
    }
}

static std::vector<std::string> verifyGraph(const Graph& g, int depth) {
  std::vector<std::string> errs;
  std::set<std::string> names;
  const std::vector<std::string> refs = valueRefs(g);  // valueRef for every node, in one pass
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    std::string where = refs[static_cast<size_t>(v)] + " (" + std::string(opName(n.op)) + ")";
    if (!n.loc.empty()) where += " at " + n.loc;
    if (!n.name.empty() && !names.insert(n.name).second)
      errs.push_back(where + ": name '" + n.name + "' is defined twice");
    if ((n.op == OpKind::Input || n.op == OpKind::Param) && n.name.empty())
      errs.push_back(where + ": inputs and parameters must be named");
    if (n.op == OpKind::Param)
      if (auto problem = paramInitProblem(n.type, n.attrs)) errs.push_back(where + ": " + *problem);
    bool operandsOk = true;
    for (ValueId o : n.operands)
      if (o < 0 || o >= v) {
        errs.push_back(where + ": operand " + valueRef(g, o) + " is not defined before its use");
        operandsOk = false;
      }
    size_t before = errs.size();
    checkAttrs(n, where, errs);
    if (!operandsOk || errs.size() != before) continue;
    if (n.body && n.op != OpKind::Fused) errs.push_back(where + ": only fused nodes have a body");
    if (n.op == OpKind::Input || n.op == OpKind::Param) {
      if (!n.operands.empty()) errs.push_back(where + ": takes no operands");
      continue;
    }
    if (n.op == OpKind::Fused) {
      if (n.operands.empty()) errs.push_back(where + ": expects at least 1 operand, got 0");
      checkFused(g, n, where, depth, errs);
      continue;
    }
    std::vector<TensorType> types;
    for (ValueId o : n.operands) types.push_back(g.type(o));
    try {
      TensorType t = inferType(n.op, types, n.attrs);
      if (t != n.type)
        errs.push_back(where + ": declared type " + n.type.str() + " but the type rule gives " + t.str());
    } catch (const Error& e) {
      errs.push_back(where + ": " + e.what());
    }
  }
  std::set<std::string> outNames;
  for (const auto& o : g.outputs()) {
    if (o.value < 0 || o.value >= g.size())
      errs.push_back("output '" + o.name + "' refers to a value that does not exist");
    if (!outNames.insert(o.name).second) errs.push_back("output '" + o.name + "' is defined twice");
  }
  std::set<ValueId> updated;
  for (const auto& u : g.updates()) {
    if (u.param < 0 || u.param >= g.size() || u.value < 0 || u.value >= g.size()) {
      errs.push_back("update refers to a value that does not exist");
      continue;
    }
    std::string what = "update " + valueRef(g, u.param) + " = " + valueRef(g, u.value);
    if (g.node(u.param).op != OpKind::Param) errs.push_back(what + ": only parameters can be updated");
    if (g.type(u.param) != g.type(u.value))
      errs.push_back(what + ": new value has type " + g.type(u.value).str() + ", parameter has " +
                     g.type(u.param).str());
    if (!updated.insert(u.param).second) errs.push_back(what + ": parameter is updated twice");
  }
  return errs;
}

void verify(const Graph& g) {
  auto errs = verifyErrors(g);
  if (errs.empty()) return;
  std::string msg = "graph @" + g.name() + " is invalid:";
  for (const auto& e : errs) msg += "\n  " + e;
  throw Error(msg);
}

}  // namespace weft::ir
