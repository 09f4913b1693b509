#include "tools/training/checkpoint.h"

#include <charconv>

#include "ir/error.h"
#include "runtime/safetensors.h"

namespace weft::training {
namespace {

constexpr const char* kFormatKey = "weft.format";
constexpr const char* kFormat = "weft-checkpoint-1";

std::string field(const runtime::MetadataMap& meta, const std::string& key, const std::string& path) {
  auto it = meta.find("weft." + key);
  if (it == meta.end()) throw Error(path + ": checkpoint metadata lacks 'weft." + key + "'");
  return it->second;
}

template <class Int>
Int intField(const runtime::MetadataMap& meta, const std::string& key, const std::string& path) {
  std::string text = field(meta, key, path);
  Int value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw Error(path + ": checkpoint metadata 'weft." + key + "' is not an integer: '" + text + "'");
  if constexpr (std::is_signed_v<Int>) {
    if (value < 0) throw Error(path + ": checkpoint metadata 'weft." + key + "' is negative: " + text);
  }
  return value;
}

}  // namespace

void saveCheckpoint(const std::string& path, const reference::TensorMap& state, const CheckpointInfo& info) {
  runtime::MetadataMap meta{
      {kFormatKey, kFormat},
      {"weft.model", info.model},
      {"weft.step", std::to_string(info.step)},
      {"weft.epoch", std::to_string(info.epoch)},
      {"weft.batch_index", std::to_string(info.batchIndex)},
      {"weft.seed", std::to_string(info.seed)},
      {"weft.batch_size", std::to_string(info.batchSize)},
      {"weft.optimizer", info.optimizer},
  };
  for (const auto& [key, value] : info.settings) meta["weft.setting." + key] = value;
  runtime::saveSafetensors(path, state, meta);
}

CheckpointInfo readCheckpointInfo(const std::string& path) {
  runtime::MetadataMap meta = runtime::readSafetensorsMetadata(path);
  auto format = meta.find(kFormatKey);
  if (format == meta.end())
    throw Error(path + ": not a weft training checkpoint (the safetensors metadata has no '" + std::string(kFormatKey) +
                "')");
  if (format->second != kFormat)
    throw Error(path + ": unsupported checkpoint format '" + format->second + "' (this weft reads " + kFormat + ")");
  CheckpointInfo info;
  info.model = field(meta, "model", path);
  info.step = intField<int64_t>(meta, "step", path);
  info.epoch = intField<int64_t>(meta, "epoch", path);
  info.batchIndex = intField<int64_t>(meta, "batch_index", path);
  info.seed = intField<uint64_t>(meta, "seed", path);
  info.batchSize = intField<int64_t>(meta, "batch_size", path);
  info.optimizer = field(meta, "optimizer", path);
  const std::string prefix = "weft.setting.";
  for (const auto& [key, value] : meta)
    if (key.rfind(prefix, 0) == 0) info.settings[key.substr(prefix.size())] = value;
  if (info.batchSize < 1) throw Error(path + ": checkpoint metadata 'weft.batch_size' must be positive");
  return info;
}

void loadCheckpointState(const std::string& path, reference::TensorMap& state, bool exact) {
  runtime::TensorMap loaded = runtime::loadSafetensors(path);
  if (!exact) {
    for (auto it = loaded.begin(); it != loaded.end();) it = state.count(it->first) ? std::next(it) : loaded.erase(it);
  }
  runtime::loadInto(state, loaded, path);
}

}  // namespace weft::training
