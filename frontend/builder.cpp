#include "frontend/builder.h"

#include <cstring>
#include <string_view>

#include "ir/error.h"
#include "ir/verifier.h"

#ifndef WEFT_SOURCE_DIR
#define WEFT_SOURCE_DIR ""
#endif

namespace weft {
namespace {

thread_local GraphBuilder* tCurrent = nullptr;

/// The file of a source location, relative to the repository when possible.
std::string relativeFile(std::string_view file) {
  std::string_view root = WEFT_SOURCE_DIR;
  if (!root.empty() && file.size() > root.size() && file.substr(0, root.size()) == root &&
      file[root.size()] == '/')
    return std::string(file.substr(root.size() + 1));
  while (file.substr(0, 2) == "./" || file.substr(0, 3) == "../") file.remove_prefix(file[1] == '/' ? 2 : 3);
  if (file.empty() || file[0] != '/') return std::string(file);
  size_t base = file.rfind('/');
  size_t parent = base == 0 ? std::string_view::npos : file.rfind('/', base - 1);
  return std::string(parent == std::string_view::npos ? file.substr(base + 1) : file.substr(parent + 1));
}

/// SplitMix64 finalizer: a well-mixed 64-bit hash of `x`.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// FNV-1a of a string, for hashing parameter names into seeds.
uint64_t hashString(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return h;
}

int64_t toSeed(uint64_t h) { return static_cast<int64_t>(h & 0x7fffffffull); }

}  // namespace

std::string locString(const std::source_location& loc) {
  return relativeFile(loc.file_name()) + ":" + std::to_string(loc.line());
}

void failAt(const std::source_location& loc, const std::string& what) {
  throw Error(locString(loc) + ": " + what);
}

GraphBuilder::GraphBuilder(std::string graphName, uint64_t seed, DType floatType)
    : graph_(std::move(graphName)), seed_(seed), floatType_(floatType) {}

ir::Graph GraphBuilder::finish() {
  ir::verify(graph_);
  ir::Graph out = std::move(graph_);
  graph_ = ir::Graph(out.name());
  scalars_.clear();
  return out;
}

int64_t GraphBuilder::nextRandomSeed() {
  return toSeed(mix(mix(seed_) ^ hashString("random") ^ mix(randomCounter_++)));
}

int64_t GraphBuilder::paramSeed(const std::string& fullName) const {
  return toSeed(mix(mix(seed_) ^ hashString(fullName)));
}

std::string GraphBuilder::scopedName(const std::string& name) const {
  std::string full;
  for (const auto& s : scopes_) full += s + ".";
  return full + name;
}

ir::ValueId GraphBuilder::emit(ir::OpKind op, std::vector<ir::ValueId> operands, ir::Attrs attrs,
                               const std::source_location& loc) {
  std::string where = locString(loc);
  try {
    return graph_.addOp(op, std::move(operands), std::move(attrs), "", where);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

void GraphBuilder::requireFreeName(const std::string& name, const char* what,
                                   const std::source_location& loc) const {
  if (name.empty()) failAt(loc, std::string(what) + " needs a name");
  if (graph_.find(name))
    failAt(loc, std::string(what) + " name '" + name + "' is already used in graph @" + graph_.name());
}

ir::ValueId GraphBuilder::addInput(const std::string& name, ir::TensorType type,
                                   const std::source_location& loc) {
  requireFreeName(name, "input", loc);
  for (int64_t d : type.shape)
    if (d < 0) failAt(loc, "input '" + name + "' has a negative extent in " + ir::shapeStr(type.shape));
  ir::ValueId v = graph_.addInput(name, std::move(type));
  graph_.node(v).loc = locString(loc);
  return v;
}

ir::ValueId GraphBuilder::addParam(const std::string& fullName, ir::TensorType type, ir::Attrs init,
                                   const std::source_location& loc) {
  requireFreeName(fullName, "parameter", loc);
  for (int64_t d : type.shape)
    if (d < 0) failAt(loc, "parameter '" + fullName + "' has a negative extent in " + ir::shapeStr(type.shape));
  ir::ValueId v = graph_.addParam(fullName, std::move(type), std::move(init));
  graph_.node(v).loc = locString(loc);
  return v;
}

ir::ValueId GraphBuilder::scalarConstant(double value, DType dtype, const std::source_location& loc) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  auto key = std::make_pair(dtype, bits);
  if (auto it = scalars_.find(key); it != scalars_.end()) return it->second;
  auto data = std::make_shared<ir::TensorData>(ir::TensorType{dtype, {}});
  data->set(0, value);
  ir::ValueId v = addConstant(std::move(data), loc);
  scalars_[key] = v;
  return v;
}

ir::ValueId GraphBuilder::addConstant(ir::TensorDataPtr data, const std::source_location& loc) {
  if (!data) failAt(loc, "constant needs data");
  ir::ValueId v = graph_.addConstant(std::move(data));
  graph_.node(v).loc = locString(loc);
  return v;
}

void GraphBuilder::addOutput(const std::string& name, ir::ValueId v, const std::source_location& loc) {
  if (name.empty()) failAt(loc, "output needs a name");
  if (graph_.findOutput(name)) failAt(loc, "output '" + name + "' is defined twice");
  graph_.addOutput(name, v);
  ir::Node& n = graph_.node(v);
  if (n.name.empty() && !graph_.find(name)) n.name = name;
}

BuildScope::BuildScope(GraphBuilder& builder) : previous_(tCurrent) { tCurrent = &builder; }
BuildScope::~BuildScope() { tCurrent = previous_; }

NameScope::NameScope(const std::string& prefix, std::source_location loc) : builder_(&currentBuilder(loc)) {
  if (prefix.empty()) failAt(loc, "a name scope needs a non-empty prefix");
  builder_->pushScope(prefix);
}
NameScope::~NameScope() { builder_->popScope(); }

GraphBuilder& currentBuilder(std::source_location loc) {
  if (!tCurrent)
    failAt(loc, "no graph is being built here: create a weft::GraphBuilder and open a weft::BuildScope first");
  return *tCurrent;
}

GraphBuilder* currentBuilderOrNull() { return tCurrent; }

}  // namespace weft
