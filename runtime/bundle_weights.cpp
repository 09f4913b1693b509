// Weights of a bundle (runtime/weft.h): loading a safetensors file or buffer into the model's
// parameters and saving them. Loading checks, in order, before writing any parameter (all or
// nothing): the bytes are readable (WEFT_ERROR_IO), the header is valid safetensors
// (WEFT_ERROR_FORMAT), the metadata's weft.abi equals WEFT_ABI_VERSION (WEFT_ERROR_ABI, also
// when missing), the whole file parses (WEFT_ERROR_FORMAT), and every parameter of the bundle
// is present with its dtype and shape (WEFT_ERROR_MISMATCH, naming the tensors and the file's
// weft.graph). Tensors the bundle does not have are ignored.
#include <cstring>
#include <string_view>

#include "runtime/bundle_format.h"
#include "runtime/bundle_model.h"
#include "runtime/file_io.h"
#include "runtime/safetensors.h"

#ifndef WEFT_VERSION
#define WEFT_VERSION "unknown"
#endif

using weft::runtime::BundleError;
using weft::runtime::guarded;
using weft::runtime::requireNonNull;
namespace ir = weft::ir;

namespace weft::runtime {

namespace {

/// At most this many problems in a mismatch message.
constexpr size_t kListedProblems = 8;

/// The metadata of `bytes`, checked for this runtime's ABI version.
MetadataMap checkedMetadata(std::string_view bytes, const std::string& what) {
  MetadataMap metadata;
  try {
    metadata = readSafetensorsMetadataFromMemory(bytes, what);
  } catch (const Error& e) {
    throw BundleError(WEFT_ERROR_FORMAT, e.what());
  }
  const std::string expected = std::to_string(WEFT_ABI_VERSION);
  auto abi = metadata.find(kBundleAbiKey);
  if (abi == metadata.end())
    throw BundleError(WEFT_ERROR_ABI, what + " has no " + kBundleAbiKey +
                                          " in its metadata: it was not written for a weft bundle (this runtime "
                                          "reads weights of ABI " + expected + ")");
  if (abi->second != expected)
    throw BundleError(WEFT_ERROR_ABI, what + " was written for weft ABI " + abi->second + "; this runtime is ABI " +
                                          expected);
  return metadata;
}

/// Copies the parameters of `model` from `bytes` (see the file comment).
void loadWeights(weft_model& model, std::string_view bytes, const std::string& what) {
  MetadataMap metadata = checkedMetadata(bytes, what);
  std::map<std::string, TensorView> tensors;  // in place: a large file is not copied twice
  try {
    tensors = viewSafetensors(bytes, what);
  } catch (const Error& e) {
    throw BundleError(WEFT_ERROR_FORMAT, e.what());
  }
  const ir::Graph& g = model.graph();
  std::vector<std::string> problems;
  for (ir::ValueId p : g.params()) {
    const ir::Node& node = g.node(p);
    auto it = tensors.find(node.name);
    if (it == tensors.end())
      problems.push_back("tensor '" + node.name + "' (" + node.type.str() + ") is missing");
    else if (it->second.type != node.type)
      problems.push_back("tensor '" + node.name + "' is " + it->second.type.str() + " but the bundle's parameter is " +
                         node.type.str());
  }
  if (!problems.empty()) {
    auto graph = metadata.find(kBundleGraphKey);
    std::string message = what + " (weights of graph '" + (graph == metadata.end() ? "?" : graph->second) +
                          "') does not fit bundle '" + model.name + "' (graph '" + g.name() + "'): ";
    for (size_t i = 0; i < problems.size() && i < kListedProblems; ++i) message += (i ? "; " : "") + problems[i];
    if (problems.size() > kListedProblems)
      message += "; and " + std::to_string(problems.size() - kListedProblems) + " more";
    throw BundleError(WEFT_ERROR_MISMATCH, message);
  }
  for (ir::ValueId p : g.params()) {
    const TensorView& t = tensors.at(g.node(p).name);
    uint8_t* to = model.program->paramData(p);
    if (t.type.dtype == ir::DType::boolean)
      for (size_t i = 0; i < t.bytes.size(); ++i) to[i] = t.bytes[i] != 0;
    else if (!t.bytes.empty())
      std::memcpy(to, t.bytes.data(), t.bytes.size());
  }
  model.program->forgetHeldCopies();
  model.paramsReady = true;  // every parameter was written
}

}  // namespace

}  // namespace weft::runtime

extern "C" {

weft_status weft_model_load_weights(weft_model* model, const char* path) {
  return guarded(model, WEFT_ERROR_FORMAT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_load_weights: the model");
    requireNonNull(path, "weft_model_load_weights: the path");
    std::string bytes;
    try {
      bytes = weft::runtime::readFileBytes(path);
    } catch (const weft::Error& e) {
      throw BundleError(WEFT_ERROR_IO, e.what());
    }
    weft::runtime::loadWeights(*model, bytes, path);
  });
}

weft_status weft_model_load_weights_from_memory(weft_model* model, const void* data, size_t size) {
  return guarded(model, WEFT_ERROR_FORMAT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_load_weights_from_memory: the model");
    if (!data && size > 0) requireNonNull(data, "weft_model_load_weights_from_memory: the data");
    std::string_view bytes(data ? static_cast<const char*>(data) : "", size);
    weft::runtime::loadWeights(*model, bytes, "weights in memory (" + std::to_string(size) + " bytes)");
  });
}

weft_status weft_model_save_weights(weft_model* model, const char* path) {
  return guarded(model, WEFT_ERROR_IO, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_save_weights: the model");
    requireNonNull(path, "weft_model_save_weights: the path");
    weft::runtime::ensureParams(*model);
    const ir::Graph& g = model->graph();
    weft::runtime::TensorMap tensors;
    for (ir::ValueId p : g.params()) {
      ir::TensorData t(g.type(p));
      if (!t.bytes.empty()) std::memcpy(t.bytes.data(), model->program->paramData(p), t.bytes.size());
      tensors.emplace(g.node(p).name, std::move(t));
    }
    weft::runtime::MetadataMap metadata = {{weft::runtime::kBundleAbiKey, std::to_string(WEFT_ABI_VERSION)},
                                           {weft::runtime::kBundleGraphKey, g.name()},
                                           {weft::runtime::kBundleNameKey, model->name},
                                           {weft::runtime::kBundleVersionKey, WEFT_VERSION}};
    weft::runtime::saveSafetensors(path, tensors, metadata);
  });
}

}  // extern "C"
