// The `weft` command-line program: dispatches to one subcommand per verb.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "backends/cpu/executable.h"
#include "backends/reference/interpreter.h"
#include "ir/error.h"
#include "runtime/cpu/omp_places.h"
#include "tools/commands.h"

namespace {

const char* kUsage = R"(usage: weft COMMAND [ARGS] [--help]

commands:
  list                     list the registered models
  dump MODEL|FILE.weft     print a graph's IR, optionally after each pass
  opt FILE.weft|-          parse IR text, run passes, print the result (like mlir-opt)
  compile MODEL|FILE.weft  compile a graph (or its training step) for the CPU, print stats
  run MODEL|FILE.weft      run a graph (CPU backend or interpreter), write outputs as .npy
  train MODEL              train a model on Fashion-MNIST, checkpoint, report test accuracy
  sample MODEL --out F.png decode random latents of a generative model into a PNG grid
  bench                    time the benchmark models (inference, training step), beside PyTorch

`weft COMMAND --help` describes a command.

environment (the compiled CPU backend):
  WEFT_THREADS=N           worker threads (1 to 1024, default 2)
  WEFT_DENORMALS=keep      keep IEEE denormal floats (default: flush them to zero while a
                           graph runs; denormals cost ~100 cycles an operation on x86)
  WEFT_CACHE_DIR=DIR|off   the generated-kernel cache (default ~/.cache/weft/kernels)
  WEFT_TUNE_MATMULS=0      take oneDNN's first matmul implementation instead of timing them
  WEFT_CPU_ISA=avx2|none   weft's own vector kernels: their AVX2 versions even on an AVX-512
                           CPU, or none (oneDNN's take their steps); DNNL_MAX_CPU_ISA caps oneDNN's
  WEFT_PROFILE=1|N         time every step; each executable prints its 12 (or N) slowest
                           on stderr when it ends
)";

/// OpenMP workers (oneDNN's and the generated kernels') spin 300k iterations by default
/// between parallel regions: on a busy 2-core machine that starves the thread doing the
/// serial work (a training step ran 8x slower). libgomp reads its settings when it loads, so
/// when the user set none, set a shorter spin and start the program once more.
void boundOpenMpSpinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "20000", 1);
  // Under OMP_PROC_BIND this thread is bound to the first place: the restarted program would
  // see that one CPU and run all its workers there (ddpm's training step 47 -> 105 ms).
  weft::cpu::unbindFromFirstPlace();
  execv("/proc/self/exe", argv);  // returns only on failure: then run with the defaults
}

}  // namespace

int main(int argc, char** argv) {
  boundOpenMpSpinning(argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 1 : 0;
  }
  std::string cmd = argv[1];
  try {
    weft::reference::registerReferencePasses();
    weft::cpu::registerCpuPasses();
    if (cmd == "list") return weft::cli::cmdList(argc, argv);
    if (cmd == "dump") return weft::cli::cmdDump(argc, argv);
    if (cmd == "opt") return weft::cli::cmdOpt(argc, argv);
    if (cmd == "compile") return weft::cli::cmdCompile(argc, argv);
    if (cmd == "run") return weft::cli::cmdRun(argc, argv);
    if (cmd == "train") return weft::cli::cmdTrain(argc, argv);
    if (cmd == "sample") return weft::cli::cmdSample(argc, argv);
    if (cmd == "bench") return weft::cli::cmdBench(argc, argv);
    std::cerr << "weft: error: unknown command '" << cmd << "'\n" << kUsage;
    return 1;
  } catch (const weft::Error& e) {
    std::cerr << "weft: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "weft: internal error: " << e.what() << "\n";
    return 2;
  }
}
