// The interpreter itself: feeds, params, constants, random ops, error messages, the kernel table.
#include "backends/reference/kernels.h"
#include "ref_test_util.h"
#include "runtime/random.h"

using namespace reftest;
using weft::reference::run;
using weft::reference::runAll;
using weft::reference::RunOptions;

namespace {

/// y = x * w + c with input x [2], param w [2] (init ones) and constant c [2].
Graph affineGraph() {
  Graph g("affine");
  auto x = g.addInput("x", {DType::f32, {2}});
  auto w = g.addParam("w", {DType::f32, {2}}, {{"init", S("ones")}});
  auto c = g.addConstant(std::make_shared<TensorData>(f32({2}, {10, 20})), "c");
  auto xw = g.addOp(OpKind::Mul, {x, w}, {}, "xw");
  g.addOutput("y", g.addOp(OpKind::Add, {xw, c}, {}, "y"));
  return g;
}

}  // namespace

TEST(ReferenceKernels, EveryOpOfTheTableHasAKernel) {
  for (const auto& info : allOps()) EXPECT_TRUE(weft::reference::hasKernel(info.kind)) << info.name;
  EXPECT_EQ(allOps().size(), static_cast<size_t>(kNumOps));
}

TEST(Interpreter, RunsInputsParamsAndConstants) {
  Graph g = affineGraph();
  TensorMap out = run(g, {{"x", f32({2}, {1, 2})}});
  ASSERT_EQ(out.size(), 1u);
  expectTensor(out.at("y"), DType::f32, {2}, {11, 22});
  // A fed parameter replaces its initializer.
  out = run(g, {{"x", f32({2}, {1, 2})}, {"w", f32({2}, {3, -1})}});
  expectTensor(out.at("y"), DType::f32, {2}, {13, 18});
}

TEST(Interpreter, RunAllKeepsEveryValue) {
  Graph g = affineGraph();
  std::vector<TensorData> all = runAll(g, {{"x", f32({2}, {1, 2})}});
  ASSERT_EQ(all.size(), static_cast<size_t>(g.size()));
  expectTensor(all[0], DType::f32, {2}, {1, 2});
  expectTensor(all[1], DType::f32, {2}, {1, 1});
  expectTensor(all[2], DType::f32, {2}, {10, 20});
  expectTensor(all[3], DType::f32, {2}, {1, 2});
  expectTensor(all[4], DType::f32, {2}, {11, 22});
}

TEST(Interpreter, OutputsSurviveWhenIntermediatesAreReleased) {
  // xw is both an output and read by a later node.
  Graph g = affineGraph();
  g.addOutput("xw", *g.find("xw"));
  TensorMap out = run(g, {{"x", f32({2}, {4, 5})}});
  expectTensor(out.at("xw"), DType::f32, {2}, {4, 5});
  expectTensor(out.at("y"), DType::f32, {2}, {14, 25});
}

TEST(Interpreter, MissingInputIsAnError) {
  Graph g = affineGraph();
  expectError([&] { run(g, {}); }, {"%x", "no value was fed", "f32[2]"});
}

TEST(Interpreter, WrongFeedTypeNamesInputAndBothTypes) {
  Graph g = affineGraph();
  expectError([&] { run(g, {{"x", f32({3}, {1, 2, 3})}}); }, {"input %x", "f32[3]", "f32[2]"});
  expectError([&] { run(g, {{"x", f64({2}, {1, 2})}}); }, {"input %x", "f64[2]", "f32[2]"});
  expectError([&] { run(g, {{"x", f32({2}, {1, 2})}, {"w", f32({1}, {1})}}); }, {"param %w", "f32[1]", "f32[2]"});
}

TEST(Interpreter, UnknownFeedNameIsAnError) {
  Graph g = affineGraph();
  expectError([&] { run(g, {{"x", f32({2}, {1, 2})}, {"z", f32({2}, {1, 2})}}); }, {"'z'", "@affine"});
  // Feeding a value that is neither input nor param is an error too.
  expectError([&] { run(g, {{"x", f32({2}, {1, 2})}, {"xw", f32({2}, {1, 2})}}); }, {"'xw'"});
}

TEST(Interpreter, MalformedFeedBufferIsAnError) {
  Graph g = affineGraph();
  TensorData bad = f32({2}, {1, 2});
  bad.bytes.resize(3);
  expectError([&] { run(g, {{"x", bad}}); }, {"%x", "3 bytes"});
}

TEST(Interpreter, InvalidGraphIsAnErrorNotACrash) {
  Graph g("bad");
  auto a = g.addInput("a", {DType::f32, {2}});
  Node n;
  n.op = OpKind::Exp;
  n.operands = {a};
  n.type = {DType::f32, {3}};  // wrong: the type rule says f32[2]
  g.addOutput("y", g.addNode(n));
  expectError([&] { run(g, {{"a", f32({2}, {0, 0})}}); }, {"@bad", "f32[3]"});
}

TEST(Interpreter, ParamInitializers) {
  Graph g("params");
  auto z = g.addParam("z", {DType::f64, {3}}, {{"init", S("zeros")}});
  auto u = g.addParam("u", {DType::f32, {64}}, {{"init", S("uniform")}, {"seed", I(3)}, {"scale", F(0.5)}});
  g.addOutput("z", z);
  g.addOutput("u", u);
  TensorMap out = run(g, {});
  expectTensor(out.at("z"), DType::f64, {3}, {0, 0, 0});
  bool allSame = true;
  for (int64_t i = 0; i < 64; ++i) {
    double v = out.at("u").get(i);
    EXPECT_GE(v, -0.5);
    EXPECT_LE(v, 0.5);
    allSame = allSame && v == out.at("u").get(0);
  }
  EXPECT_FALSE(allSame);
  // Deterministic: a second run gives the same values.
  EXPECT_EQ(run(g, {}).at("u"), out.at("u"));
}

TEST(Interpreter, RandomOpsUseSeedStepAndIndex) {
  Graph g("rand");
  g.addOutput("u", g.addOp(OpKind::RandomUniform, {},
                           {{"shape", ints({2, 3})}, {"dtype", DType::f64}, {"seed", I(7)}, {"low", F(-1)}, {"high", F(3)}}));
  g.addOutput("n", g.addOp(OpKind::RandomNormal, {},
                           {{"shape", ints({5})}, {"dtype", DType::f64}, {"seed", I(9)}, {"mean", F(2)}, {"std", F(0.5)}}));
  RunOptions step4;
  step4.step = 4;
  TensorMap out = run(g, {}, step4);
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(out.at("u").get(i), -1 + 4 * weft::runtime::uniformAt(7, 4, static_cast<uint64_t>(i)));
    EXPECT_GE(out.at("u").get(i), -1);
    EXPECT_LT(out.at("u").get(i), 3);
  }
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_DOUBLE_EQ(out.at("n").get(i), 2 + 0.5 * weft::runtime::normalAt(9, 4, static_cast<uint64_t>(i)));
  EXPECT_EQ(run(g, {}, step4).at("u"), out.at("u"));
  EXPECT_NE(run(g, {}).at("u"), out.at("u"));  // step 0 draws other numbers
}

TEST(Interpreter, Iota) {
  expectTensor(runOp(OpKind::Iota, {}, {{"shape", ints({2, 3})}, {"axis", I(1)}, {"dtype", DType::i64}}), DType::i64,
               {2, 3}, {0, 1, 2, 0, 1, 2});
  expectTensor(runOp(OpKind::Iota, {}, {{"shape", ints({2, 3})}, {"axis", I(0)}, {"dtype", DType::f32}}), DType::f32,
               {2, 3}, {0, 0, 0, 1, 1, 1});
  expectTensor(runOp(OpKind::Iota, {}, {{"shape", ints({2, 2, 2})}, {"axis", I(1)}, {"dtype", DType::i32}}), DType::i32,
               {2, 2, 2}, {0, 0, 1, 1, 0, 0, 1, 1});
}
