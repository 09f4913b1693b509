// Learning-rate schedules against hand-computed rates.
#include "runtime/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "ir/error.h"

using namespace weft;
using runtime::learningRate;
using runtime::LrSchedule;
using runtime::ScheduleKind;

TEST(LrSchedule, ConstantAndWarmup) {
  LrSchedule s{.kind = ScheduleKind::constant, .base = 0.1, .totalSteps = 10, .warmup = 4};
  EXPECT_DOUBLE_EQ(learningRate(s, 0), 0.025);
  EXPECT_DOUBLE_EQ(learningRate(s, 1), 0.05);
  EXPECT_DOUBLE_EQ(learningRate(s, 3), 0.1);
  EXPECT_DOUBLE_EQ(learningRate(s, 4), 0.1);
  EXPECT_DOUBLE_EQ(learningRate(s, 100), 0.1);
}

TEST(LrSchedule, StepDecay) {
  LrSchedule s{.kind = ScheduleKind::step, .base = 1.0, .totalSteps = 9, .stepSize = 3, .gamma = 0.5};
  EXPECT_DOUBLE_EQ(learningRate(s, 0), 1.0);
  EXPECT_DOUBLE_EQ(learningRate(s, 2), 1.0);
  EXPECT_DOUBLE_EQ(learningRate(s, 3), 0.5);
  EXPECT_DOUBLE_EQ(learningRate(s, 8), 0.25);
  s.stepSize = 0;  // default period: a third of the run
  s.totalSteps = 30;
  EXPECT_DOUBLE_EQ(learningRate(s, 9), 1.0);
  EXPECT_DOUBLE_EQ(learningRate(s, 10), 0.5);
}

TEST(LrSchedule, CosineAfterWarmup) {
  LrSchedule s{.kind = ScheduleKind::cosine, .base = 0.2, .totalSteps = 12, .warmup = 2};
  EXPECT_DOUBLE_EQ(learningRate(s, 0), 0.1);
  EXPECT_DOUBLE_EQ(learningRate(s, 2), 0.2);    // t = 0 of T = 10
  EXPECT_NEAR(learningRate(s, 7), 0.1, 1e-15);  // half way: cos(pi/2) = 0
  EXPECT_NEAR(learningRate(s, 4), 0.1 * (1 + std::cos(std::numbers::pi * 0.2)), 1e-15);
  EXPECT_NEAR(learningRate(s, 12), 0.0, 1e-15);  // the end
  EXPECT_NEAR(learningRate(s, 50), 0.0, 1e-15);  // and beyond
  s.minLr = 0.02;
  EXPECT_NEAR(learningRate(s, 7), 0.11, 1e-15);
}

TEST(LrSchedule, ParsingAndValidation) {
  EXPECT_EQ(runtime::parseScheduleKind("const"), ScheduleKind::constant);
  EXPECT_EQ(runtime::parseScheduleKind("cosine"), ScheduleKind::cosine);
  EXPECT_EQ(runtime::scheduleName(ScheduleKind::step), "step");
  EXPECT_THROW(runtime::parseScheduleKind("exponential"), Error);
  EXPECT_THROW(runtime::validateSchedule({.base = 0}), Error);
  EXPECT_THROW(runtime::validateSchedule({.base = 0.1, .totalSteps = 0}), Error);
  EXPECT_THROW(runtime::validateSchedule({.base = 0.1, .warmup = -1}), Error);
  EXPECT_NO_THROW(runtime::validateSchedule({.base = 0.1, .totalSteps = 5, .warmup = 10}));
}
