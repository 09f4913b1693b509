#pragma once
/// Choosing oneDNN's matmul implementation by measurement. oneDNN 2.6 offers two fast f32
/// matmuls: its brgemm kernels (its first choice) and its jit sgemm. Neither wins everywhere:
/// on the Intel Xeon of stop 25 the sgemm ran gpt's [1024,256]x[256,1024] 5-10% faster and
/// its weight gradients ([1024,1024]^T x [1024,256]) 7% slower. tuneMatmuls times each
/// implementation of every matmul of a compiled graph on scratch buffers and writes the
/// fastest into the node's impl attribute, which the step builder follows; a bundle's program
/// text carries the attribute, so a bundle runs what its compiler measured.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "ir/graph.h"

namespace weft::cpu {

/// Choices made before, by key (what a matmul computes, its shapes, the thread count and
/// the CPU's instruction set): an implementation name each. Kept in memory, and in a file
/// when one is given, so each machine times a matmul once. Thread-safe.
class MatmulChoices {
 public:
  /// Choices in memory only when `file` is empty; else also those of `file` (a missing or
  /// unreadable file has none; malformed lines are skipped), to which record() appends (a
  /// file of another format is replaced by the first record()).
  explicit MatmulChoices(std::string file = {});
  /// The implementation recorded for `key`, if any.
  std::optional<std::string> find(const std::string& key) const;
  /// Records `impl` for `key` (appending it to the file, when it can be written).
  void record(const std::string& key, const std::string& impl);
  /// The file choices are kept in ("" when none).
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  bool replaceFile_ = false;  ///< the file holds another format
  mutable std::mutex mutex_;
  std::map<std::string, std::string> choices_;  ///< key digest -> implementation
};

/// What one tuneMatmuls call did.
struct MatmulTuning {
  int timed = 0;       ///< matmuls whose implementations were timed
  int remembered = 0;  ///< matmuls whose choice was found in the MatmulChoices
  int changed = 0;     ///< matmuls given an impl attribute (oneDNN's first choice lost)
};

/// Matmuls with fewer multiply-adds than this keep oneDNN's first implementation untimed
/// (about 20 us: the choice matters little), as do those with more than the most (about
/// 20 ms a run: timing them would slow the compile noticeably).
constexpr int64_t kMinTunedMultiplyAdds = int64_t{1} << 22;
constexpr int64_t kMaxTunedMultiplyAdds = int64_t{1} << 32;

/// Times the oneDNN implementations of every matmul and fused matmul node of `g` (a graph as
/// the CPU backend compiles it) of a size worth timing (kMinTunedMultiplyAdds up to
/// kMaxTunedMultiplyAdds) that has more than one, with `threads` threads, and sets the node's
/// impl attribute to the fastest where that is not oneDNN's first choice (which must lose by
/// 3% to be left: timings are noisy).
/// Choices found in `choices` are taken without timing; new ones are recorded there. Nodes
/// that already carry an impl attribute keep it; those the triangular matmul step runs
/// (runsTriangularMatmul) are left alone. With `holdConstants`, each matmul is timed as a
/// Program with ProgramOptions::holdConstantCopies runs it (constant weights held in the
/// layout the implementation prefers).
MatmulTuning tuneMatmuls(ir::Graph& g, int threads, MatmulChoices& choices, bool holdConstants = false);

/// Whether compiles tune matmuls: WEFT_TUNE_MATMULS unset, empty or 1 says yes, 0 says no,
/// anything else throws weft::Error naming the variable.
bool tuneMatmulsFromEnvironment();

}  // namespace weft::cpu
