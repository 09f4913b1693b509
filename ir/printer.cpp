// The IR text printer. The format, line by line:
//
//   graph @NAME(%in: TYPE, ...) {
//     param %name: TYPE {attrs}
//     %ref = opname(%a, %b) {attrs} : TYPE
//     %ref = fused(%a, %b) {kind="loop"} : TYPE {
//       graph @BODY(%in0: TYPE, %in1: TYPE) {
//         ... the body, in this same format ...
//         return out=%ref
//       }
//     }
//     return out=%ref, ...
//   }
//
// Graph inputs are listed in the header; every other node follows in graph order. Named
// values print as `%name`; unnamed ones as `%N`, numbered in print order from 0, so that the
// parser can read them back as unnamed values and the text reprints identically. A fused
// node's body is a graph of its own (its own value names and numbering), printed by this
// same function and indented under the node, so bodies nest to any depth.
#include "ir/printer.h"

#include <charconv>
#include <cmath>

namespace weft::ir {
namespace {

/// Shortest round-trip spelling of a float value that still reads as a float (`1.0`, `inf`).
template <class F>
std::string formatFloat(F v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string quoted(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"') r += "\\\"";
    else if (c == '\\') r += "\\\\";
    else if (c == '\n') r += "\\n";
    else r += c;
  }
  return r + "\"";
}

std::string intList(const std::vector<int64_t>& v) {
  std::string r = "[";
  for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + std::to_string(v[i]);
  return r + "]";
}

/// Element i of a tensor as the text format spells it for the tensor's dtype.
std::string element(const TensorData& t, int64_t i) {
  switch (t.type.dtype) {
    case DType::f32: return formatFloat(t.as<float>()[i]);
    case DType::f64: return formatFloat(t.as<double>()[i]);
    case DType::bf16: return formatFloat(bf16ToFloat(t.as<uint16_t>()[i]));
    case DType::i32: return std::to_string(t.as<int32_t>()[i]);
    case DType::i64: return std::to_string(t.as<int64_t>()[i]);
    case DType::boolean: return t.as<uint8_t>()[i] ? "true" : "false";
  }
  return "?";
}

std::string denseLiteral(const TensorDataPtr& t, const PrintOptions& options) {
  if (!t || t->bytes.size() != t->type.byteSize()) return "dense<invalid>";
  if (options.elideLargeConstants && t->numel() > options.elideAbove) return "dense<elided>";
  std::string r = "dense<[";
  for (int64_t i = 0; i < t->numel(); ++i) r += (i ? ", " : "") + element(*t, i);
  return r + "]>";
}

/// One attribute value; `spec` (may be null) makes an int stored for a float attribute print
/// as a float, so that it reprints the same after parsing.
std::string attrValue(const AttrValue& v, const AttrSpec* spec, const PrintOptions& options) {
  switch (v.index()) {
    case 0: {
      int64_t i = std::get<int64_t>(v);
      if (spec && spec->kind == AttrKind::Float) return formatFloat(static_cast<double>(i));
      return std::to_string(i);
    }
    case 1: return formatFloat(std::get<double>(v));
    case 2: return quoted(std::get<std::string>(v));
    case 3: return intList(std::get<std::vector<int64_t>>(v));
    case 4: return std::string(dtypeName(std::get<DType>(v)));
    default: return denseLiteral(std::get<TensorDataPtr>(v), options);
  }
}

/// ` {a=1, b=2}`, or nothing when there are no attributes.
std::string attrBlock(const Node& n, const PrintOptions& options) {
  if (n.attrs.empty()) return "";
  const OpInfo& info = opInfo(n.op);
  std::string r = " {";
  bool first = true;
  for (const auto& [name, value] : n.attrs) {
    r += (first ? "" : ", ") + name + "=" + attrValue(value, info.attr(name), options);
    first = false;
  }
  return r + "}";
}

std::string locSuffix(const Node& n, const PrintOptions& options) {
  if (!options.printLocations || n.loc.empty()) return "";
  return " loc(" + quoted(n.loc) + ")";
}


/// Every line of `text` prefixed with `indent`.
std::string indented(const std::string& text, const std::string& indent) {
  std::string r;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size() - 1;
    r += indent + text.substr(start, end - start + 1);
    start = end + 1;
  }
  return r;
}

}  // namespace

std::vector<std::string> valueRefs(const Graph& g) {
  std::vector<std::string> refs(static_cast<size_t>(g.size()));
  int unnamed = 0;
  auto assign = [&](ValueId v) {
    const std::string& name = g.node(v).name;
    refs[static_cast<size_t>(v)] = "%" + (name.empty() ? std::to_string(unnamed++) : name);
  };
  for (ValueId v : g.inputs()) assign(v);
  for (ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).op != OpKind::Input) assign(v);
  return refs;
}

std::string printGraph(const Graph& g, const PrintOptions& options) {
  std::vector<std::string> refs = valueRefs(g);
  auto ref = [&](ValueId v) {
    return v >= 0 && v < g.size() ? refs[static_cast<size_t>(v)] : "%<invalid " + std::to_string(v) + ">";
  };

  std::string out = "graph @" + g.name() + "(";
  bool first = true;
  for (ValueId v : g.inputs()) {
    const Node& n = g.node(v);
    out += (first ? "" : ", ") + ref(v) + ": " + n.type.str() + locSuffix(n, options);
    first = false;
  }
  out += ") {\n";

  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (n.op == OpKind::Input) continue;
    if (n.op == OpKind::Param) {
      out += "  param " + ref(v) + ": " + n.type.str() + attrBlock(n, options) + locSuffix(n, options) + "\n";
      continue;
    }
    out += "  " + ref(v) + " = " + std::string(opName(n.op)) + "(";
    for (size_t i = 0; i < n.operands.size(); ++i) out += (i ? ", " : "") + ref(n.operands[i]);
    out += ")" + attrBlock(n, options) + " : " + n.type.str() + locSuffix(n, options);
    out += n.body ? " {\n" + indented(printGraph(*n.body, options), "    ") + "  }\n" : "\n";
  }

  for (const StateUpdate& u : g.updates()) out += "  update " + ref(u.param) + " = " + ref(u.value) + "\n";
  out += "  return";
  for (size_t i = 0; i < g.outputs().size(); ++i) {
    const Output& o = g.outputs()[i];
    out += (i ? ", " : " ") + o.name + "=" + ref(o.value);
  }
  return out + "\n}\n";
}

}  // namespace weft::ir
