#pragma once
/// Evaluation of a trained model on a dataset: mean loss and, for classifiers, accuracy.
#include <cstdint>
#include <optional>

#include "backends/reference/interpreter.h"
#include "tools/training/backend.h"
#include "runtime/fashion_mnist.h"
#include "tools/training/model_spec.h"

namespace weft::training {

/// What evaluate measures.
struct EvalResult {
  int64_t examples = 0;            ///< examples evaluated
  double meanLoss = 0;             ///< the loss averaged over examples
  std::optional<double> accuracy;  ///< fraction of correct argmax predictions (classifiers)
};

/// Runs the evaluation form of `model` over every example of `data` in order, in batches of
/// `batch` (a smaller graph for the last partial batch) on `backend`, with parameters from `state`
/// (extra entries such as optimizer state are ignored; missing ones throw weft::Error).
EvalResult evaluate(const ModelSpec& model, const reference::TensorMap& state, const runtime::Dataset& data,
                    int64_t batch, Backend backend = Backend::cpu);

/// The number of rows of `logits` [N, C] whose argmax equals `labels` [N] (first maximum wins).
int64_t countCorrect(const ir::TensorData& logits, const ir::TensorData& labels);

}  // namespace weft::training
