// The native Winograd convolution F(4x4, 3x3): its kernel against a direct loop
// in double precision (tiles that do not divide the result, a last row or
// column of results computed directly, padding 0 to 2, a conv_transpose's
// reversed weights, blocks of tiles that do not divide the batch, the
// epilogue), and its step in compiled graphs where oneDNN has no Winograd
// kernel (AVX2 CPUs).
#include "runtime/cpu/native_winograd.h"

#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <vector>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"
#include "ir/error.h"
#include "runtime/cpu/host_isa.h"

using namespace weft;

namespace {

using ir::OpKind;

/// sin-valued data of `n` floats, phase `salt`.
std::vector<float> sines(int64_t n, double salt) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(std::sin(0.61 * double(i) + salt));
  return v;
}

/// The convolution `s` describes, directly, in double, with the epilogue.
std::vector<double> direct(const cpu::WinogradShape& s, const std::vector<float>& x, const std::vector<float>& w,
                           const cpu::WinogradEpilogue& e) {
  std::vector<double> y(static_cast<size_t>(s.images * s.outHeight * s.outWidth * s.outChannels));
  for (int64_t n = 0; n < s.images; ++n)
    for (int64_t i = 0; i < s.outHeight; ++i)
      for (int64_t j = 0; j < s.outWidth; ++j)
        for (int64_t k = 0; k < s.outChannels; ++k) {
          const int64_t at = ((n * s.outHeight + i) * s.outWidth + j) * s.outChannels + k;
          double sum = e.bias ? e.bias[e.singleBias ? 0 : k] : 0.0;
          for (int64_t a = 0; a < 3; ++a)
            for (int64_t b = 0; b < 3; ++b) {
              const int64_t h = i - s.padTop + a, v = j - s.padLeft + b;
              if (h < 0 || h >= s.height || v < 0 || v >= s.width) continue;
              for (int64_t c = 0; c < s.channels; ++c) {
                const float weight = s.transposed
                                         ? w[static_cast<size_t>((c * s.outChannels + k) * 9 + (2 - a) * 3 + 2 - b)]
                                         : w[static_cast<size_t>((k * s.channels + c) * 9 + a * 3 + b)];
                sum += double(x[static_cast<size_t>(((n * s.height + h) * s.width + v) * s.channels + c)]) * weight;
              }
            }
          if (e.residual) sum += e.residual[at];
          y[static_cast<size_t>(at)] = e.relu ? std::max(sum, 0.0) : sum;
        }
  return y;
}

TEST(NativeWinograd, MatchesTheDirectConvolution) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  struct Case {
    cpu::WinogradShape s;
    bool bias, singleBias, residual, relu;
  };
  // images, height, width, channels, outHeight, outWidth, outChannels, padTop,
  // padLeft, transposed
  const Case cases[] = {
      {{2, 8, 8, 16, 8, 8, 16, 1, 1, false}, false, false, false, false},
      {{3, 14, 14, 24, 14, 14, 32, 1, 1, false}, true, false, false, false},  // 14 = 3.5 tiles
      {{1, 10, 9, 8, 8, 7, 16, 0, 0, false}, true, true, false, true},        // no padding
      {{2, 6, 7, 16, 8, 9, 32, 2, 2, true}, true, false, true, true},         // conv_transpose of padding 0
      {{5, 9, 11, 32, 9, 11, 48, 1, 1, true}, false, false, true, false},     // blocks across images
      {{7, 16, 16, 64, 16, 16, 64, 1, 1, false}, true, false, true, true},    // resnet's middle layers, fewer images
      {{3, 11, 11, 64, 13, 13, 32, 2, 2, true}, true, true, false, true},     // lenet's data gradient: a last
      {{2, 13, 9, 16, 13, 9, 16, 1, 1, false}, true, false, true, false},     // row and column run direct
  };
  for (const Case& c : cases) {
    const cpu::WinogradShape& s = c.s;
    SCOPED_TRACE(::testing::Message() << s.images << "x" << s.height << "x" << s.width << "x" << s.channels << " -> "
                                      << s.outChannels << (s.transposed ? " transposed" : "") << " pad " << s.padTop);
    ASSERT_TRUE(cpu::winogradFits(s)) << "needs AVX2";  // AVX2 is the baseline of every machine here
    const int64_t outSize = s.images * s.outHeight * s.outWidth * s.outChannels;
    const std::vector<float> x = sines(s.images * s.height * s.width * s.channels, 0.2);
    const std::vector<float> w = sines(s.channels * s.outChannels * 9, 1.1);
    const std::vector<float> bias = sines(s.outChannels, 2.3), residual = sines(outSize, 0.7);
    cpu::WinogradEpilogue e;
    if (c.bias) e.bias = bias.data(), e.singleBias = c.singleBias;
    if (c.residual) e.residual = residual.data();
    e.relu = c.relu;
    const std::vector<double> want = direct(s, x, w, e);
    for (int threads : {1, 2}) {  // scratch for one worker or two
      SCOPED_TRACE(threads);
      std::vector<float> y(static_cast<size_t>(outSize), std::nanf(""));
      std::vector<float> scratch(static_cast<size_t>(cpu::winogradScratchBytes(s, threads) / 4), std::nanf(""));
      cpu::winogradConvolution(s, x.data(), w.data(), e, y.data(), scratch.data(),
                               cpu::winogradScratchBytes(s, threads));
      // Winograd's transforms scale values by up to 8^2 and back: a few units
      // in the last place of the sums' magnitude (sqrt(9 C) for these values);
      // a misplaced tap is off by ~1.
      const double tolerance = 2e-5 * std::sqrt(9.0 * double(s.channels));
      int failures = 0;
      for (int64_t i = 0; i < outSize && failures < 5; ++i)
        if (!(std::fabs(y[static_cast<size_t>(i)] - want[static_cast<size_t>(i)]) <= tolerance)) {
          ADD_FAILURE() << "element " << i << ": " << y[static_cast<size_t>(i)] << ", direct "
                        << want[static_cast<size_t>(i)];
          ++failures;
        }
    }
  }
}

TEST(NativeWinograd, WeightGradientsMatchTheDirectSums) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  // images, height, width, channels, outHeight, outWidth, outChannels, padTop, padLeft
  const cpu::WinogradShape shapes[] = {
      {2, 8, 8, 16, 8, 8, 16, 1, 1, false},     {3, 14, 14, 32, 14, 14, 48, 1, 1, false},  // 3.5 tiles a side
      {1, 10, 9, 16, 8, 7, 32, 0, 0, false},                                               // no padding
      {2, 7, 6, 16, 9, 8, 16, 2, 2, false},                                                // padding 2
      {9, 16, 16, 64, 16, 16, 32, 1, 1, false},   // several blocks, 32 rows of 6 with a remainder
      {24, 16, 16, 64, 16, 16, 32, 1, 1, false},  // several of the larger blocks too
  };
  for (const cpu::WinogradShape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << s.images << "x" << s.height << "x" << s.width << "x" << s.channels << " -> "
                                      << s.outChannels << " pad " << s.padTop);
    ASSERT_TRUE(cpu::winogradFits(s)) << "needs AVX2";
    const std::vector<float> x = sines(s.images * s.height * s.width * s.channels, 0.2);
    const std::vector<float> dy = sines(s.images * s.outHeight * s.outWidth * s.outChannels, 1.7);
    // The blocks the least scratch holds, and the larger ones of the scratch the step wants.
    for (const int64_t scratchBytes : {cpu::winogradWeightGradScratchBytes(s, omp_get_max_threads()),
                                       cpu::winogradWeightGradWantedBytes(s, omp_get_max_threads())}) {
      SCOPED_TRACE(::testing::Message() << scratchBytes << " bytes of scratch");
      std::vector<float> dw(static_cast<size_t>(s.outChannels * s.channels * 9), std::nanf(""));
      std::vector<float> scratch(static_cast<size_t>(scratchBytes / 4), std::nanf(""));
      cpu::winogradWeightGradient(s, x.data(), dy.data(), dw.data(), scratch.data(), scratchBytes);
      // Sums over every position of every image: the error grows with their count.
      const double positions = double(s.images * s.outHeight * s.outWidth);
      const double tolerance = 2e-5 * std::sqrt(positions) * 8;
      int failures = 0;
      for (int64_t k = 0; k < s.outChannels; ++k)
        for (int64_t c = 0; c < s.channels; ++c)
          for (int64_t a = 0; a < 3; ++a)
            for (int64_t b = 0; b < 3 && failures < 5; ++b) {
              double want = 0;
              for (int64_t n = 0; n < s.images; ++n)
                for (int64_t i = 0; i < s.outHeight; ++i)
                  for (int64_t j = 0; j < s.outWidth; ++j) {
                    const int64_t h = i - s.padTop + a, v = j - s.padLeft + b;
                    if (h < 0 || h >= s.height || v < 0 || v >= s.width) continue;
                    want += double(x[static_cast<size_t>(((n * s.height + h) * s.width + v) * s.channels + c)]) *
                            dy[static_cast<size_t>(((n * s.outHeight + i) * s.outWidth + j) * s.outChannels + k)];
                  }
              const float got = dw[static_cast<size_t>((k * s.channels + c) * 9 + a * 3 + b)];
              if (!(std::fabs(got - want) <= tolerance)) {
                ADD_FAILURE() << "dw[" << k << ", " << c << ", " << a << ", " << b << "] is " << got << ", direct "
                              << want;
                ++failures;
              }
            }
    }
  }
}

TEST(NativeWinograd, RunsResidualBlocksAndDataGradients) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  const cpu::testing::EnvironmentVariable unset("WEFT_WINOGRAD", std::nullopt);
  // A residual block's second convolution: conv + bias + residual + ReLU, one
  // fused node.
  ir::Graph block("residual");
  ir::ValueId y = block.addOp(
      OpKind::Conv,
      {block.addInput("x", {ir::DType::f32, {3, 12, 12, 32}}), block.addInput("w", {ir::DType::f32, {32, 32, 3, 3}})},
      cpu::testing::convAttrs(1, 1, true));
  y = block.addOp(OpKind::Add, {y, block.addInput("b", {ir::DType::f32, {32}})});
  y = block.addOp(OpKind::Add, {y, block.addInput("r", {ir::DType::f32, {3, 12, 12, 32}})});
  y = block.addOp(OpKind::Maximum,
                  {y, block.addConstant(std::make_shared<ir::TensorData>(ir::TensorType{ir::DType::f32, {}}))});
  block.addOutput("y", y);
  // A data gradient: conv_transpose, stride 1, padding 1.
  ir::Graph gradient("gradient");
  ir::Attrs attrs = cpu::testing::convAttrs(1, 1, true);
  attrs["output_padding"] = std::vector<int64_t>{0, 0};
  gradient.addOutput("dx", gradient.addOp(OpKind::ConvTranspose,
                                          {gradient.addInput("dy", {ir::DType::f32, {2, 9, 10, 32}}),
                                           gradient.addInput("w", {ir::DType::f32, {32, 16, 3, 3}})},
                                          attrs));
  for (const ir::Graph* g : {&block, &gradient}) {
    SCOPED_TRACE(g->name());
    cpu::Executable exe = cpu::compile(*g);
    EXPECT_EQ(exe.stats().kernels, 1);
    EXPECT_EQ(exe.stats().nativeSteps, 1);
    EXPECT_EQ(exe.stats().nativeWinogradSteps, 1);
    reference::TensorMap feeds = cpu::testing::sineFeeds(*g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(*g, feeds));
  }
}

}  // namespace

namespace {

/// The 4x4 or 3x3, stride-2 convolution `s` describes, directly, in double, with the epilogue.
std::vector<double> directStrided(const cpu::PhaseWinogradShape& s, const std::vector<float>& x,
                                  const std::vector<float>& w, const cpu::WinogradEpilogue& e) {
  const int64_t C = s.channels, K = s.outChannels, R = s.kernel;
  std::vector<double> y(static_cast<size_t>(s.images * s.outHeight * s.outWidth * K));
  auto at = [&](int64_t n, int64_t i, int64_t j, int64_t k) {
    return static_cast<size_t>(((n * s.outHeight + i) * s.outWidth + j) * K + k);
  };
  // Each input position and tap adds to one result position (conv: the result reads it).
  for (int64_t n = 0; n < s.images; ++n)
    for (int64_t p = 0; p < (s.transposed ? s.height : s.outHeight); ++p)
      for (int64_t q = 0; q < (s.transposed ? s.width : s.outWidth); ++q)
        for (int64_t a = 0; a < R; ++a)
          for (int64_t b = 0; b < R; ++b) {
            const int64_t h = 2 * p - s.padTop + a, v = 2 * q - s.padLeft + b;
            if (h < 0 || v < 0 || h >= (s.transposed ? s.outHeight : s.height) ||
                v >= (s.transposed ? s.outWidth : s.width))
              continue;
            for (int64_t k = 0; k < K; ++k)
              for (int64_t c = 0; c < C; ++c) {
                if (s.transposed)
                  y[at(n, h, v, k)] += double(x[static_cast<size_t>(((n * s.height + p) * s.width + q) * C + c)]) *
                                       w[static_cast<size_t>(((c * K + k) * R + a) * R + b)];
                else
                  y[at(n, p, q, k)] += double(x[static_cast<size_t>(((n * s.height + h) * s.width + v) * C + c)]) *
                                       w[static_cast<size_t>(((k * C + c) * R + a) * R + b)];
              }
          }
  for (size_t i = 0; i < y.size(); ++i) {
    double value = y[i] + (e.bias ? e.bias[e.singleBias ? 0 : static_cast<int64_t>(i) % K] : 0.0);
    if (e.residual) value += e.residual[i];
    y[i] = e.relu ? std::max(value, 0.0) : value;
  }
  return y;
}

/// A channels-last f32 tensor type.
ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// max(x, 0).
ir::ValueId relu(ir::Graph& g, ir::ValueId x) {
  return g.addOp(OpKind::Maximum, {x, g.addConstant(std::make_shared<ir::TensorData>(f32({})))});
}

/// Two 3x3 stride-1 convolutions (with `threeByThree`) and a 4x4 stride-2 one, channels-last.
ir::Graph threeByThreeThenStrided(bool threeByThree) {
  ir::Graph g(threeByThree ? "mixed" : "strided");
  ir::ValueId x = g.addInput("x", f32({2, 16, 16, 16}));
  if (threeByThree)
    for (const char* name : {"w1", "w2"})
      x = relu(g, g.addOp(OpKind::Conv, {x, g.addInput(name, f32({16, 16, 3, 3}))},
                          cpu::testing::convAttrs(1, 1, true)));
  g.addOutput("y", g.addOp(OpKind::Conv, {x, g.addInput("w3", f32({16, 16, 4, 4}))},
                           cpu::testing::convAttrs(2, 1, true)));
  return g;
}

TEST(NativeWinograd, RunsEveryConvolutionItFitsOnEveryCpu) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  // Two 3x3 stride-1 convolutions (oneDNN's Winograd would run them on AVX-512 CPUs) and a
  // 4x4 stride-2 one (oneDNN's direct kernel would): weft's steps run all three on every CPU
  // (weftWinogradPreferred), the 4x4 one also alone.
  const ir::Graph mixed = threeByThreeThenStrided(true), strided = threeByThreeThenStrided(false);
  const cpu::testing::EnvironmentVariable unset("WEFT_WINOGRAD", std::nullopt);
  EXPECT_TRUE(cpu::weftWinogradPreferred());
  for (const ir::Graph* g : {&mixed, &strided}) {
    SCOPED_TRACE(g->name());
    cpu::Executable exe = cpu::compile(*g);
    EXPECT_EQ(exe.stats().nativeWinogradSteps, g == &mixed ? 3 : 1);
    reference::TensorMap feeds = cpu::testing::sineFeeds(*g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(*g, feeds), 2e-4);
  }
}

TEST(NativeWinograd, TheEnvironmentChoosesEitherSide) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  // WEFT_WINOGRAD=weft runs the 3x3 stride-1 convolutions on weft's steps, =onednn on
  // oneDNN, on every CPU (the 4x4 stride-2 one runs on weft's step either way); another value
  // is an error naming the variable, not the default.
  const ir::Graph g = threeByThreeThenStrided(true);
  for (const auto& [value, steps] : {std::pair{"weft", 3}, std::pair{"onednn", 1}}) {
    SCOPED_TRACE(value);
    const cpu::testing::EnvironmentVariable choice("WEFT_WINOGRAD", value);
    EXPECT_EQ(cpu::weftWinogradPreferred(), steps == 3);
    cpu::Executable exe = cpu::compile(g);
    EXPECT_EQ(exe.stats().nativeWinogradSteps, steps);
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-4);
  }
  const cpu::testing::EnvironmentVariable typo("WEFT_WINOGRAD", "native");
  try {
    cpu::compile(g);
    ADD_FAILURE() << "WEFT_WINOGRAD=native compiled";
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("WEFT_WINOGRAD"), std::string::npos) << e.what();
  }
}

TEST(NativeWinograd, ThreeByThreeStrideTwoRunsOnOneDnnWhereItIsFaster) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  // weft's 3x3 stride-2 phase steps run where oneDNN has no Winograd kernels (AVX2) and where
  // 512-bit FMAs run at half rate (runsPhaseSteps); with two 512-bit FMA pipes oneDNN's direct
  // kernels run them faster, whatever WEFT_WINOGRAD says.
  ir::Graph g("strided3");
  const ir::ValueId x = g.addInput("x", f32({2, 16, 16, 16}));
  const ir::ValueId y =
      g.addOp(OpKind::Conv, {x, g.addInput("w", f32({16, 16, 3, 3}))}, cpu::testing::convAttrs(2, 1, true));
  g.addOutput("y", y);
  const cpu::testing::EnvironmentVariable choice("WEFT_WINOGRAD", "weft");
  ASSERT_TRUE(cpu::winogradConvFits(g, y));
  const bool phases = !cpu::channelBlocksFit() || !cpu::hostRunsWideVectorsAtFullRate();
  EXPECT_EQ(cpu::runsWinogradConv(g, y), phases);
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.stats().nativeWinogradSteps, phases ? 1 : 0);
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 2e-4);
}

TEST(PhaseWinograd, ReadsAndWritesChannelBlockedData) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  // Between oneDNN's 3x3 Winograd convolutions (AVX-512: blocked data), a 4x4 stride-2 conv,
  // conv_transpose and weight gradient on weft's phase steps read x (and dy) and write their
  // results channel-blocked; elsewhere everything is channels-last.
  const cpu::testing::OneDnnWinogradWhereItHasIt oneDnnWinograd;
  ir::Graph g("phases_between_blocks");
  auto conv3 = [&](ir::ValueId x, const char* w, int64_t channels) {
    return relu(g, g.addOp(OpKind::Conv, {x, g.addInput(w, f32({channels, channels, 3, 3}))},
                           cpu::testing::convAttrs(1, 1, true)));
  };
  const ir::ValueId a = conv3(g.addInput("x", f32({2, 16, 16, 32})), "w1", 32);  // [2,16,16,32]
  const ir::ValueId c = relu(g, g.addOp(OpKind::Conv, {a, g.addInput("down", f32({32, 32, 4, 4}))},
                                        cpu::testing::convAttrs(2, 1, true)));  // [2,8,8,32]
  g.addOutput("y1", conv3(c, "w2", 32));
  ir::Attrs upAttrs = cpu::testing::convAttrs(2, 1, true);
  upAttrs["output_padding"] = std::vector<int64_t>{0, 0};
  const ir::ValueId up = relu(g, g.addOp(OpKind::ConvTranspose, {c, g.addInput("up", f32({32, 32, 4, 4}))}, upAttrs));
  g.addOutput("y2", conv3(up, "w3", 32));
  ir::Attrs gradAttrs = cpu::testing::convAttrs(2, 1, true);
  gradAttrs["kernel"] = std::vector<int64_t>{4, 4};
  g.addOutput("dw", g.addOp(OpKind::ConvWeightGrad, {a, c}, gradAttrs));
  cpu::Executable exe = cpu::compile(g);
  EXPECT_EQ(exe.stats().nativeWinogradSteps, cpu::channelBlocksFit() ? 3 : 6);
  if (cpu::channelBlocksFit()) {
    EXPECT_GE(exe.stats().blockedValues, 3);  // a, c and up at least
  }
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(g, feeds), 3e-4);
}

TEST(PhaseWinograd, MatchesTheDirectStridedConvolution) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  struct Case {
    cpu::PhaseWinogradShape s;
    bool bias, residual, relu;
  };
  // images, height, width, channels, outHeight, outWidth, outChannels, padTop, padLeft, transposed
  const Case cases[] = {
      {{3, 14, 14, 16, 7, 7, 32, 1, 1, false}, true, false, false},    // dcgan's discriminator, one tile
      {{2, 28, 27, 24, 14, 13, 16, 1, 1, false}, false, true, true},   // 2x2 tiles, an odd width
      {{2, 17, 18, 8, 7, 8, 16, 0, 0, false}, true, false, true},      // no padding, an odd height
      {{1, 12, 13, 16, 7, 7, 16, 2, 2, false}, false, false, false},   // padding 2
      {{3, 7, 7, 32, 14, 14, 16, 1, 1, true}, true, false, true},      // dcgan's generator
      {{2, 9, 6, 16, 20, 14, 32, 0, 0, true}, false, true, false},     // no padding: partial tiles
      {{1, 8, 11, 8, 14, 20, 16, 2, 2, true}, true, true, false},      // padding 2
      // 3x3 kernels, F(4x4, 2x2): resnet's downsampling conv and its data gradient (output
      // padding 1), odd sizes, partial tiles, other paddings
      {{2, 16, 16, 16, 8, 8, 32, 1, 1, false, 3}, true, false, true},
      {{3, 13, 10, 24, 7, 5, 16, 1, 1, false, 3}, false, true, false},
      {{2, 12, 11, 8, 5, 5, 16, 0, 0, false, 3}, true, true, true},
      {{1, 9, 9, 16, 6, 6, 16, 2, 2, false, 3}, false, false, false},
      {{2, 8, 8, 32, 16, 16, 16, 1, 1, true, 3}, true, false, false},
      {{2, 5, 7, 16, 9, 13, 32, 1, 1, true, 3}, false, true, true},   // output padding 0
      {{1, 6, 5, 8, 14, 12, 16, 0, 0, true, 3}, true, false, false},  // no padding, output padding 1
      // 3x3 kernels in F(7x7, 2x2) tiles (planes of 7k, not 4k): ddpm's downsampling, smaller
      {{2, 28, 28, 16, 14, 14, 32, 1, 1, false, 3}, true, false, true},
      {{2, 7, 7, 16, 14, 14, 16, 1, 1, true, 3}, false, true, false},  // its data gradient
  };
  for (const Case& c : cases) {
    const cpu::PhaseWinogradShape& s = c.s;
    SCOPED_TRACE(::testing::Message() << s.images << "x" << s.height << "x" << s.width << "x" << s.channels << " -> "
                                      << s.outChannels << (s.transposed ? " transposed" : "") << " pad " << s.padTop
                                      << " kernel " << s.kernel);
    ASSERT_TRUE(cpu::phaseWinogradFits(s)) << "needs AVX2";  // AVX2 is the baseline of every machine here
    const int64_t outSize = s.images * s.outHeight * s.outWidth * s.outChannels;
    const std::vector<float> x = sines(s.images * s.height * s.width * s.channels, 0.2);
    const std::vector<float> w = sines(s.channels * s.outChannels * s.kernel * s.kernel, 1.1);
    const std::vector<float> bias = sines(s.outChannels, 2.3), residual = sines(outSize, 0.7);
    cpu::WinogradEpilogue e;
    if (c.bias) e.bias = bias.data();
    if (c.residual) e.residual = residual.data();
    e.relu = c.relu;
    const std::vector<double> want = directStrided(s, x, w, e);
    std::vector<float> y(static_cast<size_t>(outSize), std::nanf(""));
    std::vector<float> scratch(static_cast<size_t>(cpu::phaseWinogradScratchBytes(s) / 4), std::nanf(""));
    cpu::phaseWinogradConvolution(s, x.data(), w.data(), e, y.data(), scratch.data(),
                                  static_cast<int64_t>(scratch.size() * 4));
    // F(7x7, 2x2)'s transforms scale values by up to 64^2 and back: some 100 units in the
    // last place of the sums' magnitude (sqrt(16 C) for these values; 1.5e-4 at most seen
    // here); a misplaced tap is off by ~1.
    const double tolerance = 5e-5 * std::sqrt(16.0 * double(s.channels));
    int failures = 0;
    for (int64_t i = 0; i < outSize && failures < 5; ++i) {
      const double error = std::fabs(y[static_cast<size_t>(i)] - want[static_cast<size_t>(i)]);
      if (!(error <= tolerance)) {
        ADD_FAILURE() << "element " << i << ": " << y[static_cast<size_t>(i)] << ", direct "
                      << want[static_cast<size_t>(i)];
        ++failures;
      }
    }
  }
}

}  // namespace

namespace {

TEST(PhaseWinograd, RunsStridedConvolutionsAndTheirGradients) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  // On AVX-512 CPUs the 4x4 ones, and where 512-bit FMAs run at half rate the 3x3 forward
  // and data gradient ones too (runsPhaseSteps): oneDNN's direct kernels run the rest there.
  // dcgan's discriminator layer: a 4x4, stride-2 conv + bias + ReLU, one fused node.
  ir::Graph down("down");
  ir::ValueId y = down.addOp(
      OpKind::Conv,
      {down.addInput("x", {ir::DType::f32, {3, 14, 15, 16}}), down.addInput("w", {ir::DType::f32, {32, 16, 4, 4}})},
      cpu::testing::convAttrs(2, 1, true));
  y = down.addOp(OpKind::Add, {y, down.addInput("b", {ir::DType::f32, {32}})});
  y = down.addOp(OpKind::Maximum,
                 {y, down.addConstant(std::make_shared<ir::TensorData>(ir::TensorType{ir::DType::f32, {}}))});
  down.addOutput("y", y);
  // Its generator's: a 4x4, stride-2 conv_transpose (and so the discriminator's data gradient).
  ir::Graph up("up");
  ir::Attrs attrs = cpu::testing::convAttrs(2, 1, true);
  attrs["output_padding"] = std::vector<int64_t>{0, 0};
  up.addOutput("y", up.addOp(OpKind::ConvTranspose,
                             {up.addInput("x", {ir::DType::f32, {2, 7, 8, 32}}),
                              up.addInput("w", {ir::DType::f32, {32, 16, 4, 4}})},
                             attrs));
  // The discriminator's weight gradient (and the generator's, x and dy exchanged).
  ir::Graph weights("weights");
  ir::Attrs gradAttrs = cpu::testing::convAttrs(2, 1, true);
  gradAttrs["kernel"] = std::vector<int64_t>{4, 4};
  weights.addOutput("dw", weights.addOp(OpKind::ConvWeightGrad,
                                        {weights.addInput("x", {ir::DType::f32, {3, 14, 15, 16}}),
                                         weights.addInput("dy", {ir::DType::f32, {3, 7, 7, 32}})},
                                        gradAttrs));
  // resnet's downsampling: a 3x3, stride-2 conv + bias + ReLU, and its data gradient (a 3x3
  // conv_transpose with an output padding of 1), of whole 4x4 tiles.
  ir::Graph resnetDown("resnet_down");
  y = resnetDown.addOp(OpKind::Conv,
                       {resnetDown.addInput("x", {ir::DType::f32, {2, 16, 16, 16}}),
                        resnetDown.addInput("w", {ir::DType::f32, {32, 16, 3, 3}})},
                       cpu::testing::convAttrs(2, 1, true));
  y = resnetDown.addOp(OpKind::Add, {y, resnetDown.addInput("b", {ir::DType::f32, {32}})});
  y = resnetDown.addOp(
      OpKind::Maximum,
      {y, resnetDown.addConstant(std::make_shared<ir::TensorData>(ir::TensorType{ir::DType::f32, {}}))});
  resnetDown.addOutput("y", y);
  ir::Graph resnetBack("resnet_back");
  attrs["output_padding"] = std::vector<int64_t>{1, 1};
  resnetBack.addOutput("dx", resnetBack.addOp(OpKind::ConvTranspose,
                                              {resnetBack.addInput("dy", {ir::DType::f32, {2, 8, 8, 32}}),
                                               resnetBack.addInput("w", {ir::DType::f32, {32, 16, 3, 3}})},
                                              attrs));
  ir::Graph resnetWeights("resnet_weights");  // and its weight gradient
  gradAttrs["kernel"] = std::vector<int64_t>{3, 3};
  resnetWeights.addOutput("dw", resnetWeights.addOp(OpKind::ConvWeightGrad,
                                                    {resnetWeights.addInput("x", {ir::DType::f32, {2, 16, 16, 16}}),
                                                     resnetWeights.addInput("dy", {ir::DType::f32, {2, 8, 8, 32}})},
                                                    gradAttrs));
  // ddpm's downsampling conv and its weight gradient: 14x14 results, whole 7x7 tiles.
  ir::Graph ddpmDown("ddpm_down");
  ddpmDown.addOutput("y", ddpmDown.addOp(OpKind::Conv,
                                         {ddpmDown.addInput("x", {ir::DType::f32, {2, 28, 28, 16}}),
                                          ddpmDown.addInput("w", {ir::DType::f32, {16, 16, 3, 3}})},
                                         cpu::testing::convAttrs(2, 1, true)));
  ir::Graph ddpmWeights("ddpm_weights");
  ddpmWeights.addOutput("dw", ddpmWeights.addOp(OpKind::ConvWeightGrad,
                                                {ddpmWeights.addInput("x", {ir::DType::f32, {2, 28, 28, 16}}),
                                                 ddpmWeights.addInput("dy", {ir::DType::f32, {2, 14, 14, 16}})},
                                                gradAttrs));
  for (const ir::Graph* g :
       {&down, &up, &weights, &resnetDown, &resnetBack, &resnetWeights, &ddpmDown, &ddpmWeights}) {
    SCOPED_TRACE(g->name());
    cpu::Executable exe = cpu::compile(*g);
    const bool fourByFour = g == &down || g == &up || g == &weights;
    const bool weightGradient = g == &resnetWeights || g == &ddpmWeights;
    const bool halfRate = !cpu::hostRunsWideVectorsAtFullRate() && !weightGradient;
    EXPECT_EQ(exe.stats().kernels, 1);
    EXPECT_EQ(exe.stats().nativeWinogradSteps, fourByFour || !cpu::channelBlocksFit() || halfRate ? 1 : 0);
    reference::TensorMap feeds = cpu::testing::sineFeeds(*g);
    cpu::testing::expectCloseToLargest(exe.run(feeds), reference::run(*g, feeds));
  }
}

}  // namespace

namespace {

TEST(PhaseWinograd, WeightGradientsMatchTheDirectSums) {
  if (!cpu::hostHasAvx2Fma()) GTEST_SKIP() << cpu::testing::kNeedsVectorKernels;
  // images, height, width, channels, outHeight, outWidth, outChannels, padTop, padLeft
  const cpu::PhaseWinogradShape shapes[] = {
      {3, 14, 14, 16, 7, 7, 32, 1, 1, false},   // dcgan's discriminator, one tile an image
      {2, 28, 27, 32, 14, 13, 16, 1, 1, false},  // 2x2 tiles, an odd width
      {2, 17, 18, 16, 7, 8, 32, 0, 0, false},    // no padding, an odd height, 5 x 6 + 2 rows
      {1, 12, 13, 16, 7, 7, 16, 2, 2, false},    // padding 2
      // 3x3 kernels, F(4x4, 2x2): resnet's downsampling, smaller; other paddings and sizes
      {2, 16, 16, 16, 8, 8, 32, 1, 1, false, 3},
      {3, 15, 16, 24, 8, 8, 16, 1, 1, false, 3},  // an odd height, 5 x 2 + 4 + 2 rows
      {2, 17, 9, 8, 8, 4, 16, 0, 0, false, 3},    // no padding
      {1, 14, 13, 16, 8, 8, 48, 2, 2, false, 3},  // padding 2
      {2, 28, 28, 16, 14, 14, 32, 1, 1, false, 3},  // in F(7x7, 2x2) tiles: ddpm's downsampling
  };
  for (const cpu::PhaseWinogradShape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << s.images << "x" << s.height << "x" << s.width << "x" << s.channels << " -> "
                                      << s.outChannels << " pad " << s.padTop << " kernel " << s.kernel);
    const int64_t R = s.kernel;
    ASSERT_TRUE(cpu::phaseWinogradFits(s)) << "needs AVX2";
    const std::vector<float> x = sines(s.images * s.height * s.width * s.channels, 0.2);
    const std::vector<float> dy = sines(s.images * s.outHeight * s.outWidth * s.outChannels, 1.7);
    std::vector<float> dw(static_cast<size_t>(s.outChannels * s.channels * R * R), std::nanf(""));
    std::vector<float> scratch(static_cast<size_t>(cpu::phaseWinogradWeightGradScratchBytes(s) / 4), std::nanf(""));
    cpu::phaseWinogradWeightGradient(s, x.data(), dy.data(), dw.data(), scratch.data());
    // Sums over every position of every image: the error grows with their count (all within
    // a tenth of this bound here); a misplaced tap is off by the sums' magnitude.
    const double positions = double(s.images * s.outHeight * s.outWidth);
    const double tolerance = 2e-5 * std::sqrt(positions) * 8;
    int failures = 0;
    for (int64_t k = 0; k < s.outChannels; ++k)
      for (int64_t c = 0; c < s.channels; ++c)
        for (int64_t a = 0; a < R; ++a)
          for (int64_t b = 0; b < R && failures < 5; ++b) {
            double want = 0;
            for (int64_t n = 0; n < s.images; ++n)
              for (int64_t i = 0; i < s.outHeight; ++i)
                for (int64_t j = 0; j < s.outWidth; ++j) {
                  const int64_t h = 2 * i - s.padTop + a, v = 2 * j - s.padLeft + b;
                  if (h < 0 || h >= s.height || v < 0 || v >= s.width) continue;
                  want += double(x[static_cast<size_t>(((n * s.height + h) * s.width + v) * s.channels + c)]) *
                          dy[static_cast<size_t>(((n * s.outHeight + i) * s.outWidth + j) * s.outChannels + k)];
                }
            const float got = dw[static_cast<size_t>(((k * s.channels + c) * R + a) * R + b)];
            if (!(std::fabs(got - want) <= tolerance)) {
              ADD_FAILURE() << "dw[" << k << ", " << c << ", " << a << ", " << b << "] is " << got << ", direct "
                            << want;
              ++failures;
            }
          }
  }
}

}  // namespace
