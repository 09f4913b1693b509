// Choosing oneDNN's matmul implementation by measurement (see matmul_tuning.h). The choices
// file: a first line naming the format, then one "DIGEST IMPL" line per choice (DIGEST: 16
// hex digits of the key's FNV-1a hash), appended as choices are made.
#include "runtime/cpu/matmul_tuning.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "ir/error.h"
#include "ir/printer.h"
#include "runtime/cpu/aligned_buffer.h"
#include "runtime/cpu/environment.h"
#include "runtime/cpu/native_triangular_matmul.h"
#include "runtime/cpu/onednn_ops.h"

namespace weft::cpu {

using ir::OpKind;
using ir::ValueId;

namespace {

constexpr const char* kChoicesFormat = "weft matmul choices 2";

/// FNV-1a over `text`, as 16 hex digits.
std::string digestOf(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

/// True for a name that fits a line of the file (no spaces, no control characters).
bool isPlainWord(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > ' ' && c < 127; });
}

}  // namespace

MatmulChoices::MatmulChoices(std::string file) : file_(std::move(file)) {
  if (file_.empty()) return;
  std::ifstream in(file_);
  std::string line;
  if (!in) return;
  if (!std::getline(in, line) || line != kChoicesFormat) {
    replaceFile_ = true;  // another format (or none): the first record() starts the file anew
    return;
  }
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string digest, impl, rest;
    if (fields >> digest >> impl && !(fields >> rest) && digest.size() == 16) choices_[digest] = impl;
  }
}

std::optional<std::string> MatmulChoices::find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = choices_.find(digestOf(key));
  if (it == choices_.end()) return std::nullopt;
  return it->second;
}

void MatmulChoices::record(const std::string& key, const std::string& impl) {
  if (!isPlainWord(impl)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string digest = digestOf(key);
  choices_[digest] = impl;
  if (file_.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(file_).parent_path(), error);
  const bool fresh = replaceFile_ || !std::filesystem::exists(file_, error);
  // One short write per line in append mode: processes sharing the file do not interleave.
  if (std::FILE* f = std::fopen(file_.c_str(), replaceFile_ ? "w" : "a")) {
    std::string text = (fresh ? std::string(kChoicesFormat) + "\n" : std::string()) + digest + " " + impl + "\n";
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    replaceFile_ = false;
  }  // a file that cannot be written keeps the choice in memory only
}

namespace {

/// Multiply-adds of matmul node `n` (result elements times the contracted extent).
int64_t multiplyAdds(const ir::Graph& body, const ir::Node& n) {
  const ir::Shape& lhs = body.type(n.operands[0]).shape;
  const bool transposed = ir::AttrReader(n.attrs, n.op).i("transpose_lhs", 0) != 0;
  return n.type.numel() * (transposed ? lhs[lhs.size() - 2] : lhs.back());
}

/// The matmul node `v` of `g` contracts with (itself, or its fused body's), or null.
const ir::Node* contractionOf(const ir::Graph& g, ValueId v, const ir::Graph** where) {
  const ir::Node& node = g.node(v);
  *where = &g;
  if (node.op == OpKind::Matmul) return &node;
  if (node.op != OpKind::Fused || !node.body || ir::AttrReader(node.attrs, node.op).s("kind") != "matmul")
    return nullptr;
  *where = node.body.get();
  for (ValueId b = 0; b < node.body->size(); ++b)
    if (node.body->node(b).op == OpKind::Matmul) return &node.body->node(b);
  return nullptr;
}

/// What the step of node `v` computes, as the key of its choice.
std::string keyOf(const ir::Graph& g, ValueId v, int threads, bool coldCaches) {
  const ir::Node& node = g.node(v);
  std::ostringstream key;
  key << "threads=" << threads << " isa=" << static_cast<int>(dnnl::get_effective_cpu_isa()) << "\n";
  if (coldCaches) key << "constant weights\n";
  for (ValueId o : node.operands) key << g.type(o).str() << "\n";
  key << node.type.str() << "\n";
  if (node.op == OpKind::Fused) {
    key << ir::printGraph(*node.body);
  } else {
    ir::AttrReader attr(node.attrs, node.op);
    key << "matmul " << attr.i("transpose_lhs", 0) << attr.i("transpose_rhs", 0);
  }
  return key.str();
}

/// Timed runs of each candidate, taken in turns so that a slow spell of the machine (another
/// process, a frequency change) falls on all of them alike; the fastest run of each counts.
constexpr int kTimedRounds = 5;
/// Bytes each thread touches before a timed run to push the previous run's data out of its
/// core's private caches (L1 and a 2 MiB L2 on the Intel Xeon of stop 28).
constexpr size_t kEvictedBytesPerThread = size_t{4} << 20;
/// How much faster than oneDNN's first choice another implementation must run to be chosen.
constexpr double kRequiredGain = 1.03;

/// Sets OpenMP's thread count for its lifetime, then restores the previous one.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : previous_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~ThreadCount() { omp_set_num_threads(previous_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int previous_;
};

/// The implementation of `names` (oneDNN's order) that node `v` runs fastest with, timed over
/// scratch buffers shaped as its operands and result; the first unless another is 3% faster.
/// `coldCaches`: each run starts from cold private caches (constant weights).
std::string fastestImplementation(ir::Graph& g, ValueId v, const std::vector<std::string>& names,
                                  const dnnl::engine& engine, const StepLayouts& layouts, bool coldCaches,
                                  int threads) {
  std::vector<std::unique_ptr<OneDnnStep>> steps;
  std::vector<size_t> candidates;  // index into names of each step
  for (size_t i = 0; i < names.size(); ++i) {
    g.node(v).attrs["impl"] = names[i];
    std::unique_ptr<OneDnnStep> step = compileOneDnnNode(g, v, engine, layouts);
    if (!step || step->describe().find("[" + names[i] + "]") == std::string::npos) continue;
    steps.push_back(std::move(step));
    candidates.push_back(i);
  }
  g.node(v).attrs.erase("impl");
  if (steps.empty()) return names[0];

  std::vector<AlignedBuffer> buffers;
  std::vector<const void*> operands;
  auto buffer = [&](int64_t bytes, int64_t floats) {
    buffers.emplace_back(bytes);
    auto* f = reinterpret_cast<float*>(buffers.back().data());
    std::fill(f, f + floats, 0.01f);
    return buffers.back().data();
  };
  const ir::Node& node = g.node(v);
  buffers.reserve(node.operands.size() + 1 + steps.size());
  for (ValueId o : node.operands)  // matmul operands are f32 (compileOneDnnNode)
    operands.push_back(buffer(static_cast<int64_t>(g.type(o).byteSize()), g.type(o).numel()));
  void* result = buffer(static_cast<int64_t>(node.type.byteSize()), node.type.numel());
  for (auto& step : steps)
    if (step->scratchBytes() > 0) step->useScratch(buffer(static_cast<int64_t>(step->scratchBytes()), 0));

  dnnl::stream stream(engine);
  // With constant weights each run starts from cold private caches, as it does inside a
  // graph, where other steps ran in between: brgemm's held panels won over hot caches but
  // lost in realnvp's inference to the jit sgemm reading row-major weights from L3, and so
  // did brgemm over row-major weights with realnvp's epilogues. (Training steps' matmuls are
  // timed hot: cold runs hid a 4% gain of the sgemm on gpt's [1024,256]x[256,1024].)
  const size_t evicted = coldCaches ? kEvictedBytesPerThread / sizeof(float) : 0;
  std::vector<float> evict(evicted * static_cast<size_t>(threads));
  auto evictCaches = [&] {
    if (evict.empty()) return;
#pragma omp parallel num_threads(threads)
    {
      const size_t chunk = evict.size() / static_cast<size_t>(omp_get_num_threads());
      float* part = evict.data() + chunk * static_cast<size_t>(omp_get_thread_num());
      for (size_t i = 0; i < chunk; ++i) part[i] += 1.0f;
    }
  };
  std::vector<double> fastest(steps.size(), 1e30);
  for (int round = 0; round <= kTimedRounds; ++round)
    for (size_t s = 0; s < steps.size(); ++s) {
      evictCaches();
      auto start = std::chrono::steady_clock::now();
      steps[s]->run(operands, result, stream);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (round > 0) fastest[s] = std::min(fastest[s], seconds);  // round 0 warms up
    }
  auto score = [&](size_t s) { return fastest[s] * (candidates[s] == 0 ? 1.0 : kRequiredGain); };
  size_t best = 0;
  for (size_t s = 1; s < steps.size(); ++s)
    if (score(s) < score(best)) best = s;
  return names[candidates[best]];
}

}  // namespace

MatmulTuning tuneMatmuls(ir::Graph& g, int threads, MatmulChoices& choices, bool holdConstants) {
  MatmulTuning tuning;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const ThreadCount timedWith(threads);
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Graph* where = nullptr;
    const ir::Node* contraction = contractionOf(g, v, &where);
    if (!contraction || g.node(v).attrs.count("impl") || runsTriangularMatmul(g, v)) continue;
    const int64_t work = multiplyAdds(*where, *contraction);
    if (work < kMinTunedMultiplyAdds || work > kMaxTunedMultiplyAdds) continue;
    StepLayouts layouts;
    if (holdConstants) layouts.constantOperands = constantOperandsOf(g, v);
    std::unique_ptr<OneDnnStep> first = compileOneDnnNode(g, v, engine, layouts);
    const std::vector<std::string> names = first ? first->implementations() : std::vector<std::string>{};
    if (names.size() < 2) continue;
    // Constant weights (an inference graph's) are timed from cold caches, as every run
    // reads them anew from L3 between the other steps' data.
    const bool coldCaches = first->heldBytes() > 0 || (layouts.constantOperands.size() > 1 && layouts.constantOperands[1]);
    const std::string key = keyOf(g, v, threads, coldCaches);
    std::optional<std::string> chosen = choices.find(key);
    if (chosen && std::find(names.begin(), names.end(), *chosen) != names.end()) {
      ++tuning.remembered;
    } else {
      chosen = fastestImplementation(g, v, names, engine, layouts, coldCaches, threads);
      choices.record(key, *chosen);
      ++tuning.timed;
    }
    if (*chosen != names[0]) {
      g.node(v).attrs["impl"] = *chosen;
      ++tuning.changed;
    }
  }
  return tuning;
}

bool tuneMatmulsFromEnvironment() {
  return environmentChoice("WEFT_TUNE_MATMULS", {"1", "0"}, "1 (time matmul implementations, the default) or 0") == 0;
}

}  // namespace weft::cpu
