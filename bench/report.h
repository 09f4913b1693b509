#pragma once
/// The results of `weft bench`: one row per (model, mode), the peer's timings read from
/// torch_models.py's JSON, the printed table and the JSON file of BENCH.md.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace weft::bench {

/// One benchmark result.
struct Row {
  std::string model;              ///< registered model name
  std::string mode;               ///< "infer" or "train"
  double weftMs = 0;              ///< weft's median milliseconds
  std::optional<double> peerMs;   ///< the peer's median milliseconds, when it ran this row
  std::optional<double> ortMs;    ///< ONNX Runtime's median milliseconds (inference rows, with --ort)
  double flops = 0;               ///< FLOPs of one run (bench::countFlops)
  double gemmGflops = 0;          ///< the machine's measured f32 GEMM rate
  /// Training rows with --memory: weft's planned peak bytes (arena, state, scratch, inputs
  /// and outputs) and the peer's (PyTorch's tensors at the step's peak, torch_memory.py).
  std::optional<double> weftPeakBytes, peerPeakBytes;
  /// Rows of medianRows over two or more rounds with the peer: the lowest and the highest of
  /// the rounds' own speedups (each round's peer ms / weft ms, timed minutes apart), how far
  /// the host's load moved the ratio between rounds.
  std::optional<double> lowestSpeedup, highestSpeedup;

  /// peer ms / weft ms (above 1: weft is faster), when there is a peer time.
  std::optional<double> speedup() const;
  /// ort ms / weft ms (above 1: weft is faster), when there is an ONNX Runtime time.
  std::optional<double> ortSpeedup() const;
  /// Achieved GFLOP/s: flops / weft time.
  double gflops() const;
  /// gflops() as a fraction of the GEMM rate (0 when the rate is unknown).
  double gemmFraction() const;
};

/// Median milliseconds by (model, mode).
using PeerTimes = std::map<std::pair<std::string, std::string>, double>;

/// Parses the JSON that `torch_models.py --json FILE` writes: a list of objects
/// {"model", "mode", "median_ms", "min_ms", "max_ms"}; the median is what joins. Throws
/// weft::Error naming `what` for malformed text or a row without model, mode or median_ms.
PeerTimes parsePeerJson(const std::string& text, const std::string& what);

/// Peak bytes of a training step by model.
using PeerMemory = std::map<std::string, double>;

/// Parses the JSON that bench/torch_memory.py writes: a list of objects {"model",
/// "held_bytes", "step_bytes", "peak_bytes"}; the peak is what joins. Throws weft::Error
/// naming `what` for malformed text or a row without model or peak_bytes.
PeerMemory parsePeerMemoryJson(const std::string& text, const std::string& what);

/// The rows as BENCH.md's JSON: a list of {"model", "mode", "weft_ms", "peer_ms" (null
/// without the peer), "speedup" (null without the peer), "gflops", "gemm_fraction"}, for
/// rows with a weft peak (--memory) "weft_peak_bytes" and "peer_peak_bytes" (or null), for
/// rows with an ONNX Runtime time "ort_ms" and "ort_speedup", and for rows with the rounds'
/// range of speedups "speedup_range" ([lowest, highest]).
std::string rowsToJson(const std::vector<Row>& rows);

/// One row per (model, mode) of `rounds` (each a round's rows, in the first round's order):
/// the median over the rounds of weft's milliseconds, of the peer's, of ONNX Runtime's and
/// of the peer's peak bytes (each over the rounds that have it; with an even count, the mean
/// of the middle two), with the first round's flops, GEMM rate and weft peak bytes, and the
/// lowest and highest of the rounds' speedups where two or more rounds have one. Rows
/// missing from the first round are left out.
std::vector<Row> medianRows(const std::vector<std::vector<Row>>& rounds);

/// The table header line (model, mode, weft ms, peer ms, speedup, GFLOP/s, of GEMM), with
/// `ranges` a last column for the rounds' lowest and highest speedups.
std::string tableHeader(bool ranges = false);
/// One table line; missing peer values print as "-"; a row with the rounds' lowest and
/// highest speedups ends with them ("2.50-3.52x").
std::string tableLine(const Row& row);

/// The geometric mean of the speedups of each mode's rows that have a peer time, e.g.
/// "geomean speedup: infer 4.12x (8 rows), train 2.90x (8 rows)"; empty when no row has one.
std::string geomeanLine(const std::vector<Row>& rows);

/// Each round's geometric mean speedup by mode, e.g. "rounds' geomean speedups: infer 4.27x
/// 4.08x 5.12x, train 3.62x 3.67x 3.23x"; empty when no round has a peer time.
std::string roundsGeomeanLine(const std::vector<std::vector<Row>>& rounds);

/// The ONNX Runtime table's header line (model, weft ms, ort ms, speedup).
std::string ortHeader();
/// One ONNX Runtime table line of a row; a missing ORT time prints as "-".
std::string ortLine(const Row& row);
/// The geometric mean of the rows' speedups over ONNX Runtime and how many are ahead, e.g.
/// "geomean speedup over ONNX Runtime: 1.52x (8 rows, 8 ahead)"; empty when no row has one.
std::string ortGeomeanLine(const std::vector<Row>& rows);

/// The memory table's header line (model, weft MiB, peer MiB, weft / peer).
std::string memoryHeader();
/// One memory table line of a row with a weft peak; a missing peer prints as "-".
std::string memoryLine(const Row& row);

}  // namespace weft::bench
