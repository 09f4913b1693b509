// Times the reference interpreter on the forward pass of registered models, with a per-op
// breakdown. Not part of the CMake build; compile it against a build directory's libraries
// (one command line):
//
//   g++ -std=c++20 -O2 -g -I. bench/interp_bench.cpp -Lbuild-fast/lib -lweft_models
//       -lweft_frontend -lweft_reference -lweft_passes -lweft_runtime -lweft_ir -lz -lpng
//       -o build-fast/bin/interp_bench
//
//   build-fast/bin/interp_bench [--generic] [--keep-memory] [model ...]   (default: mlp lenet)
//
// --generic switches the kernels' typed fast paths off (the per-element paths, as before
// they existed); --keep-memory stops malloc from returning freed buffers to the system.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <malloc.h>
#include <map>
#include <string>
#include <vector>

#include "backends/reference/fast_paths.h"
#include "backends/reference/interpreter.h"
#include "backends/reference/kernels.h"
#include "ir/graph.h"
#include "ir/ops.h"
#include "models/registry.h"
#include "runtime/init.h"

namespace {

using namespace weft;
using Clock = std::chrono::steady_clock;

/// Milliseconds elapsed since `start`.
double millisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// Feeds every input (pseudo-random floats, labels in [0, 10)) and every parameter.
reference::TensorMap makeFeeds(const ir::Graph& g) {
  reference::TensorMap feeds;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (n.op == ir::OpKind::Param) {
      feeds[n.name] = runtime::initializeParam(n.name, n.type, n.attrs);
    } else if (n.op == ir::OpKind::Input) {
      ir::TensorData t(n.type);
      bool integral = !ir::isFloat(n.type.dtype);
      for (int64_t i = 0; i < t.numel(); ++i)
        t.set(i, integral ? static_cast<double>((i * 7) % 10) : static_cast<double>((i * 37) % 101) / 101.0);
      feeds[n.name] = t;
    }
  }
  return feeds;
}

/// The best of `reps` runs, in milliseconds.
template <class F>
double bestOf(int reps, F f) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    auto start = Clock::now();
    f();
    best = std::min(best, millisSince(start));
  }
  return best;
}

/// Times every computing node's kernel on its real operands and prints the total per op kind.
void breakdown(const ir::Graph& g, const reference::TensorMap& feeds) {
  std::vector<ir::TensorData> values = reference::runAll(g, feeds);
  reference::RunOptions options;
  std::map<std::string, double> perOp;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (n.op == ir::OpKind::Input || n.op == ir::OpKind::Param || n.op == ir::OpKind::Constant) continue;
    reference::KernelContext ctx{g, v, {}, feeds, options};
    for (ir::ValueId o : n.operands) ctx.operands.push_back(&values[static_cast<size_t>(o)]);
    reference::Kernel kernel = reference::kernelFor(n.op);
    perOp[std::string(ir::opName(n.op))] += bestOf(3, [&] { kernel(ctx); });
  }
  for (const auto& [op, ms] : perOp) std::printf("    %-16s %9.2f ms\n", op.c_str(), ms);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--generic") {
      reference::setFastPathsEnabled(false);
    } else if (arg == "--keep-memory") {
      // Keep freed buffers in the process, so that fresh tensors do not page-fault.
      mallopt(M_MMAP_THRESHOLD, 256 << 20);
      mallopt(M_TRIM_THRESHOLD, 1 << 30);
    } else {
      names.push_back(arg);
    }
  }
  if (names.empty()) names = {"mlp", "lenet"};
  for (const auto& name : names) {
    ir::Graph g = models::buildModel(name);
    reference::TensorMap feeds = makeFeeds(g);
    reference::run(g, feeds);  // warm up
    double ms = bestOf(5, [&] { reference::run(g, feeds); });
    std::printf("%-10s forward %9.2f ms (best of 5)\n", name.c_str(), ms);
    breakdown(g, feeds);
  }
}
