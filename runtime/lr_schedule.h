#pragma once
/// Learning-rate schedules, evaluated on the host: the train-step graph takes the rate as
/// its `lr` input, so a schedule is just a function of the step index.
#include <cstdint>
#include <string>

namespace weft::runtime {

/// The shape of the schedule after warm-up.
enum class ScheduleKind {
  constant,  ///< base rate throughout
  step,      ///< base * gamma^floor(t / stepSize): PyTorch's StepLR
  cosine,    ///< minLr + (base - minLr) (1 + cos(pi t / T)) / 2: CosineAnnealingLR over T steps
};

/// A learning-rate schedule over `totalSteps` steps, with an optional linear warm-up.
struct LrSchedule {
  ScheduleKind kind = ScheduleKind::constant;
  double base = 0.01;       ///< the peak rate
  int64_t totalSteps = 1;   ///< steps of the whole run (warm-up included)
  int64_t warmup = 0;       ///< steps 0..warmup-1 use base * (step + 1) / warmup
  int64_t stepSize = 0;     ///< step schedule: decay period in steps (0: a third of the post-warm-up steps)
  double gamma = 0.1;       ///< step schedule: factor per period
  double minLr = 0;         ///< cosine schedule: final rate
};

/// The schedule kind called `name` (const|constant, step, cosine); throws weft::Error
/// listing the names otherwise.
ScheduleKind parseScheduleKind(const std::string& name);

/// The command-line name of `kind` (const, step, cosine).
std::string scheduleName(ScheduleKind kind);

/// Throws weft::Error naming the field for a non-positive or non-finite base rate, a
/// negative warm-up, totalSteps < 1, a negative step size, or gamma/minLr out of range.
void validateSchedule(const LrSchedule& s);

/// The rate of step `step` (0-based: the first step is 0). After warm-up, t = step - warmup
/// counts from 0 and T = totalSteps - warmup; steps beyond totalSteps keep the last rate.
double learningRate(const LrSchedule& s, int64_t step);

}  // namespace weft::runtime
