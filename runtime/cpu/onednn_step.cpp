// The primitive-sequence step and the descriptor helpers of the oneDNN lowering.
#include "runtime/cpu/onednn_step.h"

#include <algorithm>
#include <cstring>

#include "ir/channels_last.h"

namespace weft::cpu::onednn {

memory::dims dimsOf(const ir::Shape& shape) { return memory::dims(shape.begin(), shape.end()); }

memory::desc stridedDesc(const ir::Shape& dims, const ir::Shape& strides) {
  return memory::desc(dimsOf(dims), memory::data_type::f32, dimsOf(strides));
}

memory::desc rowMajorDesc(const ir::Shape& dims) { return stridedDesc(dims, ir::rowMajorStrides(dims)); }

memory::desc anyDesc(const ir::Shape& dims) {
  return memory::desc(dimsOf(dims), memory::data_type::f32, memory::format_tag::any);
}

memory::desc primitiveDesc(const ir::Shape& dims, Layout layout) {
  return layout == Layout::RowMajor ? rowMajorDesc(dims) : anyDesc(dims);
}

memory::desc dataDesc(const ir::Shape& dims, const ir::Shape& stored, bool channelsLast) {
  ir::Shape strides = ir::rowMajorStrides(stored);
  if (!channelsLast) return stridedDesc(dims, strides);
  ir::Shape permuted;
  for (int64_t p : ir::toChannelsFirstPerm(stored.size())) permuted.push_back(strides[static_cast<size_t>(p)]);
  return stridedDesc(dims, permuted);
}

bool isReferenceImpl(const char* implInfo) { return std::strncmp(implInfo, "ref", 3) == 0; }

namespace {

/// True when `desc` is a dense f32 layout of its own dims in some dimension order (a whole
/// row-major or channels-last buffer, not a view of part of one).
bool isWholeBuffer(const memory::desc& desc) {
  const dnnl_memory_desc_t& md = desc.data;
  if (md.format_kind != dnnl_blocked || md.format_desc.blocking.inner_nblks != 0 || md.offset0 != 0 ||
      md.data_type != dnnl_f32)
    return false;
  size_t elements = 1;
  for (int d = 0; d < md.ndims; ++d) {
    if (md.padded_dims[d] != md.dims[d]) return false;
    elements *= static_cast<size_t>(md.dims[d]);
  }
  return desc.get_size() == elements * sizeof(float);
}

}  // namespace

memory PrimitiveStep::operand(size_t i, const memory::desc& user) {
  auto layout = layouts_.operand(i);
  memory m(layout && isWholeBuffer(user) ? *layout : user, engine_, DNNL_MEMORY_NONE);
  bound_.emplace_back(static_cast<int>(i), m);
  return m;
}

memory PrimitiveStep::result(const memory::desc& user) {
  memory m(layouts_.result && isWholeBuffer(user) ? *layouts_.result : user, engine_, DNNL_MEMORY_NONE);
  bound_.emplace_back(-1, m);
  return m;
}

memory PrimitiveStep::part(int index, const memory::desc& user, size_t byteOffset) {
  memory m(user, engine_, DNNL_MEMORY_NONE);
  parts_.push_back({index, m, byteOffset});
  return m;
}

int PrimitiveStep::wholeBufferIndex(const memory& m) const {
  for (const auto& [index, bound] : bound_)
    if (bound.get() == m.get()) return isWholeBuffer(m.get_desc()) ? index : -2;
  return -2;
}

memory PrimitiveStep::input(const memory& user, const memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  if (int index = wholeBufferIndex(user); index >= 0) reorderedTo_.emplace_back(index, wanted);
  memory converted = scratch(wanted);
  before_.push_back({dnnl::reorder(user, converted), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, converted}}});
  return converted;
}

memory PrimitiveStep::heldInput(const memory& user, const memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  memory copy = held(wanted);
  held_.push_back({{dnnl::reorder(user, copy), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, copy}}}});
  return copy;
}

size_t PrimitiveStep::heldBytes() const {
  size_t bytes = 0;
  for (const HeldCopy& h : held_) bytes += h.fill.args.at(DNNL_ARG_TO).get_desc().get_size();
  return bytes;
}

void PrimitiveStep::forgetHeldCopies() {
  for (HeldCopy& h : held_) h.from = nullptr;
}

memory PrimitiveStep::output(const memory& user, const memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  if (wholeBufferIndex(user) == -1) reorderedTo_.emplace_back(-1, wanted);
  memory converted = scratch(wanted);
  after_.push_back({dnnl::reorder(converted, user), {{DNNL_ARG_FROM, converted}, {DNNL_ARG_TO, user}}});
  return converted;
}

void PrimitiveStep::copyFirst(const memory& from, const memory& to) {
  if (int index = wholeBufferIndex(from); index >= 0 && from.get_desc() != to.get_desc())
    reorderedTo_.emplace_back(index, to.get_desc());
  before_.push_back({dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, from.get_desc() == to.get_desc()});
}

std::optional<memory::desc> PrimitiveStep::reorderedLayout(int index) const {
  for (const auto& [i, layout] : reorderedTo_)
    if (i == index) return layout;
  return std::nullopt;
}

std::optional<memory::desc> PrimitiveStep::operandLayout(size_t i) const { return reorderedLayout(static_cast<int>(i)); }

bool PrimitiveStep::follows(const StepLayouts& layouts) const {
  auto boundAs = [&](int index, const memory::desc& layout) {
    bool seen = false;
    for (const auto& [i, m] : bound_)
      if (i == index) {
        if (m.get_desc() != layout) return false;
        seen = true;
      }
    return seen;
  };
  for (size_t i = 0; i < layouts.operands.size(); ++i)
    if (layouts.operands[i] && !boundAs(static_cast<int>(i), *layouts.operands[i])) return false;
  return !layouts.result || boundAs(-1, *layouts.result);
}

bool PrimitiveStep::readsAnyLayout(size_t i) const {
  return std::find(anyLayoutOperands_.begin(), anyLayoutOperands_.end(), i) != anyLayoutOperands_.end();
}

std::optional<memory::desc> PrimitiveStep::resultLayout() const { return reorderedLayout(-1); }

memory PrimitiveStep::held(const memory::desc& desc) { return memory(desc, engine_); }

memory PrimitiveStep::scratch(const memory::desc& desc) {
  constexpr size_t kAlign = 64;
  memory m(desc, engine_, DNNL_MEMORY_NONE);
  scratch_.emplace_back(scratchBytes_, m);
  scratchBytes_ += (desc.get_size() + kAlign - 1) / kAlign * kAlign;
  return m;
}

void PrimitiveStep::useScratch(void* base) {
  for (const auto& [offset, m] : scratch_) m.set_data_handle(static_cast<uint8_t*>(base) + offset);
}

size_t PrimitiveStep::convertedBytes() const {
  size_t bytes = 0;
  for (const auto* calls : {&before_, &main_, &after_})
    for (const Call& call : *calls)
      if (call.primitive.get_kind() == dnnl::primitive::kind::reorder &&
          call.args.at(DNNL_ARG_FROM).get_desc() != call.args.at(DNNL_ARG_TO).get_desc())
        bytes += call.args.at(DNNL_ARG_FROM).get_desc().get_size();
  return bytes;
}

void PrimitiveStep::add(dnnl::primitive primitive, std::unordered_map<int, memory> args) {
  main_.push_back({std::move(primitive), std::move(args)});
}

void PrimitiveStep::run(const std::vector<const void*>& operands, void* result, dnnl::stream& stream) const {
  // oneDNN only reads the operand memories, so handing it the const buffers is safe.
  auto buffer = [&](int index) {
    return static_cast<uint8_t*>(index < 0 ? result : const_cast<void*>(operands.at(static_cast<size_t>(index))));
  };
  for (const auto& [index, m] : bound_) m.set_data_handle(buffer(index));
  for (const Part& p : parts_) p.view.set_data_handle(buffer(p.index) + p.byteOffset);
  if (zeroBytes_) std::memset(result, 0, zeroBytes_);
  for (const HeldCopy& h : held_) {
    const void* from = h.fill.args.at(DNNL_ARG_FROM).get_data_handle();
    if (from == h.from) continue;
    h.fill.primitive.execute(stream, h.fill.args);
    h.from = from;
  }
  for (const auto* calls : {&before_, &main_, &after_})
    for (const Call& call : *calls)
      if (!call.skipInPlace ||
          call.args.at(DNNL_ARG_FROM).get_data_handle() != call.args.at(DNNL_ARG_TO).get_data_handle())
        call.primitive.execute(stream, call.args);
  stream.wait();
}

std::string PrimitiveStep::describe() const { return impl_.empty() ? what_ : what_ + " [" + impl_ + "]"; }

memory::dims spatialDims(const std::vector<int64_t>& values) { return memory::dims(values.begin(), values.end()); }

memory::dims oneDnnDilation(const std::vector<int64_t>& dilation) {
  memory::dims gaps;
  for (int64_t d : dilation) gaps.push_back(d - 1);
  return gaps;
}

}  // namespace weft::cpu::onednn
