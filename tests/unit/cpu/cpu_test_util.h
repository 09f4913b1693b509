#pragma once
// Shared by the CPU backend tests: comparing tensor maps against the reference interpreter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "models/registry.h"
#include "passes/optimizers.h"
#include "passes/train_step.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/host_isa.h"

namespace weft::cpu::testing {

/// True on a CPU with AVX-512, which weft's native steps, its channel-blocked storage and
/// oneDNN's Winograd kernels need; tests that count them skip elsewhere (AVX2 machines).
inline bool hasAvx512() { return channelBlocksFit() && hostHasAvx512(); }
/// Why a test of weft's own vector kernels skipped: this CPU has no AVX2 with FMA, or
/// WEFT_CPU_ISA=none turns them off.
inline constexpr const char* kNeedsVectorKernels =
    "weft's vector kernels need AVX2 with FMA (and no WEFT_CPU_ISA=none)";
/// Why a test that counts AVX-512 steps skipped.
inline constexpr const char* kNeedsAvx512 = "counts steps that run only with AVX-512";

/// Sets environment variable `name` to `value` (unset when nullopt) for the object's life, then
/// puts back what it was.
class EnvironmentVariable {
 public:
  EnvironmentVariable(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    value ? ::setenv(name_.c_str(), value->c_str(), 1) : ::unsetenv(name_.c_str());
  }
  ~EnvironmentVariable() { old_ ? ::setenv(name_.c_str(), old_->c_str(), 1) : ::unsetenv(name_.c_str()); }
  EnvironmentVariable(const EnvironmentVariable&) = delete;
  EnvironmentVariable& operator=(const EnvironmentVariable&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

/// Where oneDNN has Winograd kernels (AVX-512: channelBlocksFit), runs 3x3 stride-1
/// convolutions on oneDNN for the object's life (WEFT_WINOGRAD=onednn), as a CPU whose
/// 512-bit FMAs run at half rate (Zen 4) does for graphs where oneDNN would run them as
/// Winograd; elsewhere leaves the choice to weft (WEFT_WINOGRAD unset). For tests of oneDNN's
/// Winograd steps and their blocked data.
struct OneDnnWinogradWhereItHasIt : EnvironmentVariable {
  OneDnnWinogradWhereItHasIt()
      : EnvironmentVariable("WEFT_WINOGRAD",
                            channelBlocksFit() ? std::optional<std::string>("onednn") : std::nullopt) {}
};

/// Every tensor of `got` matches `want` within `rel` relative (absolute below 1); reports at
/// most three elements per tensor, prefixed by `what`.
inline void expectClose(const reference::TensorMap& got, const reference::TensorMap& want, const std::string& what,
                        double rel = 1e-4) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << what << ": no " << name;
    const ir::TensorData& x = got.at(name);
    ASSERT_EQ(x.type, w.type) << what << ": " << name;
    int failures = 0;
    for (int64_t i = 0; i < w.numel() && failures < 3; ++i)
      if (std::fabs(x.get(i) - w.get(i)) > rel * std::max(1.0, std::fabs(w.get(i)))) {
        ADD_FAILURE() << what << ": " << name << "[" << i << "] is " << x.get(i) << ", reference " << w.get(i);
        ++failures;
      }
  }
}

/// The Adam training step of registered model `model`.
inline ir::Graph adamTrainStep(const std::string& model) {
  passes::TrainConfig config;
  config.optimizer = passes::parseOptimizer("adam");
  return passes::buildTrainStep(models::buildModel(model), config);
}

/// A training batch for mlp_tiny-like steps: float inputs sin(0.3 (i + salt)), integer labels
/// cycling over 5 classes, the learning rate `lr` 0.05.
inline reference::TensorMap trainingBatch(const ir::Graph& g, int salt) {
  reference::TensorMap feeds;
  for (ir::ValueId v : g.inputs()) {
    const ir::Node& n = g.node(v);
    ir::TensorData t(n.type);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.set(i, n.name == "lr" ? 0.05 : ir::isFloat(n.type.dtype) ? std::sin(0.3 * double(i + salt)) : double((i + salt) % 5));
    feeds[n.name] = t;
  }
  return feeds;
}

/// Feeds for every input of `g`: element i of the k-th input is sin(0.37 i + 1.3 k).
inline reference::TensorMap sineFeeds(const ir::Graph& g) {
  reference::TensorMap feeds;
  int salt = 0;
  for (ir::ValueId v : g.inputs()) {
    ir::TensorData t(g.type(v));
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, std::sin(0.37 * double(i) + 1.3 * salt));
    feeds[g.node(v).name] = std::move(t);
    ++salt;
  }
  return feeds;
}

/// Every tensor of `want` is matched by `got` within `rel` of the tensor's largest magnitude
/// (at least 1): convolutions sum hundreds of products in another order than the reference,
/// and a misread layout is off by that much. Reports at most five elements per tensor.
inline void expectCloseToLargest(const reference::TensorMap& got, const reference::TensorMap& want, double rel = 1e-4) {
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << "no " << name;
    const ir::TensorData& x = got.at(name);
    double scale = 1.0;
    for (int64_t i = 0; i < w.numel(); ++i) scale = std::max(scale, std::fabs(w.get(i)));
    int failures = 0;
    for (int64_t i = 0; i < w.numel() && failures < 5; ++i)
      if (std::fabs(w.get(i) - x.get(i)) > rel * scale) {
        ADD_FAILURE() << name << " element " << i << ": " << x.get(i) << ", reference " << w.get(i);
        ++failures;
      }
  }
}

/// One Adam step of training step `g` on `exe` (compiled from `g`, fresh state) against the
/// reference interpreter: the outputs and then the state, each within `rel` of its tensor's
/// largest magnitude. State tensors whose name contains `skip` (when given) are left out.
template <class Executable>
void expectStepMatchesReference(Executable& exe, const ir::Graph& g, double rel, const std::string& skip = {}) {
  reference::TensorMap refState = reference::initialState(g);
  reference::TensorMap batch = trainingBatch(g, 0);
  reference::TensorMap want = reference::runStep(g, batch, refState);
  expectCloseToLargest(exe.step(batch), want, rel);
  for (auto it = refState.begin(); it != refState.end();)
    it = !skip.empty() && it->first.find(skip) != std::string::npos ? refState.erase(it) : std::next(it);
  expectCloseToLargest(exe.state(), refState, rel);
}

/// The attributes of a 2-D conv-family node: `stride` and `padding` on both dims, no
/// dilation, one group, channels_last=1 when `channelsLast`.
inline ir::Attrs convAttrs(int64_t stride, int64_t padding, bool channelsLast) {
  using Ints = std::vector<int64_t>;
  ir::Attrs attrs{{"stride", Ints{stride, stride}}, {"padding", Ints{padding, padding}}, {"dilation", Ints{1, 1}},
                  {"groups", int64_t{1}}};
  if (channelsLast) attrs["channels_last"] = int64_t{1};
  return attrs;
}

/// Appends a `fused` node of kind `kind` over `operands` whose body `build` makes from the
/// body's inputs (typed like the operands).
inline ir::ValueId addFused(ir::Graph& g, const std::string& kind, const std::vector<ir::ValueId>& operands,
                            const std::function<ir::ValueId(ir::Graph&, const std::vector<ir::ValueId>&)>& build) {
  ir::Graph body(kind);
  std::vector<ir::ValueId> inputs;
  for (size_t i = 0; i < operands.size(); ++i)
    inputs.push_back(body.addInput("in" + std::to_string(i), g.type(operands[i])));
  body.addOutput("out", build(body, inputs));
  ir::Node n;
  n.op = ir::OpKind::Fused;
  n.operands = operands;
  n.attrs["kind"] = kind;
  n.type = body.type(body.outputs().at(0).value);
  n.body = std::make_shared<const ir::Graph>(std::move(body));
  return g.addNode(std::move(n));
}

}  // namespace weft::cpu::testing
