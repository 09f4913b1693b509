// `weft compile`: compiles a graph (or its training step) for the CPU and reports what it made.
#include <cstdio>
#include <iostream>

#include "backends/cpu/executable.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "passes/train_step.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {
namespace {

const char* kCompileHelp = R"(usage: weft compile MODEL|FILE.weft [options]

Compiles a graph for the CPU backend: the CPU pipeline (decompose, simplify, fuse), the
memory plan (one arena for activations, persistent state), then one step per kernel
(oneDNN primitives, generated kernels, reference kernels as the fallback).

options:
  --train                compile the training step (loss, gradients, Adam update) instead
  --optimizer NAME       the step's optimizer (default adam)
  --stats                print kernel counts, arena, state and peak sizes, compile times
  --print-ir             print the graph as compiled (after fusion)
  --dump-mlir DIR        write the MLIR of every generated kernel to DIR
  --dump-asm DIR         write the assembly of the generated kernels to DIR
  --threads N            worker threads (default 2)
)";

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

int cmdCompile(int argc, char** argv) {
  Args args(argc, argv, 2, {"optimizer", "dump-mlir", "dump-asm", "threads"}, {"help", "train", "stats", "print-ir"});
  if (args.has("help")) {
    std::cout << kCompileHelp;
    return 0;
  }
  if (args.positional().size() != 1) throw Error("weft compile needs one MODEL or FILE.weft (see --help)");
  ir::Graph g = loadGraph(args.positional()[0]);
  if (args.has("train")) {
    passes::TrainConfig cfg;
    cfg.optimizer = passes::parseOptimizer(args.get("optimizer", "adam"));
    g = passes::buildTrainStep(g, cfg);
  }
  cpu::CompileOptions options;
  options.threads = static_cast<int>(args.getInt("threads", 2));
  if (options.threads < 1) throw Error("--threads must be >= 1");
  options.dumpMlirDir = args.get("dump-mlir", "");
  options.dumpAsmDir = args.get("dump-asm", "");
  cpu::Executable exe = cpu::compile(g, options);
  if (args.has("print-ir")) std::cout << ir::printGraph(exe.graph());
  const cpu::CompileStats& s = exe.stats();
  if (args.has("stats") || !args.has("print-ir")) {
    std::printf("@%s%s compiled for the CPU\n", g.name().c_str(), args.has("train") ? " (training step)" : "");
    std::printf("  kernels      %d (oneDNN %d, generated %d, native %d, reference %d)\n", s.kernels,
                s.onednnPrimitives, s.generatedKernels, s.nativeSteps, s.referenceKernels);
    std::printf("  arena        %s\n", mib(s.arenaBytes).c_str());
    std::printf("  state        %s\n", mib(s.persistentBytes).c_str());
    std::printf("  peak         %s (arena + state + inputs and outputs)\n", mib(s.peakBytes).c_str());
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
