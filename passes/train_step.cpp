#include "passes/train_step.h"

#include "ir/error.h"
#include "passes/autodiff.h"

namespace weft::passes {

using ir::OpKind;
using ir::ValueId;

bool isTrainable(const ir::Node& n) {
  if (n.op != OpKind::Param || !ir::isFloat(n.type.dtype)) return false;
  auto it = n.attrs.find("trainable");
  if (it == n.attrs.end()) return true;
  const int64_t* flag = std::get_if<int64_t>(&it->second);
  return flag && *flag != 0;
}

std::vector<ValueId> trainableParams(const ir::Graph& g) {
  std::vector<ValueId> out;
  for (ValueId p : g.params())
    if (isTrainable(g.node(p))) out.push_back(p);
  return out;
}

ir::Graph buildTrainStep(const ir::Graph& forward, const TrainConfig& cfg) {
  validateOptimizer(cfg.optimizer);
  const std::string where = "train step of @" + forward.name();
  auto loss = forward.findOutput(cfg.loss);
  if (!loss) throw Error(where + ": the graph has no output '" + cfg.loss + "' to minimize");
  const ir::TensorType& lossType = forward.type(*loss);
  if (!ir::isFloat(lossType.dtype) || lossType.numel() != 1)
    throw Error(where + ": the loss '" + cfg.loss + "' must be a one-element float value, got " + lossType.str());
  if (forward.find(cfg.lrInput))
    throw Error(where + ": the graph already has a value named '" + cfg.lrInput + "' (is it a train step already?)");
  for (ValueId p : forward.params())
    if (forward.node(p).name.rfind("opt.", 0) == 0)
      throw Error(where + ": the graph already has optimizer state '" + forward.node(p).name + "'");
  std::vector<ValueId> params = trainableParams(forward);
  if (params.empty()) throw Error(where + ": the graph has no trainable float parameter");

  ir::Graph g = forward;
  g.setName(forward.name() + "_train");
  ValueId lr = g.addInput(cfg.lrInput, {ir::DType::f32, {}});

  GradResult grads = appendGradients(g, GradRequest{*loss, params, std::nullopt});
  std::vector<ParamGradient> pairs;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!grads.grads[i]) continue;  // the loss does not depend on it: nothing to update
    ValueId grad = *grads.grads[i];
    const std::string gradName = "grad." + g.node(params[i]).name;
    ir::Node& n = g.node(grad);
    if (n.name.empty() && n.op != OpKind::Constant && !g.find(gradName)) n.name = gradName;
    pairs.push_back({params[i], grad});
  }
  if (pairs.empty()) throw Error(where + ": the loss '" + cfg.loss + "' depends on no trainable parameter");
  ValueId norm = appendOptimizerStep(g, pairs, lr, cfg.optimizer);
  if (norm >= 0 && !g.findOutput("grad_norm")) g.addOutput("grad_norm", norm);
  return g;
}

}  // namespace weft::passes
