#include <gtest/gtest.h>

#include <cmath>

#include "ir/error.h"
#include "runtime/init.h"
#include "runtime/random.h"

using namespace weft::ir;
using weft::runtime::initializeParam;

namespace {
Attrs randomInit(const std::string& init, int64_t seed, double scale) {
  return {{"init", init}, {"seed", seed}, {"scale", scale}};
}
std::string errorOf(const std::string& name, const TensorType& t, const Attrs& a) {
  try {
    initializeParam(name, t, a);
  } catch (const weft::Error& e) {
    return e.what();
  }
  return "<no error>";
}
}  // namespace

TEST(Init, Zeros) {
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64, DType::boolean}) {
    TensorData t = initializeParam("b", {d, {3, 2}}, {{"init", std::string("zeros")}});
    EXPECT_EQ(t.type, (TensorType{d, {3, 2}}));
    ASSERT_EQ(t.bytes.size(), 6 * dtypeSize(d));
    for (uint8_t b : t.bytes) EXPECT_EQ(b, 0);
  }
}

TEST(Init, Ones) {
  TensorData f = initializeParam("g", {DType::f32, {4}}, {{"init", std::string("ones")}});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(f.as<float>()[i], 1.0f);
  TensorData b = initializeParam("g", {DType::bf16, {2}}, {{"init", std::string("ones")}});
  EXPECT_EQ(b.as<uint16_t>()[1], 0x3f80);  // 1.0 in bf16
  TensorData i = initializeParam("g", {DType::i64, {}}, {{"init", std::string("ones")}});
  EXPECT_EQ(i.as<int64_t>()[0], 1);
  TensorData k = initializeParam("g", {DType::boolean, {3}}, {{"init", std::string("ones")}});
  EXPECT_EQ(k.bytes, (std::vector<uint8_t>{1, 1, 1}));
}

TEST(Init, UniformHandComputed) {
  // Values from an independent Python Philox: float((2 * uniformAt(5, 0, i) - 1) * 0.5).
  TensorData t = initializeParam("w", {DType::f32, {3}}, randomInit("uniform", 5, 0.5));
  EXPECT_EQ(t.as<float>()[0], -0.4302929937839508f);
  EXPECT_EQ(t.as<float>()[1], -0.34383583068847656f);
  EXPECT_EQ(t.as<float>()[2], 0.1888153851032257f);
}

TEST(Init, UniformUsesStepZeroOfTheSeedAndStaysInRange) {
  TensorData t = initializeParam("w", {DType::f64, {50, 40}}, randomInit("uniform", 17, 0.25));
  double sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.as<double>()[i];
    EXPECT_EQ(v, (2 * weft::runtime::uniformAt(17, 0, i) - 1) * 0.25);
    EXPECT_GE(v, -0.25);
    EXPECT_LT(v, 0.25);
    sum += v;
  }
  EXPECT_NEAR(sum / t.numel(), 0.0, 0.02);  // standard error ~0.003
}

TEST(Init, NormalHandComputed) {
  TensorData t = initializeParam("w", {DType::f64, {3}}, randomInit("normal", 9, 2.0));
  EXPECT_NEAR(t.as<double>()[0], -3.5129023722254775, 1e-12);
  EXPECT_NEAR(t.as<double>()[1], 2.327682681396536, 1e-12);
  EXPECT_NEAR(t.as<double>()[2], 1.396798313617477, 1e-12);
}

TEST(Init, NormalHasStdScale) {
  TensorData t = initializeParam("w", {DType::f32, {100, 100}}, randomInit("normal", 3, 0.02));
  double sum = 0, sumSq = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.as<float>()[i];
    EXPECT_EQ(t.as<float>()[i], static_cast<float>(weft::runtime::normalAt(3, 0, i) * 0.02));
    sum += v, sumSq += v * v;
  }
  double mean = sum / t.numel();
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(std::sqrt(sumSq / t.numel() - mean * mean), 0.02, 0.001);
}

TEST(Init, Bf16IsRoundedFromTheDraw) {
  TensorData t = initializeParam("w", {DType::bf16, {8}}, randomInit("uniform", 1, 1.0));
  for (int64_t i = 0; i < 8; ++i)
    EXPECT_EQ(t.as<uint16_t>()[i], floatToBf16(static_cast<float>(2 * weft::runtime::uniformAt(1, 0, i) - 1)));
}

TEST(Init, DeterministicAndSeedDependent) {
  TensorType ty{DType::f32, {64}};
  EXPECT_EQ(initializeParam("a", ty, randomInit("uniform", 4, 1)), initializeParam("b", ty, randomInit("uniform", 4, 1)));
  EXPECT_NE(initializeParam("a", ty, randomInit("uniform", 4, 1)), initializeParam("a", ty, randomInit("uniform", 5, 1)));
  EXPECT_NE(initializeParam("a", ty, randomInit("uniform", 4, 1)), initializeParam("a", ty, randomInit("normal", 4, 1)));
}

TEST(Init, IntegerScaleIsAccepted) {
  Attrs a{{"init", std::string("uniform")}, {"seed", int64_t{5}}, {"scale", int64_t{2}}};
  TensorData t = initializeParam("w", {DType::f32, {3}}, a);
  EXPECT_EQ(t.as<float>()[0], static_cast<float>((2 * weft::runtime::uniformAt(5, 0, 0) - 1) * 2));
}

TEST(Init, UnknownInitNamesParamAndInit) {
  std::string msg = errorOf("fc1.weight", {DType::f32, {8, 16}}, {{"init", std::string("kaiming_uniform")}});
  EXPECT_NE(msg.find("fc1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("kaiming_uniform"), std::string::npos) << msg;
}

TEST(Init, RandomInitOfIntegerParamIsAnError) {
  std::string msg = errorOf("counts", {DType::i32, {4}}, randomInit("normal", 1, 1.0));
  EXPECT_NE(msg.find("counts"), std::string::npos) << msg;
  EXPECT_NE(msg.find("float dtype"), std::string::npos) << msg;
  EXPECT_NE(errorOf("mask", {DType::boolean, {4}}, randomInit("uniform", 1, 1.0)).find("mask"), std::string::npos);
}

TEST(Init, MissingOrMistypedAttributesAreErrors) {
  TensorType ty{DType::f32, {2}};
  EXPECT_NE(errorOf("w", ty, {}).find("param 'w' (f32[2]): missing attribute 'init'"), std::string::npos);
  EXPECT_NE(errorOf("w", ty, {{"init", int64_t{1}}}).find("'init' must be str"), std::string::npos);
  std::string noSeed = errorOf("w", ty, {{"init", std::string("uniform")}, {"scale", 1.0}});
  EXPECT_NE(noSeed.find("needs attribute 'seed'"), std::string::npos) << noSeed;
  std::string noScale = errorOf("w", ty, {{"init", std::string("normal")}, {"seed", int64_t{1}}});
  EXPECT_NE(noScale.find("needs attribute 'scale'"), std::string::npos) << noScale;
  std::string badScale = errorOf("w", ty, randomInit("normal", 1, -1.0));
  EXPECT_NE(badScale.find("non-negative"), std::string::npos) << badScale;
  std::string strScale = errorOf("w", ty, {{"init", std::string("normal")}, {"seed", int64_t{1}}, {"scale", std::string("x")}});
  EXPECT_NE(strScale.find("'scale' must be float"), std::string::npos) << strScale;
}
