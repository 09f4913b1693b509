#include "ir/ops.h"

#include <stdexcept>

namespace weft::ir {
namespace {

std::vector<std::string> splitList(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

AttrSpec parseAttrSpec(const std::string& text) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) throw std::logic_error("ops.def: bad attribute spec " + text);
  AttrSpec a{text.substr(0, colon), AttrKind::Int, false};
  std::string kind = text.substr(colon + 1);
  if (!kind.empty() && kind.back() == '?') {
    a.optional = true;
    kind.pop_back();
  }
  if (kind == "flag") {
    a.flag = true;
    return a;  // an Int
  }
  static const std::pair<const char*, AttrKind> kinds[] = {
      {"int", AttrKind::Int},     {"float", AttrKind::Float}, {"str", AttrKind::Str},
      {"ints", AttrKind::Ints},   {"dtype", AttrKind::DType}, {"tensor", AttrKind::Tensor}};
  for (auto& [n, k] : kinds)
    if (kind == n) {
      a.kind = k;
      return a;
    }
  throw std::logic_error("ops.def: unknown attribute kind " + kind);
}

OpInfo makeInfo(OpKind kind, std::string_view name, std::string_view operands,
                std::string_view attrs, uint32_t flags) {
  OpInfo info{kind, name, splitList(operands), false, {}, flags};
  if (!info.operandNames.empty() && info.operandNames.back().size() > 3 &&
      info.operandNames.back().substr(info.operandNames.back().size() - 3) == "...") {
    info.variadic = true;
    info.operandNames.back().resize(info.operandNames.back().size() - 3);
  }
  for (const auto& a : splitList(attrs)) info.attrs.push_back(parseAttrSpec(a));
  return info;
}

}  // namespace

const std::vector<OpInfo>& allOps() {
  static const std::vector<OpInfo> table = {
#define WEFT_OP(Id, name, operands, attrs, rule, flags) \
  makeInfo(OpKind::Id, name, operands, attrs, flags),
#include "ir/ops.def"
#undef WEFT_OP
  };
  return table;
}

const OpInfo& opInfo(OpKind k) { return allOps()[static_cast<size_t>(k)]; }
std::string_view opName(OpKind k) { return opInfo(k).name; }

std::optional<OpKind> opByName(std::string_view name) {
  for (const auto& info : allOps())
    if (info.name == name) return info.kind;
  return std::nullopt;
}

const AttrSpec* OpInfo::attr(std::string_view n) const {
  for (const auto& a : attrs)
    if (a.name == n) return &a;
  return nullptr;
}

std::string_view attrKindName(AttrKind k) {
  switch (k) {
    case AttrKind::Int: return "int";
    case AttrKind::Float: return "float";
    case AttrKind::Str: return "str";
    case AttrKind::Ints: return "ints";
    case AttrKind::DType: return "dtype";
    case AttrKind::Tensor: return "tensor";
  }
  return "?";
}

}  // namespace weft::ir
