// Parameter initializers. Element i of a random init is drawn at step 0 of the param's seed:
//   uniform: (2 * uniformAt(seed, 0, i) - 1) * scale      in [-scale, scale)
//   normal:  normalAt(seed, 0, i) * scale
// then stored in the param's dtype (rounded to nearest even for bf16).
#include "runtime/init.h"

#include <cmath>
#include <functional>

#include "ir/error.h"
#include "runtime/random.h"

namespace weft::runtime {

namespace {

std::string describe(const std::string& name, const ir::TensorType& type) {
  return "param '" + name + "' (" + type.str() + ")";
}

/// The attribute `key` as a T, or nullptr when absent; a value of another kind is an error.
template <class T>
const T* optionalAttr(const ir::Attrs& attrs, const std::string& key, const char* kindName,
                      const std::string& who) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return nullptr;
  if (auto* p = std::get_if<T>(&it->second)) return p;
  throw Error(who + ": attribute '" + key + "' must be " + kindName + ", got " +
              std::string(ir::attrKindName(ir::attrKindOf(it->second))));
}

/// `seed` and `scale` of a random init; both are required.
struct RandomInitArgs {
  uint64_t seed;
  double scale;
};

RandomInitArgs randomArgs(const std::string& init, const ir::TensorType& type, const ir::Attrs& attrs,
                          const std::string& who) {
  if (!ir::isFloat(type.dtype))
    throw Error(who + ": init '" + init + "' needs a float dtype (f32, f64 or bf16), got " +
                std::string(ir::dtypeName(type.dtype)));
  const int64_t* seed = optionalAttr<int64_t>(attrs, "seed", "int", who);
  if (!seed) throw Error(who + ": init '" + init + "' needs attribute 'seed'");
  double scale;
  auto it = attrs.find("scale");
  if (it == attrs.end()) throw Error(who + ": init '" + init + "' needs attribute 'scale'");
  if (auto* i = std::get_if<int64_t>(&it->second)) {
    scale = static_cast<double>(*i);
  } else {
    scale = *optionalAttr<double>(attrs, "scale", "float", who);
  }
  if (!std::isfinite(scale) || scale < 0)
    throw Error(who + ": init '" + init + "' needs a finite, non-negative 'scale', got " +
                std::to_string(scale));
  return {static_cast<uint64_t>(*seed), scale};
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
  const std::string* init = optionalAttr<std::string>(attrs, "init", "str", who);
  if (!init) throw Error(who + ": missing attribute 'init'");

  if (*init == "zeros") return ir::TensorData(type);
  if (*init == "ones") return filled(type, [](int64_t) { return 1.0; });
  if (*init == "uniform") {
    RandomInitArgs a = randomArgs(*init, type, attrs, who);
    return filled(type, [&](int64_t i) {
      return (2.0 * uniformAt(a.seed, 0, static_cast<uint64_t>(i)) - 1.0) * a.scale;
    });
  }
  if (*init == "normal") {
    RandomInitArgs a = randomArgs(*init, type, attrs, who);
    return filled(type, [&](int64_t i) { return normalAt(a.seed, 0, static_cast<uint64_t>(i)) * a.scale; });
  }
  throw Error(who + ": unknown init '" + *init + "' (expected zeros, ones, uniform or normal)");
}

}  // namespace weft::runtime
