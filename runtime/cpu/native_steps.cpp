// Hand-written steps over the runtime's buffers. Each computes exactly what the reference
// interpreter's kernel computes (the random draws use the same counter-based generator).
#include "runtime/cpu/native_steps.h"

#include <algorithm>
#include <cstring>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "ir/error.h"
#include "ir/verifier.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/native_conv_pool.h"
#include "runtime/cpu/native_direct_weight_grad.h"
#include "runtime/cpu/native_few_channel_weight_grad.h"
#include "runtime/cpu/native_few_channels.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/native_max_pool.h"
#include "runtime/cpu/native_pool.h"
#include "runtime/cpu/native_pool_weight_grad.h"
#include "runtime/cpu/native_attention.h"
#include "runtime/cpu/native_triangular_matmul.h"
#include "runtime/cpu/native_transpose.h"
#include "runtime/random.h"

namespace weft::cpu {
namespace {

/// Elements before and after `axis` of `shape`, and its extent.
struct AxisSplit {
  int64_t outer = 1, size = 1, inner = 1;
};

AxisSplit splitAround(const ir::Shape& shape, int64_t axis) {
  AxisSplit s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (static_cast<int64_t>(d) < axis) s.outer *= shape[d];
    else if (static_cast<int64_t>(d) == axis) s.size = shape[d];
    else s.inner *= shape[d];
  }
  return s;
}

/// concat of rank-4 f32 data [N, H, W, C_k] along the channels, some of it stored
/// channel-blocked (nativeTakesBlocked): per image, each operand's blocks of 16 channels go
/// to the result's blocks from its channel offset on, one 16-float run per position (a
/// whole block in one copy where both sides are blocked).
void runChannelConcat(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  const ir::Shape& out = node.type.shape;
  const int64_t images = out[0], positions = out[1] * out[2];
  const ImageLayout result(call.isBlocked(call.value), positions, out[3]);
  auto* dst = static_cast<float*>(call.result);
  const int64_t imageSize = positions * out[3];
#pragma omp parallel for schedule(static) if (images > 1 && images * imageSize >= (int64_t{1} << 16))
  for (int64_t n = 0; n < images; ++n) {
    float* image = dst + n * imageSize;
    int64_t offset = 0;  // the operand's first channel in the result
    for (size_t k = 0; k < node.operands.size(); ++k) {
      const int64_t channels = call.graph.type(node.operands[k]).shape[3];
      const ImageLayout from(call.isBlocked(node.operands[k]), positions, channels);
      const float* src = static_cast<const float*>(call.operands[k]) + n * positions * channels;
      for (int64_t c = 0; c < channels; c += kChannelBlock) {
        const float* s = src + from.at(0, c);
        float* d = image + result.at(0, offset + c);
        if (from.positionStride == kChannelBlock && result.positionStride == kChannelBlock) {
          std::memcpy(d, s, static_cast<size_t>(positions * kChannelBlock) * sizeof(float));
          continue;
        }
        for (int64_t p = 0; p < positions; ++p)
          std::memcpy(d + p * result.positionStride, s + p * from.positionStride, kChannelBlock * sizeof(float));
      }
      offset += channels;
    }
  }
}

/// concat along `axis` of row-major buffers: for each of the prod(shape[:axis]) outer
/// indices, each operand contributes one contiguous run of bytes, in operand order.
void runConcat(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  bool blocked = call.isBlocked(call.value);
  for (ir::ValueId o : node.operands) blocked = blocked || call.isBlocked(o);
  if (blocked) return runChannelConcat(call);
  const auto axis = static_cast<size_t>(ir::AttrReader(node.attrs, node.op).i("axis"));
  const ir::Shape& out = node.type.shape;
  int64_t outer = 1;
  for (size_t d = 0; d < axis; ++d) outer *= out[d];
  const size_t element = ir::dtypeSize(node.type.dtype);
  std::vector<size_t> runBytes;
  for (ir::ValueId o : node.operands) {
    const ir::Shape& s = call.graph.type(o).shape;
    int64_t inner = 1;
    for (size_t d = axis; d < s.size(); ++d) inner *= s[d];
    runBytes.push_back(static_cast<size_t>(inner) * element);
  }
  size_t rowBytes = 0;
  for (size_t bytes : runBytes) rowBytes += bytes;
  // Rows are independent: large concats copy them on the worker threads.
  const bool parallel = outer > 1 && static_cast<size_t>(outer) * rowBytes >= (size_t{1} << 20);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t i = 0; i < outer; ++i) {
    auto* dst = static_cast<uint8_t*>(call.result) + static_cast<size_t>(i) * rowBytes;
    for (size_t k = 0; k < call.operands.size(); ++k) {
      if (runBytes[k])
        std::memcpy(dst, static_cast<const uint8_t*>(call.operands[k]) + static_cast<size_t>(i) * runBytes[k],
                    runBytes[k]);
      dst += runBytes[k];
    }
  }
}

/// numpy take: out[a..., j..., b...] = x[a..., indices[j...], b...], indices i32 or i64.
void runGather(const NativeCall& call) {
  const ir::Graph& g = call.graph;
  const ir::Node& node = g.node(call.value);
  const ir::TensorType& x = g.type(node.operands[0]);
  const ir::TensorType& indices = g.type(node.operands[1]);
  const int64_t axis = ir::AttrReader(node.attrs, node.op).i("axis");
  const AxisSplit s = splitAround(x.shape, axis);
  const int64_t count = indices.numel();
  const size_t runBytes = static_cast<size_t>(s.inner) * ir::dtypeSize(x.dtype);
  const auto* src = static_cast<const uint8_t*>(call.operands[0]);
  auto* dst = static_cast<uint8_t*>(call.result);
  for (int64_t j = 0; j < count; ++j) {
    int64_t k = indices.dtype == ir::DType::i32 ? static_cast<const int32_t*>(call.operands[1])[j]
                                                : static_cast<const int64_t*>(call.operands[1])[j];
    if (k < 0 || k >= s.size)
      throw Error("gather " + ir::valueRef(g, call.value) + (node.loc.empty() ? "" : " at " + node.loc) +
                  ": index " + std::to_string(k) + " (at position " +
                  std::to_string(j) + " of the indices " + ir::valueRef(g, node.operands[1]) +
                  ") is out of range [0, " + std::to_string(s.size) + ") for axis " + std::to_string(axis));
    for (int64_t o = 0; o < s.outer; ++o)
      if (runBytes)
        std::memcpy(dst + static_cast<size_t>(o * count + j) * runBytes,
                    src + static_cast<size_t>(o * s.size + k) * runBytes, runBytes);
  }
}

/// check_index: the indices (i32 or i64) copied, after checking each lies in [0, limit).
void runCheckIndex(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  const int64_t limit = attrs.i("limit"), count = node.type.numel();
  const bool i32 = node.type.dtype == ir::DType::i32;
  for (int64_t j = 0; j < count; ++j) {
    int64_t k = i32 ? static_cast<const int32_t*>(call.operands[0])[j] : static_cast<const int64_t*>(call.operands[0])[j];
    if (k < 0 || k >= limit)
      // A check a decomposition made (its `what` says what it checks) is named by its source
      // line rather than by a node the user never wrote.
      throw Error((attrs.has("what") ? std::string() : "check_index " + ir::valueRef(call.graph, call.value) + ": ") +
                  ir::checkIndexMessage(attrs.has("what") ? attrs.s("what") : "index", k, j,
                                        ir::valueRef(call.graph, node.operands[0]), limit) +
                  (node.loc.empty() ? "" : " at " + node.loc));
  }
  if (call.result != call.operands[0]) std::memcpy(call.result, call.operands[0], node.type.byteSize());
}

/// Fills the f32 or f64 result with `low + scale * draw(seed, step, i)`, where `draws` writes
/// the draws of a range of indices (runtime/random.h).
template <void (*draws)(uint64_t, uint64_t, uint64_t, int64_t, double*)>
void fillRandom(const NativeCall& call, double low, double scale) {
  const ir::Node& node = call.graph.node(call.value);
  const auto seed = static_cast<uint64_t>(ir::AttrReader(node.attrs, node.op).i("seed"));
  const int64_t n = node.type.numel();
  const bool f32 = node.type.dtype == ir::DType::f32;
  // Each element is a function of its index alone, so draws split across the worker threads
  // give the same numbers. A normal draw costs ~8 ns in AVX-512 lanes (a uniform ~4; ~30
  // without vector lanes), so 1024 of them (8 us and more) are worth waking the threads.
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= 1024)
  for (int64_t c = 0; c < chunks; ++c) {
    double values[kChunk];
    const int64_t first = c * kChunk, count = std::min(kChunk, n - first);
    draws(seed, call.step, static_cast<uint64_t>(first), count, values);
    if (f32) {
      auto* out = static_cast<float*>(call.result) + first;
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(low + scale * values[i]);
    } else {
      auto* out = static_cast<double*>(call.result) + first;
      for (int64_t i = 0; i < count; ++i) out[i] = low + scale * values[i];
    }
  }
}

void runRandomUniform(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  fillRandom<runtime::uniformsAt>(call, attrs.f("low"), attrs.f("high") - attrs.f("low"));
}

void runRandomNormal(const NativeCall& call) {
  const ir::Node& node = call.graph.node(call.value);
  ir::AttrReader attrs(node.attrs, node.op);
  fillRandom<runtime::normalsAt>(call, attrs.f("mean"), attrs.f("std"));
}

bool isF32OrF64(ir::DType d) { return d == ir::DType::f32 || d == ir::DType::f64; }

/// True when body value `v` is a one-element constant 0.
bool isZero(const ir::Graph& body, ir::ValueId v) {
  const ir::Node& n = body.node(v);
  return n.op == ir::OpKind::Constant && n.type.numel() == 1 &&
         ir::AttrReader(n.attrs, n.op).tensor("value")->get(0) == 0.0;
}

}  // namespace

std::optional<ConvEpilogue> convEpilogueOf(const ir::Graph& g, ir::ValueId v) {
  using ir::OpKind;
  const ir::Node& node = g.node(v);
  if (node.op == OpKind::Conv || node.op == OpKind::ConvTranspose) return ConvEpilogue{&node, -1, false};
  if (node.op != OpKind::Fused || !node.body || ir::AttrReader(node.attrs, node.op).s("kind") != "conv" ||
      node.body->outputs().size() != 1)
    return std::nullopt;
  const ir::Graph& body = *node.body;
  ConvEpilogue found;
  ir::ValueId cur = body.outputs()[0].value;
  if (const ir::Node& n = body.node(cur); n.op == OpKind::Maximum && n.operands.size() == 2) {
    const int zero = isZero(body, n.operands[1]) ? 1 : isZero(body, n.operands[0]) ? 0 : -1;
    if (zero < 0) return std::nullopt;
    found.relu = true;
    cur = n.operands[static_cast<size_t>(1 - zero)];
  }
  // Up to two adds: a per-channel bias and a residual of the result's type, in either order.
  for (int adds = 0; adds < 2; ++adds) {
    const ir::Node& n = body.node(cur);
    if (n.op != OpKind::Add || n.operands.size() != 2) break;
    auto towardConv = [&](ir::ValueId u) { return body.node(u).op == OpKind::Conv || body.node(u).op == OpKind::Add; };
    const int convSide = towardConv(n.operands[0]) ? 0 : 1;
    ir::ValueId other = n.operands[static_cast<size_t>(1 - convSide)];
    const int otherInput = bodyInputIndex(body, other);
    if (otherInput >= 0 && found.residual < 0 && body.type(other) == n.type) {
      found.residual = otherInput;
    } else {
      if (body.node(other).op == OpKind::Reshape) other = body.node(other).operands[0];  // [O] seen as [1, 1, 1, O]
      const ir::TensorType& bt = body.type(other);
      const int64_t channels = n.type.shape.back();
      const bool perChannel =
          bt.numel() == 1 || (bt.numel() == channels && !bt.shape.empty() && bt.shape.back() == channels);
      if (found.bias >= 0 || !perChannel || bt.dtype != ir::DType::f32) return std::nullopt;
      found.bias = bodyInputIndex(body, other);
      if (found.bias < 0) return std::nullopt;
    }
    cur = n.operands[static_cast<size_t>(convSide)];
  }
  const ir::Node& conv = body.node(cur);
  if (conv.op != OpKind::Conv || bodyInputIndex(body, conv.operands[0]) != 0 || bodyInputIndex(body, conv.operands[1]) != 1)
    return std::nullopt;
  found.conv = &conv;
  return found;
}

bool isChannelsLastF32Conv(const ir::Graph& g, ir::ValueId v, const ir::Node& conv) {
  const ir::Node& node = g.node(v);
  return ir::isChannelsLast(conv.op, conv.attrs) && node.type.dtype == ir::DType::f32 && node.type.rank() == 4 &&
         g.type(node.operands[0]).dtype == ir::DType::f32 && g.type(node.operands[1]).dtype == ir::DType::f32;
}

int bodyInputIndex(const ir::Graph& body, ir::ValueId v) {
  const std::vector<ir::ValueId> inputs = body.inputs();
  auto it = std::find(inputs.begin(), inputs.end(), v);
  return it == inputs.end() ? -1 : static_cast<int>(it - inputs.begin());
}

std::vector<ir::ValueId> otherReaders(const ir::Graph& g, ir::ValueId v, ir::ValueId except) {
  std::vector<ir::ValueId> readers;
  for (ir::ValueId u = 0; u < g.size(); ++u)
    if (u != except && std::find(g.node(u).operands.begin(), g.node(u).operands.end(), v) != g.node(u).operands.end())
      readers.push_back(u);
  for (const auto& out : g.outputs())
    if (out.value == v) readers.push_back(g.size());
  for (const ir::StateUpdate& u : g.updates())  // a state update reads its value after the run too
    if (u.value == v) readers.push_back(g.size());
  return readers;
}

NativeStep nativeStepFor(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  switch (node.op) {
    case ir::OpKind::Concat: return &runConcat;
    case ir::OpKind::Gather: {
      ir::DType indices = g.type(node.operands[1]).dtype;
      return indices == ir::DType::i32 || indices == ir::DType::i64 ? &runGather : nullptr;
    }
    case ir::OpKind::CheckIndex: return &runCheckIndex;
    case ir::OpKind::RandomUniform: return isF32OrF64(node.type.dtype) ? &runRandomUniform : nullptr;
    case ir::OpKind::RandomNormal: return isF32OrF64(node.type.dtype) ? &runRandomNormal : nullptr;
    case ir::OpKind::Conv:
    case ir::OpKind::ConvTranspose:
    case ir::OpKind::Fused:
      if (runsNativeTranspose(node)) return &runTranspose;
      if (runsFewChannelConv(g, v)) return &runFewChannelConv;
      if (runsWinogradConv(g, v)) return &runWinogradConv;
      if (runsCausalAttention(g, v)) return &runCausalAttention;
      if (runsCausalAttentionGrad(g, v)) return &runCausalAttentionGrad;
      return runsTriangularMatmul(g, v) ? &runTriangularMatmul : nullptr;
    case ir::OpKind::Matmul: return runsTriangularMatmul(g, v) ? &runTriangularMatmul : nullptr;
    case ir::OpKind::ConvWeightGrad:
      if (poolWeightGradSource(g, v) >= 0) return &runPoolWeightGrad;
      if (runsFewChannelWeightGrad(g, v)) return &runFewChannelWeightGrad;
      if (runsWinogradWeightGrad(g, v)) return &runWinogradWeightGrad;
      return runsDirectWeightGrad(g, v) ? &runDirectWeightGrad : nullptr;
    case ir::OpKind::MaxPool:
      if (convPoolSource(g, v) >= 0) return &runConvPool;
      return runsNativeMaxPool(g, v) ? &runMaxPool : nullptr;
    case ir::OpKind::MaxPoolGrad:
      if (node.type.dtype != ir::DType::f32 || node.type.shape.size() != 4) return nullptr;
      return ir::isChannelsLast(node.op, node.attrs) ? &runMaxPoolGrad2dChannelsLast : &runMaxPoolGrad2d;
    default: return nullptr;
  }
}

int64_t nativeScratchBytes(const ir::Graph& g, ir::ValueId v, int threads) {
  const NativeStep step = nativeStepFor(g, v);
  if (step == &runDirectWeightGrad) return directWeightGradScratchBytes(g, v, threads);
  if (step == &runWinogradWeightGrad) return winogradWeightGradWantedBytes(g, v, threads);
  return step == &runWinogradConv ? winogradStepScratchBytes(g, v, threads) : 0;
}

int64_t nativeLeastScratchBytes(const ir::Graph& g, ir::ValueId v, int threads) {
  return nativeStepFor(g, v) == &runWinogradWeightGrad ? winogradStepScratchBytes(g, v, threads)
                                                        : nativeScratchBytes(g, v, threads);
}

int64_t nativeHeldBytes(const ir::Graph& g, ir::ValueId v, const std::vector<bool>& constantOperands) {
  const bool constantWeights = constantOperands.size() > 1 && constantOperands[1];
  return constantWeights && nativeStepFor(g, v) == &runWinogradConv ? winogradHeldWeightBytes(g, v) : 0;
}

std::vector<ir::ValueId> foldedOperands(const ir::Graph& g, ir::ValueId v) {
  const ir::OpKind op = g.node(v).op;
  ir::ValueId folded = op == ir::OpKind::MaxPool          ? convPoolShape(g, v)
                       : op == ir::OpKind::ConvWeightGrad ? poolWeightGradShape(g, v)
                                                           : -1;
  if (folded < 0) return {};
  return g.node(folded).operands;
}

namespace {

/// The max pool whose conv-pool step computes fused conv `v` (convPoolSource), or -1.
ir::ValueId convPoolOf(const ir::Graph& g, ir::ValueId v) {
  if (g.node(v).op != ir::OpKind::Fused) return -1;
  for (ir::ValueId reader : otherReaders(g, v, -1))
    if (reader < g.size() && g.node(reader).op == ir::OpKind::MaxPool && convPoolSource(g, reader) == v) return reader;
  return -1;
}

}  // namespace

bool neverStored(const ir::Graph& g, ir::ValueId v) {
  if (g.node(v).op == ir::OpKind::MaxPoolGrad) {  // a pool gradient
    const std::vector<ir::ValueId> readers = otherReaders(g, v, -1);
    return readers.size() == 1 && readers[0] < g.size() && poolWeightGradSource(g, readers[0]) == v;
  }
  const ir::ValueId pool = convPoolOf(g, v);  // a fused conv
  return pool >= 0 && !convPoolWritesConv(g, pool) && !convPoolWritesWinners(g, pool);
}

int64_t storedBytes(const ir::Graph& g, ir::ValueId v) {
  const ir::TensorType& t = g.type(v);
  const ir::ValueId pool = convPoolOf(g, v);
  if (pool >= 0 && convPoolWritesWinners(g, pool)) return t.numel() / 4;  // a byte per 2x2 window and channel
  return static_cast<int64_t>(t.byteSize());
}

bool nativeTakesBlocked(const ir::Graph& g, ir::ValueId v, int index) {
  const ir::Node& node = g.node(v);
  auto channelsInBlocks = [&](ir::ValueId value) {
    const ir::TensorType& t = g.type(value);
    return t.dtype == ir::DType::f32 && t.shape.size() == 4 && t.shape[3] % kChannelBlock == 0;
  };
  if (node.op == ir::OpKind::Concat) {
    if (ir::AttrReader(node.attrs, node.op).i("axis") != 3 || !channelsInBlocks(v)) return false;
    return std::all_of(node.operands.begin(), node.operands.end(), channelsInBlocks);
  }
  if (node.op == ir::OpKind::MaxPool && convPoolSource(g, v) >= 0)  // its operand: computed, written in either layout
    return index == 0 ? !convPoolWritesWinners(g, v) : channelsInBlocks(v);  // (the winners are bytes)
  if (runsNativeMaxPool(g, v) && ir::isChannelsLast(node.op, node.attrs))  // blocks of 16 channels, in and out
    return index <= 0 && channelsInBlocks(node.operands[0]) && channelsInBlocks(v);
  if (node.op == ir::OpKind::ConvWeightGrad && poolWeightGradSource(g, v) >= 0)  // the pool gradient is never stored
    return index == 1;
  // weft's 4x4 phase steps: x and the result (a weight gradient's x and dy), where the
  // convolution adds no residual (blocked_layout.cpp joins a residual with the result). The
  // shape is checked first: nativeStepFor's Winograd choice looks at the whole graph.
  const bool weights = node.op == ir::OpKind::ConvWeightGrad;
  const std::optional<PhaseWinogradShape> phases =
      weights ? phaseWinogradWeightGradCandidate(g, v) : phaseWinogradCandidate(g, v);
  if (phases && phases->kernel == 4 && nativeStepFor(g, v) == (weights ? &runWinogradWeightGrad : &runWinogradConv)) {
    if (!weights && convEpilogueOf(g, v)->residual >= 0) return false;
    const bool data = index == 0 || (weights ? index == 1 : index == -1);
    return data && channelsInBlocks(index < 0 ? v : node.operands[static_cast<size_t>(index)]);
  }
  if (weights && nativeStepFor(g, v) == &runDirectWeightGrad)  // x and dy, in blocks of 16 channels
    return (index == 0 || index == 1) && channelsInBlocks(node.operands[static_cast<size_t>(index)]);
  return index == 0 && (runsFewChannelConv(g, v) || runsFewChannelWeightGrad(g, v)) &&
         channelsInBlocks(node.operands[0]);
}

}  // namespace weft::cpu
