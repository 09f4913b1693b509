// fuse-elementwise: kernel counts on small graphs (what fuses, what is duplicated, what stays
// materialized), the body it builds, no-change cases, updates, and cse on fused nodes. Every
// fused graph is verified, round-tripped through text and run against the graph before fusion.
#include <gtest/gtest.h>

#include "fusion_check.h"
#include "ir/verifier.h"
#include "pass_test_util.h"
#include "passes/autodiff.h"
#include "passes/builtin_passes.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

/// `g` cleaned and fused; expects the fused graph to compute what `g` computes.
Graph fuseAndCheck(const Graph& g) {
  Graph before;
  Graph fused = cleanedAndFused(g, &before);
  auto feeds = sampleFeeds(before);
  expectClose(reference::run(before, feeds), reference::run(fused, feeds), "fused " + g.name());
  return fused;
}

Attrs keepAxes(std::vector<int64_t> axes) { return axesAttrs(std::move(axes), true); }

/// A slice from `start` up to `limit`, in unit steps.
Attrs sliceAttrs(std::vector<int64_t> start, std::vector<int64_t> limit) {
  std::vector<int64_t> steps(start.size(), 1);
  return {{"start", std::move(start)}, {"limit", std::move(limit)}, {"stride", std::move(steps)}};
}

}  // namespace

TEST(Fusion, AddAndReluAfterAMatmulAreOneFusedNode) {
  Graph g("dense");
  auto x = g.addInput("x", {DType::f32, {4, 16}});
  auto w = g.addInput("w", {DType::f32, {16, 12}});
  auto b = g.addInput("b", {DType::f32, {12}});
  g.addOutput("y", g.addOp(OpKind::Relu, {g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {x, w}), b})}, {}, "y"));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(opNames(f), (std::vector<std::string>{"input", "input", "input", "matmul", "fused"}));
  const Node& fused = f.node(4);
  EXPECT_EQ(fused.name, "y");
  EXPECT_EQ(fused.operands, (std::vector<ValueId>{3, b}));  // the zero of relu is inside, not an operand
  EXPECT_EQ(std::get<std::string>(fused.attrs.at("kind")), "loop");
  EXPECT_EQ(bodyOps(fused), (std::vector<std::string>{"add", "constant", "maximum"}));
  EXPECT_EQ(fused.body->name(), "fused_add_maximum");
  EXPECT_EQ(f.outputs()[0].value, 4);
  expectOnlyUnfusibleComputeLeft(f);
}

// softmax(x) = exp(x - max) / sum(exp(x - max)) decomposes into reduce_max, sub, exp,
// reduce_sum, div. The rules give 4 kernels: reduce_max (a reduction is a root); sub + exp
// (exp feeds both reduce_sum and div, and is too expensive to recompute, so it is materialized
// once and sub, whose only user it is, joins it); reduce_sum (a root); div (the output).
TEST(Fusion, SoftmaxIsFourKernels) {
  Graph g("softmax");
  auto x = g.addInput("x", {DType::f32, {4, 10}});
  g.addOutput("p", g.addOp(OpKind::Softmax, {x}, {{"axis", int64_t{1}}}, "p"));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"reduce", "loop", "reduce", "loop"}));
  auto fused = fusedNodes(f);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"reduce_max"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"sub", "exp"}));
  EXPECT_EQ(bodyOps(*fused[2]), (std::vector<std::string>{"reduce_sum"}));
  EXPECT_EQ(bodyOps(*fused[3]), (std::vector<std::string>{"div"}));
  EXPECT_EQ(countInBodies(f, OpKind::Exp), 1);
  EXPECT_EQ(f.size(), 5);  // the input and four kernels
  expectOnlyUnfusibleComputeLeft(f);
}

TEST(Fusion, ExpensiveProducerUsedTwiceIsComputedOnce) {
  Graph g("shared_exp");
  auto x = g.addInput("x", {DType::f32, {4, 8}});
  auto w = g.addInput("w", {DType::f32, {8, 8}});
  auto e = g.addOp(OpKind::Exp, {x});
  g.addOutput("a", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Add, {e, x}), w}));
  g.addOutput("b", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Mul, {e, x}), w}));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(countInBodies(f, OpKind::Exp), 1);
  EXPECT_EQ(fusedKinds(f).size(), 3u);  // exp; add; mul
  EXPECT_EQ(bodyOps(*fusedNodes(f)[0]), (std::vector<std::string>{"exp"}));
}

TEST(Fusion, CheapProducerUsedTwiceIsDuplicated) {
  Graph g("shared_neg");
  auto x = g.addInput("x", {DType::f32, {4, 8}});
  auto w = g.addInput("w", {DType::f32, {8, 8}});
  auto n = g.addOp(OpKind::Neg, {x});
  g.addOutput("a", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Add, {n, x}), w}));
  g.addOutput("b", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Mul, {n, x}), w}));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(countInBodies(f, OpKind::Neg), 2);
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"neg", "add"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"neg", "mul"}));
  EXPECT_EQ(fused[0]->operands, (std::vector<ValueId>{x}));
}

// Duplicating an op that reads two full-size tensors costs more reads than materializing it,
// and would compound along chains (a residual stream recomputed from its start by every
// consumer): only ops with at most one full-size operand are duplicated.
TEST(Fusion, OneFlopOpOverTwoFullTensorsIsNotDuplicated) {
  for (bool fullRhs : {true, false}) {
    SCOPED_TRACE(fullRhs ? "x + y" : "x + bias");
    Graph g("two_reads");
    auto x = g.addInput("x", {DType::f32, {4, 8}});
    auto y = g.addInput("y", fullRhs ? TensorType{DType::f32, {4, 8}} : TensorType{DType::f32, {8}});
    auto w = g.addInput("w", {DType::f32, {8, 8}});
    auto r = g.addOp(OpKind::Add, {x, y});
    g.addOutput("a", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Mul, {r, r}), w}));
    g.addOutput("b", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Neg, {r}), w}));
    Graph f = fuseAndCheck(g);
    EXPECT_EQ(countInBodies(f, OpKind::Add), fullRhs ? 1 : 2);
    EXPECT_EQ(fusedNodes(f).size(), fullRhs ? 3u : 2u);
  }
}

TEST(Fusion, CheapProducerWithAnUnfusibleUserIsAlsoMaterialized) {
  Graph g("neg_to_matmul");
  auto x = g.addInput("x", {DType::f32, {4, 8}});
  auto w = g.addInput("w", {DType::f32, {8, 8}});
  auto n = g.addOp(OpKind::Neg, {x});
  g.addOutput("a", g.addOp(OpKind::Matmul, {n, w}));
  g.addOutput("b", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Add, {n, x}), w}));
  Graph f = fuseAndCheck(g);
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"neg"}));         // read by the first matmul
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"neg", "add"}));  // recomputed, not read
  EXPECT_EQ(fused[1]->operands, (std::vector<ValueId>{x}));
}

// A residual block's relu output: a matmul reads it early and again late (as a convolution
// and its weight gradient do), so it lives through both anyway; the group between them reads
// it instead of recomputing it, which would keep the pre-relu sum alive beside it.
TEST(Fusion, CheapProducerAliveAnywayIsReadNotRecomputed) {
  Graph g("residual_relu");
  auto x = g.addInput("x", {DType::f32, {8, 8}});
  auto y = g.addInput("y", {DType::f32, {8, 8}});
  auto w = g.addInput("w", {DType::f32, {8, 8}});
  auto sum = g.addOp(OpKind::Add, {x, y});
  auto r = g.addOp(OpKind::Neg, {sum});
  auto early = g.addOp(OpKind::Matmul, {r, w});
  auto between = g.addOp(OpKind::Mul, {r, early});
  g.addOutput("out", g.addOp(OpKind::Matmul, {r, g.addOp(OpKind::Exp, {between})}));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(countInBodies(f, OpKind::Neg), 1);
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 2u);  // the sum with the negation, then mul and exp
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"add", "neg"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"mul", "exp"}));
  const Node& relu = *fused[0];
  EXPECT_EQ(&f.node(fused[1]->operands.front()), &relu);  // the group reads the materialized result
}

// A slice materialized for a matmul and summed as well (ddpm's gradient of its concatenation,
// whose first channels a convolution's gradients read and its bias gradient sums): the sum
// reads the slice rather than cutting it from the tensor again, so that the slice's kernel
// can compute it alongside as a side sum. Both live on past the sum: a tie of
// recomputeInGroup's costs, which recomputes a cheap producer for other groups.
TEST(Fusion, ASumOfAMaterializedSliceReadsTheSlice) {
  Graph g("summed_slice");
  auto x = g.addInput("x", {DType::f32, {8, 12}});
  auto y = g.addInput("y", {DType::f32, {8, 12}});
  auto w = g.addInput("w", {DType::f32, {8, 8}});
  auto t = g.addOp(OpKind::Add, {x, y});
  auto s = g.addOp(OpKind::Slice, {t}, sliceAttrs({0, 0}, {8, 8}));
  g.addOutput("sum", g.addOp(OpKind::ReduceSum, {s}, keepAxes({0})));
  g.addOutput("m", g.addOp(OpKind::Matmul, {s, w}));  // the slice lives past the sum
  g.addOutput("late", g.addOp(OpKind::Neg, {t}));     // and so does the tensor
  Graph f = fuseAndCheck(g);
  const ValueId sum = f.outputs()[0].value;
  ASSERT_EQ(f.node(sum).op, OpKind::Fused);
  EXPECT_EQ(bodyOps(f.node(sum)), (std::vector<std::string>{"reduce_sum"}));  // no slice of its own
  const Node& slice = f.node(f.node(sum).operands.at(0));
  EXPECT_EQ(slice.op, OpKind::Fused);
  EXPECT_EQ(bodyOps(slice), (std::vector<std::string>{"slice"}));
}

// A sum of two full tensors read only through disjoint slices (a concatenation's gradient cut
// into its operands' parts, one read early, one late): each part is a kernel of its own that
// adds its slices of the two, where it is cut; no kernel writes the whole sum.
TEST(Fusion, AnExpensiveValueReadOnlyThroughDisjointSlicesIsComputedByPart) {
  Graph g("split_sum");
  auto x = g.addInput("x", {DType::f32, {4, 12}});
  auto y = g.addInput("y", {DType::f32, {4, 12}});
  auto w = g.addInput("w", {DType::f32, {8, 8}});
  auto sum = g.addOp(OpKind::Add, {x, y});
  auto first = g.addOp(OpKind::Slice, {sum}, sliceAttrs({0, 0}, {4, 8}));
  auto second = g.addOp(OpKind::Slice, {sum}, sliceAttrs({0, 8}, {4, 12}));
  auto early = g.addOp(OpKind::Matmul, {first, w});
  g.addOutput("m", early);
  auto narrow = g.addOp(OpKind::Slice, {w}, sliceAttrs({0, 0}, {8, 4}));
  g.addOutput("late", g.addOp(OpKind::Mul, {second, g.addOp(OpKind::Matmul, {early, narrow})}));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(countInBodies(f, OpKind::Add), 2);  // once per part
  std::vector<std::vector<std::string>> bodies;
  for (const Node* n : fusedNodes(f)) bodies.push_back(bodyOps(*n));
  EXPECT_EQ(std::count(bodies.begin(), bodies.end(), std::vector<std::string>{"add", "slice"}), 2);
  EXPECT_EQ(std::count(bodies.begin(), bodies.end(), std::vector<std::string>{"mul"}), 1);  // reads the part
}

TEST(Fusion, OutputsAndUpdateValuesStayMaterialized) {
  Graph g("outs");
  auto x = g.addInput("x", {DType::f32, {6}});
  auto a = g.addOp(OpKind::Add, {x, x}, {}, "a");
  auto t = g.addOp(OpKind::Tanh, {a}, {}, "t");
  auto u = g.addOp(OpKind::Mul, {t, a}, {}, "u");
  g.addOutput("a", a);
  g.addOutput("u", u);
  Graph f = fuseAndCheck(g);
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"add"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"tanh", "mul"}));  // a is read, not recomputed
  EXPECT_EQ(f.node(f.outputs()[0].value).name, "a");
  EXPECT_EQ(f.node(f.outputs()[1].value).name, "u");
  EXPECT_EQ(countInBodies(f, OpKind::Add), 1);
}

TEST(Fusion, ReductionsOnlyEndGroups) {
  Graph g("reductions");
  auto x = g.addInput("x", {DType::f32, {3, 5}});
  auto s = g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Exp, {x})}, keepAxes({1}));
  auto m = g.addOp(OpKind::ReduceMax, {g.addOp(OpKind::Mul, {s, x})}, axesAttrs({0}, false));
  g.addOutput("y", g.addOp(OpKind::Sqrt, {m}));
  Graph f = fuseAndCheck(g);
  auto fused = fusedNodes(f);
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"reduce", "reduce", "loop"}));
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"exp", "reduce_sum"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"mul", "reduce_max"}));
  EXPECT_EQ(bodyOps(*fused[2]), (std::vector<std::string>{"sqrt"}));
}

TEST(Fusion, WhatReadsAReductionIsNotDuplicated) {
  Graph g("reads_reduction");
  auto x = g.addInput("x", {DType::f32, {3, 5}});
  auto w = g.addInput("w", {DType::f32, {5, 5}});
  auto centered = g.addOp(OpKind::Sub, {x, g.addOp(OpKind::ReduceMax, {x}, keepAxes({1}))});
  g.addOutput("a", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Add, {centered, x}), w}));
  g.addOutput("b", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Mul, {centered, x}), w}));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(countInBodies(f, OpKind::Sub), 1);
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"reduce", "loop", "loop", "loop"}));
}

TEST(Fusion, MovementOpsFuseAndALoneReshapeStaysAView) {
  Graph g("movement");
  auto x = g.addInput("x", {DType::f32, {2, 3, 4}});
  auto w = g.addInput("w", {DType::f32, {12, 2}});
  auto v = g.addInput("v", {DType::f32, {8, 3}});
  auto flat = g.addOp(OpKind::Reshape, {x}, {{"shape", Shape{2, 12}}});
  g.addOutput("mm", g.addOp(OpKind::Matmul, {flat, w}));
  auto t = g.addOp(OpKind::Transpose, {g.addOp(OpKind::Add, {x, x})}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
  auto sl = g.addOp(OpKind::Slice, {g.addOp(OpKind::Reshape, {t}, {{"shape", Shape{8, 3}}})},
                    {{"start", std::vector<int64_t>{0, 1}}, {"limit", std::vector<int64_t>{8, 3}},
                     {"stride", std::vector<int64_t>{1, 1}}});
  auto padded = g.addOp(OpKind::Pad, {sl}, {{"low", Shape{0, 1}}, {"high", Shape{0, 0}}, {"value", 0.5}});
  g.addOutput("p", g.addOp(OpKind::Matmul, {g.addOp(OpKind::Mul, {padded, v}), g.addOp(OpKind::Transpose, {v},
                                            {{"perm", std::vector<int64_t>{1, 0}}})}));
  Graph f = fuseAndCheck(g);
  EXPECT_EQ(countOps(f, OpKind::Reshape), 1);  // x -> [2,12] feeding the matmul: a free view
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"add", "transpose", "reshape", "slice", "pad", "mul"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"transpose"}));
}

TEST(Fusion, SmallConstantsAreCopiedInLargeOnesArePassed) {
  Graph g("constants");
  auto x = g.addInput("x", {DType::f32, {8, 4}});
  auto small = g.addConstant(tensor({DType::f32, {4}}, {1, 2, 3, 4}), "small");
  std::vector<double> ramp(32);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = 0.125 * double(i);
  auto big = g.addConstant(tensor({DType::f32, {8, 4}}, ramp), "big");
  g.addOutput("y", g.addOp(OpKind::Mul, {g.addOp(OpKind::Add, {x, small}), big}));
  Graph f = fuseAndCheck(g);
  EXPECT_FALSE(f.find("small").has_value());  // only the body reads it now
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 1u);
  EXPECT_EQ(fused[0]->operands, (std::vector<ValueId>{*f.find("x"), *f.find("big")}));
  EXPECT_TRUE(fused[0]->body->find("small").has_value());
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"constant", "add", "mul"}));
}

TEST(Fusion, AGroupReadingOnlySourcesTakesOneAsItsOperand) {
  Graph g("iota");
  g.addInput("x", {DType::f32, {5}});
  auto iota = g.addOp(OpKind::Iota, {}, {{"shape", Shape{5}}, {"axis", int64_t{0}}, {"dtype", DType::i32}});
  auto two = g.addConstant(tensor({DType::f32, {}}, {2}));
  g.addOutput("y", g.addOp(OpKind::Mul, {g.addOp(OpKind::Cast, {iota}, {{"dtype", DType::f32}}), two}));
  Graph f = fuseAndCheck(g);
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 1u);
  ASSERT_EQ(fused[0]->operands.size(), 1u);
  EXPECT_EQ(f.node(fused[0]->operands[0]).op, OpKind::Iota);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"cast", "constant", "mul"}));
  EXPECT_EQ(countOps(f, OpKind::Constant), 0);
}

TEST(Fusion, AGraphWithOnlyAMatmulIsUnchanged) {
  Graph g("mm");
  auto x = g.addInput("x", {DType::f32, {2, 3}});
  auto w = g.addInput("w", {DType::f32, {3, 4}});
  g.addOutput("y", g.addOp(OpKind::Matmul, {x, w}));
  Graph before = g;
  EXPECT_FALSE(fuseElementwise(g));
  expectSameGraph(g, before);
}

TEST(Fusion, SecondRunChangesNothing) {
  Graph g("twice");
  auto x = g.addInput("x", {DType::f32, {4, 6}});
  auto w = g.addInput("w", {DType::f32, {6, 6}});
  auto h = g.addOp(OpKind::Gelu, {g.addOp(OpKind::Matmul, {x, w})}, {{"approximate", int64_t{1}}});
  auto flat = g.addOp(OpKind::Reshape, {h}, {{"shape", Shape{24}}});
  g.addOutput("y", g.addOp(OpKind::Concat, {flat, flat}, {{"axis", int64_t{0}}}));
  g.addOutput("s", g.addOp(OpKind::LogSoftmax, {h}, {{"axis", int64_t{1}}}));
  Graph f = fuseAndCheck(g);
  Graph again = f;
  EXPECT_FALSE(fuseElementwise(again));
  expectSameGraph(again, f);
  expectOnlyUnfusibleComputeLeft(f);
}

TEST(Fusion, UpdateWriteBacksAreKept) {
  Graph g("sgd");
  auto grad = g.addInput("g", {DType::f32, {4}});
  auto lr = g.addInput("lr", {DType::f32, {}});
  auto w = g.addParam("w", {DType::f32, {4}}, {{"init", std::string("uniform")}, {"seed", int64_t{3}}, {"scale", 1.0}});
  auto next = g.addOp(OpKind::Sub, {w, g.addOp(OpKind::Mul, {lr, grad})}, {}, "w.next");
  g.addUpdate(w, next);
  g.addOutput("norm", g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Mul, {next, next})}, axesAttrs({0}, false)));
  Graph before;
  Graph f = cleanedAndFused(g, &before);
  ASSERT_EQ(f.updates().size(), 1u);
  EXPECT_EQ(f.node(f.updates()[0].param).name, "w");
  const Node& value = f.node(f.updates()[0].value);
  EXPECT_EQ(value.op, OpKind::Fused);
  EXPECT_EQ(value.name, "w.next");
  EXPECT_EQ(fusedKinds(f), (std::vector<std::string>{"loop", "reduce"}));
  reference::TensorMap stateBefore, stateAfter;
  for (int step = 0; step < 3; ++step) {
    auto feeds = sampleFeeds(before, step);
    expectClose(reference::runStep(before, feeds, stateBefore), reference::runStep(f, feeds, stateAfter), "outputs");
    expectClose(stateBefore, stateAfter, "state");
  }
}

TEST(Fusion, CseMergesFusedNodesOnlyWithEqualBodies) {
  Graph g("cse");
  auto x = g.addInput("x", {DType::f32, {4}});
  g.addOutput("e1", g.addOp(OpKind::Exp, {x}, {}, "e1"));
  g.addOutput("e2", g.addOp(OpKind::Exp, {x}, {}, "e2"));
  g.addOutput("l", g.addOp(OpKind::Log, {x}, {}, "l"));
  ASSERT_TRUE(fuseElementwise(g));
  ASSERT_EQ(fusedNodes(g).size(), 3u);
  // Same operands and kind throughout; only e1 and e2 compute the same, whatever their names.
  Graph renamed = *g.node(*g.find("e2")).body;
  renamed.setName("other");
  renamed.node(1).name = "other_name";
  g.node(*g.find("e2")).body = std::make_shared<const Graph>(renamed);
  EXPECT_TRUE(eliminateCommonSubexpressions(g));
  ASSERT_EQ(verifyErrors(g), std::vector<std::string>{});
  auto fused = fusedNodes(g);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"exp"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"log"}));
  EXPECT_EQ(g.outputs()[0].value, g.outputs()[1].value);
  EXPECT_FALSE(eliminateCommonSubexpressions(g));
}

TEST(Fusion, RegisteredAfterTheCleanupPasses) {
  const PassInfo* pass = findPass("fuse-elementwise");
  ASSERT_NE(pass, nullptr);
  EXPECT_FALSE(pass->description.empty());
  EXPECT_EQ(PassManager(std::string(kCleanupPipeline) + ",fuse-elementwise").names().back(), "fuse-elementwise");
}

// Per-channel statistics broadcast over a large tensor: their rsqrt and their regrouping
// reshape ([N, G, C/G] -> [N, 1, 1, C]) run once in a small kernel, not per element of the
// large one; an rsqrt as large as its reader still fuses into it.
TEST(Fusion, SmallExpensiveProducersOfALargeGroupAreComputedOnce) {
  Graph g("stats");
  auto x = g.addInput("x", {DType::f32, {2, 16, 16, 8}});
  auto var = g.addInput("var", {DType::f32, {2, 4, 1}});
  auto spread = g.addOp(OpKind::Broadcast, {g.addOp(OpKind::Rsqrt, {var})}, {{"shape", std::vector<int64_t>{2, 4, 2}}});
  auto perChannel = g.addOp(OpKind::Reshape, {spread}, {{"shape", std::vector<int64_t>{2, 1, 1, 8}}});
  auto y = g.addOp(OpKind::Mul, {x, perChannel});
  g.addOutput("y", g.addOp(OpKind::Add, {y, g.addOp(OpKind::Rsqrt, {x})}));
  Graph f = fuseAndCheck(g);
  auto fused = fusedNodes(f);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(bodyOps(*fused[0]), (std::vector<std::string>{"rsqrt", "broadcast", "reshape"}));
  EXPECT_EQ(bodyOps(*fused[1]), (std::vector<std::string>{"mul", "rsqrt", "add"}));
}

// The normalizations' own gradient rules (grad_rules_norm.cpp) after fusion: batch norm's
// gradients (the loss itself is not an output) read x-sized data in the two statistics sums,
// the two backward sums (dy and dy xhat, which are dbeta and dgamma) and one pass writing dx;
// through the decomposition they took two sums and a pass more. The fused graph computes
// what the unfused one does.
TEST(Fusion, BatchNormBackwardIsTwoSumsAndOnePass) {
  Graph g("bn_grad");
  const Shape shape = {8, 16, 6, 6};
  auto x = g.addInput("x", {DType::f32, shape});
  auto w = g.addInput("w", {DType::f32, shape});
  auto gamma = g.addInput("gamma", {DType::f32, {16}});
  auto beta = g.addInput("beta", {DType::f32, {16}});
  auto y = g.addOp(OpKind::BatchNorm, {x, gamma, beta}, {{"eps", 1e-5}});
  auto loss = g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Mul, {y, w})}, axesAttrs({0, 1, 2, 3}, false));
  GradResult r = appendGradients(g, {loss, {x, gamma, beta}, std::nullopt});
  for (size_t i = 0; i < r.grads.size(); ++i) {
    ASSERT_TRUE(r.grads[i].has_value());
    g.addOutput("d" + std::to_string(i), *r.grads[i]);
  }
  Graph f = fuseAndCheck(g);
  int fullSizeSums = 0, fullSizeLoops = 0;
  for (const Node* n : fusedNodes(f)) {
    bool readsFullSize = false;
    for (ValueId o : n->operands) readsFullSize |= f.type(o).shape == shape;
    if (!readsFullSize) continue;
    (std::get<std::string>(n->attrs.at("kind")) == "reduce" ? fullSizeSums : fullSizeLoops)++;
  }
  EXPECT_EQ(fullSizeSums, 4);
  EXPECT_EQ(fullSizeLoops, 1);
}
