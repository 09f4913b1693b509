#include "runtime/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "ir/error.h"

namespace weft::runtime {

ScheduleKind parseScheduleKind(const std::string& name) {
  if (name == "const" || name == "constant") return ScheduleKind::constant;
  if (name == "step") return ScheduleKind::step;
  if (name == "cosine") return ScheduleKind::cosine;
  throw Error("unknown learning-rate schedule '" + name + "'; known: const, step, cosine");
}

std::string scheduleName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant:
      return "const";
    case ScheduleKind::step:
      return "step";
    case ScheduleKind::cosine:
      return "cosine";
  }
  return "?";
}

void validateSchedule(const LrSchedule& s) {
  auto bad = [](const std::string& what, const std::string& value, const std::string& want) {
    throw Error("learning-rate schedule: " + what + " must be " + want + ", got " + value);
  };
  if (!(s.base > 0) || !std::isfinite(s.base)) bad("the learning rate", std::to_string(s.base), "positive and finite");
  if (s.totalSteps < 1) bad("the number of steps", std::to_string(s.totalSteps), ">= 1");
  if (s.warmup < 0) bad("warm-up", std::to_string(s.warmup), ">= 0");
  if (s.stepSize < 0) bad("the step size", std::to_string(s.stepSize), ">= 0");
  if (!(s.gamma > 0 && s.gamma <= 1)) bad("gamma", std::to_string(s.gamma), "in (0, 1]");
  if (!(s.minLr >= 0 && s.minLr <= s.base)) bad("the final rate", std::to_string(s.minLr), "in [0, base]");
}

double learningRate(const LrSchedule& s, int64_t step) {
  if (step < s.warmup) return s.base * static_cast<double>(step + 1) / static_cast<double>(s.warmup);
  const int64_t span = std::max<int64_t>(s.totalSteps - s.warmup, 1);
  const int64_t t = std::min(step - s.warmup, span);
  switch (s.kind) {
    case ScheduleKind::constant:
      return s.base;
    case ScheduleKind::step: {
      int64_t period = s.stepSize > 0 ? s.stepSize : std::max<int64_t>(span / 3, 1);
      return s.base * std::pow(s.gamma, static_cast<double>(t / period));
    }
    case ScheduleKind::cosine: {
      double phase = std::numbers::pi * static_cast<double>(t) / static_cast<double>(span);
      return s.minLr + (s.base - s.minLr) * (1 + std::cos(phase)) / 2;
    }
  }
  return s.base;
}

}  // namespace weft::runtime
