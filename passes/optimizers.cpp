#include "passes/optimizers.h"

#include <cmath>
#include <map>

#include "ir/error.h"
#include "passes/emitter.h"

namespace weft::passes {

using ir::DType;
using ir::OpKind;
using ir::ValueId;

namespace {

constexpr const char* kLoc = "optimizer";

/// Names `v` `name` unless it already has a name, is a constant, or the name is taken.
void nameValue(ir::Graph& g, ValueId v, const std::string& name) {
  ir::Node& n = g.node(v);
  if (!n.name.empty() || n.op == OpKind::Constant || g.find(name)) return;
  n.name = name;
}

/// A state parameter: zeros, not trainable.
ValueId addStateParam(ir::Graph& g, const std::string& name, const ir::TensorType& type) {
  if (g.find(name))
    throw Error("cannot add optimizer state '" + name + "': the graph already has a value of that name");
  ValueId p = g.addParam(name, type, {{"init", std::string("zeros")}, {"trainable", int64_t{0}}});
  g.node(p).loc = kLoc;
  return p;
}

/// An Emitter whose scalar constants are shared: one node per (value, dtype), which keeps
/// the dumped step graph short.
class StepEmitter : public Emitter {
 public:
  using Emitter::Emitter;
  ValueId scalar(double value, DType dtype) {
    auto key = std::make_pair(dtype, value);
    if (auto it = scalars_.find(key); it != scalars_.end()) return it->second;
    return scalars_[key] = Emitter::scalar(value, dtype);
  }
  ValueId scalarLike(double value, ValueId like) { return scalar(value, type(like).dtype); }

 private:
  std::map<std::pair<DType, double>, ValueId> scalars_;
};

/// Per-step scalars (lr, bias corrections) converted once to each parameter dtype.
class ScalarCache {
 public:
  ScalarCache(StepEmitter& e, ValueId f32Value) : e_(e), f32_(f32Value) {}
  ValueId as(DType d) {
    if (d == DType::f32) return f32_;
    auto it = byDtype_.find(d);
    if (it != byDtype_.end()) return it->second;
    return byDtype_[d] = e_.cast(f32_, d);
  }

 private:
  StepEmitter& e_;
  ValueId f32_;
  std::map<DType, ValueId> byDtype_;
};

/// g + wd * p, the L2 term of SGD and Adam.
ValueId addL2(StepEmitter& e, ValueId grad, ValueId param, double wd) {
  if (wd == 0) return grad;
  return e.add(grad, e.mul(e.scalarLike(wd, param), param));
}

std::string paramName(const ir::Graph& g, ValueId p) { return g.node(p).name; }

void sgdStep(StepEmitter& e, const ParamGradient& pg, ScalarCache& lr, const OptimizerConfig& cfg) {
  ir::Graph& g = e.graph();
  const std::string name = paramName(g, pg.param);
  ValueId grad = addL2(e, pg.grad, pg.param, cfg.weightDecay);
  ValueId direction = grad;
  if (cfg.momentum > 0) {
    ValueId buf = addStateParam(g, "opt." + name + ".momentum", g.type(pg.param));
    ValueId bufNext = e.add(e.mul(e.scalarLike(cfg.momentum, buf), buf), grad);
    nameValue(g, bufNext, "opt." + name + ".momentum.next");
    g.addUpdate(buf, bufNext);
    direction = cfg.nesterov ? e.add(grad, e.mul(e.scalarLike(cfg.momentum, buf), bufNext)) : bufNext;
  }
  ValueId next = e.sub(pg.param, e.mul(lr.as(g.type(pg.param).dtype), direction));
  nameValue(g, next, name + ".next");
  g.addUpdate(pg.param, next);
}

void adamStep(StepEmitter& e, const ParamGradient& pg, ScalarCache& lr, ScalarCache& stepSize,
              ScalarCache& sqrtCorrection, const OptimizerConfig& cfg) {
  ir::Graph& g = e.graph();
  const std::string name = paramName(g, pg.param);
  const ir::TensorType type = g.type(pg.param);  // a copy: emitting nodes may move the graph's storage
  const bool decoupled = cfg.kind == OptimizerKind::adamw;
  ValueId grad = decoupled ? pg.grad : addL2(e, pg.grad, pg.param, cfg.weightDecay);

  ValueId m = addStateParam(g, "opt." + name + ".m", type);
  ValueId v = addStateParam(g, "opt." + name + ".v", type);
  ValueId mNext = e.add(e.mul(e.scalarLike(cfg.beta1, m), m), e.mul(e.scalarLike(1 - cfg.beta1, grad), grad));
  nameValue(g, mNext, "opt." + name + ".m.next");
  ValueId vNext =
      e.add(e.mul(e.scalarLike(cfg.beta2, v), v), e.mul(e.scalarLike(1 - cfg.beta2, grad), e.mul(grad, grad)));
  nameValue(g, vNext, "opt." + name + ".v.next");
  g.addUpdate(m, mNext);
  g.addUpdate(v, vNext);

  ValueId base = pg.param;
  if (decoupled && cfg.weightDecay != 0) {
    ValueId shrink = e.sub(e.scalar(1, type.dtype), e.mul(lr.as(type.dtype), e.scalar(cfg.weightDecay, type.dtype)));
    base = e.mul(pg.param, shrink);
  }
  ValueId denom =
      e.add(e.div(e.op(OpKind::Sqrt, {vNext}), sqrtCorrection.as(type.dtype)), e.scalar(cfg.eps, type.dtype));
  ValueId next = e.sub(base, e.mul(stepSize.as(type.dtype), e.div(mNext, denom)));
  nameValue(g, next, name + ".next");
  g.addUpdate(pg.param, next);
}

void checkGradients(const ir::Graph& g, const std::vector<ParamGradient>& grads) {
  for (const auto& pg : grads) {
    if (pg.param < 0 || pg.param >= g.size() || pg.grad < 0 || pg.grad >= g.size())
      throw Error("optimizer: parameter or gradient value out of range");
    const ir::Node& p = g.node(pg.param);
    if (p.op != OpKind::Param) throw Error("optimizer: '" + p.name + "' is not a parameter");
    if (!ir::isFloat(p.type.dtype)) throw Error("optimizer: parameter '" + p.name + "' is not float: " + p.type.str());
    if (g.type(pg.grad) != p.type)
      throw Error("optimizer: the gradient of '" + p.name + "' has type " + g.type(pg.grad).str() + ", expected " +
                  p.type.str());
  }
}

}  // namespace

OptimizerConfig parseOptimizer(const std::string& name) {
  OptimizerConfig c;
  if (name == "sgd") return c;
  if (name == "momentum" || name == "nesterov") {
    c.momentum = 0.9;
    c.nesterov = name == "nesterov";
    return c;
  }
  if (name == "adam") {
    c.kind = OptimizerKind::adam;
    return c;
  }
  if (name == "adamw") {
    c.kind = OptimizerKind::adamw;
    c.weightDecay = 0.01;  // torch.optim.AdamW's default
    return c;
  }
  throw Error("unknown optimizer '" + name + "'; known: sgd, momentum, nesterov, adam, adamw");
}

std::string optimizerName(const OptimizerConfig& cfg) {
  switch (cfg.kind) {
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
    case OptimizerKind::sgd:
      break;
  }
  if (cfg.nesterov) return "nesterov";
  return cfg.momentum > 0 ? "momentum" : "sgd";
}

void setAdamEps(OptimizerConfig& cfg, double eps) {
  if (cfg.kind == OptimizerKind::sgd)
    throw Error("optimizer: " + optimizerName(cfg) + " has no eps (only adam and adamw divide by sqrt(v) + eps)");
  cfg.eps = eps;
}

void validateOptimizer(const OptimizerConfig& cfg) {
  auto bad = [](const std::string& what, double v, const std::string& want) {
    throw Error("optimizer: " + what + " must be " + want + ", got " + std::to_string(v));
  };
  if (!(cfg.momentum >= 0 && cfg.momentum < 1)) bad("momentum", cfg.momentum, "in [0, 1)");
  if (cfg.nesterov && cfg.momentum <= 0) throw Error("optimizer: Nesterov momentum needs momentum > 0");
  if (!(cfg.beta1 >= 0 && cfg.beta1 < 1)) bad("beta1", cfg.beta1, "in [0, 1)");
  if (!(cfg.beta2 >= 0 && cfg.beta2 < 1)) bad("beta2", cfg.beta2, "in [0, 1)");
  if (!(cfg.eps > 0) || !std::isfinite(cfg.eps)) bad("eps", cfg.eps, "positive");
  if (!(cfg.weightDecay >= 0) || !std::isfinite(cfg.weightDecay)) bad("weight decay", cfg.weightDecay, ">= 0");
  if (!(cfg.clipNorm >= 0) || !std::isfinite(cfg.clipNorm)) bad("clip norm", cfg.clipNorm, ">= 0");
}

std::vector<ParamGradient> clipByGlobalNorm(ir::Graph& g, const std::vector<ParamGradient>& grads, double clipNorm,
                                            ValueId& normOut) {
  checkGradients(g, grads);
  if (!(clipNorm > 0)) throw Error("clipByGlobalNorm: the clip norm must be positive");
  if (grads.empty()) throw Error("clipByGlobalNorm: no gradients");
  StepEmitter e(g, kLoc);
  ValueId total = -1;
  for (const auto& pg : grads) {
    ValueId gr = g.type(pg.grad).dtype == DType::f32 ? pg.grad : e.cast(pg.grad, DType::f32);
    ValueId sq = e.reduceSum(e.mul(gr, gr), allAxes(e.rank(gr)), false);
    total = total < 0 ? sq : e.add(total, sq);
  }
  normOut = e.op(OpKind::Sqrt, {total});
  nameValue(g, normOut, "grad_norm");
  ValueId coef = e.op(OpKind::Minimum, {e.scalar(1, DType::f32), e.div(e.scalar(clipNorm, DType::f32),
                                                                       e.add(normOut, e.scalar(1e-6, DType::f32)))});
  nameValue(g, coef, "grad.clip_coef");
  ScalarCache coefs(e, coef);
  std::vector<ParamGradient> out;
  for (const auto& pg : grads) {
    ValueId clipped = e.mul(pg.grad, coefs.as(g.type(pg.grad).dtype));
    nameValue(g, clipped, "grad." + g.node(pg.param).name + ".clipped");
    out.push_back({pg.param, clipped});
  }
  return out;
}

ValueId appendOptimizerStep(ir::Graph& g, const std::vector<ParamGradient>& grads, ValueId lr,
                            const OptimizerConfig& cfg) {
  validateOptimizer(cfg);
  checkGradients(g, grads);
  if (lr < 0 || lr >= g.size() || g.type(lr) != ir::TensorType{DType::f32, {}})
    throw Error("optimizer: the learning rate must be an f32[] value");
  std::vector<ParamGradient> work = grads;
  ValueId norm = -1;
  if (cfg.clipNorm > 0 && !grads.empty()) work = clipByGlobalNorm(g, grads, cfg.clipNorm, norm);

  StepEmitter e(g, kLoc);
  ValueId step = addStateParam(g, "opt.step", {DType::f32, {}});
  ValueId stepNext = e.add(step, e.scalar(1, DType::f32));
  nameValue(g, stepNext, "opt.step.next");
  ScalarCache lrs(e, lr);

  if (cfg.kind == OptimizerKind::sgd) {
    for (const auto& pg : work) sgdStep(e, pg, lrs, cfg);
  } else {
    // Bias corrections with t = the number of steps including this one, in f64 like
    // PyTorch's host-side math: 1 - 0.999^t in f32 loses most of its digits to cancellation.
    ValueId t = e.cast(stepNext, DType::f64);
    ValueId bc1 = e.sub(e.scalar(1, DType::f64), e.op(OpKind::Pow, {e.scalar(cfg.beta1, DType::f64), t}));
    ValueId bc2 = e.sub(e.scalar(1, DType::f64), e.op(OpKind::Pow, {e.scalar(cfg.beta2, DType::f64), t}));
    nameValue(g, bc1, "opt.bias_correction1");
    nameValue(g, bc2, "opt.bias_correction2");
    ValueId stepSize = e.cast(e.div(e.cast(lr, DType::f64), bc1), DType::f32);
    nameValue(g, stepSize, "opt.step_size");
    ValueId sqrtBc2 = e.cast(e.op(OpKind::Sqrt, {bc2}), DType::f32);
    nameValue(g, sqrtBc2, "opt.bias_correction2.sqrt");
    ScalarCache stepSizes(e, stepSize), sqrtCorrections(e, sqrtBc2);
    for (const auto& pg : work) adamStep(e, pg, lrs, stepSizes, sqrtCorrections, cfg);
  }
  g.addUpdate(step, stepNext);
  return norm;
}

}  // namespace weft::passes
