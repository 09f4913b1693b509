#include "frontend/init.h"

#include <cmath>

#include "frontend/emit.h"

namespace weft {
namespace init {

Init zeros() { return {"zeros", 0}; }
Init ones() { return {"ones", 0}; }
Init uniform(double bound) { return {"uniform", bound}; }
Init normal(double std) { return {"normal", std}; }

Init xavier_uniform(int64_t fanIn, int64_t fanOut, double gain) {
  return uniform(gain * std::sqrt(6.0 / static_cast<double>(fanIn + fanOut)));
}

Init xavier_normal(int64_t fanIn, int64_t fanOut, double gain) {
  return normal(gain * std::sqrt(2.0 / static_cast<double>(fanIn + fanOut)));
}

Init kaiming_uniform(int64_t fanIn, double a) {
  return uniform(std::sqrt(6.0 / ((1.0 + a * a) * static_cast<double>(fanIn))));
}

Init kaiming_normal(int64_t fanIn, double a) {
  return normal(std::sqrt(2.0 / ((1.0 + a * a) * static_cast<double>(fanIn))));
}

Init torch_default(int64_t fanIn) { return uniform(1.0 / std::sqrt(static_cast<double>(fanIn))); }

}  // namespace init

Tensor param(const std::string& name, const Shape& shape, const Init& init, SrcLoc loc) {
  return param(name, shape, init, currentBuilder(loc).floatType(), loc);
}

Tensor param(const std::string& name, const Shape& shape, const Init& init, DType dtype, SrcLoc loc) {
  GraphBuilder& b = currentBuilder(loc);
  std::string full = b.scopedName(name);
  ir::Attrs attrs{{"init", init.kind}};
  if (init.kind == "uniform" || init.kind == "normal") {
    if (!(init.scale >= 0) || !std::isfinite(init.scale))
      failAt(loc, "parameter '" + full + "': init scale must be finite and >= 0, got " + std::to_string(init.scale));
    attrs["scale"] = init.scale;
    attrs["seed"] = b.paramSeed(full);
  } else if (init.kind != "zeros" && init.kind != "ones") {
    failAt(loc, "parameter '" + full + "': unknown init '" + init.kind + "' (zeros, ones, uniform or normal)");
  }
  if (!ir::isFloat(dtype)) failAt(loc, "parameter '" + full + "' must have a float dtype");
  return Tensor(&b, b.addParam(full, {dtype, shape}, std::move(attrs), loc));
}

Tensor buffer(const std::string& name, const Shape& shape, const Init& init, SrcLoc loc) {
  Tensor t = param(name, shape, init, loc);
  t.builder().graph().node(t.id()).attrs["trainable"] = int64_t{0};
  return t;
}

void update(const Tensor& param, const Tensor& value, SrcLoc loc) {
  GraphBuilder& b = detail::builderOf("update", {param, value}, loc);
  const ir::Node& p = b.graph().node(param.id());
  if (p.op != ir::OpKind::Param) failAt(loc, "update: only a parameter can be updated, got a '" +
                                                 std::string(ir::opName(p.op)) + "' value");
  if (value.type() != param.type())
    failAt(loc, "update of '" + p.name + "': the new value has type " + value.typeStr() + ", expected " +
                    param.typeStr());
  for (const auto& u : b.graph().updates())
    if (u.param == param.id()) failAt(loc, "update: parameter '" + p.name + "' is already updated");
  b.graph().addUpdate(param.id(), value.id());
}

}  // namespace weft
