// Timing, FLOP counting, the oneDNN GEMM reference rate and benchmark inputs.
#include "bench/harness.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "ir/attrs.h"
#include "ir/error.h"
#include "ir/ops.h"

namespace weft::bench {
namespace {

using Clock = std::chrono::steady_clock;

/// Which nodes of `g` contribute to an output or an update (nodes are in topological order).
std::vector<bool> liveNodes(const ir::Graph& g) {
  std::vector<bool> live(static_cast<size_t>(g.size()), false);
  for (const auto& out : g.outputs()) live[static_cast<size_t>(out.value)] = true;
  for (const auto& u : g.updates()) {
    live[static_cast<size_t>(u.param)] = true;
    live[static_cast<size_t>(u.value)] = true;
  }
  for (ir::ValueId v = g.size() - 1; v >= 0; --v)
    if (live[static_cast<size_t>(v)])
      for (ir::ValueId operand : g.node(v).operands) live[static_cast<size_t>(operand)] = true;
  return live;
}

/// Elements of `shape` from dim `from` on.
double elementsFrom(const ir::Shape& shape, size_t from) {
  double n = 1;
  for (size_t d = from; d < shape.size(); ++d) n *= static_cast<double>(shape[d]);
  return n;
}

/// The FLOPs of one node (its body's for a fused node).
double nodeFlops(const ir::Graph& g, const ir::Node& n) {
  auto elements = [](const ir::TensorType& t) { return static_cast<double>(t.numel()); };
  switch (n.op) {
    case ir::OpKind::Matmul: {
      ir::AttrReader attr(n.attrs, n.op);
      const ir::Shape& lhs = g.type(n.operands[0]).shape;
      int64_t k = attr.i("transpose_lhs", 0) ? lhs[lhs.size() - 2] : lhs.back();
      return 2 * elements(n.type) * static_cast<double>(k);
    }
    case ir::OpKind::Conv: {  // w [O, C/groups, k...]: each output element takes C/groups * k MACs
      const ir::Shape& w = g.type(n.operands[1]).shape;
      return 2 * elements(n.type) * elementsFrom(w, 1);
    }
    case ir::OpKind::ConvTranspose: {  // w [C, O/groups, k...]: each input element feeds O/groups * k outputs
      const ir::Shape& w = g.type(n.operands[1]).shape;
      return 2 * elements(g.type(n.operands[0])) * elementsFrom(w, 1);
    }
    case ir::OpKind::ConvWeightGrad: {  // result dw [O, C/groups, k...], dy [N, O, ...]
      return 2 * elements(g.type(n.operands[1])) * elementsFrom(n.type.shape, 1);
    }
    case ir::OpKind::Attention: {  // q [..., T, D], k [..., S, D], v [..., S, Dv]
      const ir::Shape& q = g.type(n.operands[0]).shape;
      const ir::Shape& k = g.type(n.operands[1]).shape;
      const ir::Shape& v = g.type(n.operands[2]).shape;
      double scores = elementsFrom(q, 0) / static_cast<double>(q.back()) * static_cast<double>(k[k.size() - 2]);
      return 2 * scores * static_cast<double>(q.back() + v.back());
    }
    case ir::OpKind::Fused:
      return n.body ? countFlops(*n.body) : 0;
    default:
      return 0;
  }
}

}  // namespace

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

Timing timeRuns(const std::function<void()>& fn, int warmup, int repeat, double warmupSeconds) {
  if (repeat < 1) throw Error("bench: --repeat must be at least 1, got " + std::to_string(repeat));
  if (warmup < 0) throw Error("bench: --warmup must not be negative, got " + std::to_string(warmup));
  const Clock::time_point warmupStart = Clock::now();
  for (int i = 0; i < warmup || std::chrono::duration<double>(Clock::now() - warmupStart).count() < warmupSeconds; ++i)
    fn();
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    Clock::time_point start = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  Timing t;
  t.medianMs = median(ms);
  t.minMs = *std::min_element(ms.begin(), ms.end());
  t.maxMs = *std::max_element(ms.begin(), ms.end());
  t.runs = repeat;
  return t;
}

double countFlops(const ir::Graph& g) {
  std::vector<bool> live = liveNodes(g);
  double flops = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (live[static_cast<size_t>(v)]) flops += nodeFlops(g, g.node(v));
  return flops;
}

double measureGemmGflops(int64_t n, int threads, int warmup, int repeat) {
  if (n < 1 || threads < 1) throw Error("bench: the GEMM size and thread count must be positive");
  omp_set_num_threads(threads);
  using dnnl::memory;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  memory::desc desc({n, n}, memory::data_type::f32, memory::format_tag::ab);
  std::vector<float> a(static_cast<size_t>(n * n)), b(a.size()), c(a.size());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = uniform(rng);
    b[i] = uniform(rng);
  }
  memory aMem(desc, engine, a.data()), bMem(desc, engine, b.data()), cMem(desc, engine, c.data());
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(desc, desc, desc), engine);
  std::vector<std::string> timed;
  double bestMs = 0;
  do {  // each implementation once (oneDNN lists some twice), never the reference one
    const std::string impl = pd.impl_info_str();
    if (impl.rfind("ref", 0) == 0 || std::find(timed.begin(), timed.end(), impl) != timed.end()) continue;
    timed.push_back(impl);
    dnnl::matmul matmul(pd);
    Timing t = timeRuns(
        [&] {
          matmul.execute(stream, {{DNNL_ARG_SRC, aMem}, {DNNL_ARG_WEIGHTS, bMem}, {DNNL_ARG_DST, cMem}});
          stream.wait();
        },
        warmup, repeat);
    if (bestMs == 0 || t.medianMs < bestMs) bestMs = t.medianMs;
  } while (pd.next_impl());
  double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
  return flops / (bestMs * 1e6);
}

reference::TensorMap benchmarkInputs(const ir::Graph& g, uint64_t seed) {
  int64_t classes = 2;
  if (auto logits = g.findOutput("logits"); logits && g.type(*logits).rank() > 0)
    classes = std::max<int64_t>(1, g.type(*logits).shape.back());
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  reference::TensorMap inputs;
  for (ir::ValueId v : g.inputs()) {
    const ir::Node& node = g.node(v);
    ir::TensorData t(node.type);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (node.type.dtype == ir::DType::boolean) {
        t.set(i, static_cast<double>(rng() & 1u));
      } else if (ir::isInteger(node.type.dtype)) {
        t.set(i, static_cast<double>(std::uniform_int_distribution<int64_t>(0, classes - 1)(rng)));
      } else {
        t.set(i, node.name == "lr" && node.type.rank() == 0 ? 1e-3 : uniform(rng));
      }
    }
    inputs.emplace(node.name, std::move(t));
  }
  return inputs;
}

}  // namespace weft::bench
