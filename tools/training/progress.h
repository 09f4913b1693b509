#pragma once
/// Progress output of the training loop: a progress bar redrawn in place on a terminal,
/// plain log lines otherwise (files, pipes, CI logs).
#include <chrono>
#include <cstdint>
#include <ostream>

namespace weft::training {

/// How progress is shown.
struct ProgressOptions {
  bool bar = false;           ///< redraw one line with '\r' (for a TTY) instead of printing lines
  int64_t logEvery = 0;       ///< lines mode: a line every N steps (0: about 20 lines per run)
  int64_t totalSteps = 1;     ///< steps of the whole run
  int64_t stepsPerEpoch = 1;  ///< batches per epoch
  int64_t batchSize = 1;      ///< examples per step, for the throughput
};

/// Prints the progress of a run to a stream.
class ProgressReporter {
 public:
  /// Reports to `out`.
  ProgressReporter(std::ostream& out, ProgressOptions options);

  /// Step `step` (0-based global index) finished in epoch `epoch` with `loss` at rate `lr`.
  void step(int64_t step, int64_t epoch, double loss, double lr);
  /// Epoch `epoch` (0-based) ended; prints its mean loss over the steps run in this process.
  void epochEnd(int64_t epoch);
  /// The run is over: ends the bar's line.
  void finish();

  /// Examples per second over the steps of this process so far.
  double examplesPerSecond() const;
  /// Seconds since the reporter was made.
  double seconds() const;

 private:
  void drawBar(int64_t done, int64_t epoch, double loss, double lr, bool force);

  std::ostream& out_;
  ProgressOptions options_;
  int64_t stepsRun_ = 0;
  double intervalLoss_ = 0;
  int64_t intervalSteps_ = 0;
  double epochLoss_ = 0;
  int64_t epochSteps_ = 0;
  bool barOpen_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point lastDraw_;
};

}  // namespace weft::training
