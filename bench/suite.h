#pragma once
/// The benchmark suite of BENCH.md: for each model, inference (its evaluation form, forward
/// only) and one training step (forward, backward, Adam update, built as `weft train` builds
/// it), each prepared once on a backend and then timed (warm-up, median of repeated runs).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "bench/report.h"
#include "ir/graph.h"
#include "tools/training/backend.h"

namespace weft::bench {

/// What to run.
struct SuiteOptions {
  std::vector<std::string> models;                     ///< registered names; empty: benchmarkModels()
  std::vector<std::string> modes = {"infer", "train"};  ///< which modes, in this order
  training::Backend backend = training::Backend::cpu;  ///< where the graphs run
  int threads = 2;                                     ///< CPU backend worker threads
  int warmup = 3;                                      ///< untimed runs first
  /// ... and untimed runs past those until this long has passed: a row of a small model
  /// (mlp's inference: 23 runs in 12 ms) right after a peer's process had both cores busy
  /// otherwise ran at a fifth of its speed in about one run of four (2.3 ms against 0.46).
  double warmupSeconds = 0.2;
  int repeat = 20;                                     ///< timed runs (the median is reported)
  uint64_t seed = 0;                                   ///< model seed
  bool memory = false;  ///< training rows on the CPU also report the planned peak (Row::weftPeakBytes)
};

/// The eight benchmark models of BENCH.md, in its order.
const std::vector<std::string>& benchmarkModels();

/// The graph timed as the inference of model `name`: its evaluation form, except that for
/// dcgan (and dcgan_tiny) it is the generator alone, which is what torch_models.py times.
/// Throws weft::Error for an unknown name.
ir::Graph inferenceGraph(const std::string& name, uint64_t seed = 0);

/// The training step of model `name` with Adam, as tools/training's buildStepGraph builds it
/// (the model's own batch size; the learning rate is the input `lr`).
ir::Graph trainStepGraph(const std::string& name, uint64_t seed = 0);

/// Prepares `g` on `backend` (compiles it for the CPU) with inputs from benchmarkInputs and
/// returns one run: a forward run (`step` false: outputs only, no state update) or one step
/// that applies the graph's updates to the held state. On the CPU, `peakBytes` (when given)
/// receives the compiled graph's planned peak (cpu::CompileStats::peakBytes).
std::function<void()> prepareRun(const ir::Graph& g, training::Backend backend, bool step, int threads,
                                 int64_t* peakBytes = nullptr);

/// A row's timing, or the error that stopped it.
struct RowResult {
  std::optional<Row> row;  ///< the result (peer and GEMM columns unset)
  std::string error;       ///< why there is no row
};

/// Builds, prepares and times one (model, mode). A weft::Error while building, compiling or
/// running becomes RowResult::error; other exceptions propagate.
RowResult runRow(const std::string& model, const std::string& mode, const SuiteOptions& options);

}  // namespace weft::bench
