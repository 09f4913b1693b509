#pragma once
/// Internal to the oneDNN lowering: the step that runs a short sequence of oneDNN primitives
/// over the node's buffers, and descriptor helpers shared by the per-family files.
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/cpu/onednn_ops.h"
#include "ir/types.h"

namespace weft::cpu::onednn {

using dnnl::memory;

/// oneDNN dims from a weft shape.
memory::dims dimsOf(const ir::Shape& shape);
/// A f32 descriptor of `dims` with explicit element `strides`.
memory::desc stridedDesc(const ir::Shape& dims, const ir::Shape& strides);
/// A f32 row-major descriptor of `dims`.
memory::desc rowMajorDesc(const ir::Shape& dims);
/// A f32 descriptor of `dims` whose layout the primitive chooses (format_tag::any).
memory::desc anyDesc(const ir::Shape& dims);
/// The descriptor of channels-first `dims` (all of, or a prefix of, the channels-first view
/// of a row-major buffer of shape `stored`): row-major strides of `stored` when not
/// `channelsLast`, else the [N, spatial..., C] buffer's strides in [N, C, spatial...] order.
memory::desc dataDesc(const ir::Shape& dims, const ir::Shape& stored, bool channelsLast);

/// The layouts a primitive is created with: the user's row-major ones, or layouts the
/// primitive picks (blocked, reordered from and to the user's inside the step).
enum class Layout { RowMajor, Chosen };

/// The descriptor a primitive is created with for a tensor of `dims` under `layout`.
memory::desc primitiveDesc(const ir::Shape& dims, Layout layout);

/// True when a primitive descriptor's implementation is oneDNN's reference (slow) one.
bool isReferenceImpl(const char* implInfo);

/// A step running primitives in order. Memories bound to the node's operands and result get
/// their data pointers at run time; everything else (converted copies, workspaces, constants)
/// is allocated once when the step is built. Not thread-safe (one run at a time).
class PrimitiveStep final : public OneDnnStep {
 public:
  /// An empty step described as `what` (the implementation name is appended by noteImpl),
  /// whose whole operands and result (row-major or channels-last buffers) are stored as
  /// `layouts` says instead.
  PrimitiveStep(std::string what, const dnnl::engine& engine, StepLayouts layouts = {})
      : what_(std::move(what)), engine_(engine), layouts_(std::move(layouts)) {
    layouts_.conversionFits = nullptr;  // asked while building only
  }

  /// A memory viewing operand `i` through `user` (a view may cover part of the buffer), or
  /// in the layout `layouts` gives operand i when `user` views the whole buffer (row-major or
  /// channels-last).
  memory operand(size_t i, const memory::desc& user);
  /// A memory viewing the result through `user` (or its layout in `layouts`, as operand()).
  memory result(const memory::desc& user);
  /// A memory viewing the bytes of operand `index` (-1: the result) from `byteOffset` on
  /// through `user`: one part of the buffer, such as a chunk of the batch.
  memory part(int index, const memory::desc& user, size_t byteOffset);
  /// `user` itself when its descriptor is `wanted`; otherwise a scratch buffer in layout
  /// `wanted` that a reorder fills from `user` before the primitives run.
  memory input(const memory& user, const memory::desc& wanted);
  /// `user` itself when its descriptor is `wanted`; otherwise a buffer the step owns in
  /// layout `wanted`, which a reorder fills from `user` before the primitives run only when
  /// it has not converted the bytes there yet: on the first run, when `user` is bound to
  /// another address, and after forgetHeldCopies(). For constant operands (StepLayouts).
  memory heldInput(const memory& user, const memory::desc& wanted);
  /// Operand `i` viewed through `user` (operand()) and read in layout `wanted`: through
  /// heldInput() when the step's layouts mark the operand constant, else through input().
  memory convertedOperand(size_t i, const memory::desc& user, const memory::desc& wanted) {
    memory bound = operand(i, user);
    return layouts_.constantOperand(i) ? heldInput(bound, wanted) : input(bound, wanted);
  }
  /// `user` itself when its descriptor is `wanted`; otherwise a scratch buffer in layout
  /// `wanted` that the primitives write and a reorder copies into `user` after they ran.
  memory output(const memory& user, const memory::desc& wanted);
  /// Copies `from` into `to` (converting the layout) before the primitives run; nothing when
  /// both are one buffer in one layout (the memory plan put the result in place of `from`).
  void copyFirst(const memory& from, const memory& to);
  /// A buffer owned by the step that keeps its contents between runs (a constant).
  memory held(const memory::desc& desc);
  /// A buffer whose contents matter only while the step runs (a workspace, a destination
  /// nobody reads), placed where useScratch() says.
  memory scratch(const memory::desc& desc);
  /// Appends a primitive with its arguments.
  void add(dnnl::primitive primitive, std::unordered_map<int, memory> args);
  /// Zero-fills the result's `bytes` before the primitives run (for a result view that does
  /// not cover every element).
  void zeroResultFirst(size_t bytes) { zeroBytes_ = bytes; }
  /// Records the implementation that runs (shown by describe()).
  void noteImpl(const char* implInfo) { impl_ = implInfo; }
  /// Records the implementations the primitive could have been built with.
  void noteImplementations(std::vector<std::string> names) { implementations_ = std::move(names); }
  std::vector<std::string> implementations() const override { return implementations_; }
  /// Marks operand `i` as one the step's builder can read in any layout (readsAnyLayout).
  void readsAnyLayoutOf(size_t i) { anyLayoutOperands_.push_back(i); }

  void run(const std::vector<const void*>& operands, void* result, dnnl::stream& stream) const override;
  std::string describe() const override;
  std::optional<memory::desc> operandLayout(size_t i) const override;
  bool readsAnyLayout(size_t i) const override;
  std::optional<memory::desc> resultLayout() const override;
  bool follows(const StepLayouts& layouts) const override;
  size_t scratchBytes() const override { return scratchBytes_; }
  size_t convertedBytes() const override;
  void useScratch(void* base) override;
  size_t heldBytes() const override;
  void forgetHeldCopies() override;

 private:
  struct Call {
    dnnl::primitive primitive;
    std::unordered_map<int, memory> args;
    bool skipInPlace = false;  ///< a copy that does nothing when its source is its destination
  };
  /// The operand index (-1: the result) bound to `m` when `m` views the whole (dense)
  /// buffer; -2 otherwise.
  int wholeBufferIndex(const memory& m) const;
  /// The layout the buffer of `index` (as in bound_) is reordered into, if any.
  std::optional<memory::desc> reorderedLayout(int index) const;

  std::string what_, impl_;
  std::vector<std::string> implementations_;  ///< see noteImplementations
  dnnl::engine engine_;
  StepLayouts layouts_;
  std::vector<std::pair<int, memory>> bound_;  ///< (operand index or -1 for the result, memory)
  struct Part {
    int index;  ///< operand index or -1 for the result
    memory view;
    size_t byteOffset;
  };
  std::vector<Part> parts_;  ///< views of parts of operands and the result (see part())
  std::vector<Call> before_, main_, after_;    ///< input reorders, primitives, output reorders
  struct HeldCopy {
    Call fill;                           ///< the reorder from the operand into the held buffer
    mutable const void* from = nullptr;  ///< the operand address the held buffer holds, if any
  };
  std::vector<HeldCopy> held_;  ///< see heldInput
  size_t zeroBytes_ = 0;
  std::vector<std::pair<int, memory::desc>> reorderedTo_;  ///< (index as in bound_, layout the primitives use)
  std::vector<size_t> anyLayoutOperands_;
  std::vector<std::pair<size_t, memory>> scratch_;  ///< (offset in the scratch area, memory)
  size_t scratchBytes_ = 0;
};

/// A spatial attribute list (stride, padding, kernel) as oneDNN dims.
memory::dims spatialDims(const std::vector<int64_t>& values);
/// weft dilation (the step between taps, 1 = dense) as oneDNN's (the gap, 0 = dense).
memory::dims oneDnnDilation(const std::vector<int64_t>& dilation);

}  // namespace weft::cpu::onednn
