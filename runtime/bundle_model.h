#pragma once
/// Internal to the C interface (runtime/bundle*.cpp): what a weft_model holds, the error
/// type that carries a weft_status, and the guard that turns every exception into a status
/// and a message so that nothing throws across the C boundary.
#include <cstdint>
#include <memory>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ir/error.h"
#include "ir/graph.h"
#include "runtime/cpu/kernel_call.h"
#include "runtime/cpu/program.h"
#include "runtime/weft.h"

/// A bundle made runnable (declared opaque in runtime/weft.h).
struct weft_model {
  const weft_bundle* bundle = nullptr;
  std::string name;                             ///< the bundle's name, for messages
  std::vector<weft::cpu::KernelEntry> kernels;  ///< the bundle's kernel table (never resized once built)
  std::unique_ptr<weft::cpu::Program> program;  ///< owns the parsed graph, the arena and the state block
  std::vector<const void*> bound;               ///< per value: the caller's data of a set input, else null
  uint64_t stepCounter = 0;                     ///< keys random draws; weft_model_step advances it
  bool outputsValid = false;                    ///< a run completed since the model was made
  /// The parameters hold values: loaded weights, or their initializers, which run lazily on
  /// first need (so a model whose weights get loaded never pays for drawing them).
  bool paramsReady = false;
  /// A program may write parameters directly (weft_model_param handed it a pointer, or it owns
  /// the state memory): every run converts the weights oneDNN steps hold again
  /// (ProgramOptions::holdConstantCopies), so that such writes always count.
  bool paramsExposed = false;
  mutable std::string error;                    ///< the message of the last failed call

  /// The graph the model runs.
  const weft::ir::Graph& graph() const { return program->graph(); }
};

namespace weft::runtime {

/// Fills the parameters of `model` from their initializers unless they already hold values.
void ensureParams(weft_model& model);

/// A failure of a C interface call with the status it returns.
class BundleError : public Error {
 public:
  /// An error reported as `status` with a complete, user-facing `message`.
  BundleError(weft_status status, const std::string& message) : Error(message), status_(status) {}
  /// The status the call returns.
  weft_status status() const { return status_; }

 private:
  weft_status status_;
};

/// Records `message` as the model's (when `model` is not null) and the thread's last error.
void recordError(const weft_model* model, const std::string& message);

/// The status of a failed call: what `failed` carries, after recording its message.
weft_status failWith(const weft_model* model, weft_status status, const std::string& message);

/// Runs `body`, returning WEFT_OK, or the status of what it threw: a BundleError its own;
/// another weft::Error `userStatus`; a dnnl::error `onednnStatus`; running out of memory and
/// anything else WEFT_ERROR_INTERNAL. The message is recorded with `model` and the thread.
template <class Body>
weft_status guarded(const weft_model* model, weft_status userStatus, weft_status onednnStatus, Body&& body) noexcept {
  try {
    body();
    return WEFT_OK;
  } catch (const BundleError& e) {
    return failWith(model, e.status(), e.what());
  } catch (const Error& e) {
    return failWith(model, userStatus, e.what());
  } catch (const dnnl::error& e) {
    return failWith(model, onednnStatus, std::string("oneDNN failed: ") + e.what());
  } catch (const std::bad_alloc&) {
    return failWith(model, WEFT_ERROR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return failWith(model, WEFT_ERROR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return failWith(model, WEFT_ERROR_INTERNAL, "internal error: an unknown exception");
  }
}

/// Throws BundleError(WEFT_ERROR_ARGUMENT) naming `what` when `pointer` is null.
inline void requireNonNull(const void* pointer, const char* what) {
  if (!pointer) throw BundleError(WEFT_ERROR_ARGUMENT, std::string(what) + " is NULL");
}

/// The parameter of the model called `name`, if any.
std::optional<ir::ValueId> findParam(const weft_model& model, const std::string& name);

}  // namespace weft::runtime
