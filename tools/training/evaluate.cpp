#include "tools/training/evaluate.h"

#include <map>

#include "ir/error.h"
#include "tools/training/feeds.h"

namespace weft::training {

int64_t countCorrect(const ir::TensorData& logits, const ir::TensorData& labels) {
  if (logits.type.rank() != 2 || labels.type.rank() != 1 || logits.type.shape[0] != labels.type.shape[0])
    throw Error("accuracy needs logits [N, C] and labels [N], got " + logits.type.str() + " and " + labels.type.str());
  const int64_t rows = logits.type.shape[0], classes = logits.type.shape[1];
  int64_t correct = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (logits.get(r * classes + c) > logits.get(r * classes + best)) best = c;
    if (best == static_cast<int64_t>(labels.get(r))) ++correct;
  }
  return correct;
}

namespace {

/// The parameters of `g` taken from `state`; throws naming a missing or mistyped one.
reference::TensorMap paramsFor(const ir::Graph& g, const reference::TensorMap& state) {
  reference::TensorMap out;
  for (ir::ValueId p : g.params()) {
    const ir::Node& n = g.node(p);
    auto it = state.find(n.name);
    if (it == state.end()) throw Error("evaluation of @" + g.name() + ": no value for parameter '" + n.name + "'");
    if (it->second.type != n.type)
      throw Error("evaluation of @" + g.name() + ": parameter '" + n.name + "' is " + it->second.type.str() +
                  " but the graph wants " + n.type.str());
    out[n.name] = it->second;
  }
  return out;
}

}  // namespace

EvalResult evaluate(const ModelSpec& model, const reference::TensorMap& state, const runtime::Dataset& data,
                    int64_t batch, Backend backend) {
  if (batch < 1) throw Error("evaluation batch size must be positive, got " + std::to_string(batch));
  runtime::Batcher batcher(data, {.batchSize = batch, .seed = 0, .shuffle = false, .dropLast = false});
  struct Prepared {
    ir::Graph graph;
    GraphRunner runner;
  };
  std::map<int64_t, Prepared> prepared;  // by batch size: the full one and the last partial one
  EvalResult result;
  double lossSum = 0;
  int64_t correct = 0;
  runtime::Batch b;
  while (batcher.next(b)) {
    const int64_t n = b.labels.numel();
    auto it = prepared.find(n);
    if (it == prepared.end()) {
      ir::Graph built = model.build(false, n);
      GraphRunner runner(built, backend);
      runner.setState(paramsFor(built, state));
      it = prepared.emplace(n, Prepared{std::move(built), std::move(runner)}).first;
    }
    const ir::Graph& g = it->second.graph;
    reference::TensorMap out = it->second.runner.run(batchFeeds(g, b));
    auto loss = out.find("loss");
    if (loss == out.end()) throw Error("evaluation of @" + g.name() + ": the graph has no 'loss' output");
    lossSum += loss->second.get(0) * static_cast<double>(n);
    if (model.classifier) correct += countCorrect(out.at("logits"), b.labels);
    result.examples += n;
  }
  result.meanLoss = lossSum / static_cast<double>(result.examples);
  if (model.classifier) result.accuracy = static_cast<double>(correct) / static_cast<double>(result.examples);
  return result;
}

}  // namespace weft::training
