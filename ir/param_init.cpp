// The rules of a param's init attributes (see param_init.h).
#include "ir/param_init.h"

#include <cmath>

namespace weft::ir {

std::optional<std::string> paramInitProblem(const TensorType& type, const Attrs& attrs) {
  auto it = attrs.find("init");
  if (it == attrs.end()) return "missing attribute 'init'";
  const auto* init = std::get_if<std::string>(&it->second);
  if (!init) return "attribute 'init' must be str";
  if (*init == "zeros" || *init == "ones") return std::nullopt;
  if (*init != "uniform" && *init != "normal")
    return "unknown init '" + *init + "' (expected zeros, ones, uniform or normal)";
  if (!isFloat(type.dtype))
    return "init '" + *init + "' needs a float dtype (f32, f64 or bf16), got " + std::string(dtypeName(type.dtype));
  auto seed = attrs.find("seed");
  if (seed == attrs.end()) return "init '" + *init + "' needs attribute 'seed'";
  if (!std::holds_alternative<int64_t>(seed->second)) return "attribute 'seed' must be int";
  auto scale = attrs.find("scale");
  if (scale == attrs.end()) return "init '" + *init + "' needs attribute 'scale'";
  double value;
  if (const auto* i = std::get_if<int64_t>(&scale->second)) value = static_cast<double>(*i);
  else if (const auto* f = std::get_if<double>(&scale->second)) value = *f;
  else return "attribute 'scale' must be float";
  if (!std::isfinite(value) || value < 0)
    return "init '" + *init + "' needs a finite, non-negative 'scale', got " + std::to_string(value);
  return std::nullopt;
}

}  // namespace weft::ir
