#pragma once
/// The graph builder behind the model DSL: owns the ir::Graph being written, the model seed,
/// the float dtype, the train/eval mode and the parameter name scopes. A thread-local
/// "current builder" (set by BuildScope) tells the DSL's free functions where to emit.
#include <cstdint>
#include <map>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"

namespace weft {

/// The dtype enum of the IR, spelled `weft::DType` in model code.
using DType = ir::DType;
/// A static shape, spelled `weft::Shape` in model code.
using Shape = ir::Shape;

/// The source location of a DSL call as `FILE:LINE`, FILE relative to the repository when
/// the file lies inside it (e.g. `models/mlp.cpp:42`), else `parent/file.cpp:42`.
std::string locString(const std::source_location& loc);

/// Throws weft::Error with the message `FILE:LINE: what` for the location `loc`.
[[noreturn]] void failAt(const std::source_location& loc, const std::string& what);

/// Writes one ir::Graph. Every op goes through emit(), which records the model source line
/// in Node::loc and prefixes type errors with it.
class GraphBuilder {
 public:
  /// A builder for a graph called `graphName`. `seed` keys every parameter initializer and
  /// random op; `floatType` is the dtype of inputs, parameters and constants by default.
  explicit GraphBuilder(std::string graphName, uint64_t seed = 0, DType floatType = DType::f32);
  GraphBuilder(const GraphBuilder&) = delete;
  GraphBuilder& operator=(const GraphBuilder&) = delete;

  /// The graph written so far.
  const ir::Graph& graph() const { return graph_; }
  /// The graph written so far, mutable (for tools that post-edit it).
  ir::Graph& graph() { return graph_; }
  /// Verifies the graph and moves it out; the builder is empty afterwards.
  ir::Graph finish();

  /// The model seed.
  uint64_t seed() const { return seed_; }
  /// The default float dtype (f32 unless set otherwise).
  DType floatType() const { return floatType_; }
  /// True while building the training form of layers (dropout active, batch statistics).
  bool training() const { return training_; }
  /// Selects the training (true, the default) or evaluation form of layers built from now on.
  void setTraining(bool on) { training_ = on; }

  /// A fresh seed for the next random op: hash(model seed, "random", counter), 31 bits.
  int64_t nextRandomSeed();
  /// The seed of the parameter called `fullName`: hash(model seed, name), 31 bits, so adding
  /// a layer does not change how the others are initialized.
  int64_t paramSeed(const std::string& fullName) const;

  /// `name` prefixed with the open name scopes, joined by dots (`blocks.0.ln1.weight`).
  std::string scopedName(const std::string& name) const;
  /// Opens a name scope (see NameScope).
  void pushScope(const std::string& prefix) { scopes_.push_back(prefix); }
  /// Closes the innermost name scope.
  void popScope() { scopes_.pop_back(); }

  /// Adds an op node; its type comes from the op's type rule. On a type error, throws
  /// weft::Error `FILE:LINE: <the rule's message>`.
  ir::ValueId emit(ir::OpKind op, std::vector<ir::ValueId> operands, ir::Attrs attrs,
                   const std::source_location& loc);
  /// Adds a graph input; throws when the name is taken.
  ir::ValueId addInput(const std::string& name, ir::TensorType type, const std::source_location& loc);
  /// Adds a parameter called `fullName` (already scoped) with initializer attributes.
  ir::ValueId addParam(const std::string& fullName, ir::TensorType type, ir::Attrs init,
                       const std::source_location& loc);
  /// A rank-0 constant holding `value` as `dtype`; equal scalars share one node.
  ir::ValueId scalarConstant(double value, DType dtype, const std::source_location& loc);
  /// Adds a constant holding `data`.
  ir::ValueId addConstant(ir::TensorDataPtr data, const std::source_location& loc);
  /// Marks `v` as the output `name` (names the value's node too when it is unnamed).
  void addOutput(const std::string& name, ir::ValueId v, const std::source_location& loc);

 private:
  void requireFreeName(const std::string& name, const char* what, const std::source_location& loc) const;

  ir::Graph graph_;
  uint64_t seed_;
  DType floatType_;
  bool training_ = true;
  uint64_t randomCounter_ = 0;
  std::vector<std::string> scopes_;
  std::map<std::pair<DType, uint64_t>, ir::ValueId> scalars_;  ///< keyed by the value's bits
};

/// Makes `builder` the current builder of this thread for its lifetime (scopes nest).
class BuildScope {
 public:
  /// Installs `builder` as current.
  explicit BuildScope(GraphBuilder& builder);
  /// Restores the builder that was current before.
  ~BuildScope();
  BuildScope(const BuildScope&) = delete;
  BuildScope& operator=(const BuildScope&) = delete;

 private:
  GraphBuilder* previous_;
};

/// Prefixes the names of parameters created during its lifetime with `prefix.` (nests:
/// NameScope("blocks.0") then Linear("qkv") gives `blocks.0.qkv.weight`).
class NameScope {
 public:
  /// Opens the scope on the current builder.
  explicit NameScope(const std::string& prefix,
                     std::source_location loc = std::source_location::current());
  /// Closes it.
  ~NameScope();
  NameScope(const NameScope&) = delete;
  NameScope& operator=(const NameScope&) = delete;

 private:
  GraphBuilder* builder_;
};

/// The current builder of this thread; throws weft::Error at `loc` when there is none.
GraphBuilder& currentBuilder(std::source_location loc = std::source_location::current());
/// The current builder of this thread, or nullptr.
GraphBuilder* currentBuilderOrNull();

}  // namespace weft
