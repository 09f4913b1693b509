#pragma once
/// The op table: the enum of ops and what ir/ops.def declares about each.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::ir {

/// Flags of an op, combined with `|` in ir/ops.def.
enum OpFlags : uint32_t {
  kDiff = 1u << 0,         ///< has a gradient rule
  kNoGrad = 1u << 1,       ///< documented as not differentiable
  kComposite = 1u << 2,    ///< defined by a decomposition into primitives
  kElementwise = 1u << 3,  ///< result element i depends only on operand elements i
  kSource = 1u << 4,       ///< has no operands (input, param, constant, iota, random)
  kRandom = 1u << 5,       ///< draws from the counter-based generator
  kCostly = 1u << 6,       ///< elementwise math by an approximation or a division: worth computing once
};

/// Every op of the IR, in ir/ops.def order.
enum class OpKind : uint16_t {
#define WEFT_OP(Id, name, operands, attrs, rule, flags) Id,
#include "ir/ops.def"
#undef WEFT_OP
};

/// The number of ops in the table.
constexpr int kNumOps = 0
#define WEFT_OP(Id, name, operands, attrs, rule, flags) +1
#include "ir/ops.def"
#undef WEFT_OP
    ;

/// The kind of value an attribute holds.
enum class AttrKind : uint8_t { Int, Float, Str, Ints, DType, Tensor };

/// One declared attribute of an op.
struct AttrSpec {
  std::string name;
  AttrKind kind;
  bool optional;
  bool flag = false;  ///< an Int that must be 0 or 1 (ops.def kind `flag`)
};

/// What the op table says about one op.
struct OpInfo {
  OpKind kind;
  std::string_view name;
  std::vector<std::string> operandNames;  ///< for messages; see `variadic`
  bool variadic;                          ///< takes one or more operands
  std::vector<AttrSpec> attrs;
  uint32_t flags;

  /// True when all bits of `f` are set.
  bool has(uint32_t f) const { return (flags & f) == f; }
  /// The declared attribute `name`, or nullptr.
  const AttrSpec* attr(std::string_view name) const;
};

/// The table entry of an op.
const OpInfo& opInfo(OpKind k);
/// The IR name of an op.
std::string_view opName(OpKind k);
/// Looks an op up by its IR name.
std::optional<OpKind> opByName(std::string_view name);
/// All ops in table order.
const std::vector<OpInfo>& allOps();
/// The IR name of an attribute kind.
std::string_view attrKindName(AttrKind k);

}  // namespace weft::ir
