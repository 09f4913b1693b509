// `weft compile`: compiles a graph (or its training step) for the CPU and reports what it
// made; with --aot, writes it as an ahead-of-time bundle (backends/cpu/aot.h) instead.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <vector>

#include "backends/cpu/aot.h"
#include "backends/cpu/executable.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "passes/pass_manager.h"
#include "passes/train_step.h"
#include "runtime/cpu/program.h"
#include "runtime/file_io.h"
#include "runtime/safetensors.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {
namespace {

const char* kCompileHelp = R"(usage: weft compile MODEL|FILE.weft [options]

       weft compile MODEL|FILE.weft --aot -o DIR [bundle options]

Compiles a graph for the CPU backend: the CPU pipeline (decompose, simplify, fuse, order
the nodes for memory), the memory plan (one arena for activations, persistent state), then
one step per kernel (oneDNN primitives, generated kernels, reference kernels as the
fallback).

With --aot it writes an ahead-of-time bundle into DIR instead, for programs that run the
model without weft's compiler (linking NAME.o with libweft_runtime, see NAME.md):
NAME.o (generated kernels and the descriptor NAME_bundle), NAME.h (C header: ABI version,
sizes, name/dtype/shape of every input, output and parameter), NAME.safetensors (the
parameters, and the optimizer state with --train) and NAME.md (how to build against it).
A bundle has no reference kernels: a graph with a node only they run is an error.

options:
  --train                compile the training step (loss, gradients, Adam update) instead
  --eval                 a registered model in its evaluation form (batch norm with its
                         running statistics, no dropout); the default of --aot bundles
                         without --train (`--no-eval` keeps the training form)
  --optimizer NAME       the step's optimizer (default adam)
  --stats                print kernel counts, arena, state and peak sizes, compile times
                         (with --aot: the bundle's steps, sizes, stage times and startup)
  --print-ir             print the graph as compiled (after fusion)
  --print-constants      with --print-ir, print large constants in full instead of as
                         dense<elided> (text that weft run can run)
  --dump-mlir DIR        write the MLIR of every generated kernel to DIR/NAME.mlir
  --dump-asm DIR         write the assembly of every generated kernel (its function and
                         packed entry) to DIR/NAME.s
  --threads N            worker threads (default 2)

bundle options (with --aot):
  -o, --output DIR       the directory to write into (created when missing); required
  --name NAME            the bundle's name, a C identifier (default: the graph's name,
                         e.g. mlp, or mlp_train with --train)
  --mcpu CPU             the LLVM CPU to generate code for (default: this host's), e.g.
                         x86-64-v2, x86-64-v3, skylake-avx512, znver3
  --target-triple T      the target triple (x86-64 ELF only; default: this host's)
  --weights FILE         initial parameters from a safetensors file (a `weft train
                         --checkpoint` file, or another bundle's weights): it must hold
                         every parameter of the model; the optimizer state (opt.*) is
                         ignored for a bundle without one, else taken whole (all of the
                         step's opt.* tensors, of the same optimizer) or, when the file
                         has none, started fresh. Other extra tensors are an error.
)";

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string sizeText(int64_t bytes) {
  char buf[32];
  if (bytes < 1024) return std::to_string(bytes) + " B";
  if (bytes < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
    return buf;
  }
  return mib(bytes);
}

std::string msText(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, seconds < 1e-3 ? "%.3f ms" : "%.1f ms", seconds * 1e3);
  return buf;
}

bool isOptimizerState(const std::string& name) { return name.rfind("opt.", 0) == 0; }

/// The parameters of `g` read from the safetensors file `path` (--weights): every parameter
/// of `g` except the optimizer state (opt.*) must be there; any other extra tensor is an
/// error (the weights of another model). The optimizer state is ignored when `g` has none (a
/// checkpoint's, when writing an inference bundle); otherwise it is taken all or none (none:
/// it starts fresh), the file's opt.* tensors must be `g`'s, and a checkpoint's optimizer
/// (metadata weft.optimizer) must be `optimizer`. Types are checked by writeBundle.
reference::TensorMap readWeights(const std::string& path, const ir::Graph& g, const std::string& optimizer) {
  runtime::TensorMap loaded = runtime::loadSafetensors(path);
  std::vector<std::string> graphState, fileState;
  for (ir::ValueId p : g.params())
    if (isOptimizerState(g.node(p).name)) graphState.push_back(g.node(p).name);
  for (const auto& [name, tensor] : loaded)
    if (isOptimizerState(name)) fileState.push_back(name);
  if (!graphState.empty() && !fileState.empty()) {
    const runtime::MetadataMap meta = runtime::readSafetensorsMetadata(path);
    if (auto saved = meta.find("weft.optimizer"); saved != meta.end() && saved->second != optimizer)
      throw Error(path + ": the optimizer state is " + saved->second + "'s, but the bundle's step uses " + optimizer +
                  " (--optimizer)");
    for (const std::string& name : fileState)
      if (std::find(graphState.begin(), graphState.end(), name) == graphState.end())
        throw Error(path + ": tensor '" + name + "' is not optimizer state of graph @" + g.name() +
                    " (state of another optimizer?)");
    for (const std::string& name : graphState)
      if (!loaded.count(name))
        throw Error(path + ": the optimizer state has no tensor '" + name + "' (it is taken all or none)");
  }
  reference::TensorMap state;
  for (auto& [name, tensor] : loaded) {
    auto v = g.find(name);
    bool isParam = v && g.node(*v).op == ir::OpKind::Param;
    if (!isParam && isOptimizerState(name)) continue;
    if (!isParam)
      throw Error(path + ": tensor '" + name + "' is not a parameter of graph @" + g.name() +
                  " (weights of another model?)");
    if (tensor.type != g.type(*v))
      throw Error(path + ": tensor '" + name + "' is " + tensor.type.str() + ", parameter '" + name + "' of @" +
                  g.name() + " is " + g.type(*v).str());
    state[name] = std::move(tensor);
  }
  for (ir::ValueId p : g.params()) {
    const std::string& name = g.node(p).name;
    if (!state.count(name) && !isOptimizerState(name))
      throw Error(path + ": no tensor '" + name + "' for parameter '" + name + "' of graph @" + g.name());
  }
  return state;
}

/// `weft compile --aot`: writes the bundle, one line per file, and with --stats what it holds.
int compileBundle(const Args& args, const ir::Graph& g) {
  for (const char* other : {"print-ir", "print-constants", "dump-mlir", "dump-asm"})
    if (args.has(other)) throw Error(std::string("--") + other + " does not apply to --aot");
  if (args.has("threads"))
    throw Error("--threads does not apply to --aot (a bundle's threads are set when it runs: WEFT_THREADS or "
                "weft_model_set_threads)");
  auto dir = args.get("output");
  if (!dir || dir->empty()) throw Error("--aot needs an output directory: -o DIR (see --help)");
  cpu::AotOptions options;
  options.outDir = *dir;
  options.name = args.get("name", "");
  options.cpu = args.get("mcpu", "");
  options.triple = args.get("target-triple", "");
  if (auto weights = args.get("weights"))
    options.state = readWeights(*weights, g, passes::optimizerName(passes::parseOptimizer(args.get("optimizer", "adam"))));
  cpu::AotResult result = cpu::writeBundle(g, options);
  for (const auto& [path, bytes] : result.files) std::printf("wrote %s (%s)\n", path.c_str(), sizeText(bytes).c_str());
  if (!args.has("stats")) return 0;

  int64_t objectBytes = 0, weightsBytes = 0;
  for (const auto& [path, bytes] : result.files) {
    if (path.size() >= 2 && path.compare(path.size() - 2, 2, ".o") == 0) objectBytes = bytes;
    if (path.size() >= 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0) weightsBytes = bytes;
  }
  std::printf("bundle %s of @%s for CPU %s\n", result.name.c_str(), g.name().c_str(), result.cpu.c_str());
  std::printf("  steps        %d (generated kernels %d, %d distinct)\n", result.steps, result.kernels,
              result.distinctKernels);
  std::printf("  arena        %s\n", sizeText(result.arenaBytes).c_str());
  std::printf("  state        %s\n", sizeText(result.stateBytes).c_str());
  std::printf("  object       %s\n", sizeText(objectBytes).c_str());
  std::printf("  weights      %s\n", sizeText(weightsBytes).c_str());
  double total = 0;
  std::string stages;
  for (const auto& [stage, seconds] : result.stageSeconds) {
    total += seconds;
    stages += (stages.empty() ? "" : ", ") + stage + " " + msText(seconds);
  }
  std::printf("  compile      %s (%s)\n", msText(total).c_str(), stages.c_str());
  cpu::AotStartup startup = cpu::measureStartup(options, result);
  std::printf("  startup      create %s, load weights %s, first run %s, next runs %s (median)\n",
              msText(startup.createSeconds).c_str(), msText(startup.loadSeconds).c_str(),
              msText(startup.firstRunSeconds).c_str(), msText(startup.nextRunSeconds).c_str());
  std::printf("               (measured in this process with JIT-compiled kernels, zero inputs)\n");
  return 0;
}

}  // namespace

int cmdCompile(int argc, char** argv) {
  // `-o DIR` is the short form of `--output DIR` (Args knows only long options).
  std::vector<char*> argvLong(argv, argv + argc);
  static char outputFlag[] = "--output";
  for (char*& a : argvLong)
    if (!std::strcmp(a, "-o")) a = outputFlag;
  Args args(argc, argvLong.data(), 2, {"optimizer", "dump-mlir", "dump-asm", "threads", "output", "name", "mcpu",
                                        "target-triple", "weights"},
            {"help", "train", "stats", "print-ir", "print-constants", "aot", "eval", "no-eval"});
  if (args.has("help")) {
    std::cout << kCompileHelp;
    return 0;
  }
  if (args.positional().size() != 1) throw Error("weft compile needs one MODEL or FILE.weft (see --help)");
  if (!args.has("aot"))
    for (const char* bundleOnly : {"output", "name", "mcpu", "target-triple", "weights"})
      if (args.has(bundleOnly)) throw Error(std::string("--") + bundleOnly + " needs --aot (see --help)");
  if (args.has("eval") && (args.has("train") || args.has("no-eval")))
    throw Error("--eval cannot be combined with --train or --no-eval");
  if (args.has("optimizer") && !args.has("train")) throw Error("--optimizer needs --train (see --help)");
  if ((args.has("eval") || args.has("no-eval")) && isGraphFile(args.positional()[0]))
    throw Error(std::string("--") + (args.has("eval") ? "eval" : "no-eval") +
                " applies to registered models, not to a graph read from text");
  if (args.has("name") && args.get("name", "").empty()) throw Error("--name needs a bundle name");
  for (const char* dump : {"dump-mlir", "dump-asm"})
    if (args.has(dump) && args.get(dump, "").empty()) throw Error(std::string("--") + dump + " needs a directory");
  const bool evaluation = args.has("eval") || (args.has("aot") && !args.has("train") && !args.has("no-eval"));
  ir::Graph g = loadGraph(args.positional()[0], evaluation);
  if (args.has("train")) {
    passes::TrainConfig cfg;
    cfg.optimizer = passes::parseOptimizer(args.get("optimizer", "adam"));
    g = passes::buildTrainStep(g, cfg);
  }
  if (args.has("aot")) return compileBundle(args, g);
  cpu::CompileOptions options;
  options.threads = cpu::checkedThreads(args.getInt("threads", 2), "--threads");
  options.dumpMlirDir = args.get("dump-mlir", "");
  options.dumpAsmDir = args.get("dump-asm", "");
  if (args.has("print-constants") && !args.has("print-ir")) throw Error("--print-constants needs --print-ir");
  runtime::NewDirectories made;  // the dump directories, removed again if the compile fails
  for (const std::string& dir : {options.dumpMlirDir, options.dumpAsmDir})  // a bad path fails by name, first
    if (!dir.empty()) {
      made.add(dir);
      passes::createDumpDir(dir);
    }
  const cpu::Executable exe = cpu::compile(g, options);
  made.keep();
  if (args.has("print-ir")) {
    ir::PrintOptions print;
    print.elideLargeConstants = !args.has("print-constants");
    std::cout << ir::printGraph(exe.graph(), print);
  }
  const cpu::CompileStats& s = exe.stats();
  if (args.has("stats") || !args.has("print-ir")) {
    std::printf("@%s%s compiled for the CPU\n", g.name().c_str(), args.has("train") ? " (training step)" : "");
    std::printf("  kernels      %d (oneDNN %d, generated %d, native %d, reference %d)\n", s.kernels,
                s.onednnPrimitives, s.generatedKernels, s.nativeSteps, s.referenceKernels);
    for (const std::string& step : s.referenceSteps) std::printf("  reference    %s\n", step.c_str());
    for (const std::string& step : s.onednnReferenceSteps) std::printf("  oneDNN ref   %s\n", step.c_str());
    std::printf("  layouts      %d values passed between oneDNN steps in their blocked layout\n", s.laidOutValues);
    std::printf("  blocked      %d values stored channel-blocked (nChw16c) between convolutions and kernels\n",
                s.blockedValues);
    std::printf("  winograd     %d convolutions run by oneDNN's Winograd kernels (3x3, stride 1), %d by weft's own "
                "(3x3, stride 1; 3x3 and 4x4, stride 2 by phases)\n",
                s.winogradSteps, s.nativeWinogradSteps);
    std::printf("  matmuls      %d run other than oneDNN's first implementation (%d timed now, %d chosen before)\n",
                s.matmuls.changed, s.matmuls.timed, s.matmuls.remembered);
    std::printf("  conversions  %s read per run by oneDNN's reorders between layouts (data and weights)\n",
                mib(s.convertedBytes).c_str());
    std::printf("  partial sums %d generated sums split over a reduced dimension across threads\n",
                s.partialSumKernels);
    std::printf("  multi-output %d update values written by their parameter's update kernel (one pass per parameter)\n",
                s.mergedUpdates);
    std::printf("  siblings     %d loop kernels computed by the next loop kernel, which reads what they read\n",
                s.mergedSiblings);
    std::printf("  side sums    %d reductions computed by the loop kernel whose value they sum (one pass over it)\n",
                s.sideSums);
    std::printf("  triangular   %d matmuls skip the blocks a causal mask makes useless; %d row kernels stop at the diagonal\n",
                s.triangularMatmuls, s.diagonalRows);
    std::printf("  attention    %d causal attentions run as one step (scores, softmax and product with v by rows); "
                "%d gradients (dy v^T, the softmax's gradient and the three products)\n",
                s.attention, s.attentionGrads);
    std::printf("  arena        %s\n", mib(s.arenaBytes).c_str());
    std::printf("  state        %s\n", mib(s.persistentBytes).c_str());
    std::printf("  scratch      %s (oneDNN and native steps' run-time buffers with no room in the arena)\n", mib(s.scratchBytes).c_str());
    if (s.heldBytes > 0)
      std::printf("  held         %s (constant weights kept in the layouts oneDNN or weft's Winograd reads; %d kernels of constants only, run once)\n",
                  mib(s.heldBytes).c_str(), s.heldResults);
    std::printf("  peak         %s (arena + state + scratch + held + inputs and outputs)\n", mib(s.peakBytes).c_str());
    double total = 0;
    std::string stages;
    for (const auto& [stage, seconds] : s.stageSeconds) {
      total += seconds;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%s %.1f ms", stages.empty() ? "" : ", ", stage.c_str(), seconds * 1e3);
      stages += buf;
    }
    std::printf("  compile      %.1f ms (%s)\n", total * 1e3, stages.c_str());
  }
  return 0;
}

}  // namespace weft::cli
