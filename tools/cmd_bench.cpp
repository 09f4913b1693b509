// `weft bench`: times the benchmark models (inference and one training step) on a backend,
// optionally beside the PyTorch peer, and prints or writes the rows of BENCH.md.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "bench/harness.h"
#include "bench/peer.h"
#include "bench/report.h"
#include "bench/suite.h"
#include "ir/error.h"
#include "runtime/cpu/denormals.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/program.h"
#include "runtime/file_io.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {
namespace {

const char* kBenchHelp = R"(usage: weft bench [options]

Times each benchmark model of BENCH.md as inference (its evaluation form, forward only) and
as one training step (forward, backward, Adam update): warm-up runs, then the median of
repeated runs. Prints per row weft's milliseconds, the peer's, the speedup (peer / weft),
and the achieved GFLOP/s (contractions counted from the graph) as a fraction of this
machine's f32 GEMM rate (a oneDNN 1024^3 matmul timed in the same run, the fastest of its
implementations), then with the peer the geometric mean of each mode's speedups. Timings
are printed, never checked.

options:
  --models a,b           registered models to time (default: mlp,lenet,resnet,vae,gpt,dcgan,ddpm,realnvp)
  --modes infer,train    which modes (default both)
  --backend NAME         cpu (default) or reference
  --threads N            CPU backend threads, GEMM threads and the peer's (default 2)
  --warmup N             untimed runs first (default 3); with N > 0, more until 0.2 s have passed
  --repeat N             timed runs; the median is reported (default 20)
  --rounds N             time everything N times over (default 1), printing each round's
                         table, then each row's medians over the rounds (weft's, the peer's,
                         ONNX Runtime's), which the later tables and the JSON report, with
                         the lowest and highest of the rounds' own speedups and each
                         round's geometric means (how far the host's load moved them)
  --peer                 also run PyTorch (torch_models.py) beside each model (just before
                         weft's rows of it) and join its medians
  --peer-script PATH     torch_models.py (default ../shared/bench/torch_models.py from the repository)
  --python PATH          the peer's interpreter (default /usr/bin/python3)
  --memory               also print each training step's peak memory: weft's planned buffers
                         (arena, state, scratch, inputs and outputs) and, with --peer,
                         PyTorch's tensors at the step's peak (bench/torch_memory.py)
  --memory-script PATH   torch_memory.py (default bench/torch_memory.py of the repository)
  --ort                  also time inference on ONNX Runtime beside each model
                         (../shared/bench/ort_peer.sh: onnxruntime-node from npm on the ONNX
                         exports of torch_models.py) and print weft against it after the table
  --ort-script PATH      ort_peer.sh (default ../shared/bench/ort_peer.sh from the repository)
  --ort-dir DIR          where the ONNX Runtime package and the exports are kept between runs
                         (default /tmp/weft-ort-peer)
  --json FILE            also write the rows as JSON
)";

}  // namespace

int cmdBench(int argc, char** argv) {
  Args args(argc, argv, 2,
            {"models", "modes", "backend", "threads", "warmup", "repeat", "rounds", "peer-script", "memory-script", "python",
             "json", "ort-script", "ort-dir"},
            {"help", "peer", "memory", "ort"});
  if (args.has("help")) {
    std::cout << kBenchHelp;
    return 0;
  }
  if (!args.positional().empty()) throw Error("weft bench takes no positional arguments (see --help)");
  cpu::checkCpuIsaEnvironment();  // before the vectors line names the cap
  bench::SuiteOptions options;
  if (args.has("models")) options.models = splitCommas(*args.get("models"));
  if (options.models.empty()) options.models = bench::benchmarkModels();
  if (args.has("modes")) options.modes = splitCommas(*args.get("modes"));
  for (const auto& mode : options.modes)
    if (mode != "infer" && mode != "train") throw Error("--modes: unknown mode '" + mode + "' (infer, train)");
  options.backend = training::parseBackend(args.get("backend", "cpu"));
  options.threads = cpu::checkedThreads(args.getInt("threads", 2), "--threads");
  options.warmup = static_cast<int>(args.getInt("warmup", 3));
  options.repeat = static_cast<int>(args.getInt("repeat", 20));
  const auto roundCount = static_cast<int>(args.getInt("rounds", 1));
  if (roundCount < 1) throw Error("--rounds must be >= 1");
  if (options.warmup < 0) throw Error("--warmup must be >= 0");
  if (options.repeat < 1) throw Error("--repeat must be >= 1");
  if (options.warmup == 0) options.warmupSeconds = 0;  // none asked for: none at all
  for (const auto& name : options.models) bench::inferenceGraph(name);  // unknown names fail before any timing
  if (auto path = args.get("json")) {  // so does a report that could not be written
    if (path->empty()) throw Error("--json needs a file");
    runtime::checkWritable(*path);
  }

  // The CPU backend's runs flush denormals unless WEFT_DENORMALS=keep (PyTorch keeps them).
  std::string backend = training::backendName(options.backend);
  if (options.backend == training::Backend::cpu)
    backend += cpu::defaultFlushDenormals() ? " (denormals flushed)" : " (denormals kept)";
  std::printf("weft bench: backend %s, %d threads, %d warm-up runs%s, median of %d\n", backend.c_str(),
              options.threads, options.warmup, options.warmupSeconds > 0 ? " (at least 0.2 s)" : "", options.repeat);
#ifndef NDEBUG
  std::printf("note: a debug build of weft; its own kernels run unoptimized\n");
#endif
  double gemm = bench::measureGemmGflops(1024, options.threads);
  std::printf("f32 GEMM 1024^3 (oneDNN matmul, its fastest implementation, %d threads): %.1f GFLOP/s\n",
              options.threads, gemm);
  // What picks weft's kernels and its Winograd steps (native_winograd.h): worth a line when comparing machines;
  // a WEFT_CPU_ISA cap is named.
  const cpu::CpuIsaCap cap = cpu::cpuIsaCap();
  const std::string capped =
      cap == cpu::CpuIsaCap::kAvx512 ? "" : std::string(", WEFT_CPU_ISA=") + cpu::cpuIsaCapName(cap);
  std::printf("vectors: %s%s\n",
              !cpu::hostHasAvx2Fma()                 ? "none (weft's scalar and library kernels)"
              : !cpu::hostHasAvx512()                ? "AVX2 (weft's 256-bit kernels)"
              : cpu::hostRunsWideVectorsAtFullRate() ? "AVX-512, 512-bit FMAs at full rate"
                                                     : "AVX-512, 512-bit FMAs at half rate",
              capped.c_str());

  options.memory = args.has("memory");
  const bool withPeer = args.has("peer");
  bench::PeerOptions peerOptions;
  peerOptions.python = args.get("python", peerOptions.python);
  peerOptions.script = args.get("peer-script", "");
  peerOptions.memoryScript = args.get("memory-script", "");
  peerOptions.threads = options.threads;
  peerOptions.iters = options.repeat;
  std::optional<bench::PeerMemory> peerMemory;
  if (withPeer && options.memory) {
    bench::PeerMemoryResult memory = bench::runPeerMemory(peerOptions, options.models);
    peerMemory = memory.peakBytes;
    std::printf("%s\n", peerMemory ? "peer memory: PyTorch (torch_memory.py)" : memory.message.c_str());
  }
  // The peer runs beside each model rather than all models first, so that both sides of a
  // row see the same minute of a shared machine (its load drifts over a whole run); the
  // first model's run, just before the table, also tells whether the peer runs at all.
  std::optional<bench::PeerTimes> firstPeer;
  bool peerRuns = withPeer;
  if (withPeer) {
    bench::PeerResult result = bench::runPeer(peerOptions, {options.models.front()});
    firstPeer = result.times;
    peerRuns = firstPeer.has_value();
    std::printf("%s\n", peerRuns ? "peer: PyTorch (torch_models.py), timed beside each model" : result.message.c_str());
    if (auto warning = bench::referenceBlasWarning(); warning && peerRuns) std::printf("%s\n", warning->c_str());
  }
  std::fflush(stdout);

  const bool withOrt =
      args.has("ort") && std::find(options.modes.begin(), options.modes.end(), "infer") != options.modes.end();
  bench::OrtOptions ortOptions;
  ortOptions.script = args.get("ort-script", "");
  ortOptions.cacheDir = args.get("ort-dir", ortOptions.cacheDir);
  bool ortRuns = withOrt;

  bool failed = false;
  // One model's rows of a round, each printed as it comes: the peer and ONNX Runtime first.
  auto timeModel = [&](const std::string& model, std::vector<bench::Row>& rows) {
    std::optional<bench::PeerTimes> peer = std::exchange(firstPeer, std::nullopt);  // the first model's, once
    if (peerRuns && !peer) {
      bench::PeerResult result = bench::runPeer(peerOptions, {model});
      peer = result.times;
      if (!peer) std::printf("%s\n", result.message.c_str());
    }
    std::optional<bench::PeerTimes> ort;
    if (ortRuns) {
      bench::PeerResult result = bench::runOrtPeer(ortOptions, model);
      ort = result.times;
      if (!ort) std::printf("%s\n", result.message.c_str());
      ortRuns = ort.has_value() || model != options.models.front();  // no ONNX Runtime at all: stop asking
    }
    for (const auto& mode : options.modes) {
      bench::RowResult result = bench::runRow(model, mode, options);
      if (!result.row) {
        std::fflush(stdout);
        std::cerr << "weft bench: " << model << " " << mode << ": error: " << result.error << "\n";
        failed = true;
        continue;
      }
      bench::Row row = *result.row;
      row.gemmGflops = gemm;
      if (peer)
        if (auto it = peer->find({model, mode}); it != peer->end()) row.peerMs = it->second;
      if (ort)
        if (auto it = ort->find({model, mode}); it != ort->end()) row.ortMs = it->second;
      if (peerMemory && row.weftPeakBytes)
        if (auto it = peerMemory->find(model); it != peerMemory->end()) row.peerPeakBytes = it->second;
      std::printf("%s\n", bench::tableLine(row).c_str());
      std::fflush(stdout);
      rows.push_back(row);
    }
  };
  std::vector<std::vector<bench::Row>> rounds;
  for (int round = 1; round <= roundCount; ++round) {
    if (roundCount > 1) std::printf("%sround %d of %d\n", round > 1 ? "\n" : "", round, roundCount);
    std::printf("%s\n", bench::tableHeader().c_str());
    std::vector<bench::Row> rows;
    for (const auto& model : options.models) timeModel(model, rows);
    if (std::string geomean = bench::geomeanLine(rows); !geomean.empty()) std::printf("%s\n", geomean.c_str());
    rounds.push_back(std::move(rows));
  }
  // Several rounds: each row's medians over them (the peer's load drifts between rounds as
  // much as within one), which the ONNX Runtime and memory tables and the JSON report too.
  const std::vector<bench::Row> rows = bench::medianRows(rounds);
  if (roundCount > 1) {
    const bool ranges = std::any_of(rows.begin(), rows.end(), [](const bench::Row& r) { return r.lowestSpeedup; });
    std::printf("\nmedians over %d rounds\n%s\n", roundCount, bench::tableHeader(ranges).c_str());
    for (const bench::Row& row : rows) std::printf("%s\n", bench::tableLine(row).c_str());
    if (std::string geomean = bench::geomeanLine(rows); !geomean.empty()) std::printf("%s\n", geomean.c_str());
    if (std::string each = bench::roundsGeomeanLine(rounds); !each.empty()) std::printf("%s\n", each.c_str());
  }
  if (withOrt) {
    std::printf("\ninference against ONNX Runtime (ort_peer.sh, timed beside each model)\n%s\n",
                bench::ortHeader().c_str());
    for (const bench::Row& row : rows)
      if (row.mode == "infer") std::printf("%s\n", bench::ortLine(row).c_str());
    if (std::string geomean = bench::ortGeomeanLine(rows); !geomean.empty()) std::printf("%s\n", geomean.c_str());
  }
  if (options.memory) {
    std::printf("\npeak memory of a training step (weft: planned buffers; peer: PyTorch's tensors)\n%s\n",
                bench::memoryHeader().c_str());
    for (const bench::Row& row : rows)
      if (row.weftPeakBytes) std::printf("%s\n", bench::memoryLine(row).c_str());
  }
  if (auto path = args.get("json")) runtime::writeFileAtomically(*path, bench::rowsToJson(rows));
  return failed ? 1 : 0;
}

}  // namespace weft::cli
