#pragma once
/// Reverse-mode autodiff as IR: appends the gradient computation of a graph to the graph
/// itself, as ordinary nodes, so that it composes with everything else (gradients of
/// gradients, gradients w.r.t. inputs, vector-Jacobian products).
///
/// How it works: starting from the output with a cotangent (1 for a scalar, or the given one),
/// the nodes on a differentiable path between the `wrt` values and the output are visited in
/// reverse order; each calls its op's gradient rule (passes/grad_rules.h), which emits the
/// operand cotangents in primitives. Cotangents that meet at a value are summed with `add`.
/// Composite ops without a rule of their own are differentiated through their decomposition
/// on the fly: the decomposition is emitted (a recomputation from the composite's operands)
/// and differentiated locally. The forward nodes are never changed or renumbered, so the
/// ValueIds of a request stay valid and the result's ValueIds refer to the same graph.
///
/// What carries a gradient: only float values, along the float operands of float-valued
/// kDiff ops. Specifically:
///  - stop_gradient blocks explicitly: a wrt value connected to the output only through it
///    gets no gradient (reported as unreachable, with a note). Straight-through constructs
///    are written with it: x + stop_gradient(f(x) - x).
///  - A kNoGrad op with a float result (sign, floor) on a differentiable path is an error
///    naming the op, its %value and loc.
///  - Integer and bool values (argmax, comparisons, labels, casts to integers) carry no
///    gradient. A wrt value that reaches the output only through such an edge is an error
///    naming the op where the path stops; a wrt value that also has a differentiable path
///    just gets the gradient of that path (e.g. a mask computed by a comparison beside it).
///  - Asking for a gradient w.r.t. an integer or bool value is an error.
///  - The rules' own piecewise-constant masks (abs, maximum, reduce_max, max_pool, relu...)
///    read their inputs through stop_gradient, so their second derivative is the (a.e.)
///    correct zero rather than an error.
/// Ties: maximum/minimum split the cotangent evenly between equal operands; reduce_max/min
/// divide it evenly among the tied maxima; max_pool routes it to the window's first maximum.
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::passes {

/// What to differentiate.
struct GradRequest {
  ir::ValueId output;                    ///< the value to differentiate (one element unless cotangent given)
  std::vector<ir::ValueId> wrt;          ///< params or inputs (or any values)
  std::optional<ir::ValueId> cotangent;  ///< for a vector-Jacobian product: same type as output
};

/// The result of appendGradients.
struct GradResult {
  /// One gradient value per wrt entry, of the wrt value's type; nullopt when unreachable.
  std::vector<std::optional<ir::ValueId>> grads;
  /// Names (or %ids) of the wrt values that get no gradient.
  std::vector<std::string> unreachable;
  /// One line per unreachable value saying why (no path, or blocked by stop_gradient).
  std::vector<std::string> notes;
};

/// Appends the gradient computation of `req.output` w.r.t. `req.wrt` to `g` and returns the
/// gradient values (see the file comment for the rules). Throws weft::Error, leaving `g`
/// unchanged, for a bad request (unknown value, non-float output, several elements without
/// a cotangent, a cotangent of the wrong type, an integer wrt value) and for a path through
/// a non-differentiable op (the message names the op, its %value and loc).
GradResult appendGradients(ir::Graph& g, const GradRequest& req);

/// Differentiates the graph output `outputName` w.r.t. the values named `wrtNames` and adds
/// a graph output `grad.<name>` for each (zeros of the right type for unreachable ones, with a
/// note in the result). Gradient values made by this call are named `grad.<name>` when the
/// name is free. Throws weft::Error for an unknown output or value name, an existing
/// `grad.<name>` output, or anything appendGradients rejects.
GradResult addGradientOutputs(ir::Graph& g, const std::string& outputName, const std::vector<std::string>& wrtNames);

/// The command-line form of addGradientOutputs: `OUTPUT` or `OUTPUT:NAME,NAME,...`, where a
/// NAME of `params` stands for every parameter and `inputs` for every float input; `OUTPUT`
/// alone means `OUTPUT:params`. Example: `loss:params`, `loss:x` (saliency), `loss:fc1.weight`.
GradResult addGradientOutputsFromSpec(ir::Graph& g, const std::string& spec);

/// True when `op` has a gradient rule of its own (primitives, and composites with a direct rule).
bool hasGradRule(ir::OpKind op);
/// True when autodiff can differentiate `op`: it has a rule or a decomposition.
bool isDifferentiable(ir::OpKind op);

}  // namespace weft::passes
