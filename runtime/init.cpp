// Parameter initializers. Element i of a random init is drawn at step 0 of the param's seed:
//   uniform: (2 * uniformAt(seed, 0, i) - 1) * scale      in [-scale, scale)
//   normal:  normalAt(seed, 0, i) * scale
// then stored in the param's dtype (rounded to nearest even for bf16).
#include "runtime/init.h"

#include <cmath>
#include <functional>
#include <stdexcept>

#include "ir/error.h"
#include "ir/param_init.h"
#include "runtime/random.h"

namespace weft::runtime {

namespace {

std::string describe(const std::string& name, const ir::TensorType& type) {
  return "param '" + name + "' (" + type.str() + ")";
}

/// `seed` and `scale` of a random init (checked by ir::paramInitProblem).
struct RandomInitArgs {
  uint64_t seed;
  double scale;
};

RandomInitArgs randomArgs(const ir::Attrs& attrs) {
  const auto seed = std::get<int64_t>(attrs.at("seed"));
  const ir::AttrValue& scale = attrs.at("scale");
  const auto* i = std::get_if<int64_t>(&scale);
  return {static_cast<uint64_t>(seed), i ? static_cast<double>(*i) : std::get<double>(scale)};
}

ir::TensorData filled(const ir::TensorType& type, const std::function<double(int64_t)>& value) {
  ir::TensorData t(type);
  for (int64_t i = 0, n = t.numel(); i < n; ++i) t.set(i, value(i));
  return t;
}

}  // namespace

ir::TensorData initializeParam(const std::string& name, const ir::TensorType& type, const ir::Attrs& attrs) {
  const std::string who = describe(name, type);
  for (int64_t d : type.shape)
    if (d < 0) throw Error(who + ": negative dimension in shape " + ir::shapeStr(type.shape));
  if (auto problem = ir::paramInitProblem(type, attrs)) throw Error(who + ": " + *problem);
  const std::string* init = &std::get<std::string>(attrs.at("init"));

  if (*init == "zeros") return ir::TensorData(type);
  if (*init == "ones") return filled(type, [](int64_t) { return 1.0; });
  if (*init == "uniform") {
    RandomInitArgs a = randomArgs(attrs);
    return filled(type, [&](int64_t i) {
      return (2.0 * uniformAt(a.seed, 0, static_cast<uint64_t>(i)) - 1.0) * a.scale;
    });
  }
  if (*init == "normal") {
    RandomInitArgs a = randomArgs(attrs);
    return filled(type, [&](int64_t i) { return normalAt(a.seed, 0, static_cast<uint64_t>(i)) * a.scale; });
  }
  throw std::logic_error(who + ": init '" + *init + "' passed paramInitProblem but has no initializer");
}

}  // namespace weft::runtime
