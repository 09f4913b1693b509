// Round trips of the IR text format (printer -> parser -> printer) and parsing of hand-written
// text. Error messages of the parser are tested in text_errors_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"

using namespace weft::ir;

namespace {

TensorDataPtr tensor(TensorType type, const std::vector<double>& values) {
  auto t = std::make_shared<TensorData>(type);
  for (size_t i = 0; i < values.size(); ++i) t->set(static_cast<int64_t>(i), values[i]);
  return t;
}

Attrs reduceAttrs(std::vector<int64_t> axes, int64_t keep) {
  return {{"axes", std::move(axes)}, {"keepdims", keep}};
}

/// A graph with every dtype, every attribute kind, dotted and unnamed values, small and large
/// constants, a variadic concat and source locations.
Graph buildRichGraph() {
  Graph g("rt");
  auto x = g.addInput("x", {DType::f32, {2, 3}});
  auto idx = g.addInput("idx", {DType::i64, {2}});
  auto w = g.addParam("fc1.weight", {DType::f32, {3, 4}},
                      {{"init", std::string("uniform")}, {"scale", 0.35355339059327373}, {"seed", int64_t{1}}});
  auto b = g.addParam("fc1.bias", {DType::f32, {4}}, {{"init", std::string("zeros")}});
  g.addParam("odd-name_2.w", {DType::f32, {}}, {{"init", std::string("ones")}});
  g.addConstant(tensor({DType::f64, {2}}, {1.5, -0.25}));
  g.addConstant(tensor({DType::bf16, {3}}, {1.0, 0.5, -2.0}), "c.bf");
  g.addConstant(tensor({DType::i32, {2}}, {7, -3}));
  g.addConstant(tensor({DType::boolean, {2}}, {1, 0}), "mask");
  std::vector<double> ramp(20);
  for (int i = 0; i < 20; ++i) ramp[static_cast<size_t>(i)] = 0.25 * i - 1;
  g.addConstant(tensor({DType::f32, {20}}, ramp), "big");
  auto h = g.addOp(OpKind::Matmul, {x, w}, {}, "", "model.cpp:12");
  auto hb = g.addOp(OpKind::Add, {h, b}, {}, "h.biased", "model.cpp:13");
  auto r = g.addOp(OpKind::ReduceSum, {hb}, reduceAttrs({1}, 0));
  auto r2 = g.addOp(OpKind::ReduceSum, {r}, reduceAttrs({}, 1));
  auto cat = g.addOp(OpKind::Concat, {r, r2, r}, {{"axis", int64_t{0}}}, "cat");
  auto cast = g.addOp(OpKind::Cast, {cat}, {{"dtype", DType::f64}});
  auto lrelu = g.addOp(OpKind::LeakyRelu, {x}, {{"alpha", 0.01}});
  g.addOp(OpKind::Pad, {x},
          {{"low", std::vector<int64_t>{0, 1}}, {"high", std::vector<int64_t>{1, 0}},
           {"value", -std::numeric_limits<double>::infinity()}});
  auto gathered = g.addOp(OpKind::Gather, {x, idx}, {{"axis", int64_t{0}}});
  g.addOp(OpKind::Iota, {}, {{"shape", std::vector<int64_t>{2, 2}}, {"axis", int64_t{1}}, {"dtype", DType::i32}});
  // `high` is a float attribute stored as an int: it prints as a float.
  g.addOp(OpKind::RandomUniform, {},
          {{"shape", std::vector<int64_t>{}}, {"dtype", DType::bf16}, {"seed", int64_t{3}},
           {"low", -1.0}, {"high", int64_t{1}}});
  auto loss = g.addOp(OpKind::MseLoss, {lrelu, gathered}, {{"reduce", std::string("mean")}}, "loss");
  g.addOp(OpKind::CheckIndex, {idx}, {{"limit", int64_t{2}}, {"what", std::string("a\"b\\c\nd")}}, "idx.checked");
  g.addOutput("loss", loss);
  g.addOutput("cast", cast);
  g.addOutput("h", hb);
  return g;
}

const char* kRichText = R"(graph @rt(%x: f32[2,3], %idx: i64[2]) {
  param %fc1.weight: f32[3,4] {init="uniform", scale=0.35355339059327373, seed=1}
  param %fc1.bias: f32[4] {init="zeros"}
  param %odd-name_2.w: f32[] {init="ones"}
  %0 = constant() {value=dense<[1.5, -0.25]>} : f64[2]
  %c.bf = constant() {value=dense<[1.0, 0.5, -2.0]>} : bf16[3]
  %1 = constant() {value=dense<[7, -3]>} : i32[2]
  %mask = constant() {value=dense<[true, false]>} : bool[2]
  %big = constant() {value=dense<elided>} : f32[20]
  %2 = matmul(%x, %fc1.weight) : f32[2,4]
  %h.biased = add(%2, %fc1.bias) : f32[2,4]
  %3 = reduce_sum(%h.biased) {axes=[1], keepdims=0} : f32[2]
  %4 = reduce_sum(%3) {axes=[], keepdims=1} : f32[2]
  %cat = concat(%3, %4, %3) {axis=0} : f32[6]
  %5 = cast(%cat) {dtype=f64} : f64[6]
  %6 = leaky_relu(%x) {alpha=0.01} : f32[2,3]
  %7 = pad(%x) {high=[1, 0], low=[0, 1], value=-inf} : f32[3,4]
  %8 = gather(%x, %idx) {axis=0} : f32[2,3]
  %9 = iota() {axis=1, dtype=i32, shape=[2, 2]} : i32[2,2]
  %10 = random_uniform() {dtype=bf16, high=1.0, low=-1.0, seed=3, shape=[]} : bf16[]
  %loss = mse_loss(%6, %8) {reduce="mean"} : f32[]
  %idx.checked = check_index(%idx) {limit=2, what="a\"b\\c\nd"} : i64[2]
  return loss=%loss, cast=%5, h=%h.biased
}
)";

/// Equal values; an int where the op declares a float reads back as a double of that value.
bool sameAttrValue(const AttrValue& a, const AttrValue& b) {
  if (auto* i = std::get_if<int64_t>(&a); i && std::holds_alternative<double>(b))
    return static_cast<double>(*i) == std::get<double>(b);
  if (a.index() != b.index()) return false;
  if (auto* ta = std::get_if<TensorDataPtr>(&a)) {
    const auto& tb = std::get<TensorDataPtr>(b);
    return ta->get() && tb.get() && **ta == *tb;
  }
  return a == b;
}

/// Structural equality of two graphs whose node orders agree, with a message on mismatch.
void expectSameGraph(const Graph& a, const Graph& b) {
  EXPECT_EQ(a.name(), b.name());
  ASSERT_EQ(a.size(), b.size());
  for (ValueId v = 0; v < a.size(); ++v) {
    const Node &na = a.node(v), &nb = b.node(v);
    SCOPED_TRACE("node " + std::to_string(v) + " " + valueRef(a, v));
    EXPECT_EQ(na.op, nb.op);
    EXPECT_EQ(na.operands, nb.operands);
    EXPECT_EQ(na.type, nb.type);
    EXPECT_EQ(na.name, nb.name);
    ASSERT_EQ(na.attrs.size(), nb.attrs.size());
    for (const auto& [name, value] : na.attrs) {
      ASSERT_TRUE(nb.attrs.count(name)) << name;
      EXPECT_TRUE(sameAttrValue(value, nb.attrs.at(name))) << name;
    }
  }
  ASSERT_EQ(a.outputs().size(), b.outputs().size());
  for (size_t i = 0; i < a.outputs().size(); ++i) {
    EXPECT_EQ(a.outputs()[i].name, b.outputs()[i].name);
    EXPECT_EQ(a.outputs()[i].value, b.outputs()[i].value);
  }
}

}  // namespace

TEST(TextPrinter, PrintsTheDocumentedFormat) {
  Graph g = buildRichGraph();
  ASSERT_TRUE(verifyErrors(g).empty());
  EXPECT_EQ(printGraph(g), kRichText);
}

TEST(TextRoundTrip, PrintParsePrintIsIdentical) {
  Graph g = buildRichGraph();
  std::string text = printGraph(g);
  Graph parsed = parseGraph(text, "rt.weft");
  EXPECT_EQ(printGraph(parsed), text);
}

TEST(TextRoundTrip, UnelidedConstantsKeepEveryBit) {
  Graph g = buildRichGraph();
  PrintOptions full;
  full.elideLargeConstants = false;
  std::string text = printGraph(g, full);
  EXPECT_NE(text.find("dense<[-1.0, -0.75, -0.5, -0.25, 0.0, 0.25,"), std::string::npos);
  Graph parsed = parseGraph(text);
  expectSameGraph(g, parsed);
  EXPECT_EQ(printGraph(parsed, full), text);
}

TEST(TextRoundTrip, ElidedConstantsReadBackAsZeros) {
  Graph parsed = parseGraph(kRichText);
  auto big = parsed.find("big");
  ASSERT_TRUE(big.has_value());
  const auto& data = *std::get<TensorDataPtr>(parsed.node(*big).attrs.at("value"));
  EXPECT_EQ(data.type.str(), "f32[20]");
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(data.get(i), 0.0);
  EXPECT_EQ(printGraph(parsed), kRichText);
  PrintOptions lowThreshold;
  lowThreshold.elideAbove = 1;
  std::string text = printGraph(parsed, lowThreshold);
  EXPECT_NE(text.find("%0 = constant() {value=dense<elided>} : f64[2]"), std::string::npos);
  EXPECT_EQ(printGraph(parseGraph(text), lowThreshold), text);
}

TEST(TextRoundTrip, ElidedConstantsAreErrorsWhenTheyWouldBeComputedWith) {
  ParseOptions computing;
  computing.allowElidedConstants = false;
  try {
    parseGraph(kRichText, "rich.weft", computing);
    FAIL() << "an elided constant was read as zeros";
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rich.weft:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("constant f32[20] is dense<elided>"), std::string::npos) << e.what();
  }
  PrintOptions full;
  full.elideLargeConstants = false;
  EXPECT_NO_THROW(parseGraph(printGraph(parseGraph(kRichText), full), "full.weft", computing));
}

TEST(TextRoundTrip, LocationsPrintOnRequestAndParseBack) {
  Graph g = buildRichGraph();
  g.node(0).loc = "model.cpp:3";
  PrintOptions withLocs;
  withLocs.printLocations = true;
  std::string text = printGraph(g, withLocs);
  EXPECT_NE(text.find("graph @rt(%x: f32[2,3] loc(\"model.cpp:3\"), %idx: i64[2]) {"), std::string::npos);
  EXPECT_NE(text.find("  %2 = matmul(%x, %fc1.weight) : f32[2,4] loc(\"model.cpp:12\")\n"), std::string::npos);
  EXPECT_EQ(printGraph(g).find("loc("), std::string::npos);
  Graph parsed = parseGraph(text);
  EXPECT_EQ(parsed.node(0).loc, "model.cpp:3");
  EXPECT_EQ(parsed.node(*parsed.find("h.biased")).loc, "model.cpp:13");
  EXPECT_EQ(printGraph(parsed, withLocs), text);
}

TEST(TextRoundTrip, FloatsKeepTheirExactValue) {
  const double values[] = {0.1, 1e-5, 1.0 / 3.0, 1e300, 5e-324, -0.0, 123456789.0, 2.5e-8};
  for (double v : values) {
    Graph g("f");
    auto x = g.addInput("x", {DType::f32, {2}});
    g.addOutput("y", g.addOp(OpKind::LeakyRelu, {x}, {{"alpha", v}}));
    Graph parsed = parseGraph(printGraph(g));
    double back = std::get<double>(parsed.node(1).attrs.at("alpha"));
    EXPECT_EQ(back, v) << printGraph(g);
    EXPECT_EQ(std::signbit(back), std::signbit(v));
  }
  Graph g("f");
  auto nanAlpha = std::numeric_limits<double>::quiet_NaN();
  g.addOutput("y", g.addOp(OpKind::LeakyRelu, {g.addInput("x", {DType::f32, {2}})}, {{"alpha", nanAlpha}}));
  std::string text = printGraph(g);
  EXPECT_NE(text.find("{alpha=nan}"), std::string::npos);
  EXPECT_TRUE(std::isnan(std::get<double>(parseGraph(text).node(1).attrs.at("alpha"))));
}

TEST(TextRoundTrip, TensorElementsOfEveryDtype) {
  const float f32Values[] = {0.1f, 1e-45f, 3.4028235e38f, -0.0f, 16777216.0f};
  auto f32 = std::make_shared<TensorData>(TensorType{DType::f32, {5}});
  for (int i = 0; i < 5; ++i) f32->as<float>()[i] = f32Values[i];
  auto i64 = std::make_shared<TensorData>(TensorType{DType::i64, {2}});
  i64->as<int64_t>()[0] = std::numeric_limits<int64_t>::min();
  i64->as<int64_t>()[1] = 9007199254740993;  // not representable as a double
  auto bf = tensor({DType::bf16, {2}}, {0.1, 3.0e38});
  auto scalar = tensor({DType::f64, {}}, {-2.0});
  Graph g("d");
  g.addOutput("a", g.addConstant(f32));
  g.addOutput("b", g.addConstant(i64));
  g.addOutput("c", g.addConstant(bf));
  g.addOutput("d", g.addConstant(scalar));
  g.addOutput("e", g.addConstant(std::make_shared<TensorData>(TensorType{DType::i32, {0, 3}})));
  std::string text = printGraph(g);
  EXPECT_NE(text.find("dense<[0.1, 1e-45, 3.4028235e+38, -0.0, 16777216.0]>"), std::string::npos) << text;
  EXPECT_NE(text.find("dense<[-9223372036854775808, 9007199254740993]>"), std::string::npos) << text;
  EXPECT_NE(text.find("%3 = constant() {value=dense<[-2.0]>} : f64[]"), std::string::npos) << text;
  EXPECT_NE(text.find("%4 = constant() {value=dense<[]>} : i32[0,3]"), std::string::npos) << text;
  Graph parsed = parseGraph(text);
  expectSameGraph(g, parsed);
}

TEST(TextParser, ReadsHandWrittenText) {
  const char* text = R"(// A comment before the graph.
graph @mlp_tiny(%x: f32[4,8], %y: i32[4]) {   // trailing comment
  param %fc1.weight: f32[8,16] {init="uniform", scale=1, seed=1}
  %c = constant() {value=dense<[1, 2.5, inf, -inf]>} : f32[4]

  %7 = matmul(%x, %fc1.weight) {transpose_rhs=0} : f32[4,16]
  %2 = reduce_sum(%7) {keepdims=0, axes=[1]} : f32[4]
  %s = add(%2, %c) : f32[4]
  %3 = concat(%s, %c, %2) {axis=0} : f32[12]
  %loss = cross_entropy( %7 , %y ) { reduce = "sum" } : f32[]
  return loss=%loss, logits=%3
}
// A comment after the graph.
)";
  Graph g = parseGraph(text, "mlp.weft");
  EXPECT_EQ(g.name(), "mlp_tiny");
  ASSERT_EQ(g.size(), 9);
  EXPECT_EQ(g.inputs(), (std::vector<ValueId>{0, 1}));
  EXPECT_EQ(g.params(), (std::vector<ValueId>{2}));
  EXPECT_EQ(g.node(1).type.str(), "i32[4]");
  const Node& param = g.node(2);
  EXPECT_EQ(param.name, "fc1.weight");
  EXPECT_EQ(std::get<double>(param.attrs.at("scale")), 1.0);  // an int where a float is declared
  EXPECT_EQ(std::get<int64_t>(param.attrs.at("seed")), 1);
  EXPECT_EQ(std::get<std::string>(param.attrs.at("init")), "uniform");
  const TensorData& c = *std::get<TensorDataPtr>(g.node(3).attrs.at("value"));
  EXPECT_EQ(c.get(0), 1.0);
  EXPECT_EQ(c.get(1), 2.5);
  EXPECT_EQ(c.get(2), std::numeric_limits<double>::infinity());
  EXPECT_EQ(c.get(3), -std::numeric_limits<double>::infinity());
  const Node& mm = g.node(4);
  EXPECT_EQ(mm.op, OpKind::Matmul);
  EXPECT_EQ(mm.name, "");  // %7 is an unnamed value
  EXPECT_EQ(mm.operands, (std::vector<ValueId>{0, 2}));
  EXPECT_EQ(g.node(5).operands, (std::vector<ValueId>{4}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(g.node(5).attrs.at("axes")), (std::vector<int64_t>{1}));
  EXPECT_EQ(g.node(7).operands, (std::vector<ValueId>{6, 3, 5}));
  EXPECT_EQ(g.node(7).type.str(), "f32[12]");
  EXPECT_EQ(std::get<std::string>(g.node(8).attrs.at("reduce")), "sum");
  ASSERT_EQ(g.outputs().size(), 2u);
  EXPECT_EQ(g.outputs()[0].name, "loss");
  EXPECT_EQ(g.outputs()[0].value, 8);
  EXPECT_EQ(g.outputs()[1].value, 7);
  // Unnamed values are renumbered in print order.
  std::string printed = printGraph(g);
  EXPECT_NE(printed.find("  %0 = matmul(%x, %fc1.weight) {transpose_rhs=0} : f32[4,16]\n"), std::string::npos);
  EXPECT_NE(printed.find("  %2 = concat(%s, %c, %1) {axis=0} : f32[12]\n"), std::string::npos);
  EXPECT_NE(printed.find("scale=1.0"), std::string::npos);
}

TEST(TextParser, GraphWithoutInputsOrOutputs) {
  Graph g = parseGraph("graph @empty() {\n  return\n}\n");
  EXPECT_EQ(g.size(), 0);
  EXPECT_TRUE(g.outputs().empty());
  EXPECT_EQ(printGraph(g), "graph @empty() {\n  return\n}\n");
}

TEST(TextParser, AcceptsLocationsWhereverPresent) {
  Graph g = parseGraph(
      "graph @l(%x: f32[2] loc(\"in.py:1\")) {\n"
      "  param %p: f32[2] {init=\"ones\"} loc(\"p.cpp:2\")\n"
      "  %0 = mul(%x, %p) : f32[2] loc(\"a \\\"quoted\\\" file:9\")\n"
      "  return out=%0\n}\n");
  EXPECT_EQ(g.node(0).loc, "in.py:1");
  EXPECT_EQ(g.node(1).loc, "p.cpp:2");
  EXPECT_EQ(g.node(2).loc, "a \"quoted\" file:9");
}
