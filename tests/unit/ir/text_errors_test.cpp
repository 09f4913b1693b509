// Every class of IR text error, with its exact `FILE:LINE:COL: message`.
#include <gtest/gtest.h>

#include "ir/error.h"
#include "ir/parser.h"

using namespace weft::ir;

namespace {

/// The message of the weft::Error that parsing `text` as "t.weft" throws.
std::string parseError(const std::string& text) {
  try {
    parseGraph(text, "t.weft");
  } catch (const weft::Error& e) {
    return e.what();
  }
  return "(no error)";
}

/// A graph with input %x: f32[4] and the given body lines before `return out=%x`.
std::string withBody(const std::string& body) {
  return "graph @g(%x: f32[4], %i: i32[4]) {\n" + body + "  return out=%x\n}\n";
}

}  // namespace

TEST(TextErrors, EmptyInput) {
  EXPECT_EQ(parseError(""), "t.weft:1:1: empty input: expected 'graph @name(...) { ... }'");
  EXPECT_EQ(parseError("  // only a comment\n\n"),
            "t.weft:3:1: empty input: expected 'graph @name(...) { ... }'");
}

TEST(TextErrors, UnknownOp) {
  EXPECT_EQ(parseError(withBody("  %0 = frobnicate(%x) : f32[4]\n")), "t.weft:2:8: unknown op 'frobnicate'");
}

TEST(TextErrors, InputAndParamAreNotOps) {
  EXPECT_EQ(parseError(withBody("  %0 = input() : f32[4]\n")),
            "t.weft:2:8: graph inputs are declared in the graph header");
  EXPECT_EQ(parseError(withBody("  %0 = param() {init=\"zeros\"} : f32[4]\n")),
            "t.weft:2:8: parameters are declared as 'param %name: TYPE {attrs}'");
}

TEST(TextErrors, UndefinedValue) {
  EXPECT_EQ(parseError(withBody("  %0 = add(%x, %foo) : f32[4]\n")), "t.weft:2:16: undefined value %foo");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%1) : f32[4]\n  %1 = exp(%x) : f32[4]\n")),
            "t.weft:2:12: undefined value %1");
  EXPECT_EQ(parseError("graph @g(%x: f32[4]) {\n  return out=%y\n}\n"), "t.weft:2:14: undefined value %y");
}

TEST(TextErrors, Redefinition) {
  EXPECT_EQ(parseError(withBody("  %a = exp(%x) : f32[4]\n  %a = exp(%x) : f32[4]\n")),
            "t.weft:3:3: redefinition of %a (first defined at line 2)");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) : f32[4]\n  %0 = exp(%x) : f32[4]\n")),
            "t.weft:3:3: redefinition of %0 (first defined at line 2)");
  EXPECT_EQ(parseError(withBody("  param %x: f32[4] {init=\"zeros\"}\n")),
            "t.weft:2:9: redefinition of %x (first defined at line 1)");
}

TEST(TextErrors, WrongOperandCount) {
  EXPECT_EQ(parseError(withBody("  %0 = add(%x) : f32[4]\n")),
            "t.weft:2:8: op 'add' expects 2 operands (lhs, rhs), got 1");
  EXPECT_EQ(parseError(withBody("  %0 = iota(%x) {axis=0, dtype=f32, shape=[4]} : f32[4]\n")),
            "t.weft:2:8: op 'iota' expects 0 operands, got 1");
  EXPECT_EQ(parseError(withBody("  %0 = concat() {axis=0} : f32[4]\n")),
            "t.weft:2:8: op 'concat' expects at least 1 operand, got 0");
}

TEST(TextErrors, UnknownAttribute) {
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) {axis=1} : f32[4]\n")),
            "t.weft:2:17: unknown attribute 'axis' for op 'exp' (it takes none)");
  EXPECT_EQ(parseError(withBody("  %0 = reduce_sum(%x) {axes=[0], keepdim=0} : f32[]\n")),
            "t.weft:2:34: unknown attribute 'keepdim' for op 'reduce_sum' (it takes axes, keepdims)");
}

TEST(TextErrors, DuplicateAttribute) {
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) {axis=0, axis=0} : f32[4]\n")),
            "t.weft:2:28: attribute 'axis' is given twice");
}

TEST(TextErrors, MistypedAttribute) {
  EXPECT_EQ(parseError(withBody("  %0 = reduce_sum(%x) {axes=0, keepdims=0} : f32[]\n")),
            "t.weft:2:29: attribute 'axes' of op 'reduce_sum' must be ints, got int");
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) {axis=1.5} : f32[4]\n")),
            "t.weft:2:25: attribute 'axis' of op 'concat' must be int, got float");
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) {axis=\"0\"} : f32[4]\n")),
            "t.weft:2:25: attribute 'axis' of op 'concat' must be int, got str");
  EXPECT_EQ(parseError(withBody("  %0 = leaky_relu(%x) {alpha=[1]} : f32[4]\n")),
            "t.weft:2:30: attribute 'alpha' of op 'leaky_relu' must be float, got a list");
  EXPECT_EQ(parseError(withBody("  %0 = cast(%x) {dtype=3} : f32[4]\n")),
            "t.weft:2:24: attribute 'dtype' of op 'cast' must be dtype, got int");
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) {axis=f32} : f32[4]\n")),
            "t.weft:2:25: attribute 'axis' of op 'concat' must be int, got dtype");
  EXPECT_EQ(parseError(withBody("  %0 = constant() {value=[1, 2]} : f32[2]\n")),
            "t.weft:2:26: attribute 'value' of op 'constant' must be tensor (dense<[...]>), got a list");
  EXPECT_EQ(parseError(withBody("  %0 = mse_loss(%x, %x) {reduce=mean} : f32[]\n")),
            "t.weft:2:33: attribute 'reduce' of op 'mse_loss' must be str, got 'mean'");
  EXPECT_EQ(parseError(withBody("  %0 = reduce_sum(%x) {axes=[0.5], keepdims=0} : f32[]\n")),
            "t.weft:2:30: expected an integer in the list, got 0.5");
  EXPECT_EQ(parseError(withBody("  %0 = cast(%x) {dtype=f16} : f32[4]\n")),
            "t.weft:2:24: unknown dtype 'f16'");
}

TEST(TextErrors, MissingAttribute) {
  EXPECT_EQ(parseError(withBody("  %0 = reduce_sum(%x) {axes=[0]} : f32[]\n")),
            "t.weft:2:8: op 'reduce_sum' is missing attribute 'keepdims'");
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) : f32[4]\n")),
            "t.weft:2:8: op 'concat' is missing attribute 'axis'");
  EXPECT_EQ(parseError(withBody("  param %w: f32[4]\n")), "t.weft:2:9: op 'param' is missing attribute 'init'");
}

TEST(TextErrors, BadTypes) {
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) : f33[4]\n")),
            "t.weft:2:18: unknown dtype 'f33' (dtypes are f32, f64, bf16, i32, i64, bool)");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) : f32\n  return out=%0\n")),
            "t.weft:3:3: expected '[' after the dtype (a scalar is written f32[]), got 'return'");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) : f32[4,]\n")), "t.weft:2:24: expected a dimension size, got ']'");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) : f32[-4]\n")),
            "t.weft:2:22: dimension size must be >= 0, got -4");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) : f32[1.5]\n")),
            "t.weft:2:22: expected an integer dimension size, got 1.5");
  EXPECT_EQ(parseError("graph @g(%x: f32[1000000000,1000000000]) {\n  return\n}\n"),
            "t.weft:1:29: type has too many elements");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%x) f32[4]\n")),
            "t.weft:2:16: expected attributes '{...}' or ':' and the result type, got 'f32'");
}

TEST(TextErrors, BadNumbers) {
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) {axis=1.2.3} : f32[4]\n")), "t.weft:2:25: bad number '1.2.3'");
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) {axis=12abc} : f32[4]\n")), "t.weft:2:25: bad number '12abc'");
  EXPECT_EQ(parseError(withBody("  %0 = concat(%x) {axis=99999999999999999999} : f32[4]\n")),
            "t.weft:2:25: number 99999999999999999999 is out of range");
  EXPECT_EQ(parseError(withBody("  %0 = leaky_relu(%x) {alpha=1e999} : f32[4]\n")),
            "t.weft:2:30: number 1e999 is out of range for a float attribute");
  EXPECT_EQ(parseError(withBody("  %0 = leaky_relu(%x) {alpha=-} : f32[4]\n")), "t.weft:2:30: bad number '-'");
}

TEST(TextErrors, BadStrings) {
  EXPECT_EQ(parseError(withBody("  %0 = mse_loss(%x, %x) {reduce=\"mean} : f32[]\n")),
            "t.weft:2:33: unterminated string");
  EXPECT_EQ(parseError("graph @g() {\n  param %p: f32[] {init=\"zer"), "t.weft:2:25: unterminated string");
  EXPECT_EQ(parseError(withBody("  %0 = mse_loss(%x, %x) {reduce=\"me\\an\"} : f32[]\n")),
            "t.weft:2:36: unknown escape sequence '\\a' in string");
}

TEST(TextErrors, DeclaredTypeDiffersFromTypeRule) {
  EXPECT_EQ(parseError(withBody("  %0 = add(%x, %x) : f32[3]\n")),
            "t.weft:2:22: declared type f32[3] but add gives f32[4]");
  EXPECT_EQ(parseError(withBody("  %0 = eq(%x, %x) : f32[4]\n")),
            "t.weft:2:21: declared type f32[4] but eq gives bool[4]");
}

TEST(TextErrors, TypeRuleRejectsOperands) {
  EXPECT_EQ(parseError("graph @g(%a: f32[2,3], %b: f32[4]) {\n  %0 = add(%a, %b) : f32[2,3]\n  return\n}\n"),
            "t.weft:2:8: add(f32[2,3], f32[4]): operand shapes do not broadcast");
  EXPECT_EQ(parseError(withBody("  %0 = exp(%i) : i32[4]\n")),
            "t.weft:2:8: exp(i32[4]): operand must be a float tensor");
}

TEST(TextErrors, ConstantDataCountAndElements) {
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<[1.0, 2.0, 3.0]>} : f32[2]\n")),
            "t.weft:2:26: constant has 3 values but its type f32[2] needs 2");
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<[1, 2.5]>} : i32[2]\n")),
            "t.weft:2:36: expected an integer in an i32 constant, got 2.5");
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<[3000000000]>} : i32[1]\n")),
            "t.weft:2:33: value 3000000000 is out of range for i32");
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<[true, 1]>} : bool[2]\n")),
            "t.weft:2:39: expected true or false in a bool constant, got '1'");
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<[yes]>} : f32[1]\n")),
            "t.weft:2:33: expected a number, got 'yes'");
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<[1e39]>} : f32[1]\n")),
            "t.weft:2:33: number 1e39 is out of range for f32");
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<[[1]]>} : f32[1]\n")),
            "t.weft:2:33: expected a tensor element, got '['");
  EXPECT_EQ(parseError(withBody("  %c = constant() {value=dense<elided>} : f32[100000,100000]\n")),
            "t.weft:2:26: elided constant f32[100000,100000] is too large to fill");
}

TEST(TextErrors, TrailingGarbageAfterGraph) {
  EXPECT_EQ(parseError("graph @g() {\n  return\n}\n}\n"), "t.weft:4:1: unexpected '}' after the end of the graph");
  EXPECT_EQ(parseError("graph @g() {\n  return\n} graph\n"),
            "t.weft:3:3: unexpected 'graph' after the end of the graph");
}

TEST(TextErrors, StructureErrors) {
  EXPECT_EQ(parseError("func @g() {\n}\n"), "t.weft:1:1: expected 'graph', got 'func'");
  EXPECT_EQ(parseError("1"), "t.weft:1:1: expected 'graph', got '1'");
  EXPECT_EQ(parseError("-"), "t.weft:1:1: expected 'graph', got '-'");
  EXPECT_EQ(parseError("graph g() {\n}\n"), "t.weft:1:7: expected a graph name '@name', got 'g'");
  EXPECT_EQ(parseError("graph @g() {\n}\n"),
            "t.weft:2:1: expected a statement ('param', '%name = op(...)' or 'return'), got '}'");
  EXPECT_EQ(parseError("graph @g() {\n  return\n"), "t.weft:3:1: expected an output 'name=%value' or '}', got end of input");
  EXPECT_EQ(parseError("graph @g(%0: f32[2]) {\n  return\n}\n"), "t.weft:1:10: graph inputs must be named, got %0");
  EXPECT_EQ(parseError("graph @g(%x: f32[2]) {\n  return a=%x, a=%x\n}\n"),
            "t.weft:2:16: output 'a' is defined twice");
  EXPECT_EQ(parseError("graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[2] # note\n}\n"),
            "t.weft:2:25: unexpected character '#'");
  EXPECT_EQ(parseError("graph @g(%1x: f32[2]) {\n}\n"),
            "t.weft:1:10: invalid value name '%1x': names start with a letter or '_', unnamed values are all digits");
  EXPECT_EQ(parseError("graph @g(% x: f32[2]) {\n}\n"), "t.weft:1:10: expected a value name after '%'");
  EXPECT_EQ(parseError("graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[2] loc(here)\n}\n"),
            "t.weft:2:29: expected a location string, got 'here'");
}

TEST(TextErrors, AnInvalidGraphIsReportedAtItsFirstWrongNode) {
  const std::string text = withBody("  %a = exp(%x) : f32[4]\n  %b = fused(%a) {kind=\"rows\"} : f32[4] {\n"
                                    "    graph @r(%in0: f32[4]) {\n      %0 = exp(%in0) : f32[4]\n"
                                    "      return out=%0\n    }\n  }\n");
  EXPECT_EQ(parseError(text).substr(0, 35), "t.weft:3:3: graph @g is invalid:\n  ");
}

TEST(TextErrors, AByteOrderMarkIsSkipped) {
  EXPECT_NO_THROW(parseGraph("\xEF\xBB\xBF" + withBody(""), "t.weft"));
  EXPECT_EQ(parseError("\xEF\xBB\xBF" + withBody("  %0 = frobnicate(%x) : f32[4]\n")),
            "t.weft:2:8: unknown op 'frobnicate'");
}
