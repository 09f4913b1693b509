// The benchmark rows: which graph each (model, mode) times and how it runs on each backend.
#include "bench/suite.h"

#include <memory>

#include "backends/cpu/executable.h"
#include "backends/reference/interpreter.h"
#include "ir/error.h"
#include "models/registry.h"
#include "passes/builtin_passes.h"
#include "tools/training/model_spec.h"
#include "tools/training/train_loop.h"

namespace weft::bench {

const std::vector<std::string>& benchmarkModels() {
  static const std::vector<std::string> names = {"mlp", "lenet", "resnet", "vae", "gpt", "dcgan", "ddpm", "realnvp"};
  return names;
}

// torch_models.py's inference runs each net's forward: the logits of mlp, lenet and resnet,
// the block stack's output of gpt, the U-Net's noise prediction of ddpm, G(z) of dcgan, and
// the whole loss of vae and realnvp, whose forward is their loss. So the evaluation form
// keeps only those outputs (ddpm's still draws t and the noise and forms x_t: a few
// elementwise ops over the batch; torch runs the U-Net at t = 500).
ir::Graph inferenceGraph(const std::string& name, uint64_t seed) {
  models::BuildOptions options;
  options.training = false;
  options.seed = seed;
  std::string family = name.ends_with("_tiny") ? name.substr(0, name.size() - 5) : name;
  if (family == "dcgan") {
    const models::ModelInfo* info = models::findModel(name);
    if (info && info->decoder) return info->decoder(options);
  }
  ir::Graph g = models::buildModel(name, options);
  if (family == "vae" || family == "realnvp" || g.outputs().size() < 2) return g;
  std::erase_if(g.outputs(), [](const ir::Output& out) { return out.name == "loss"; });
  passes::eliminateDeadCode(g);
  return g;
}

ir::Graph trainStepGraph(const std::string& name, uint64_t seed) {
  training::TrainOptions options;
  options.batchSize = 0;  // the model's own batch size
  options.optimizer.kind = passes::OptimizerKind::adam;
  return training::buildStepGraph(training::registryModel(name, seed), options);
}

std::function<void()> prepareRun(const ir::Graph& g, training::Backend backend, bool step, int threads,
                                 int64_t* peakBytes) {
  auto inputs = std::make_shared<reference::TensorMap>(benchmarkInputs(g));
  if (backend == training::Backend::cpu) {
    cpu::CompileOptions options;
    options.threads = threads;
    auto exe = std::make_shared<cpu::Executable>(cpu::compile(g, options));
    if (peakBytes) *peakBytes = exe->stats().peakBytes;
    if (step) return [exe, inputs] { exe->step(*inputs); };
    return [exe, inputs] { exe->run(*inputs); };
  }
  auto graph = std::make_shared<const ir::Graph>(g);
  auto state = std::make_shared<reference::TensorMap>(reference::initialState(g));
  if (step) return [graph, inputs, state] { reference::runStep(*graph, *inputs, *state); };
  // Forward runs take the parameters as feeds, so no run re-initializes them.
  for (auto& [name, value] : *state) inputs->emplace(name, value);
  return [graph, inputs] { reference::run(*graph, *inputs); };
}

RowResult runRow(const std::string& model, const std::string& mode, const SuiteOptions& options) {
  if (mode != "infer" && mode != "train") throw Error("bench: unknown mode '" + mode + "' (infer, train)");
  RowResult result;
  try {
    bool train = mode == "train";
    ir::Graph g = train ? trainStepGraph(model, options.seed) : inferenceGraph(model, options.seed);
    int64_t peakBytes = -1;
    std::function<void()> run = prepareRun(g, options.backend, train, options.threads, &peakBytes);
    Timing t = timeRuns(run, options.warmup, options.repeat, options.warmupSeconds);
    Row row;
    if (options.memory && train && peakBytes >= 0) row.weftPeakBytes = static_cast<double>(peakBytes);
    row.model = model;
    row.mode = mode;
    row.weftMs = t.medianMs;
    row.flops = countFlops(g);
    result.row = row;
  } catch (const Error& e) {
    result.error = e.what();
  }
  return result;
}

}  // namespace weft::bench
