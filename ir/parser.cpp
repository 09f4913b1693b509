// The IR text parser: recursive descent over the tokens of ir/lexer.h, one token of
// lookahead; types, attributes and literals are read by ir/value_reader.h. The grammar (see ir/printer.cpp for the format as printed):
//
//   graph     := 'graph' GRAPHNAME '(' [input {',' input}] ')' '{' {statement} return '}'
//   input     := VALUEREF ':' type [loc]
//   statement := 'param' VALUEREF ':' type [attrs] [loc]
//              | 'update' VALUEREF '=' VALUEREF
//              | VALUEREF '=' WORD '(' [VALUEREF {',' VALUEREF}] ')' [attrs] ':' type [loc] [body]
//   body      := '{' graph '}'          (only, and always, for op `fused`)
//   return    := 'return' [WORD '=' VALUEREF {',' WORD '=' VALUEREF}]
//   type      := WORD '[' [NUMBER {',' NUMBER}] ']'
//   attrs     := '{' [WORD '=' value {',' WORD '=' value}] '}'
//   value     := NUMBER | STRING | WORD | '[' [NUMBER {',' NUMBER}] ']'
//              | 'dense' '<' ('elided' | '[' [element {',' element}] ']') '>'
//   loc       := 'loc' '(' STRING ')'
//
// Every node is checked as it is read (operands defined, attributes against the op table,
// declared type against the op's type rule), so errors point at the offending token; the
// finished graph is verified as a whole. A fused node's body is read by the same rules in a
// scope of its own (its value names are its own), checked against the node as soon as it is
// closed (inputs match the operands, one output of the node's type, no parameters or
// updates), and verified there, so errors inside bodies point into the body too.
#include "ir/parser.h"

#include <map>
#include <set>

#include "ir/error.h"
#include "ir/lexer.h"
#include "ir/printer.h"
#include "ir/value_reader.h"
#include "ir/verifier.h"

namespace weft::ir {
namespace {

using text::AttrBlock;
using text::SourcePos;
using text::Tok;
using text::Token;

/// How deep fused bodies may nest (bounds the parser's recursion).
constexpr int kMaxBodyDepth = 16;
/// The kinds a fused node may have (attribute `kind`).
constexpr std::string_view kFusedKinds[] = {"loop", "reduce", "rows", "matmul", "conv", "attention", "attention_grad"};

/// One graph being read: the top-level graph, or the body of a fused node.
struct Scope {
  Graph graph;
  std::map<std::string, ValueId> values;  ///< by the text after '%'
  std::map<std::string, SourcePos> definedAt;
  std::vector<SourcePos> nodePos;         ///< where each node of the graph is defined
  int depth = 0;                          ///< 0 for the top-level graph, 1 for its bodies, ...
  std::vector<SourcePos> inputPos;        ///< where each graph input is declared
  std::vector<SourcePos> outputPos;       ///< where each output's value is named
  SourcePos returnPos;
};

class Parser : text::ValueReader {
 public:
  Parser(std::string_view source, const std::string& file, const ParseOptions& options) : ValueReader(source, file) {
    allowElided_ = options.allowElidedConstants;
  }

  Graph parse() {
    if (tok_.kind == Tok::End) fail(tok_.pos, "empty input: expected 'graph @name(...) { ... }'");
    Scope top;
    scope_ = &top;
    parseGraphDef();
    if (tok_.kind != Tok::End) fail(tok_.pos, "unexpected " + describe(tok_) + " after the end of the graph");
    return std::move(top.graph);
  }

 private:
  /// `graph @name(...) { ... }` into the current scope, verified as a whole.
  void parseGraphDef() {
    SourcePos graphPos = tok_.pos;
    if (!atWord("graph")) unexpected(scope_->depth == 0 ? "'graph'" : "'graph' starting the fused node's body");
    advance();
    graph().setName(expect(Tok::GraphName, "a graph name '@name'").text);
    expect(Tok::LParen, "'(' and the graph inputs");
    if (tok_.kind != Tok::RParen) {
      do parseInput();
      while (accept(Tok::Comma));
    }
    expect(Tok::RParen, "',' or ')'");
    expect(Tok::LBrace, "'{'");
    while (!atWord("return")) {
      if (atWord("param")) parseParam();
      else if (atWord("update")) parseUpdate();
      else if (tok_.kind == Tok::ValueRef) parseOp();
      else unexpected("a statement ('param', '%name = op(...)' or 'return')");
    }
    parseReturn();
    try {
      verify(graph());
    } catch (const Error& e) {
      fail(firstProblemPos(graphPos), e.what());
    }
  }

  /// Where the node of the verifier's first complaint is defined (its messages start with
  /// the node's reference, as valueRefs spells it), else `fallback` (the graph's header).
  SourcePos firstProblemPos(SourcePos fallback) const {
    const std::vector<std::string> problems = verifyErrors(graph());
    if (problems.empty()) return fallback;
    const std::string& first = problems.front();
    const std::string ref = first.substr(0, first.find(' '));
    const std::vector<std::string> refs = valueRefs(graph());
    for (size_t v = 0; v < refs.size() && v < scope_->nodePos.size(); ++v)
      if (refs[v] == ref) return scope_->nodePos[v];
    return fallback;
  }

  Graph& graph() { return scope_->graph; }
  const Graph& graph() const { return scope_->graph; }
  bool inBody() const { return scope_->depth > 0; }

  ValueId lookup(const Token& ref) const {
    auto it = scope_->values.find(ref.text);
    if (it == scope_->values.end()) fail(ref.pos, "undefined value %" + ref.text);
    return it->second;
  }

  static bool isUnnamed(const Token& ref) { return ref.text[0] >= '0' && ref.text[0] <= '9'; }

  void define(const Token& ref, Node node) {
    auto [it, fresh] = scope_->values.emplace(ref.text, graph().size());
    if (!fresh) {
      SourcePos first = scope_->definedAt[ref.text];
      fail(ref.pos, "redefinition of %" + ref.text + " (first defined at line " + std::to_string(first.line) + ")");
    }
    scope_->definedAt[ref.text] = ref.pos;
    scope_->nodePos.push_back(ref.pos);
    node.name = isUnnamed(ref) ? "" : ref.text;
    graph().addNode(std::move(node));
  }

  void requireNamed(const Token& ref, const char* what) const {
    if (isUnnamed(ref)) fail(ref.pos, std::string(what) + " must be named, got %" + ref.text);
  }

  // ---- statements --------------------------------------------------------------------
  void parseInput() {
    Token ref = expect(Tok::ValueRef, "a graph input '%name: TYPE'");
    requireNamed(ref, "graph inputs");
    scope_->inputPos.push_back(ref.pos);
    expect(Tok::Colon, "':' and the input's type");
    Node n;
    n.op = OpKind::Input;
    n.type = parseType();
    n.loc = parseOptionalLoc();
    define(ref, std::move(n));
  }

  void parseParam() {
    if (inBody()) fail(tok_.pos, "a fused node's body cannot declare parameters (pass them as operands)");
    advance();  // 'param'
    Token ref = expect(Tok::ValueRef, "a parameter name '%name'");
    requireNamed(ref, "parameters");
    expect(Tok::Colon, "':' and the parameter's type");
    Node n;
    n.op = OpKind::Param;
    n.type = parseType();
    const OpInfo& info = opInfo(OpKind::Param);
    AttrBlock block = tok_.kind == Tok::LBrace ? parseAttrs(info) : AttrBlock{};
    checkMissing(info, block.attrs, ref.pos);
    for (const auto& [name, literal] : block.dense) block.attrs[name] = materialize(literal, n.type);
    n.attrs = std::move(block.attrs);
    n.loc = parseOptionalLoc();
    define(ref, std::move(n));
  }

  void parseOp() {
    Token ref = expect(Tok::ValueRef, "a value");
    expect(Tok::Equals, "'=' after " + describe(ref));
    Token opTok = expect(Tok::Word, "an op name");
    auto kind = opByName(opTok.text);
    if (!kind) fail(opTok.pos, "unknown op '" + opTok.text + "'");
    if (*kind == OpKind::Input) fail(opTok.pos, "graph inputs are declared in the graph header");
    if (*kind == OpKind::Param) fail(opTok.pos, "parameters are declared as 'param %name: TYPE {attrs}'");
    const OpInfo& info = opInfo(*kind);

    Node n;
    n.op = *kind;
    expect(Tok::LParen, "'(' after the op name");
    if (tok_.kind != Tok::RParen) {
      do n.operands.push_back(lookup(expect(Tok::ValueRef, "an operand '%value'")));
      while (accept(Tok::Comma));
    }
    expect(Tok::RParen, "',' or ')' after the operands");
    checkOperandCount(info, n.operands.size(), opTok.pos);

    bool hasAttrs = tok_.kind == Tok::LBrace;
    AttrBlock block = hasAttrs ? parseAttrs(info) : AttrBlock{};
    checkMissing(info, block.attrs, opTok.pos);
    expect(Tok::Colon, hasAttrs ? "':' and the result type" : "attributes '{...}' or ':' and the result type");
    SourcePos typePos = tok_.pos;
    n.type = parseType();
    n.loc = parseOptionalLoc();
    for (const auto& [name, literal] : block.dense) block.attrs[name] = materialize(literal, n.type);
    n.attrs = std::move(block.attrs);

    if (n.op == OpKind::Fused) {
      checkFusedKind(n, opTok.pos);
      if (tok_.kind != Tok::LBrace)
        fail(tok_.pos, "fused node " + describe(ref) +
                           " needs its body: expected '{ graph @name(...) { ... } }', got " + describe(tok_));
      n.body = parseBody(n, ref);
      define(ref, std::move(n));
      return;
    }
    if (tok_.kind == Tok::LBrace) fail(tok_.pos, "only fused nodes have a body; " + opTok.text + " does not");

    std::vector<TensorType> operandTypes;
    for (ValueId v : n.operands) operandTypes.push_back(graph().type(v));
    TensorType inferred;
    try {
      inferred = inferType(n.op, operandTypes, n.attrs);
    } catch (const Error& e) {
      fail(opTok.pos, e.what());
    }
    if (inferred != n.type)
      fail(typePos, "declared type " + n.type.str() + " but " + opTok.text + " gives " + inferred.str());
    define(ref, std::move(n));
  }

  void checkFusedKind(const Node& n, SourcePos pos) const {
    auto it = n.attrs.find("kind");
    if (it == n.attrs.end() || !std::holds_alternative<std::string>(it->second)) return;  // reported already
    const std::string& kind = std::get<std::string>(it->second);
    for (std::string_view k : kFusedKinds)
      if (kind == k) return;
    fail(pos, "fused kind must be loop, reduce, rows, matmul, conv, attention or attention_grad, got \"" + kind + "\"");
  }

  /// `{ graph ... }` after fused node `n` (operands and type read): the body, read in a
  /// scope of its own and checked against the node.
  std::shared_ptr<const Graph> parseBody(const Node& n, const Token& ref) {
    SourcePos open = tok_.pos;
    advance();  // '{'
    if (scope_->depth + 1 > kMaxBodyDepth)
      fail(open, "fused bodies nest more than " + std::to_string(kMaxBodyDepth) + " deep");
    Scope inner;
    inner.depth = scope_->depth + 1;
    Scope* outer = scope_;
    scope_ = &inner;
    SourcePos graphPos = tok_.pos;
    parseGraphDef();
    scope_ = outer;
    expect(Tok::RBrace, "'}' closing the body of " + describe(ref));

    const Graph& body = inner.graph;
    std::vector<ValueId> inputs = body.inputs();
    if (inputs.size() != n.operands.size())
      fail(graphPos, "body @" + body.name() + " takes " + std::to_string(inputs.size()) + " inputs but fused node " +
                         describe(ref) + " has " + std::to_string(n.operands.size()) + " operands");
    for (size_t i = 0; i < inputs.size(); ++i) {
      const TensorType& want = graph().type(n.operands[i]);
      if (body.type(inputs[i]) != want)
        fail(inner.inputPos[i], "body input " + valueRef(body, inputs[i]) + " has type " + body.type(inputs[i]).str() +
                                    " but operand " + std::to_string(i) + " (" + valueRef(graph(), n.operands[i]) +
                                    ") of " + describe(ref) + " has " + want.str());
    }
    if (body.outputs().size() != 1)
      fail(inner.returnPos, "the body of " + describe(ref) + " must return exactly one value, got " +
                                std::to_string(body.outputs().size()));
    const TensorType& result = body.type(body.outputs()[0].value);
    if (result != n.type)
      fail(inner.outputPos[0], "the body returns " + result.str() + " but fused node " + describe(ref) +
                                   " is declared " + n.type.str());
    return std::make_shared<const Graph>(std::move(inner.graph));
  }

  void checkOperandCount(const OpInfo& info, size_t got, SourcePos pos) const {
    size_t want = info.operandNames.size();
    if (info.variadic ? got >= 1 : got == want) return;
    std::string expected;
    if (info.variadic) {
      expected = "at least 1 operand";
    } else {
      expected = std::to_string(want) + (want == 1 ? " operand" : " operands");
      if (want > 0) {
        expected += " (";
        for (size_t i = 0; i < want; ++i) expected += (i ? ", " : "") + info.operandNames[i];
        expected += ")";
      }
    }
    fail(pos, "op '" + std::string(info.name) + "' expects " + expected + ", got " + std::to_string(got));
  }

  /// `update %param = %value`: a state write-back; checked by the verifier.
  void parseUpdate() {
    if (inBody()) fail(tok_.pos, "a fused node's body cannot update parameters");
    advance();  // 'update'
    ValueId param = lookup(expect(Tok::ValueRef, "the parameter '%name' to update"));
    expect(Tok::Equals, "'=' after the updated parameter");
    graph().addUpdate(param, lookup(expect(Tok::ValueRef, "the new value '%name'")));
  }

  void parseReturn() {
    scope_->returnPos = tok_.pos;
    advance();  // 'return'
    std::set<std::string> names;
    if (tok_.kind != Tok::RBrace) {
      do {
        Token name = expect(Tok::Word, names.empty() ? "an output 'name=%value' or '}'" : "an output 'name=%value'");
        if (!names.insert(name.text).second) fail(name.pos, "output '" + name.text + "' is defined twice");
        expect(Tok::Equals, "'=' after the output name");
        Token value = expect(Tok::ValueRef, "a value '%name'");
        scope_->outputPos.push_back(value.pos);
        graph().addOutput(name.text, lookup(value));
      } while (accept(Tok::Comma));
    }
    expect(Tok::RBrace, "',' or '}' after the outputs");
  }

  Scope* scope_ = nullptr;  ///< the graph being read (the innermost body)
};

}  // namespace

Graph parseGraph(std::string_view text, const std::string& file, const ParseOptions& options) {
  return Parser(text, file, options).parse();
}

}  // namespace weft::ir
