#pragma once
/// Attribute values of IR nodes.
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "ir/ops.h"
#include "ir/tensor_data.h"

namespace weft::ir {

/// One attribute value: int, float, string, int list, dtype or tensor.
using AttrValue =
    std::variant<int64_t, double, std::string, std::vector<int64_t>, DType, TensorDataPtr>;

/// The attributes of a node, kept sorted by name so that printing is deterministic.
using Attrs = std::map<std::string, AttrValue>;

/// The kind of an attribute value.
AttrKind attrKindOf(const AttrValue& v);

/// True when two attribute sets hold the same values: floats bit for bit, tensors by type and
/// bytes rather than by pointer (so two equal constants compare equal, as CSE merges them).
bool sameAttrs(const Attrs& x, const Attrs& y);

/// Typed access to a node's attributes with clear errors for missing or mistyped ones.
class AttrReader {
 public:
  /// Reads attributes of a node of op `op`.
  AttrReader(const Attrs& attrs, OpKind op) : attrs_(attrs), op_(op) {}
  /// The int attribute `name`.
  int64_t i(const std::string& name) const;
  /// The int attribute `name`, or `dflt` when absent.
  int64_t i(const std::string& name, int64_t dflt) const;
  /// The float attribute `name` (an int value is widened).
  double f(const std::string& name) const;
  /// The float attribute `name`, or `dflt` when absent.
  double f(const std::string& name, double dflt) const;
  /// The string attribute `name`.
  const std::string& s(const std::string& name) const;
  /// The int-list attribute `name`.
  const std::vector<int64_t>& ints(const std::string& name) const;
  /// The dtype attribute `name`.
  DType dtype(const std::string& name) const;
  /// The tensor attribute `name`.
  const TensorDataPtr& tensor(const std::string& name) const;
  /// True when `name` is present.
  bool has(const std::string& name) const { return attrs_.count(name) != 0; }

 private:
  const AttrValue& get(const std::string& name) const;
  const Attrs& attrs_;
  OpKind op_;
};

}  // namespace weft::ir
