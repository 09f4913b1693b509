// `weft train`: trains a registered model on Fashion-MNIST (or synthetic images) with the
// reference interpreter, then reports the test accuracy or loss.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>

#include "ir/error.h"
#include "ir/printer.h"
#include "runtime/file_io.h"
#include "runtime/synthetic.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/training/checkpoint.h"
#include "tools/training/evaluate.h"
#include "tools/training/train_loop.h"

namespace weft::cli {
namespace {

const char* kTrainHelp = R"(usage: weft train MODEL [options]

Trains a registered model (mlp, lenet: classifiers; vae: ELBO) on Fashion-MNIST, one
train-step graph (forward, backward, update) run per mini-batch, then evaluates it on the
test set (accuracy for classifiers, mean loss otherwise). Progress is a bar on a terminal
and plain lines otherwise.

options:
  --epochs N             epochs to train (default 1)
  --steps N              total steps instead of whole epochs
  --batch N              examples per step (default: the model's batch size)
  --lr X                 peak learning rate (default 1e-3 for adam/adamw, 0.05 for SGD)
  --optimizer NAME       sgd | momentum | nesterov | adam | adamw (default adam)
  --weight-decay X       L2 penalty (sgd, adam) or decoupled decay (adamw; default 0.01)
  --clip-norm X          clip gradients to this global L2 norm (default: no clipping)
  --eps X                adam's and adamw's denominator guard (default 1e-8)
  --schedule NAME        const | step | cosine learning-rate schedule (default const)
  --warmup N             linear warm-up over the first N steps (default 0)
  --seed N               seed of initialization and batch order (default 0)
  --backend NAME         cpu (compiled: oneDNN + generated kernels; default) or reference
                         (the interpreter)
  --threads N            the compiled backend's worker threads (default WEFT_THREADS, else 2)
  --limit N              use only the first N training examples
  --test-limit N         evaluate on only the first N test examples
  --data NAME            fashion-mnist (default) or synthetic (class-dependent patterns
                         sized to the model's input; no download needed)
  --data-dir DIR         where Fashion-MNIST lives (default $WEFT_FASHION_MNIST_DIR or
                         /usr/share/datasets/fashion-mnist)
  --checkpoint FILE      save the training state (safetensors) after every epoch and at the end
  --checkpoint-every N   also save it every N steps
  --resume FILE          continue the run saved in FILE exactly (its options are the defaults)
  --stop-after N         stop once N steps are done, as if interrupted (the schedule still
                         spans the whole run)
  --log-every N          without a terminal: a line every N steps (default: ~20 lines)
  --no-eval              skip the test-set evaluation
  --dump-step            print the train-step graph's IR and exit
)";

/// Options whose value a checkpoint remembers, so `--resume FILE` alone continues the run.
const std::vector<std::string> kRememberedOptions = {"epochs",    "steps",        "batch",     "lr",
                                                     "optimizer", "weight-decay", "clip-norm", "eps",
                                                     "schedule",  "warmup",       "seed",      "limit",
                                                     "data"};

/// Option values: the command line first, then the checkpoint being resumed.
class Settings {
 public:
  /// `saved` are the options of checkpoint `savedIn` (empty when none is resumed).
  Settings(const Args& args, std::map<std::string, std::string> saved, std::string savedIn)
      : args_(args), saved_(std::move(saved)), savedIn_(std::move(savedIn)) {}

  std::optional<std::string> get(const std::string& key) const {
    if (auto v = args_.get(key)) return v;
    if (auto it = saved_.find(key); it != saved_.end()) return it->second;
    return std::nullopt;
  }
  std::string str(const std::string& key, const std::string& dflt) const { return get(key).value_or(dflt); }
  long long integer(const std::string& key, long long dflt) const {
    auto v = get(key);
    if (!v) return dflt;
    size_t used = 0;
    try {
      long long r = std::stoll(*v, &used);
      if (used == v->size()) return r;
    } catch (const std::exception&) {
    }
    throw Error("option --" + key + " needs an integer, got '" + *v + "'" + origin(key));
  }
  double number(const std::string& key, double dflt) const {
    auto v = get(key);
    if (!v) return dflt;
    size_t used = 0;
    try {
      double r = std::stod(*v, &used);
      if (used == v->size() && std::isfinite(r)) return r;
    } catch (const std::exception&) {
    }
    throw Error("option --" + key + " needs a number, got '" + *v + "'" + origin(key));
  }
  /// The remembered options that have a value, for the checkpoint.
  std::map<std::string, std::string> remembered() const {
    std::map<std::string, std::string> out;
    for (const auto& key : kRememberedOptions)
      if (auto v = get(key)) out[key] = *v;
    return out;
  }

 private:
  /// Where the value of `key` came from, for messages: nothing for the command line.
  std::string origin(const std::string& key) const {
    return args_.get(key) ? "" : " (the value saved in the checkpoint " + savedIn_ + ")";
  }

  const Args& args_;
  std::map<std::string, std::string> saved_;
  std::string savedIn_;
};

long long positive(const std::string& what, long long v) {
  if (v < 1) throw Error("--" + what + " must be positive, got " + std::to_string(v));
  return v;
}

/// Examples per input row of the model's `x` and the image shape they form.
struct ImageShape {
  int64_t rows = 0, cols = 0, classes = 10;
};

ImageShape imageShapeOf(const ir::Graph& g, bool classifier) {
  auto x = g.find("x");
  if (!x || g.node(*x).op != ir::OpKind::Input || g.type(*x).rank() < 1)
    throw Error("model @" + g.name() + " has no input 'x' to train on");
  const ir::TensorType& t = g.type(*x);
  int64_t features = t.numel() / t.shape[0];
  ImageShape s;
  auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(features))));
  if (side * side == features)
    s.rows = s.cols = side;
  else
    s.rows = 1, s.cols = features;
  if (classifier) s.classes = g.type(*g.findOutput("logits")).shape.back();
  return s;
}

runtime::Dataset loadData(const std::string& source, runtime::Split split, const training::ModelSpec& model,
                          const ImageShape& shape, const std::string& dir, int64_t limit, uint64_t seed) {
  if (source == "synthetic") {
    int64_t count = limit >= 0 ? limit : (split == runtime::Split::train ? 1024 : 256);
    return runtime::makePatternImages(count, static_cast<int32_t>(shape.classes), shape.rows, shape.cols,
                                      seed + (split == runtime::Split::train ? 0 : 7919));
  }
  if (source != "fashion-mnist") throw Error("unknown --data '" + source + "'; known: fashion-mnist, synthetic");
  if (shape.rows * shape.cols != 28 * 28)
    throw Error("model '" + model.name + "' takes " + std::to_string(shape.rows * shape.cols) +
                " features per example but Fashion-MNIST images have 784; use --data synthetic");
  auto norm = model.classifier ? runtime::Normalization::standardized : runtime::Normalization::unit;
  return runtime::loadFashionMnist(split, norm, dir, limit);
}

}  // namespace

int cmdTrain(int argc, char** argv) {
  Args args(argc, argv, 2,
            {"epochs", "steps", "batch", "lr", "optimizer", "weight-decay", "clip-norm", "eps", "schedule", "warmup",
             "seed", "limit", "test-limit", "data", "data-dir", "checkpoint", "checkpoint-every", "resume",
             "stop-after", "log-every", "backend", "threads"},
            {"help", "no-eval", "dump-step"});
  if (args.has("help")) {
    std::cout << kTrainHelp;
    return 0;
  }
  if (args.positional().size() != 1) throw Error("weft train needs one MODEL (see --help)");
  const std::string modelName = args.positional()[0];

  std::map<std::string, std::string> saved;
  std::string resume = args.get("resume", "");
  if (!resume.empty()) {
    training::CheckpointInfo info = training::readCheckpointInfo(resume);
    if (info.model != modelName)
      throw Error(resume + ": the checkpoint is of model '" + info.model + "', not '" + modelName + "'");
    saved = info.settings;
  }
  Settings settings(args, saved, resume);

  training::TrainOptions opt;
  opt.seed = static_cast<uint64_t>(settings.integer("seed", 0));
  if (settings.integer("seed", 0) < 0) throw Error("--seed must be >= 0");
  training::ModelSpec model = training::registryModel(modelName, opt.seed);
  ir::Graph probe = model.build(true, 0);
  const ImageShape shape = imageShapeOf(probe, model.classifier);

  opt.batchSize = positive("batch", settings.integer("batch", probe.type(*probe.find("x")).shape[0]));
  opt.optimizer = passes::parseOptimizer(settings.str("optimizer", "adam"));
  opt.optimizer.weightDecay = settings.number("weight-decay", opt.optimizer.weightDecay);
  opt.optimizer.clipNorm = settings.number("clip-norm", 0);
  if (settings.get("eps")) passes::setAdamEps(opt.optimizer, settings.number("eps", 0));
  const bool adaptive = opt.optimizer.kind != passes::OptimizerKind::sgd;
  opt.schedule.base = settings.number("lr", adaptive ? 1e-3 : 0.05);
  opt.schedule.kind = runtime::parseScheduleKind(settings.str("schedule", "const"));
  opt.schedule.warmup = settings.integer("warmup", 0);
  if (args.has("epochs") && args.has("steps"))
    throw Error("--epochs and --steps cannot be combined: --steps sets the run's length by itself");
  opt.epochs = positive("epochs", settings.integer("epochs", 1));
  opt.steps = settings.get("steps") ? positive("steps", settings.integer("steps", 1)) : 0;
  opt.checkpointPath = args.get("checkpoint", "");
  opt.checkpointEvery = args.getInt("checkpoint-every", 0);
  opt.stopAfter = args.getInt("stop-after", 0);
  opt.resumePath = resume;
  opt.logEvery = args.getInt("log-every", 0);
  opt.settings = settings.remembered();
  opt.log = &std::cout;
  opt.progressBar = isatty(fileno(stdout)) != 0;
  opt.backend = training::parseBackend(args.get("backend", "cpu"));
  const int threads = applyThreadsOption(args);
  if (opt.checkpointEvery < 0 || opt.stopAfter < 0 || opt.logEvery < 0)
    throw Error("--checkpoint-every, --stop-after and --log-every must be >= 0");
  if (opt.checkpointEvery > 0 && opt.checkpointPath.empty()) throw Error("--checkpoint-every needs --checkpoint FILE");
  if (!opt.checkpointPath.empty()) runtime::checkWritable(opt.checkpointPath);  // before training, not after an epoch
  const int64_t testLimit = args.has("test-limit") ? positive("test-limit", args.getInt("test-limit", 1)) : -1;

  if (args.has("dump-step")) {
    passes::validateOptimizer(opt.optimizer);
    std::cout << ir::printGraph(training::buildStepGraph(model, opt));
    return 0;
  }

  const std::string source = settings.str("data", "fashion-mnist");
  const std::string dir = args.get("data-dir", "");
  int64_t limit = settings.get("limit") ? positive("limit", settings.integer("limit", 1)) : -1;
  runtime::Dataset trainSet = loadData(source, runtime::Split::train, model, shape, dir, limit, opt.seed);
  // The test set is read before training, so that a missing or corrupt file fails first;
  // a run told to stop early evaluates nothing and reads it only if it gets to the end.
  std::optional<runtime::Dataset> testSet;
  if (!args.has("no-eval") && opt.stopAfter == 0)
    testSet = loadData(source, runtime::Split::test, model, shape, dir, testLimit, opt.seed);
  const std::string backend = opt.backend == training::Backend::cpu
                                  ? "cpu backend (" + threadCount(threads) + ")"
                                  : training::backendName(opt.backend) + " backend";
  std::printf("training %s on %lld %s examples: batch %lld, %s, lr %g (%s schedule), %s\n", modelName.c_str(),
              static_cast<long long>(trainSet.count), source.c_str(), static_cast<long long>(opt.batchSize),
              passes::optimizerName(opt.optimizer).c_str(), opt.schedule.base,
              runtime::scheduleName(opt.schedule.kind).c_str(), backend.c_str());
  std::fflush(stdout);

  training::TrainResult r = training::train(model, trainSet, opt);
  if (r.losses.empty()) {
    std::printf("nothing to do: the run already has %lld of %lld steps\n", static_cast<long long>(r.stepsDone),
                static_cast<long long>(r.totalSteps));
  } else {
    std::printf("trained %lld steps (%lld..%lld of %lld) in %.2f s, %.1f examples/s, last loss %.6f\n",
                static_cast<long long>(r.losses.size()), static_cast<long long>(r.firstStep + 1),
                static_cast<long long>(r.stepsDone), static_cast<long long>(r.totalSteps), r.seconds,
                r.examplesPerSecond, r.losses.back());
  }
  if (!opt.checkpointPath.empty())
    std::printf("checkpoint: %s (step %lld)\n", opt.checkpointPath.c_str(), static_cast<long long>(r.stepsDone));
  if (args.has("no-eval") || r.stepsDone < r.totalSteps) return 0;

  if (!testSet) testSet = loadData(source, runtime::Split::test, model, shape, dir, testLimit, opt.seed);
  training::EvalResult e = training::evaluate(model, r.state, *testSet, opt.batchSize, opt.backend);
  if (e.accuracy)
    std::printf("test: accuracy %.4f (%lld examples), mean loss %.6f\n", *e.accuracy,
                static_cast<long long>(e.examples), e.meanLoss);
  else
    std::printf("test: mean loss %.6f (%lld examples)\n", e.meanLoss, static_cast<long long>(e.examples));
  return 0;
}

}  // namespace weft::cli
