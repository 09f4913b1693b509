#pragma once
/// Optimizers as IR: given each trainable parameter's gradient, appends the update of the
/// parameter and of the optimizer state as ordinary nodes plus `update` write-backs, so a
/// training step is one graph that any backend runs (and `weft dump` shows).
///
/// State lives in parameters with init zeros and trainable=0: `opt.<param>.momentum` (SGD
/// with momentum), `opt.<param>.m` / `opt.<param>.v` (Adam, AdamW) and the step counter
/// `opt.step` (f32[], the number of steps taken). New values are named `<param>.next`,
/// `opt.<param>.m.next`, ... The formulas are PyTorch's (torch.optim.SGD, Adam, AdamW,
/// torch.nn.utils.clip_grad_norm_):
///  - clipping (clipNorm > 0): norm = sqrt(sum of all g^2); g *= min(1, clipNorm / (norm + 1e-6));
///  - SGD: g += wd p; buf = mu buf + g; d = nesterov ? g + mu buf : (mu > 0 ? buf : g); p -= lr d;
///  - Adam: g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; t = step + 1;
///          p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
///          (the scalar bias corrections are computed in f64, as PyTorch does on the host);
///  - AdamW: as Adam without the L2 term, and p *= 1 - lr wd before the Adam step.
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::passes {

/// Which update rule.
enum class OptimizerKind { sgd, adam, adamw };

/// An optimizer and its hyper-parameters (the learning rate is a graph input instead).
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double momentum = 0;       ///< SGD momentum (0: plain SGD, no state)
  bool nesterov = false;     ///< SGD Nesterov momentum (needs momentum > 0)
  double beta1 = 0.9;        ///< Adam/AdamW first-moment decay
  double beta2 = 0.999;      ///< Adam/AdamW second-moment decay
  double eps = 1e-8;         ///< Adam/AdamW denominator guard
  double weightDecay = 0;    ///< L2 penalty (SGD, Adam) or decoupled decay (AdamW)
  double clipNorm = 0;       ///< clip gradients to this global L2 norm when > 0
};

/// The optimizer called `name` on the command line: sgd, momentum (SGD, momentum 0.9),
/// nesterov (SGD, Nesterov momentum 0.9), adam, adamw. Throws weft::Error listing the
/// names for anything else.
OptimizerConfig parseOptimizer(const std::string& name);

/// The command-line name of `cfg` (inverse of parseOptimizer for its results).
std::string optimizerName(const OptimizerConfig& cfg);

/// Sets the denominator guard of an Adam or AdamW `cfg` (an --eps option); throws weft::Error
/// naming the optimizer for SGD's kinds, which have none. validateOptimizer checks the value.
void setAdamEps(OptimizerConfig& cfg, double eps);

/// Throws weft::Error naming the field when a hyper-parameter is out of range (negative
/// momentum, betas outside [0, 1), eps <= 0, negative weight decay or clip norm, Nesterov
/// without momentum).
void validateOptimizer(const OptimizerConfig& cfg);

/// A parameter and the value of its gradient (same type).
struct ParamGradient {
  ir::ValueId param;
  ir::ValueId grad;
};

/// Scales every gradient by min(1, clipNorm / (norm + 1e-6)) where norm is the L2 norm of
/// all gradients together; returns the scaled gradients (named `grad.<param>.clipped`) and
/// sets `normOut` to the norm before clipping (f32[]).
std::vector<ParamGradient> clipByGlobalNorm(ir::Graph& g, const std::vector<ParamGradient>& grads, double clipNorm,
                                            ir::ValueId& normOut);

/// Appends the optimizer step for `grads` (clipped first when cfg.clipNorm > 0) with the
/// learning rate `lr` (an f32[] value), adds the state parameters and an `update` for every
/// parameter in `grads`, every state value and `opt.step`. Returns the gradient norm value
/// when clipping, else -1. Throws weft::Error for an invalid config, a non-float parameter,
/// a gradient of another type, or state names that already exist in `g`.
ir::ValueId appendOptimizerStep(ir::Graph& g, const std::vector<ParamGradient>& grads, ir::ValueId lr,
                                const OptimizerConfig& cfg);

}  // namespace weft::passes
