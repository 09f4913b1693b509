#include "tools/training/progress.h"

#include <algorithm>
#include <cstdio>
#include <string>

namespace weft::training {
namespace {

std::string format(const char* fmt, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

}  // namespace

ProgressReporter::ProgressReporter(std::ostream& out, ProgressOptions options)
    : out_(out), options_(options), start_(std::chrono::steady_clock::now()) {
  if (options_.logEvery <= 0) options_.logEvery = std::max<int64_t>(1, options_.totalSteps / 20);
  lastDraw_ = start_ - std::chrono::seconds(1);
}

double ProgressReporter::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressReporter::examplesPerSecond() const {
  double s = seconds();
  return s > 0 ? static_cast<double>(stepsRun_ * options_.batchSize) / s : 0.0;
}

void ProgressReporter::step(int64_t step, int64_t epoch, double loss, double lr) {
  ++stepsRun_;
  intervalLoss_ += loss;
  ++intervalSteps_;
  epochLoss_ += loss;
  ++epochSteps_;
  const int64_t done = step + 1;
  if (options_.bar) {
    drawBar(done, epoch, loss, lr, done == options_.totalSteps || done % options_.stepsPerEpoch == 0);
    return;
  }
  if (done % options_.logEvery == 0 || done == options_.totalSteps) {
    out_ << format("step %lld/%lld epoch %lld loss %.6f avg %.6f lr %.3g %.1f ex/s\n", static_cast<long long>(done),
                   static_cast<long long>(options_.totalSteps), static_cast<long long>(epoch + 1), loss,
                   intervalLoss_ / static_cast<double>(intervalSteps_), lr, examplesPerSecond());
    out_.flush();
    intervalLoss_ = 0;
    intervalSteps_ = 0;
  }
}

void ProgressReporter::drawBar(int64_t done, int64_t epoch, double loss, double lr, bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - lastDraw_ < std::chrono::milliseconds(100)) return;
  lastDraw_ = now;
  const int width = 30;
  int64_t inEpoch = (done - 1) % options_.stepsPerEpoch + 1;
  int filled = static_cast<int>(width * inEpoch / std::max<int64_t>(options_.stepsPerEpoch, 1));
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  out_ << format("\repoch %lld [%s] %lld/%lld loss %.4f lr %.3g %.0f ex/s\x1b[K", static_cast<long long>(epoch + 1),
                 bar.c_str(), static_cast<long long>(inEpoch), static_cast<long long>(options_.stepsPerEpoch), loss, lr,
                 examplesPerSecond());
  out_.flush();
  barOpen_ = true;
}

void ProgressReporter::epochEnd(int64_t epoch) {
  if (epochSteps_ == 0) return;
  if (barOpen_) out_ << "\n";
  barOpen_ = false;
  out_ << format("epoch %lld done: mean loss %.6f over %lld steps, %.1f s\n", static_cast<long long>(epoch + 1),
                 epochLoss_ / static_cast<double>(epochSteps_), static_cast<long long>(epochSteps_), seconds());
  out_.flush();
  epochLoss_ = 0;
  epochSteps_ = 0;
}

void ProgressReporter::finish() {
  if (barOpen_) out_ << "\n";
  barOpen_ = false;
  out_.flush();
}

}  // namespace weft::training
