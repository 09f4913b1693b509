#pragma once
/// The training loop, independent of the command line: mini-batches from a Batcher, the
/// learning rate from a host-side schedule, one runStep of the train-step graph per batch
/// on the chosen backend, progress output and checkpoints that resume exactly.
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "passes/optimizers.h"
#include "runtime/fashion_mnist.h"
#include "runtime/lr_schedule.h"
#include "tools/training/backend.h"
#include "tools/training/model_spec.h"

namespace weft::training {

/// How to train.
struct TrainOptions {
  int64_t epochs = 1;                 ///< epochs to run (when steps == 0)
  int64_t steps = 0;                  ///< total steps of the run; 0: epochs * batches per epoch
  int64_t batchSize = 64;             ///< examples per step (the graph is built for it)
  uint64_t seed = 0;                  ///< batch order (and, through the ModelSpec, initialization)
  passes::OptimizerConfig optimizer;  ///< update rule
  runtime::LrSchedule schedule;       ///< learning rate; totalSteps is set by the loop
  std::string checkpointPath;         ///< when set: saved after every epoch, every checkpointEvery steps and at the end
  int64_t checkpointEvery = 0;        ///< also checkpoint every N steps (0: not)
  std::string resumePath;             ///< when set: continue the run saved there
  int64_t stopAfter = 0;              ///< stop (as if interrupted) once this many steps are done; 0: never
  std::ostream* log = nullptr;        ///< progress output; nullptr: silent
  bool progressBar = false;           ///< redraw a bar (terminal) instead of printing lines
  int64_t logEvery = 0;               ///< lines mode: a line every N steps (0: about 20 per run)
  std::map<std::string, std::string> settings;  ///< stored in checkpoints (CheckpointInfo::settings)
  Backend backend = Backend::cpu;     ///< where the step graph runs
};

/// What a run did.
struct TrainResult {
  int64_t firstStep = 0;         ///< global index of the first step run here (non-zero when resumed)
  int64_t totalSteps = 0;        ///< steps of the whole run
  int64_t stepsDone = 0;         ///< global steps done at the end
  std::vector<double> losses;    ///< the loss of every step run here, in order
  double seconds = 0;            ///< wall time of the steps run here
  double examplesPerSecond = 0;  ///< training throughput
  reference::TensorMap state;    ///< final parameters and optimizer state
};

/// The train-step graph for `model` under `options` (what train() runs).
ir::Graph buildStepGraph(const ModelSpec& model, const TrainOptions& options);

/// Trains `model` on `data`. Throws weft::Error for bad options, a dataset that does not fit
/// the model's inputs, a checkpoint that does not match the model or the run (naming the
/// tensor or field), or a loss that becomes NaN or infinite (naming the step).
TrainResult train(const ModelSpec& model, const runtime::Dataset& data, const TrainOptions& options);

}  // namespace weft::training
