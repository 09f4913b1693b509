// `weft run`: runs a graph (or steps of its training step) on the compiled CPU backend or the
// interpreter and writes its outputs (and the trained parameters) as .npy.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <filesystem>
#include <iostream>

#include "backends/cpu/executable.h"
#include "backends/reference/interpreter.h"
#include "ir/error.h"
#include "passes/pass_manager.h"
#include "passes/train_step.h"
#include "runtime/file_io.h"
#include "runtime/npy.h"
#include "runtime/random.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {
namespace {

const char* kRunHelp = R"(usage: weft run MODEL|FILE.weft [options]

Runs a graph and writes each output to DIR/NAME.npy.
Inputs come from .npy files, in the order of the graph's inputs; without --inputs they are
synthesized: floats uniform in [0, 1) drawn with --seed, integers and bools zero.
Parameters are initialized from their init attributes.

options:
  --inputs=A.npy,B.npy   one .npy file per graph input, in order
  --seed=N               seed for synthesized inputs (default 0)
  --step=N               step counter for random ops (default 0)
  --passes=P1,P2,...     run these passes first
  --backend=NAME         cpu (compiled; default) or reference (the interpreter)
  --threads=N            the compiled executable's worker threads (default WEFT_THREADS, else 2)
  --out=DIR              where to write outputs (default weft-out)
  --repeat=N             then time N more runs on the same inputs and print their median
                         and fastest milliseconds (with WEFT_PROFILE=1, per-step times too)
  --cold                 with --repeat, write over 64 MiB before each timed run (untimed), so
                         that the run finds its data in memory, not in the caches: as a
                         training step's weight gradient finds the activations of its forward
                         pass

training (a graph with a scalar `loss` output, as weft compile --train builds its step):
  --train                run the training step instead: the forward pass, the gradients of
                         `loss` for every trainable parameter and the optimizer's update; the
                         outputs written are the last step's (its forward pass, before its
                         update), and each trained parameter's value after the steps goes to
                         DIR/params/NAME.npy
  --steps=N              steps to run, on the same inputs (default 1; --step numbers the first)
  --lr=X                 the learning rate (default 0.01)
  --optimizer NAME       the step's optimizer (default adam; see weft train --help)
  --weight-decay=X       L2 penalty (sgd, momentum, nesterov, adam) or decoupled decay (adamw);
                         default 0, 0.01 for adamw
  --clip-norm=X          clip the gradients to this global L2 norm first (default: no clipping)
  --eps=X                adam's and adamw's denominator guard (default 1e-8): with eps near the
                         gradients' size an update is smooth in them, so that runs of two
                         backends can be compared element by element past the first step
)";

ir::TensorData synthesize(const ir::TensorType& type, uint64_t seed, uint64_t salt) {
  ir::TensorData t(type);
  if (ir::isFloat(type.dtype))
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, runtime::uniformAt(seed, salt, static_cast<uint64_t>(i)));
  return t;
}

std::string preview(const ir::TensorData& t) {
  std::string s = "[";
  int64_t n = std::min<int64_t>(t.numel(), 6);
  for (int64_t i = 0; i < n; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.5g", i ? ", " : "", t.get(i));
    s += buf;
  }
  return s + (t.numel() > n ? ", ...]" : "]");
}

/// The bytes --cold writes over before each timed run: twice the 32 MiB L3 of the AMD EPYC
/// Zen 4 (one CCD's), more than any cache of the machines weft is timed on.
constexpr size_t kEvictorBytes = size_t{64} << 20;

}  // namespace

int cmdRun(int argc, char** argv) {
  Args args(argc, argv, 2,
            {"inputs", "seed", "step", "passes", "out", "backend", "repeat", "threads", "steps", "lr", "optimizer",
             "weight-decay", "clip-norm", "eps"},
            {"help", "train", "cold"});
  if (args.has("help")) {
    std::cout << kRunHelp;
    return 0;
  }
  if (args.positional().size() != 1) throw Error("weft run needs one MODEL or FILE.weft (see --help)");
  const std::string backend = args.get("backend", "cpu");
  if (backend != "cpu" && backend != "reference") throw Error("unknown backend '" + backend + "' (known: cpu, reference)");
  const bool train = args.has("train");
  for (const char* option : {"steps", "lr", "optimizer", "weight-decay", "clip-norm", "eps"})
    if (args.has(option) && !train) throw Error(std::string("--") + option + " needs --train (see --help)");
  if (train && args.has("repeat")) throw Error("--repeat times forward runs; time training steps with weft bench");
  if (args.has("cold") && !args.has("repeat")) throw Error("--cold needs --repeat (see --help)");
  ir::Graph g = loadGraph(args.positional()[0]);
  passes::PassManager(args.get("passes", "")).run(g);
  passes::TrainConfig training;
  if (train) {
    training.optimizer = passes::parseOptimizer(args.get("optimizer", "adam"));
    training.optimizer.weightDecay = args.getDouble("weight-decay", training.optimizer.weightDecay);
    training.optimizer.clipNorm = args.getDouble("clip-norm", 0);
    if (args.has("eps")) passes::setAdamEps(training.optimizer, args.getDouble("eps", 0));
    g = passes::buildTrainStep(g, training);
  }
  const int64_t steps = args.getInt("steps", 1);
  if (steps < 1) throw Error("--steps must be at least 1, got " + std::to_string(steps));

  std::vector<ir::ValueId> inputs;  // those fed from --inputs or synthesized: all but the learning rate
  for (ir::ValueId v : g.inputs())
    if (!train || g.node(v).name != training.lrInput) inputs.push_back(v);
  reference::TensorMap feeds;
  auto files = splitCommas(args.get("inputs", ""));
  if (args.has("inputs")) {
    if (files.size() != inputs.size()) {
      std::string want;
      for (auto v : inputs) want += " %" + g.node(v).name + ": " + g.type(v).str();
      throw Error("--inputs has " + std::to_string(files.size()) + " file(s) but @" + g.name() + " takes " +
                  std::to_string(inputs.size()) + ":" + want);
    }
    for (size_t i = 0; i < inputs.size(); ++i) feeds[g.node(inputs[i]).name] = runtime::readNpy(files[i]);
  } else {
    auto seed = static_cast<uint64_t>(args.getInt("seed", 0));
    for (size_t i = 0; i < inputs.size(); ++i)
      feeds[g.node(inputs[i]).name] = synthesize(g.type(inputs[i]), seed, 1000 + i);
  }
  if (train) {
    ir::TensorData lr({ir::DType::f32, {}});
    lr.set(0, args.getDouble("lr", 0.01));
    feeds[training.lrInput] = lr;
  }
  reference::RunOptions opts;
  opts.step = static_cast<uint64_t>(args.getInt("step", 0));
  const int64_t repeat = args.getInt("repeat", 0);
  if (repeat < 0) throw Error("--repeat must be at least 0, got " + std::to_string(repeat));
  const int threads = applyThreadsOption(args);
  std::optional<cpu::Executable> exe;
  if (backend == "cpu") exe.emplace(cpu::compile(g));
  auto runOnce = [&] { return exe ? exe->run(feeds, opts) : reference::run(g, feeds, opts); };
  reference::TensorMap state, outputs;
  if (train) {
    state = reference::initialState(g);
    for (int64_t k = 0; k < steps; ++k, ++opts.step)
      outputs = exe ? cpu::runStep(*exe, feeds, state, opts) : reference::runStep(g, feeds, state, opts);
  } else {
    outputs = runOnce();
  }
  if (repeat > 0) {
    std::vector<double> ms;
    std::vector<char> evictor(args.has("cold") ? kEvictorBytes : 0);
    for (int64_t i = 0; i < repeat; ++i) {
      for (size_t b = 0; b < evictor.size(); b += 64) ++evictor[b];  // every line of it, dirty
      auto start = std::chrono::steady_clock::now();
      runOnce();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    const std::string where = exe ? "cpu (" + threadCount(threads) + ")" : backend;
    std::printf("@%s on %s: %lld runs%s, median %.3f ms, fastest %.3f ms\n", g.name().c_str(), where.c_str(),
                static_cast<long long>(repeat), evictor.empty() ? "" : " with cold caches", ms[ms.size() / 2],
                ms.front());
  }

  // Every output is serialized before any file is written: one that .npy cannot hold (bf16)
  // fails the command with nothing written.
  std::string dir = args.get("out", "weft-out");
  if (dir.empty()) throw Error("--out needs a directory");
  std::vector<std::pair<std::string, std::string>> written;  // path, .npy bytes
  auto serialize = [&](const std::string& path, const ir::TensorData& t) {
    try {
      written.emplace_back(path, runtime::serializeNpy(t));
    } catch (const Error& e) {
      throw Error(path + ": " + e.what() + " (no output was written)");
    }
  };
  for (const auto& o : g.outputs()) serialize(dir + "/" + o.name + ".npy", outputs.at(o.name));
  const std::vector<ir::ValueId> trained = train ? passes::trainableParams(g) : std::vector<ir::ValueId>{};
  for (ir::ValueId p : trained) serialize(dir + "/params/" + g.node(p).name + ".npy", state.at(g.node(p).name));
  std::error_code ec;
  runtime::NewDirectories made;  // removed again, innermost first, unless every file is written
  if (!trained.empty()) made.add(dir + "/params");
  made.add(dir);
  std::filesystem::create_directories(trained.empty() ? dir : dir + "/params", ec);
  if (ec) throw Error(dir + ": cannot create output directory: " + ec.message());
  runtime::writeFilesAtomically(written);  // every output or none
  made.keep();
  for (size_t i = 0; i < g.outputs().size(); ++i) {
    const auto& t = outputs.at(g.outputs()[i].name);
    std::cout << g.outputs()[i].name << ": " << t.type.str() << " -> " << written[i].first << "  " << preview(t) << "\n";
  }
  if (train)
    std::cout << trained.size() << " trained parameters after " << steps << (steps == 1 ? " step" : " steps")
              << " -> " << dir << "/params/\n";
  return 0;
}

}  // namespace weft::cli
