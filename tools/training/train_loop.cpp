#include "tools/training/train_loop.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ir/error.h"
#include "passes/train_step.h"
#include "tools/training/checkpoint.h"
#include "tools/training/feeds.h"
#include "tools/training/progress.h"

namespace weft::training {
namespace {

void validate(const TrainOptions& o) {
  if (o.batchSize < 1) throw Error("the batch size must be positive, got " + std::to_string(o.batchSize));
  if (o.steps < 0) throw Error("the number of steps must be >= 0, got " + std::to_string(o.steps));
  if (o.steps == 0 && o.epochs < 1)
    throw Error("the number of epochs must be positive, got " + std::to_string(o.epochs));
  if (o.checkpointEvery < 0) throw Error("the checkpoint interval must be >= 0");
  if (o.stopAfter < 0) throw Error("the stop step must be >= 0");
  passes::validateOptimizer(o.optimizer);
}

/// Checks that the checkpoint `info` continues this run of `model`.
void checkResumable(const CheckpointInfo& info, const ModelSpec& model, const TrainOptions& o) {
  const std::string& path = o.resumePath;
  if (info.model != model.name)
    throw Error(path + ": the checkpoint is of model '" + info.model + "', not '" + model.name + "'");
  if (info.batchSize != o.batchSize)
    throw Error(path + ": the checkpoint was trained with batch size " + std::to_string(info.batchSize) + ", not " +
                std::to_string(o.batchSize));
  if (info.seed != o.seed)
    throw Error(path + ": the checkpoint was trained with seed " + std::to_string(info.seed) + ", not " +
                std::to_string(o.seed));
  if (info.optimizer != passes::optimizerName(o.optimizer))
    throw Error(path + ": the checkpoint was trained with optimizer " + info.optimizer + ", not " +
                passes::optimizerName(o.optimizer));
}

ir::TensorData scalarF32(double v) {
  ir::TensorData t(ir::TensorType{ir::DType::f32, {}});
  t.set(0, v);
  return t;
}

}  // namespace

ir::Graph buildStepGraph(const ModelSpec& model, const TrainOptions& options) {
  passes::TrainConfig cfg;
  cfg.optimizer = options.optimizer;
  return passes::buildTrainStep(model.build(true, options.batchSize), cfg);
}

TrainResult train(const ModelSpec& model, const runtime::Dataset& data, const TrainOptions& options) {
  validate(options);
  ir::Graph stepGraph = buildStepGraph(model, options);
  runtime::Batcher batcher(data, {.batchSize = options.batchSize,
                                  .seed = options.seed,
                                  .shuffle = true,
                                  .dropLast = true,
                                  .layout = runtime::ImageLayout::nchw});
  const int64_t perEpoch = batcher.batchesPerEpoch();
  if (options.steps == 0 && perEpoch > 0 && options.epochs > std::numeric_limits<int64_t>::max() / perEpoch)
    throw Error("--epochs " + std::to_string(options.epochs) + " is too many: at " + std::to_string(perEpoch) +
                " steps an epoch, the step count overflows");
  const int64_t total = options.steps > 0 ? options.steps : options.epochs * perEpoch;
  runtime::LrSchedule schedule = options.schedule;
  schedule.totalSteps = total;
  runtime::validateSchedule(schedule);

  TrainResult result;
  result.totalSteps = total;
  result.state = reference::initialState(stepGraph);
  CheckpointInfo position{.model = model.name,
                          .seed = options.seed,
                          .batchSize = options.batchSize,
                          .optimizer = passes::optimizerName(options.optimizer),
                          .settings = options.settings};
  if (!options.resumePath.empty()) {
    CheckpointInfo saved = readCheckpointInfo(options.resumePath);
    checkResumable(saved, model, options);
    loadCheckpointState(options.resumePath, result.state, /*exact=*/true);
    position = saved;
    position.settings = options.settings;
  }
  batcher.reset(position.epoch, position.batchIndex);
  result.firstStep = position.step;
  GraphRunner runner(stepGraph, options.backend);
  runner.setState(result.state);

  std::ostream nullStream(nullptr);
  ProgressReporter progress(options.log ? *options.log : nullStream, {.bar = options.progressBar,
                                                                      .logEvery = options.logEvery,
                                                                      .totalSteps = total,
                                                                      .stepsPerEpoch = perEpoch,
                                                                      .batchSize = options.batchSize});
  const int64_t stop = options.stopAfter > 0 ? std::min(total, options.stopAfter) : total;
  auto save = [&] {
    if (options.checkpointPath.empty()) return;
    result.state = runner.state();
    saveCheckpoint(options.checkpointPath, result.state, position);
  };

  while (position.step < stop) {
    runtime::Batch batch;
    if (!batcher.next(batch)) {
      batcher.reset(batcher.epoch() + 1, 0);
      batcher.next(batch);
    }
    const int64_t step = position.step;
    const double lr = runtime::learningRate(schedule, step);
    reference::TensorMap feeds = batchFeeds(stepGraph, batch, "lr");
    feeds["lr"] = scalarF32(lr);
    reference::TensorMap out = runner.step(feeds, static_cast<uint64_t>(step));
    const double loss = out.at("loss").get(0);
    if (!std::isfinite(loss)) {
      progress.finish();
      throw Error("the loss became " + std::to_string(loss) + " at step " + std::to_string(step + 1) +
                  " (try a lower learning rate or --clip-norm)");
    }
    result.losses.push_back(loss);
    position.step = step + 1;
    position.epoch = batcher.epoch();
    position.batchIndex = batcher.batchIndex();
    progress.step(step, position.epoch, loss, lr);
    const bool epochDone = position.batchIndex == perEpoch;
    if (epochDone) progress.epochEnd(position.epoch);
    if (epochDone || position.step == stop ||
        (options.checkpointEvery > 0 && position.step % options.checkpointEvery == 0))
      save();
  }
  progress.finish();
  if (result.losses.empty()) save();  // nothing left to run: still leave the checkpoint asked for
  result.state = runner.state();
  result.stepsDone = position.step;
  result.seconds = progress.seconds();
  result.examplesPerSecond = progress.examplesPerSecond();
  return result;
}

}  // namespace weft::training
