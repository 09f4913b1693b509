#pragma once
/// Training checkpoints: the whole training state (parameters, optimizer state, running
/// statistics) as a safetensors file, with the position in the run as metadata, so that a
/// resumed run continues exactly where the saved one stopped.
#include <cstdint>
#include <map>
#include <string>

#include "backends/reference/interpreter.h"

namespace weft::training {

/// Where a run stands: what is needed, beside the tensors, to continue it exactly.
struct CheckpointInfo {
  std::string model;       ///< registry name of the model
  int64_t step = 0;        ///< training steps done so far (the next step's index)
  int64_t epoch = 0;       ///< epoch of the next batch
  int64_t batchIndex = 0;  ///< index within its epoch of the next batch
  uint64_t seed = 0;       ///< seed of the run (initialization and batch order)
  int64_t batchSize = 0;   ///< examples per step
  std::string optimizer;   ///< optimizer name (sgd, momentum, nesterov, adam, adamw)
  /// Free-form settings of the run (e.g. the command-line options), stored as
  /// `weft.setting.<key>` so that a resumed run can default to them.
  std::map<std::string, std::string> settings;
};

/// Writes `state` and `info` to `path` atomically (the file is never half-written). Throws
/// weft::Error naming the path on failure.
void saveCheckpoint(const std::string& path, const reference::TensorMap& state, const CheckpointInfo& info);

/// Reads the metadata of the checkpoint at `path`. Throws weft::Error naming the path for a
/// missing or corrupt file, a safetensors file that is not a weft checkpoint, or a missing
/// or malformed field.
CheckpointInfo readCheckpointInfo(const std::string& path);

/// Replaces the values of `state` with the checkpoint's tensors. With `exact`, the file must
/// hold exactly the tensors of `state`; without, extra tensors in the file are ignored (e.g.
/// optimizer state when loading into an evaluation graph). On a missing tensor or a type
/// mismatch it throws weft::Error naming the file and the tensor and leaves `state` untouched.
void loadCheckpointState(const std::string& path, reference::TensorMap& state, bool exact);

}  // namespace weft::training
