// Fused nodes in the IR: their text form (bodies printed in graph syntax, indented, nested),
// parse errors inside bodies with their exact positions, the verifier's checks of bodies, and
// their DOT label.
#include <gtest/gtest.h>

#include "ir/dot.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"

using namespace weft::ir;

namespace {

const TensorType kF23{DType::f32, {2, 3}};

TensorDataPtr scalar(float v) {
  auto t = std::make_shared<TensorData>(TensorType{DType::f32, {}});
  t->set(0, v);
  return t;
}

/// Appends a fused node of `kind` over `operands` computing `body`'s output.
ValueId addFused(Graph& g, std::vector<ValueId> operands, const std::string& kind, Graph body,
                 const std::string& name = "") {
  Node n;
  n.op = OpKind::Fused;
  n.operands = std::move(operands);
  n.attrs["kind"] = kind;
  n.type = body.type(body.outputs().at(0).value);
  n.name = name;
  n.body = std::make_shared<const Graph>(std::move(body));
  return g.addNode(std::move(n));
}

/// relu(in0 + in1) with the zero as a constant inside the body.
Graph addReluBody() {
  Graph b("fused_add_maximum");
  auto in0 = b.addInput("in0", kF23);
  auto in1 = b.addInput("in1", {DType::f32, {3}});
  auto sum = b.addOp(OpKind::Add, {in0, in1});
  auto zero = b.addConstant(scalar(0), "zero");
  b.addOutput("out", b.addOp(OpKind::Maximum, {sum, zero}));
  return b;
}

/// reduce_sum(fused(exp(in0 * iota))): a body holding a fused node of its own.
Graph nestedBody() {
  Graph inner("inner");
  auto x = inner.addInput("in0", kF23);
  auto iota = inner.addOp(OpKind::Iota, {}, {{"shape", std::vector<int64_t>{2, 3}}, {"axis", int64_t{1}},
                                             {"dtype", DType::f32}});
  inner.addOutput("out", inner.addOp(OpKind::Exp, {inner.addOp(OpKind::Mul, {x, iota})}));
  Graph outer("outer");
  auto in0 = outer.addInput("in0", kF23);
  auto e = addFused(outer, {in0}, "loop", std::move(inner));
  Attrs sumRows{{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}};
  outer.addOutput("out", outer.addOp(OpKind::ReduceSum, {e}, sumRows));
  return outer;
}

Graph buildFusedGraph() {
  Graph g("f");
  auto x = g.addInput("x", kF23);
  auto b = g.addInput("b", {DType::f32, {3}});
  auto h = addFused(g, {x, b}, "loop", addReluBody(), "h");
  auto s = addFused(g, {h}, "reduce", nestedBody());
  g.addOutput("h", h);
  g.addOutput("s", s);
  return g;
}

const char* kFusedText = R"(graph @f(%x: f32[2,3], %b: f32[3]) {
  %h = fused(%x, %b) {kind="loop"} : f32[2,3] {
    graph @fused_add_maximum(%in0: f32[2,3], %in1: f32[3]) {
      %0 = add(%in0, %in1) : f32[2,3]
      %zero = constant() {value=dense<[0.0]>} : f32[]
      %1 = maximum(%0, %zero) : f32[2,3]
      return out=%1
    }
  }
  %0 = fused(%h) {kind="reduce"} : f32[2] {
    graph @outer(%in0: f32[2,3]) {
      %0 = fused(%in0) {kind="loop"} : f32[2,3] {
        graph @inner(%in0: f32[2,3]) {
          %0 = iota() {axis=1, dtype=f32, shape=[2, 3]} : f32[2,3]
          %1 = mul(%in0, %0) : f32[2,3]
          %2 = exp(%1) : f32[2,3]
          return out=%2
        }
      }
      %1 = reduce_sum(%0) {axes=[1], keepdims=0} : f32[2]
      return out=%1
    }
  }
  return h=%h, s=%0
}
)";

/// The message of the weft::Error that parsing `text` as "t.weft" throws.
std::string parseError(const std::string& text) {
  try {
    parseGraph(text, "t.weft");
  } catch (const weft::Error& e) {
    return e.what();
  }
  return "(no error)";
}

/// `%0 = fused(%x)` over x: f32[4] whose body has `header` (line 3) and `lines` (from line 4).
std::string withBody(const std::string& lines, const std::string& header = "graph @b(%in0: f32[4])") {
  return "graph @g(%x: f32[4]) {\n"
         "  %0 = fused(%x) {kind=\"loop\"} : f32[4] {\n"
         "    " + header + " {\n" + lines +
         "    }\n"
         "  }\n"
         "  return out=%0\n"
         "}\n";
}

bool hasError(const std::vector<std::string>& errs, const std::string& text) {
  for (const auto& e : errs)
    if (e.find(text) != std::string::npos) return true;
  return false;
}

std::string joined(const std::vector<std::string>& errs) {
  std::string r;
  for (const auto& e : errs) r += e + "\n";
  return r;
}

}  // namespace

TEST(FusedText, PrintsBodiesIndentedInGraphSyntax) {
  Graph g = buildFusedGraph();
  ASSERT_EQ(verifyErrors(g), std::vector<std::string>{});
  EXPECT_EQ(printGraph(g), kFusedText);
}

TEST(FusedText, ParsePrintIsIdenticalAndBodiesReadBack) {
  Graph parsed = parseGraph(kFusedText, "f.weft");
  EXPECT_EQ(printGraph(parsed), kFusedText);
  EXPECT_EQ(verifyErrors(parsed), std::vector<std::string>{});
  const Node& h = parsed.node(*parsed.find("h"));
  ASSERT_TRUE(h.body);
  EXPECT_EQ(h.body->name(), "fused_add_maximum");
  EXPECT_EQ(h.body->size(), 5);
  EXPECT_EQ(std::get<std::string>(h.attrs.at("kind")), "loop");
  auto zero = h.body->find("zero");
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(std::get<TensorDataPtr>(h.body->node(*zero).attrs.at("value"))->get(0), 0.0);
  const Node& s = parsed.node(parsed.outputs()[1].value);
  ASSERT_TRUE(s.body);
  const Node& inner = s.body->node(1);
  ASSERT_TRUE(inner.body);
  EXPECT_EQ(inner.body->name(), "inner");
  EXPECT_EQ(inner.body->node(2).op, OpKind::Mul);
  // The names of a body are its own: %in0 means a different value at each level.
  EXPECT_EQ(s.body->node(0).name, "in0");
  EXPECT_EQ(inner.body->node(0).name, "in0");
}

TEST(FusedText, LocationsAndLargeConstantsInsideBodies) {
  Graph g = buildFusedGraph();
  Graph body = addReluBody();
  auto big = std::make_shared<TensorData>(TensorType{DType::f32, {20}});
  for (int64_t i = 0; i < 20; ++i) big->set(i, 0.25 * double(i));
  body.addConstant(big, "big");
  body.node(2).loc = "model.cpp:7";
  addFused(g, {g.find("x").value(), g.find("b").value()}, "loop", std::move(body), "k");
  PrintOptions opts;
  opts.printLocations = true;
  opts.elideLargeConstants = false;
  std::string text = printGraph(g, opts);
  EXPECT_NE(text.find("      %0 = add(%in0, %in1) : f32[2,3] loc(\"model.cpp:7\")\n"), std::string::npos) << text;
  EXPECT_NE(text.find("%big = constant() {value=dense<[0.0, 0.25, 0.5,"), std::string::npos) << text;
  Graph parsed = parseGraph(text);
  EXPECT_EQ(printGraph(parsed, opts), text);
  EXPECT_EQ(parsed.node(*parsed.find("k")).body->node(2).loc, "model.cpp:7");
  // Elided, the body constant reads back as zeros and reprints the same.
  std::string elided = printGraph(g);
  EXPECT_NE(elided.find("%big = constant() {value=dense<elided>} : f32[20]"), std::string::npos);
  EXPECT_EQ(printGraph(parseGraph(elided)), elided);
}

TEST(FusedText, ErrorsInsideBodiesPointIntoTheBody) {
  EXPECT_EQ(parseError(withBody("      %0 = frob(%in0) : f32[4]\n      return out=%0\n")),
            "t.weft:4:12: unknown op 'frob'");
  EXPECT_EQ(parseError(withBody("      %0 = exp(%in0) : f32[5]\n      return out=%0\n")),
            "t.weft:4:24: declared type f32[5] but exp gives f32[4]");
  // A body sees only its own values.
  EXPECT_EQ(parseError(withBody("      %0 = exp(%x) : f32[4]\n      return out=%0\n")),
            "t.weft:4:16: undefined value %x");
  EXPECT_EQ(parseError(withBody("      param %p: f32[4] {init=\"zeros\"}\n      return out=%in0\n")),
            "t.weft:4:7: a fused node's body cannot declare parameters (pass them as operands)");
  EXPECT_EQ(parseError(withBody("      update %in0 = %in0\n      return out=%in0\n")),
            "t.weft:4:7: a fused node's body cannot update parameters");
  EXPECT_EQ(parseError(withBody("      return a=%in0, b=%in0\n")),
            "t.weft:4:7: the body of '%0' must return exactly one value, got 2");
  EXPECT_EQ(parseError(withBody("      return\n")),
            "t.weft:4:7: the body of '%0' must return exactly one value, got 0");
  EXPECT_EQ(parseError(withBody("      %0 = reduce_sum(%in0) {axes=[0], keepdims=0} : f32[]\n      return out=%0\n")),
            "t.weft:5:18: the body returns f32[] but fused node '%0' is declared f32[4]");
  EXPECT_EQ(parseError(withBody("      return out=%in0\n", "graph @b(%in0: f32[5])")),
            "t.weft:3:14: body input %in0 has type f32[5] but operand 0 (%x) of '%0' has f32[4]");
  EXPECT_EQ(parseError(withBody("      return out=%in0\n", "graph @b(%in0: f32[4], %in1: f32[4])")),
            "t.weft:3:5: body @b takes 2 inputs but fused node '%0' has 1 operands");
}

TEST(FusedText, ErrorsInNestedBodiesKeepTheirPosition) {
  std::string text = withBody(
      "      %0 = fused(%in0) {kind=\"loop\"} : f32[4] {\n"
      "        graph @c(%y: f32[4]) {\n"
      "          %0 = tanh(%y, %y) : f32[4]\n"
      "          return out=%0\n"
      "        }\n"
      "      }\n"
      "      return out=%0\n");
  EXPECT_EQ(parseError(text), "t.weft:6:16: op 'tanh' expects 1 operand (x), got 2");
}

TEST(FusedText, BodyStructureErrors) {
  EXPECT_EQ(parseError("graph @g(%x: f32[4]) {\n  %0 = fused(%x) {kind=\"loop\"} : f32[4]\n  return out=%0\n}\n"),
            "t.weft:3:3: fused node '%0' needs its body: expected '{ graph @name(...) { ... } }', got 'return'");
  EXPECT_EQ(parseError("graph @g(%x: f32[4]) {\n  %0 = exp(%x) : f32[4] {\n  }\n  return out=%0\n}\n"),
            "t.weft:2:25: only fused nodes have a body; exp does not");
  EXPECT_EQ(parseError("graph @g(%x: f32[4]) {\n  %0 = fused(%x) {kind=\"loop\"} : f32[4] {\n"
                       "    return out=%x\n  }\n}\n"),
            "t.weft:3:5: expected 'graph' starting the fused node's body, got 'return'");
  EXPECT_EQ(parseError("graph @g(%x: f32[4]) {\n  %0 = fused(%x) {kind=\"fancy\"} : f32[4] {\n  }\n}\n"),
            "t.weft:2:8: fused kind must be loop, reduce, rows, matmul, conv, attention or attention_grad, got \"fancy\"");
  EXPECT_EQ(parseError("graph @g(%x: f32[4]) {\n  %0 = fused(%x) : f32[4] {\n  }\n}\n"),
            "t.weft:2:8: op 'fused' is missing attribute 'kind'");
  EXPECT_EQ(parseError("graph @g(%x: f32[4]) {\n  %0 = fused() {kind=\"loop\"} : f32[4] {\n  }\n}\n"),
            "t.weft:2:8: op 'fused' expects at least 1 operand, got 0");
  std::string unclosed = "graph @g(%x: f32[4]) {\n  %0 = fused(%x) {kind=\"loop\"} : f32[4] {\n"
                         "    graph @b(%in0: f32[4]) {\n      return out=%in0\n    }\n  return out=%0\n}\n";
  EXPECT_EQ(parseError(unclosed), "t.weft:6:3: expected '}' closing the body of '%0', got 'return'");
}

TEST(FusedText, DeepNestingIsAnErrorNotACrash) {
  std::string open, close;
  for (int depth = 0; depth < 40; ++depth) {
    open += "graph @g(%x: f32[4]) {\n %0 = fused(%x) {kind=\"loop\"} : f32[4] {\n";
    close += "}\n return out=%0\n}\n";
  }
  std::string msg = parseError(open + "graph @g(%x: f32[4]) {\n return out=%x\n}\n" + close);
  EXPECT_NE(msg.find("fused bodies nest more than 16 deep"), std::string::npos) << msg;
}

TEST(FusedVerifier, BodyProblemsNameTheNode) {
  Graph g("v");
  auto x = g.addInput("x", kF23);
  auto b = g.addInput("b", {DType::f32, {3}});
  Node noBody;
  noBody.op = OpKind::Fused;
  noBody.operands = {x};
  noBody.attrs["kind"] = std::string("loop");
  noBody.type = kF23;
  noBody.name = "nobody";
  g.addNode(noBody);
  // Operands swapped: both input types differ from the body's.
  addFused(g, {b, x}, "loop", addReluBody(), "swapped");
  addFused(g, {x}, "loop", addReluBody(), "short");
  addFused(g, {x, b}, "weird", addReluBody(), "kinded");
  Graph twoOut = addReluBody();
  twoOut.addOutput("extra", 0);
  addFused(g, {x, b}, "loop", std::move(twoOut), "two");
  Graph withParam = addReluBody();
  auto p = withParam.addParam("p", kF23, {{"init", std::string("zeros")}});
  withParam.addUpdate(p, 0);
  addFused(g, {x, b}, "loop", std::move(withParam), "stateful");
  Node mistyped = g.node(*g.find("swapped"));
  mistyped.operands = {x, b};
  mistyped.type = {DType::f32, {3}};
  mistyped.name = "mistyped";
  g.addNode(mistyped);
  Node bodyOnExp;
  bodyOnExp.op = OpKind::Exp;
  bodyOnExp.operands = {x};
  bodyOnExp.type = kF23;
  bodyOnExp.name = "e";
  bodyOnExp.body = g.node(*g.find("swapped")).body;
  g.addNode(bodyOnExp);

  auto errs = verifyErrors(g);
  std::string all = joined(errs);
  EXPECT_TRUE(hasError(errs, "%nobody (fused): fused node has no body")) << all;
  EXPECT_TRUE(hasError(errs, "%swapped (fused): body @fused_add_maximum: input %in0 has type f32[2,3] but operand %b "
                             "has f32[3]")) << all;
  EXPECT_TRUE(hasError(errs, "%short (fused): body @fused_add_maximum: takes 2 inputs but the node has 1 operands"))
      << all;
  EXPECT_TRUE(hasError(errs, "%kinded (fused): kind must be loop, reduce, rows, matmul, conv, attention or attention_grad, got \"weird\"")) << all;
  EXPECT_TRUE(hasError(errs, "%two (fused): body @fused_add_maximum: must have exactly one output, has 2")) << all;
  EXPECT_TRUE(hasError(errs, "%stateful (fused): body @fused_add_maximum: a body cannot have parameters")) << all;
  EXPECT_TRUE(hasError(errs, "%stateful (fused): body @fused_add_maximum: a body cannot update parameters")) << all;
  EXPECT_TRUE(hasError(errs, "%mistyped (fused): body @fused_add_maximum: returns f32[2,3] but the node's type is "
                             "f32[3]")) << all;
  EXPECT_TRUE(hasError(errs, "%e (exp): only fused nodes have a body")) << all;
  EXPECT_EQ(errs.size(), 10u) << all;
  EXPECT_THROW(verify(g), weft::Error);
}

TEST(FusedVerifier, ErrorsInsideNestedBodiesAreFoundAndPrefixed) {
  Graph g = buildFusedGraph();
  EXPECT_EQ(verifyErrors(g), std::vector<std::string>{});
  // Break the innermost body: its mul declared with the wrong type.
  Graph outer = *g.node(g.outputs()[1].value).body;
  Graph inner = *outer.node(1).body;
  inner.node(2).type = {DType::f32, {3}};
  outer.node(1).body = std::make_shared<const Graph>(inner);
  g.node(g.outputs()[1].value).body = std::make_shared<const Graph>(outer);
  auto errs = verifyErrors(g);
  ASSERT_EQ(errs.size(), 2u) << joined(errs);  // the mul, and the exp reading it
  // Unnamed values are numbered as the printer numbers them (what a dump of the graph shows).
  EXPECT_EQ(errs[0], "%0 (fused): body @outer: %0 (fused): body @inner: %1 (mul): declared type f32[3] but the type "
                     "rule gives f32[2,3]");
  EXPECT_NE(printGraph(g).find("%0 = fused("), std::string::npos) << printGraph(g);
}

TEST(FusedDot, OneBoxWithKindAndBodyOps) {
  std::string dot = toDot(buildFusedGraph());
  EXPECT_NE(dot.find("  v2 [label=\"%h\\nfused loop\\nadd, maximum\\nf32[2,3]\", shape=box, style=filled, "
                     "fillcolor=\"#e2d9f3\"];\n"), std::string::npos) << dot;
  EXPECT_NE(dot.find("  v3 [label=\"%0\\nfused reduce\\nfused, reduce_sum\\nf32[2]\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("  v2 -> v3;\n"), std::string::npos) << dot;
}
