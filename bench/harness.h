#pragma once
/// The timing harness of `weft bench`: wall-clock medians of repeated runs, the work of a
/// graph in FLOPs, the machine's f32 GEMM rate (a oneDNN matmul) and benchmark inputs.
#include <cstdint>
#include <functional>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/graph.h"

namespace weft::bench {

/// Wall-clock milliseconds of repeated runs.
struct Timing {
  double medianMs = 0;  ///< median of the timed runs
  double minMs = 0;     ///< fastest timed run
  double maxMs = 0;     ///< slowest timed run
  int runs = 0;         ///< timed runs (warm-up runs excluded)
};

/// Runs `fn` untimed `warmup` times and, past those, until `warmupSeconds` have passed, then
/// `repeat` times timed (steady clock) and returns the median, min and max. Throws
/// weft::Error when repeat < 1 or warmup < 0.
Timing timeRuns(const std::function<void()>& fn, int warmup, int repeat, double warmupSeconds = 0);

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
double median(std::vector<double> values);

/// Floating-point operations of one run of `g`, counting contractions only, each
/// multiply-add as 2: matmul 2*M*N*K (times batch), conv 2*out_elems*Cin/groups*kernel,
/// conv_transpose 2*in_elems*Cout/groups*kernel, conv_weight_grad 2*dy_elems*Cin/groups*kernel,
/// attention 2*T*S*(D + Dv) per batch and head; fused nodes count their bodies.
/// Elementwise, reduction and data-movement ops count 0.
double countFlops(const ir::Graph& g);

/// The f32 GEMM rate of this machine in GFLOP/s: a oneDNN matmul of n x n by n x n with
/// `threads` OpenMP threads, `warmup` untimed runs, then the median of `repeat` runs, for
/// each of oneDNN's implementations (brgemm, jit sgemm: the CPU backend runs whichever is
/// faster, runtime/cpu/matmul_tuning.h); the fastest counts.
double measureGemmGflops(int64_t n = 1024, int threads = 2, int warmup = 2, int repeat = 10);

/// Inputs for every input of `g` from a fixed seed: floats U[0, 1), integer inputs in
/// [0, classes) where classes is the last extent of the `logits` output (2 without one),
/// booleans 0/1; a rank-0 float input named `lr` (a training step's learning rate) gets 1e-3.
reference::TensorMap benchmarkInputs(const ir::Graph& g, uint64_t seed = 0);

}  // namespace weft::bench
