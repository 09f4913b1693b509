// Generated loop kernels with broadcasting and movement ops, and reduce kernels, against
// the reference interpreter; and [begin, end) splits of the parallel range.
#include "tests/unit/codegen/codegen_test_util.h"

using namespace cgtest;

namespace {

KernelCompiler& compiler() {
  static KernelCompiler instance;
  return instance;
}

/// A compiler without the disk cache, for tests that read the MLIR it generates (a kernel
/// loaded from the cache has none).
KernelCompiler& generatingCompiler() {
  static KernelCompiler instance([] {
    KernelCompiler::Options options;
    options.cacheDir = "off";
    return options;
  }());
  return instance;
}

/// Compiles and runs `body` in one call and in `pieces` calls; both must match the reference.
void check(const Graph& body, const std::vector<TensorData>& inputs, double tol = 1e-6, int pieces = 3) {
  TensorData want = referenceRun(body, inputs);
  const GeneratedKernel* kernel = compiler().compile({&body}).at(0);
  {
    SCOPED_TRACE("one call");
    expectClose(runKernel(*kernel, body, inputs), want, tol);
  }
  if (kernel->parallelExtent >= pieces) {
    SCOPED_TRACE("split calls");
    expectClose(runKernel(*kernel, body, inputs, pieces), want, tol);
  }
}

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

}  // namespace

TEST(CodegenLoops, BroadcastsRowByColumnAndScalars) {
  Graph g("outer");
  ValueId col = g.addInput("col", f32({37, 1})), row = g.addInput("row", f32({1, 53})), s = g.addInput("s", f32({}));
  ValueId prod = g.addOp(OpKind::Mul, {col, row});
  ValueId shifted = g.addOp(OpKind::Add, {prod, s});
  ValueId half = g.addConstant(scalarConstant(DType::f32, 0.5));
  g.addOutput("out", g.addOp(OpKind::Sub, {shifted, half}));
  check(g, {spread(f32({37, 1}), -2, 2), spread(f32({1, 53}), -3, 3, 1), spread(f32({}), 1, 2)});
}

TEST(CodegenLoops, BiasOverTrailingAxisAndRank3Broadcast) {
  Graph g("bias");
  ValueId x = g.addInput("x", f32({4, 5, 33})), bias = g.addInput("bias", f32({33}));
  ValueId scale = g.addInput("scale", f32({5, 1}));
  ValueId y = g.addOp(OpKind::Mul, {g.addOp(OpKind::Add, {x, bias}), scale});
  g.addOutput("out", g.addOp(OpKind::Tanh, {y}));
  check(g, {spread(f32({4, 5, 33}), -2, 2), spread(f32({33}), -1, 1, 1), spread(f32({5, 1}), 0, 2, 2)}, 2e-6);
}

TEST(CodegenLoops, TransposeSliceReshapeAndBroadcastMaps) {
  Graph g("moves");
  ValueId x = g.addInput("x", f32({2, 3, 4}));
  ValueId t = g.addOp(OpKind::Transpose, {x}, {{"perm", std::vector<int64_t>{2, 0, 1}}});  // [4,2,3]
  ValueId r = g.addOp(OpKind::Reshape, {t}, {{"shape", Shape{4, 6}}});
  ValueId sl = g.addOp(OpKind::Slice, {r},
                       {{"start", std::vector<int64_t>{1, 0}},
                        {"limit", std::vector<int64_t>{4, 6}},
                        {"stride", std::vector<int64_t>{2, 3}}});  // [2,2]
  ValueId b = g.addOp(OpKind::Broadcast, {sl}, {{"shape", Shape{3, 2, 2}}});
  ValueId flat = g.addOp(OpKind::Reshape, {b}, {{"shape", Shape{12}}});
  ValueId y = g.addInput("y", f32({12}));
  g.addOutput("out", g.addOp(OpKind::Add, {flat, y}));
  check(g, {spread(f32({2, 3, 4}), -5, 5), spread(f32({12}), 0, 1, 1)});
}

TEST(CodegenLoops, ReshapesThatSplitMergeAndRegroup) {
  Graph g("reshapes");
  ValueId x = g.addInput("x", f32({6, 10}));
  ValueId a = g.addOp(OpKind::Reshape, {x}, {{"shape", Shape{4, 15}}});     // regroups: linearize + delinearize
  ValueId e = g.addOp(OpKind::Exp, {a});
  ValueId c = g.addOp(OpKind::Reshape, {e}, {{"shape", Shape{2, 1, 30}}});  // splits with an extent-1 dim
  ValueId t = g.addOp(OpKind::Transpose, {c}, {{"perm", std::vector<int64_t>{2, 1, 0}}});
  g.addOutput("out", g.addOp(OpKind::Reshape, {t}, {{"shape", Shape{5, 12}}}));
  check(g, {spread(f32({6, 10}), -3, 3)}, 2e-6);
}

TEST(CodegenLoops, ChannelsSplitIntoBlocksAndJoinedIndexByTheirLoopVariables) {
  // Channel-blocked data [N, C/16, H, W, 16] read in row-major order into rows of C channels
  // written as blocks of 16 (what blockedBody makes of a strided 1x1 conv's input): the
  // channel c = 16 b + i is split and joined again, and the loops' extents let the emitter
  // index by b and i themselves (no floordiv or mod by 16 left for the vectorizer).
  Graph g("blocks");
  ValueId x = g.addInput("x", f32({2, 2, 3, 3, 16}));
  ValueId positions = g.addOp(OpKind::Transpose, {x}, {{"perm", std::vector<int64_t>{0, 2, 3, 1, 4}}});
  ValueId rows = g.addOp(OpKind::Reshape, {positions}, {{"shape", Shape{2, 3, 3, 32}}});
  ValueId flat = g.addOp(OpKind::Reshape, {rows}, {{"shape", Shape{18, 32}}});
  g.addOutput("out", g.addOp(OpKind::Reshape, {flat}, {{"shape", Shape{18, 2, 16}}}));
  check(g, {spread(f32({2, 2, 3, 3, 16}), -1, 1)});
  const std::string& mlir = generatingCompiler().compile({&g}).at(0)->mlir;
  ASSERT_FALSE(mlir.empty());
  EXPECT_EQ(mlir.find("floordiv 16"), std::string::npos) << mlir;
  EXPECT_EQ(mlir.find("mod 16"), std::string::npos) << mlir;
}

TEST(CodegenLoops, PadConcatAndIota) {
  Graph g("pads");
  ValueId x = g.addInput("x", f32({3, 4}));
  ValueId p = g.addOp(OpKind::Pad, {x}, {{"low", std::vector<int64_t>{1, 0}}, {"high", std::vector<int64_t>{0, 2}},
                                         {"value", 7.5}});  // [4,6]
  ValueId y = g.addInput("y", f32({4, 2}));
  ValueId c = g.addOp(OpKind::Concat, {p, y, p}, {{"axis", int64_t{1}}});  // [4,14]
  ValueId i = g.addOp(OpKind::Iota, {}, {{"shape", Shape{4, 14}}, {"axis", int64_t{1}}, {"dtype", DType::f32}});
  g.addOutput("out", g.addOp(OpKind::Add, {c, i}));
  check(g, {spread(f32({3, 4}), -1, 1), spread(f32({4, 2}), 10, 11, 1)});
}

TEST(CodegenLoops, InterleavingPadsUnrollTheInnermostLoop) {
  // realnvp's checkerboard halves put back in place: a last dimension of 1 padded to s, then
  // flattened into the row. The innermost loop runs s results per iteration, so the kernel
  // computes no index divisions; padding on either side, s = 2 and 3, rows of odd length,
  // a second output at the same indices and a side sum over the rows.
  for (const auto& [s, low] : std::vector<std::pair<int64_t, int64_t>>{{2, 0}, {2, 1}, {3, 1}}) {
    SCOPED_TRACE("s " + std::to_string(s) + ", low " + std::to_string(low));
    const int64_t rows = 7, half = 37;
    Graph g("interleave");
    ValueId x = g.addInput("x", f32({rows, half})), bias = g.addInput("bias", f32({half * s}));
    ValueId column = g.addOp(OpKind::Reshape, {x}, {{"shape", Shape{rows, half, 1}}});
    ValueId padded = g.addOp(OpKind::Pad, {column}, {{"low", std::vector<int64_t>{0, 0, low}},
                                                     {"high", std::vector<int64_t>{0, 0, s - 1 - low}},
                                                     {"value", 0.0}});
    ValueId row = g.addOp(OpKind::Reshape, {padded}, {{"shape", Shape{rows, half * s}}});
    ValueId shifted = g.addOp(OpKind::Add, {row, bias});
    ValueId out = g.addOp(OpKind::Tanh, {shifted});
    g.addOutput("out", out);
    check(g, {spread(f32({rows, half}), -2, 2), spread(f32({half * s}), -1, 1, 1)}, 2e-6);
    const std::string& mlir = generatingCompiler().compile({&g}).at(0)->mlir;
    ASSERT_FALSE(mlir.empty());
    EXPECT_EQ(mlir.find("floordiv " + std::to_string(s)), std::string::npos) << mlir;
    EXPECT_EQ(mlir.find("mod " + std::to_string(s)), std::string::npos) << mlir;

    g.addOutput("shifted", shifted);
    g.addOutput("sums",
                g.addOp(OpKind::ReduceSum, {out}, {{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t{1}}}));
    const std::vector<TensorData> inputs = {spread(f32({rows, half}), -2, 2), spread(f32({half * s}), -1, 1, 1)};
    weft::reference::TensorMap want = weft::reference::run(g, {{"x", inputs[0]}, {"bias", inputs[1]}});
    const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
    TensorData result(f32({rows, half * s})), second(f32({rows, half * s})), sums(f32({1, half * s}));
    std::vector<const void*> pointers = {inputs[0].bytes.data(), inputs[1].bytes.data(), second.bytes.data(),
                                         sums.bytes.data()};
    weft::cpu::runKernel(weft::cpu::entryOf(*kernel), result.bytes.data(), pointers, 2, result.numel(),
                         {{3, sums.numel()}});
    expectClose(result, want.at("out"), 2e-6);
    expectClose(second, want.at("shifted"), 0);
    expectClose(sums, want.at("sums"), 1e-5);
  }
}

TEST(CodegenLoops, DenseConstantsAndIntegerChains) {
  Graph g("consts");
  auto table = std::make_shared<TensorData>(TensorType{DType::i32, {2, 3}});
  for (int i = 0; i < 6; ++i) table->set(i, i * i - 4);
  ValueId x = g.addInput("x", TensorType{DType::i32, {5, 2, 3}});
  ValueId sum = g.addOp(OpKind::Add, {x, g.addConstant(table)});
  ValueId positive = g.addOp(OpKind::Gt, {sum, g.addConstant(scalarConstant(DType::i32, 0))});
  ValueId asFloat = g.addOp(OpKind::Cast, {sum}, {{"dtype", DType::f32}});
  ValueId zero = g.addConstant(scalarConstant(DType::f32, -1));
  g.addOutput("out", g.addOp(OpKind::Select, {positive, asFloat, zero}));
  check(g, {spread(TensorType{DType::i32, {5, 2, 3}}, -10, 10)});
}

TEST(CodegenLoops, OuterDimensionsFormOneParallelRowLoop) {
  Graph g("rows");
  ValueId x = g.addInput("x", f32({2, 1, 3, 5, 17})), y = g.addInput("y", f32({3, 1, 17}));
  g.addOutput("out", g.addOp(OpKind::Sub, {x, y}));
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(kernel->parallelExtent, 2 * 3 * 5);  // rows of 17
  check(g, {spread(f32({2, 1, 3, 5, 17}), -1, 1), spread(f32({3, 1, 17}), -2, 2, 1)}, 1e-6, 4);
}

TEST(CodegenLoops, EmptyTensors) {
  Graph g("empty");
  ValueId x = g.addInput("x", f32({3, 0, 4})), y = g.addInput("y", f32({4}));
  g.addOutput("out", g.addOp(OpKind::Add, {x, y}));
  check(g, {spread(f32({3, 0, 4}), -1, 1), spread(f32({4}), -1, 1)});
  Graph r = Graph("empty_sum");
  ValueId z = r.addInput("z", f32({3, 0}));
  r.addOutput("out", r.addOp(OpKind::ReduceSum, {z}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
  check(r, {spread(f32({3, 0}), -1, 1)});
}

TEST(CodegenLoops, ScalarOutputAndExtentOneDims) {
  Graph g("tiny");
  ValueId x = g.addInput("x", f32({1, 1, 7})), s = g.addInput("s", f32({}));
  g.addOutput("out", g.addOp(OpKind::Mul, {x, s}));
  check(g, {spread(f32({1, 1, 7}), -1, 1), spread(f32({}), 2, 3)});
  Graph h("scalar");
  ValueId a = h.addInput("a", f32({})), b = h.addInput("b", f32({}));
  h.addOutput("out", h.addOp(OpKind::Sigmoid, {h.addOp(OpKind::Sub, {a, b})}));
  check(h, {spread(f32({}), -1, 1), spread(f32({}), 2, 3)}, 2e-6);
}

// ---- reductions ---------------------------------------------------------------------------------

namespace {

/// A body reducing exp(x) * 0.5 + x (a chain before the reduction) of shape `shape`.
Graph reduceBody(OpKind op, const Shape& shape, std::vector<int64_t> axes, bool keepdims, DType dtype = DType::f32) {
  Graph g(std::string(opName(op)) + "_chain");
  ValueId x = g.addInput("x", TensorType{dtype, shape});
  ValueId chain = x;
  if (isFloat(dtype)) {
    ValueId e = g.addOp(OpKind::Exp, {x});
    chain = g.addOp(OpKind::Add, {g.addOp(OpKind::Mul, {e, g.addConstant(scalarConstant(dtype, 0.5))}), x});
  } else {
    chain = g.addOp(OpKind::Mul, {x, g.addConstant(scalarConstant(dtype, 3))});
  }
  g.addOutput("out", g.addOp(op, {chain}, {{"axes", std::move(axes)}, {"keepdims", int64_t{keepdims}}}));
  return g;
}

}  // namespace

TEST(CodegenReduce, SumMaxMinOverFirstLastMiddleAndAllAxes) {
  const Shape shape = {6, 7, 33};
  const std::vector<std::vector<int64_t>> axesCases = {{0}, {2}, {1}, {0, 2}, {0, 1}, {1, 2}, {0, 1, 2}};
  TensorData x = spread(f32(shape), -2, 2);
  std::vector<Graph> bodies;
  std::vector<std::string> names;
  for (OpKind op : {OpKind::ReduceSum, OpKind::ReduceMax, OpKind::ReduceMin})
    for (const auto& axes : axesCases)
      for (bool keepdims : {false, true}) {
        bodies.push_back(reduceBody(op, shape, axes, keepdims));
        names.push_back(std::string(opName(op)) + " axes " + shapeStr(axes) + (keepdims ? " keepdims" : ""));
      }
  std::vector<const Graph*> batch;
  for (const Graph& body : bodies) batch.push_back(&body);
  compiler().compile(batch);  // one module for all; check() then finds each in the cache
  for (size_t i = 0; i < bodies.size(); ++i) {
    SCOPED_TRACE(names[i]);
    check(bodies[i], {x}, 1e-5);
  }
}

TEST(CodegenReduce, ColumnSumOfWideRowsLoopsRowsOutsideAndSplitsColumns) {
  // Reducing axis 0 of [N, C]: parallel over C; each call accumulates its columns.
  Graph g = reduceBody(OpKind::ReduceSum, {30, 700}, {0}, false);
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(kernel->parallelExtent, 700);
  EXPECT_FALSE(kernel->partialSums);
  EXPECT_EQ(kernel->work, 30 * 700);
  check(g, {spread(f32({30, 700}), -1, 1)}, 1e-5, 2);
}

TEST(CodegenReduce, ColumnSumOfNarrowRowsSplitsRowsIntoPartialSums) {
  // 70 columns split badly across threads (a share of each row): the rows split instead,
  // each call summing its rows into the whole output.
  Graph g = reduceBody(OpKind::ReduceSum, {300, 70}, {0}, false);
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(kernel->parallelExtent, 300);
  EXPECT_TRUE(kernel->partialSums);
  EXPECT_EQ(kernel->work, 300 * 70);
  check(g, {spread(f32({300, 70}), -1, 1)}, 1e-5, 2);
  check(g, {spread(f32({300, 70}), -1, 1)}, 1e-5, 7);

  // The same over a channels-last batch: [N, H, W, C] -> [C] (dimensions coalesced to [N*H*W, C]).
  Graph channels = reduceBody(OpKind::ReduceSum, {4, 6, 5, 32}, {0, 1, 2}, true);
  kernel = compiler().compile({&channels}).at(0);
  EXPECT_TRUE(kernel->partialSums);
  EXPECT_EQ(kernel->parallelExtent, 4 * 6 * 5);
  check(channels, {spread(f32({4, 6, 5, 32}), -1, 1)}, 1e-5, 3);
  // Channels first: [N, C, H, W] -> [C] splits the batch.
  Graph first = reduceBody(OpKind::ReduceSum, {8, 16, 5, 6}, {0, 2, 3}, false);
  kernel = compiler().compile({&first}).at(0);
  EXPECT_TRUE(kernel->partialSums);
  EXPECT_EQ(kernel->parallelExtent, 8);
  check(first, {spread(f32({8, 16, 5, 6}), -1, 1)}, 1e-5, 3);
}

TEST(CodegenReduce, WideColumnSumsInRegisterChunksSplitRowsIntoPartialSums) {
  // 512 columns (a bias gradient's): summed in 8 chunks of 64 register sums, the rows split
  // across the calls; 700 columns (no multiple of 64) keep the columns split (above).
  Graph g = reduceBody(OpKind::ReduceSum, {40, 512}, {0}, true);
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_TRUE(kernel->partialSums);
  EXPECT_EQ(kernel->parallelExtent, 40);
  std::vector<TensorData> inputs = {spread(f32({40, 512}), -1, 1)};
  check(g, inputs, 1e-5, 2);
  check(g, inputs, 1e-5, 3);
  TensorData threaded(f32({1, 512}));
  weft::cpu::runKernel(weft::cpu::entryOf(*kernel), threaded.bytes.data(), {inputs[0].bytes.data()}, 2, 512);
  expectClose(threaded, referenceRun(g, inputs), 1e-5);
}

TEST(CodegenReduce, PartialSumsRunOnThreadsAsTwoCallsAddedUp) {
  // Enough work for the runtime to split: thread 1 sums into scratch, added into the output.
  Graph g = reduceBody(OpKind::ReduceSum, {600, 40}, {0}, false);
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  ASSERT_TRUE(kernel->partialSums);
  ASSERT_GE(kernel->work, weft::cpu::kParallelElements);
  std::vector<TensorData> inputs = {spread(f32({600, 40}), -1, 1)};
  TensorData threaded(f32({40}));
  for (int run = 0; run < 2; ++run)  // the second run reuses the scratch and must overwrite, not add
    weft::cpu::runKernel(weft::cpu::entryOf(*kernel), threaded.bytes.data(), {inputs[0].bytes.data()}, 2, 40);
  expectClose(threaded, referenceRun(g, inputs), 1e-5);
  EXPECT_TRUE(threaded.bytes == runKernel(*kernel, g, inputs, 2).bytes) << "two threads add up as two calls do";
}

TEST(CodegenReduce, PartialSumsOnlyForFewF32SumsOverMany) {
  auto partial = [](const Graph& g) { return compiler().compile({&g}).at(0)->partialSums; };
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceMax, {300, 70}, {0}, false)));  // max: columns split
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceSum, {300, 70}, {0}, false, DType::f64)));
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceSum, {300, 70}, {0}, false, DType::i32)));
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceSum, {8, 5000}, {0}, false)));  // too many outputs
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceSum, {8, 70}, {0}, false)));    // too little to reduce
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceSum, {70, 300}, {1}, false)));  // rows: a reduced suffix
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceSum, {3, 5}, {0, 1}, false)));  // everything: one call
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceSum, {64, 100}, {0, 1}, false)));  // rows too short to split
  EXPECT_FALSE(partial(reduceBody(OpKind::ReduceMax, {128, 784}, {0, 1}, false)));
}

TEST(CodegenReduce, SumOfEverythingSplitsItsFirstDimIntoPartialSums) {
  // A loss over [128, 784] to one value (vae's): its 128 rows split across the calls, each
  // summing its rows (784 elements innermost) into the whole output; coalescing keeps the
  // first dim apart, and 3-D data splits its first dim over the other two merged.
  for (Shape shape : {Shape{128, 784}, Shape{6, 20, 30}}) {
    Graph g = reduceBody(OpKind::ReduceSum, shape, shape.size() == 2 ? std::vector<int64_t>{0, 1}
                                                                      : std::vector<int64_t>{0, 1, 2},
                         false);
    const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
    EXPECT_TRUE(kernel->partialSums);
    EXPECT_EQ(kernel->parallelExtent, shape[0]);
    std::vector<TensorData> inputs = {spread(f32(shape), -1, 1)};
    check(g, inputs, 1e-5, 2);
    check(g, inputs, 1e-5, 5);
    TensorData threaded(f32({}));
    weft::cpu::runKernel(weft::cpu::entryOf(*kernel), threaded.bytes.data(), {inputs[0].bytes.data()}, 2, 1);
    expectClose(threaded, referenceRun(g, inputs), 1e-5);
  }
}

TEST(CodegenReduce, FewKeptInnermostSumsAccumulateInRegisters) {
  // Per-channel sums of channels-last data ([N, H, W, C] -> [C], batch norm's statistics):
  // the 32 sums are carried through the loops (iter_args) and stored once each after them,
  // in a function the loop vectorizer leaves to the SLP vectorizer; the output is not read.
  Graph channels = reduceBody(OpKind::ReduceSum, {3, 7, 5, 32}, {0, 1, 2}, true);
  const std::string& mlir = generatingCompiler().compile({&channels}).at(0)->mlir;
  EXPECT_NE(mlir.find("iter_args"), std::string::npos) << mlir;
  EXPECT_NE(mlir.find("weft-no-loop-vectorize"), std::string::npos) << mlir;
  size_t stores = 0;
  for (size_t at = mlir.find("memref.store"); at != std::string::npos; at = mlir.find("memref.store", at + 1)) ++stores;
  EXPECT_EQ(stores, 32u) << mlir;
  EXPECT_EQ(mlir.find("memref.load %arg0"), std::string::npos) << mlir;
  check(channels, {spread(f32({3, 7, 5, 32}), -1, 1)}, 1e-5, 3);
  // More kept elements than registers hold (kMaxRegisterAccumulators) and no multiple of 16
  // to take in chunks: accumulated in memory.
  Graph wide = reduceBody(OpKind::ReduceSum, {3, 7, 5, 72}, {0, 1, 2}, true);
  const std::string& wideMlir = generatingCompiler().compile({&wide}).at(0)->mlir;
  ASSERT_FALSE(wideMlir.empty());
  EXPECT_EQ(wideMlir.find("weft-no-loop-vectorize"), std::string::npos);
  check(wide, {spread(f32({3, 7, 5, 72}), -1, 1)}, 1e-5, 3);
  // A single kept dimension of a multiple of 64 beyond that (a bias gradient's columns) is
  // summed in chunks of 64, each chunk one pass over the rows.
  Graph columns = reduceBody(OpKind::ReduceSum, {210, 192}, {0}, false);
  const std::string& columnsMlir = generatingCompiler().compile({&columns}).at(0)->mlir;
  EXPECT_NE(columnsMlir.find("weft-no-loop-vectorize"), std::string::npos) << columnsMlir;
  EXPECT_EQ(columnsMlir.find("memref.load %arg0"), std::string::npos) << columnsMlir;
  check(columns, {spread(f32({210, 192}), -1, 1)}, 1e-5, 3);
  // Max keeps its running maxima in registers as well.
  check(reduceBody(OpKind::ReduceMax, {3, 7, 5, 32}, {0, 1, 2}, false), {spread(f32({3, 7, 5, 32}), -1, 1)}, 1e-5, 3);
}

TEST(CodegenReduce, ParallelDimensionIsTheLargestKeptOne) {
  // Kept dims 0 and 2 are not adjacent, so they do not merge (coalesceDims).
  Graph rows = reduceBody(OpKind::ReduceMax, {3, 4, 50, 8}, {1, 3}, false);
  EXPECT_EQ(compiler().compile({&rows}).at(0)->parallelExtent, 50);
  Graph all = reduceBody(OpKind::ReduceSum, {3, 5}, {0, 1}, false);
  EXPECT_EQ(compiler().compile({&all}).at(0)->parallelExtent, 1);
}

TEST(CodegenReduce, IntegerAndF64Reductions) {
  for (OpKind op : {OpKind::ReduceSum, OpKind::ReduceMax, OpKind::ReduceMin}) {
    SCOPED_TRACE(std::string(opName(op)));
    check(reduceBody(op, {9, 11}, {1}, false, DType::i32), {spread(TensorType{DType::i32, {9, 11}}, -100, 100)}, 0);
    check(reduceBody(op, {9, 11}, {0}, true, DType::i64), {spread(TensorType{DType::i64, {9, 11}}, -100, 100)}, 0);
    check(reduceBody(op, {9, 11}, {0, 1}, false, DType::f64), {spread(TensorType{DType::f64, {9, 11}}, -2, 2)}, 1e-12);
  }
}

TEST(CodegenReduce, LargeRowSumsAndEmptyAxisList) {
  check(reduceBody(OpKind::ReduceSum, {4, 100000}, {1}, false), {spread(f32({4, 100000}), -1, 1)}, 1e-4);
  check(reduceBody(OpKind::ReduceMax, {5, 3}, {}, false), {spread(f32({5, 3}), -1, 1)}, 1e-6);
}

// A loop kernel with further outputs (an optimizer's step over a parameter writing its
// moments too): they follow the inputs in the call, are computed at the first output's
// indices, and may share an input's buffer, read at the element they write.
TEST(CodegenLoops, FurtherOutputsAreWrittenAtTheFirstOutputsIndices) {
  Graph g("moments");
  ValueId a = g.addInput("a", f32({37, 53})), b = g.addInput("b", f32({37, 53})), s = g.addInput("s", f32({}));
  ValueId t = g.addOp(OpKind::Mul, {a, b});
  ValueId u = g.addOp(OpKind::Add, {g.addOp(OpKind::Mul, {t, s}), a});
  g.addOutput("out", g.addOp(OpKind::Sub, {u, b}));
  g.addOutput("out1", t);
  g.addOutput("out2", u);
  std::vector<TensorData> inputs = {spread(f32({37, 53}), -2, 2), spread(f32({37, 53}), -1, 3, 1), spread(f32({}), 1, 2)};
  weft::reference::TensorMap feeds = {{"a", inputs[0]}, {"b", inputs[1]}, {"s", inputs[2]}};
  weft::reference::TensorMap want = weft::reference::run(g, feeds);
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(kernel->numInputs, 5);
  for (bool inPlace : {false, true}) {
    SCOPED_TRACE(inPlace ? "t written over a" : "separate buffers");
    TensorData out(f32({37, 53})), t1(f32({37, 53})), u2(f32({37, 53})), aCopy = inputs[0];
    void* tBuffer = inPlace ? aCopy.bytes.data() : t1.bytes.data();
    std::vector<const void*> pointers = {aCopy.bytes.data(), inputs[1].bytes.data(), inputs[2].bytes.data(), tBuffer,
                                         u2.bytes.data()};
    weft::cpu::invoke(*kernel, out.bytes.data(), pointers, 0, kernel->parallelExtent);
    expectClose(out, want.at("out"), 1e-6);
    expectClose(inPlace ? aCopy : t1, want.at("out1"), 1e-6);
    expectClose(u2, want.at("out2"), 1e-6);
  }
}

// A further output the first does not read (a sibling kernel's value, generated_steps.h)
// is computed at the same indices from the inputs they share.
TEST(CodegenLoops, FurtherOutputsMayBeValuesTheFirstDoesNotRead) {
  Graph g("siblings");
  ValueId a = g.addInput("a", f32({19, 33})), b = g.addInput("b", f32({19, 33}));
  g.addOutput("out", g.addOp(OpKind::Mul, {a, g.addOp(OpKind::Exp, {b})}));
  g.addOutput("out1", g.addOp(OpKind::Erf, {a}));
  ASSERT_FALSE(KernelCompiler::unsupported(g).has_value());
  std::vector<TensorData> inputs = {spread(f32({19, 33}), -2, 2), spread(f32({19, 33}), -1, 1, 1)};
  weft::reference::TensorMap want = weft::reference::run(g, {{"a", inputs[0]}, {"b", inputs[1]}});
  const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
  EXPECT_EQ(kernel->numInputs, 3);
  TensorData out(f32({19, 33})), out1(f32({19, 33}));
  weft::cpu::invoke(*kernel, out.bytes.data(), {inputs[0].bytes.data(), inputs[1].bytes.data(), out1.bytes.data()}, 0,
                    kernel->parallelExtent);
  expectClose(out, want.at("out"), 1e-6);
  expectClose(out1, want.at("out1"), 1e-6);
}

TEST(CodegenLoops, FurtherOutputsMustShareTheFirstOnesShape) {
  Graph g("mismatch");
  ValueId a = g.addInput("a", f32({4, 5})), row = g.addInput("row", f32({5}));
  ValueId r = g.addOp(OpKind::Exp, {row});
  g.addOutput("out", g.addOp(OpKind::Add, {a, r}));
  g.addOutput("out1", r);
  auto why = KernelCompiler::unsupported(g);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("output 1 is neither a value of the first output's shape"), std::string::npos) << *why;
}

// Side sums: further outputs that sum a value of the first output's shape over some axes (a
// batch norm's gradient kernel also writing the two sums its next kernels need). Each call
// writes the sums over its own range; the caller adds the calls' sums.
TEST(CodegenLoops, SideSumsAddUpOverTheCalls) {
  for (const Shape& shape : {Shape{6, 5, 7, 32}, Shape{3, 2, 4, 5, 16}, Shape{9, 200}, Shape{16, 16, 16, 32}}) {
    SCOPED_TRACE(shapeStr(shape));
    Graph g("side_sums");
    Shape channel(shape.size(), 1), perRow = shape;
    channel.back() = shape.back();
    if (shape.size() == 5) channel[1] = shape[1];
    perRow.back() = 1;
    ValueId a = g.addInput("a", f32(shape)), m = g.addInput("m", f32(channel)), dy = g.addInput("dy", f32(shape));
    ValueId centered = g.addOp(OpKind::Sub, {a, m});
    ValueId out = g.addOp(OpKind::Mul, {centered, dy});
    std::vector<int64_t> axes;
    for (size_t d = 0; d < shape.size(); ++d)
      if (channel[d] == 1) axes.push_back(static_cast<int64_t>(d));
    g.addOutput("out", out);
    // Kept dims or not: a [1, C] or a [C] result has the same bytes.
    const int64_t keepdims = shape.size() == 4 ? 0 : 1;
    g.addOutput("out1", g.addOp(OpKind::ReduceSum, {out}, {{"axes", axes}, {"keepdims", keepdims}}));
    g.addOutput("out2", g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Mul, {dy, centered})},
                                {{"axes", std::vector<int64_t>{static_cast<int64_t>(shape.size()) - 1}},
                                 {"keepdims", int64_t{1}}}));
    ASSERT_FALSE(KernelCompiler::unsupported(g).has_value()) << *KernelCompiler::unsupported(g);
    // f32 sums of thousands of terms of both signs, in another order than the reference's.
    const double sumTolerance = numElements(shape) > 50000 ? 1e-3 : 1e-5;
    std::vector<TensorData> inputs = {spread(f32(shape), -2, 2), spread(f32(channel), -1, 1, 1), spread(f32(shape), -1, 3, 2)};
    weft::reference::TensorMap want = weft::reference::run(g, {{"a", inputs[0]}, {"m", inputs[1]}, {"dy", inputs[2]}});
    const GeneratedKernel* kernel = compiler().compile({&g}).at(0);
    ASSERT_EQ(kernel->numInputs, 5);
    EXPECT_FALSE(kernel->partialSums);
    for (int pieces : {1, 3}) {
      SCOPED_TRACE(std::to_string(pieces) + " calls");
      TensorData result(f32(shape)), sums(g.type(g.outputs()[1].value)), rows(f32(perRow));
      for (int p = 0; p < pieces; ++p) {
        TensorData s1 = sums, s2 = rows;  // this call's sums (garbage in: the kernel zeroes them)
        std::fill(s1.bytes.begin(), s1.bytes.end(), 0x7f);
        std::fill(s2.bytes.begin(), s2.bytes.end(), 0x7f);
        std::vector<const void*> pointers = {inputs[0].bytes.data(), inputs[1].bytes.data(), inputs[2].bytes.data(),
                                             s1.bytes.data(), s2.bytes.data()};
        const int64_t extent = kernel->parallelExtent;
        weft::cpu::invoke(*kernel, result.bytes.data(), pointers, extent * p / pieces, extent * (p + 1) / pieces);
        for (int64_t i = 0; i < sums.numel(); ++i) sums.as<float>()[i] += s1.as<float>()[i];
        for (int64_t i = 0; i < rows.numel(); ++i) rows.as<float>()[i] += s2.as<float>()[i];
      }
      expectClose(result, want.at("out"), 1e-6);
      expectClose(sums, want.at("out1"), sumTolerance);
      expectClose(rows, want.at("out2"), sumTolerance);
    }
    // As the runtime runs it: split over threads (the largest shape is worth it), each
    // thread but the first summing into scratch.
    TensorData result(f32(shape)), sums(g.type(g.outputs()[1].value)), rows(f32(perRow));
    std::vector<const void*> pointers = {inputs[0].bytes.data(), inputs[1].bytes.data(), inputs[2].bytes.data(),
                                         sums.bytes.data(), rows.bytes.data()};
    weft::cpu::runKernel(weft::cpu::entryOf(*kernel), result.bytes.data(), pointers, 2, result.numel(),
                         {{3, sums.numel()}, {4, rows.numel()}});
    expectClose(result, want.at("out"), 1e-6);
    expectClose(sums, want.at("out1"), sumTolerance);
    expectClose(rows, want.at("out2"), sumTolerance);
  }
}

TEST(CodegenLoops, SideSumsSumValuesOfTheOutputsShape) {
  Graph g("another_shape");
  ValueId a = g.addInput("a", f32({4, 8})), row = g.addInput("row", f32({5, 8}));
  g.addOutput("out", g.addOp(OpKind::Exp, {a}));
  g.addOutput("out1", g.addOp(OpKind::ReduceSum, {row}, {{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t{1}}}));
  auto why = KernelCompiler::unsupported(g);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("output 1 is neither"), std::string::npos) << *why;
}
