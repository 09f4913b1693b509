// The oneDNN steps of the convolution family: conv (forward, with post-ops), conv_transpose
// (deconvolution forward) and conv_weight_grad (convolution backward-weights). Operands and
// results are row-major user buffers; the primitives run in the layouts preferredPd picks,
// reordered inside the step. A channels_last node's data are [N, spatial..., C] buffers, seen
// by oneDNN as channels-first dims with channels-last strides, which its kernels read and
// write in place (no reorder). Where winograd.h allows, each builder first tries oneDNN's
// Winograd kernel (winogradStep): whole data when it is converted anyway, channels-last data
// copied into Winograd's blocked layout only as far as the arena has room at the step, in
// batch chunks if the whole batch does not fit; otherwise the direct kernel.
//
// Geometry: weft pads symmetrically and its extents follow floor division, while oneDNN
// wants padding_r to make the extents exact. Where weft's extent is shorter than what the
// padding allows (conv_weight_grad's dy, conv_transpose's output_padding) the step views a
// prefix of the longer tensor instead, so that padding_r stays >= 0:
//  - conv_weight_grad reads only the input positions dy's windows reach;
//  - conv_transpose writes only the output positions some input reaches, the rest are zeros.
#include <algorithm>
#include <cstring>
#include <optional>

#include "ir/channels_last.h"
#include "runtime/cpu/onednn_families.h"
#include "runtime/cpu/winograd.h"

namespace weft::cpu::onednn {
namespace {

using ir::Shape;
using ir::TensorType;

/// The attributes every conv-like node has.
struct ConvGeometry {
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups;

  explicit ConvGeometry(const ir::Node& node) {
    ir::AttrReader attr(node.attrs, node.op);
    stride = attr.ints("stride");
    padding = attr.ints("padding");
    dilation = attr.ints("dilation");
    groups = attr.i("groups");
  }
  /// The extent a kernel of `k` taps spans in spatial dim d.
  int64_t span(size_t d, int64_t k) const { return dilation[d] * (k - 1) + 1; }
};

/// A row-major weight [O, C/groups, k...] as oneDNN's [groups, O/groups, C/groups, k...]
/// (the same bytes) when grouped.
Shape groupedWeightDims(const Shape& w, int64_t groups) {
  if (groups == 1) return w;
  Shape dims = w;
  dims[0] /= groups;
  dims.insert(dims.begin(), groups);
  return dims;
}

/// The user descriptor of a conv_transpose weight [C_in, O/groups, k...] seen as oneDNN's
/// deconvolution weights [(groups,) O/groups, C_in/groups, k...].
memory::desc transposedWeightDesc(const Shape& w, int64_t groups) {
  Shape kernel(w.begin() + 2, w.end());
  Shape kernelStrides = ir::rowMajorStrides(kernel);
  int64_t taps = ir::numElements(kernel), outPerGroup = w[1], inPerGroup = w[0] / groups;
  Shape dims = {outPerGroup, inPerGroup}, strides = {taps, outPerGroup * taps};
  if (groups > 1) {
    dims.insert(dims.begin(), groups);
    strides.insert(strides.begin(), inPerGroup * outPerGroup * taps);
  }
  dims.insert(dims.end(), kernel.begin(), kernel.end());
  strides.insert(strides.end(), kernelStrides.begin(), kernelStrides.end());
  return stridedDesc(dims, strides);
}

/// The channels-first view of a data shape of node `channelsLast` or not.
Shape channelsFirst(const Shape& shape, bool channelsLast) { return channelsLast ? ir::toChannelsFirst(shape) : shape; }

/// Stored data shape `shape` with its batch divided into `chunks`.
Shape batchChunk(Shape shape, int64_t chunks) {
  shape[0] /= chunks;
  return shape;
}

/// The descriptor a primitive is created with for data of channels-first `dims` stored as
/// `stored`: channels-last data `inPlace`, else `layout`'s. A step that views a prefix of
/// channels-last data (strided, which oneDNN's fast kernels do not take, nor a mix of it with
/// whole channels-last data) converts all its data like channels-first data.
memory::desc primitiveData(const Shape& dims, const Shape& stored, bool inPlace, Layout layout) {
  return inPlace ? dataDesc(dims, stored, true) : primitiveDesc(dims, layout);
}

/// The layout `layouts` stores whole channels-last data in (operand `index`, -1: the
/// result), where it is given: the primitive is created over it, so nothing is converted.
std::optional<memory::desc> storedData(const StepLayouts& layouts, bool channelsLast, int index) {
  if (!channelsLast) return std::nullopt;
  return index < 0 ? layouts.result : layouts.operand(static_cast<size_t>(index));
}

/// `stored` when given and the primitive covers the whole batch, else primitiveData's choice.
memory::desc dataOrStored(const std::optional<memory::desc>& stored, int64_t chunks, const Shape& dims,
                          const Shape& shape, bool inPlace, Layout layout) {
  if (stored && chunks == 1) return *stored;
  return primitiveData(batchChunk(dims, chunks), batchChunk(shape, chunks), inPlace, layout);
}

/// The Winograd primitive descriptor `make()` creates, unless oneDNN has none or only its
/// reference implementation.
template <class Pd, class Make>
std::optional<Pd> winogradPd(const Make& make) {
  try {
    Pd pd = make();
    if (!isReferenceImpl(pd.impl_info_str())) return pd;
  } catch (const dnnl::error&) {
  }
  return std::nullopt;
}

/// True when `step`'s run-time buffers fit where `layouts` says copies made only for speed
/// may go.
bool conversionFits(const StepLayouts& layouts, const PrimitiveStep& step) {
  return !layouts.conversionFits || layouts.conversionFits(step.scratchBytes());
}

/// The batch chunks a channels-last Winograd step may run in, fewest first (see addChunked).
constexpr int64_t kBatchChunks[] = {1, 2, 4, 8};
/// The fewest output positions (images x plane) a Winograd chunk computes: below that the
/// chunks measured slower than the direct convolution (32 images of 8x8 in 4 chunks: 1.4-1.8
/// ms against 1.0 whole and 1.2-1.5 direct; 16x16 planes in chunks of 8 images as fast as whole).
constexpr int64_t kMinChunkPositions = 2048;

/// True when channels-first `out` (the output of a channels-last Winograd step) splits into
/// `chunks` batch chunks (see kMinChunkPositions).
bool splitsInto(const Shape& out, int64_t chunks) {
  return out[0] % chunks == 0 && (chunks == 1 || ir::numElements(out) / out[1] / chunks >= kMinChunkPositions);
}

/// " in N batch chunks" for a step that runs in N > 1 chunks, else "".
std::string chunksNote(int64_t chunks) {
  return chunks > 1 ? " in " + std::to_string(chunks) + " batch chunks" : "";
}

/// A view of batch chunk `k` of `chunks` of operand `index` (-1: the result), channels-last
/// data stored as `stored`.
memory chunkOf(PrimitiveStep& step, int index, const Shape& stored, int64_t chunks, int64_t k) {
  const Shape part = batchChunk(stored, chunks);
  const auto bytes = static_cast<size_t>(ir::numElements(part)) * 4;
  return step.part(index, dataDesc(ir::toChannelsFirst(part), part, true), static_cast<size_t>(k) * bytes);
}

/// Appends a copy of `from` into `to` (converting the layout) to `step`'s primitives.
void addCopy(PrimitiveStep& step, const memory& from, const memory& to) {
  step.add(dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

/// Adds `primitive` to `step` once per batch chunk of channels-last data stored as `in`
/// (operand 0) and `out` (the result): the chunk of operand 0 is copied into a scratch of
/// layout `src`, the chunk of operand `residual` (unless -1, for a sum post-op) into a
/// scratch of layout `dst`, the primitive runs, and `dst` is copied into the result's chunk.
/// The copies take 1/chunks of the bytes whole tensors would. `args` has the other arguments.
void addChunked(PrimitiveStep& step, const dnnl::primitive& primitive, std::unordered_map<int, memory> args,
                const memory::desc& src, const memory::desc& dst, const Shape& in, const Shape& out, int64_t chunks,
                int residual) {
  memory srcCopy = step.scratch(src), dstCopy = step.scratch(dst);
  args[DNNL_ARG_SRC] = srcCopy;
  args[DNNL_ARG_DST] = dstCopy;
  for (int64_t k = 0; k < chunks; ++k) {
    addCopy(step, chunkOf(step, 0, in, chunks, k), srcCopy);
    if (residual >= 0) addCopy(step, chunkOf(step, residual, out, chunks, k), dstCopy);
    step.add(primitive, args);
    addCopy(step, dstCopy, chunkOf(step, -1, out, chunks, k));
  }
}

/// True when every binary post-op but the sum reads a scalar or a per-channel vector (the
/// same for every batch chunk).
bool postOpsFitAnyBatch(const std::vector<PostOp>& postOps, int64_t channels) {
  return std::all_of(postOps.begin(), postOps.end(), [&](const PostOp& op) {
    return !op.binary || op.sum || ir::numElements(op.shape) <= channels;
  });
}

/// The Winograd step of a conv-family node, or null: whole when its data is converted
/// anyway (not `inPlaceData`), else in the fewest batch chunks of output `out` (channels-first
/// dims; more than one only when `mayChunk`) whose copies fit where `layouts` allows.
/// `make(layout, wino, chunks)` creates the primitive descriptor for 1/chunks of the batch and
/// `build(pd, chunks)` the step (chunks 0: whole data, converted as the pd wants).
template <class Pd, class Make, class Build>
std::unique_ptr<PrimitiveStep> winogradStep(bool inPlaceData, bool mayChunk, const Shape& out,
                                            const StepLayouts& layouts, const Make& make, const Build& build) {
  if (!inPlaceData) {
    auto pd = winogradPd<Pd>([&] { return make(Layout::Chosen, true, 1); });
    return pd ? build(*pd, 0) : nullptr;
  }
  for (int64_t chunks : kBatchChunks) {
    if (!splitsInto(out, chunks) || (chunks > 1 && !mayChunk)) break;
    auto pd = winogradPd<Pd>([&] { return make(Layout::Chosen, true, chunks); });
    if (!pd) break;
    auto step = build(*pd, chunks);
    if (conversionFits(layouts, *step)) return step;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<OneDnnStep> compileConv(const ir::Node& node, const TensorType& x, const TensorType& w,
                                        std::vector<PostOp> postOps, const dnnl::engine& engine,
                                        const StepLayouts& layouts) {
  ConvGeometry geo(node);
  const bool cl = ir::isChannelsLast(node.op, node.attrs);
  Shape weightDims = groupedWeightDims(w.shape, geo.groups);
  const Shape xs = channelsFirst(x.shape, cl), out = channelsFirst(node.type.shape, cl);
  memory::dims pads = spatialDims(geo.padding);
  const int biasOperand = takeConvBias(postOps, out, cl);
  const memory::desc bias = rowMajorDesc({out[1]});
  const int sumIndex = useSumForResidual(postOps, node.type.shape);
  const int residual = sumIndex < 0 ? -1 : postOps[static_cast<size_t>(sumIndex)].operand;
  dnnl::primitive_attr attr = postOpAttr(postOps, out.size(), cl);
  const auto storedX = storedData(layouts, cl, 0), storedOut = storedData(layouts, cl, -1);
  const bool inPlace = cl && !storedX && !storedOut;  // else the rest converts to the stored layout
  using Pd = dnnl::convolution_forward::primitive_desc;
  // A primitive descriptor for 1/chunks of the batch, in the layouts `layout` says (data in
  // place when channels-last, unless `wino`; data stored blocked as it is).
  auto make = [&](Layout layout, bool wino, int64_t chunks) {
    memory::desc src = dataOrStored(storedX, chunks, xs, x.shape, inPlace && !wino, layout),
                 weights = primitiveDesc(weightDims, layout),
                 dst = dataOrStored(storedOut, chunks, out, node.type.shape, inPlace && !wino, layout);
    auto algorithm = wino ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
    // Winograd's inference form wants weights pre-transformed (a slow reorder each run, as
    // the weights are operands); its training form transforms them inside the primitive.
    auto prop = wino ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    auto desc = biasOperand >= 0
                    ? dnnl::convolution_forward::desc(prop, algorithm, src, weights, bias, dst, spatialDims(geo.stride),
                                                      oneDnnDilation(geo.dilation), pads, pads)
                    : dnnl::convolution_forward::desc(prop, algorithm, src, weights, dst, spatialDims(geo.stride),
                                                      oneDnnDilation(geo.dilation), pads, pads);
    return Pd(desc, attr, engine);
  };
  // The step around `pd`: whole data, converted as `pd` wants (none for channels-last data
  // read in place), or channels-last data in `chunks` batch chunks.
  auto build = [&](const Pd& pd, int64_t chunks) {
    auto step = std::make_unique<PrimitiveStep>(std::string(biasOperand >= 0 ? "conv+bias" : "conv") +
                                                    postOpNames(postOps) + chunksNote(chunks),
                                                engine, layouts);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_WEIGHTS, step->convertedOperand(1, rowMajorDesc(weightDims), pd.weights_desc())}};
    if (biasOperand >= 0) args[DNNL_ARG_BIAS] = step->operand(static_cast<size_t>(biasOperand), bias);
    bindPostOpInputs(*step, postOps, out.size(), args, cl);
    if (chunks > 0) {
      addChunked(*step, dnnl::convolution_forward(pd), std::move(args), pd.src_desc(), pd.dst_desc(), x.shape,
                 node.type.shape, chunks, residual);
    } else {
      memory dst = step->output(step->result(dataDesc(out, node.type.shape, cl)), pd.dst_desc());
      args[DNNL_ARG_SRC] = step->input(step->operand(0, dataDesc(xs, x.shape, cl)), pd.src_desc());
      args[DNNL_ARG_DST] = dst;
      if (residual >= 0)  // the sum post-op adds what the destination holds: the residual
        step->copyFirst(step->operand(static_cast<size_t>(residual), dataDesc(out, node.type.shape, cl)), dst);
      step->add(dnnl::convolution_forward(pd), std::move(args));
    }
    step->noteImpl(pd.impl_info_str());
    return step;
  };

  if (triesWinograd(node, x.shape, w.shape))
    if (auto step = winogradStep<Pd>(inPlace, postOpsFitAnyBatch(postOps, out[1]), out, layouts,
                                     make, build))
      return step;
  Pd pd = preferredPd<Pd>([&](Layout layout) { return make(layout, false, 1); });
  if ((!postOps.empty() || biasOperand >= 0) && isReferenceImpl(pd.impl_info_str())) return nullptr;
  return build(pd, 0);
}

std::unique_ptr<OneDnnStep> compileConvTranspose(const ir::Node& node, const TensorType& x, const TensorType& w,
                                                 const dnnl::engine& engine, const StepLayouts& layouts) {
  ConvGeometry geo(node);
  const bool cl = ir::isChannelsLast(node.op, node.attrs);
  const Shape xs = channelsFirst(x.shape, cl), out = channelsFirst(node.type.shape, cl);
  // The output positions some input reaches: p * stride - padding + k * dilation < written.
  Shape written = {out[0], out[1]};
  memory::dims padRight;
  for (size_t d = 0; d + 2 < out.size(); ++d) {
    int64_t reach = (xs[d + 2] - 1) * geo.stride[d] - geo.padding[d] + geo.span(d, w.shape[d + 2]);
    int64_t extent = std::min(out[d + 2], reach);
    if (extent <= 0) return nullptr;  // every input lands in the padding
    written.push_back(extent);
    padRight.push_back(reach - extent);
  }
  const auto storedX = storedData(layouts, cl, 0), storedOut = storedData(layouts, cl && written == out, -1);
  const bool inPlace = cl && written == out && !storedX && !storedOut;
  Shape weightDims = groupedWeightDims({w.shape[1] * geo.groups, w.shape[0] / geo.groups}, geo.groups);
  for (size_t d = 2; d < w.shape.size(); ++d) weightDims.push_back(w.shape[d]);
  using Pd = dnnl::deconvolution_forward::primitive_desc;
  auto make = [&](Layout layout, bool wino, int64_t chunks) {
    auto algorithm = wino ? dnnl::algorithm::deconvolution_winograd : dnnl::algorithm::deconvolution_direct;
    dnnl::deconvolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, algorithm,
        dataOrStored(storedX, chunks, xs, x.shape, inPlace && !wino, layout), primitiveDesc(weightDims, layout),
        dataOrStored(storedOut, chunks, written, node.type.shape, inPlace && !wino, layout),
        spatialDims(geo.stride), oneDnnDilation(geo.dilation), spatialDims(geo.padding), padRight);
    return Pd(desc, engine);
  };
  auto build = [&](const Pd& pd, int64_t chunks) {
    auto step = std::make_unique<PrimitiveStep>("conv_transpose" + chunksNote(chunks), engine, layouts);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_WEIGHTS,
         step->convertedOperand(1, transposedWeightDesc(w.shape, geo.groups), pd.weights_desc())}};
    if (chunks > 0) {
      addChunked(*step, dnnl::deconvolution_forward(pd), std::move(args), pd.src_desc(), pd.dst_desc(), x.shape,
                 node.type.shape, chunks, -1);
    } else {
      if (written != out) step->zeroResultFirst(node.type.byteSize());
      args[DNNL_ARG_SRC] = step->input(step->operand(0, dataDesc(xs, x.shape, cl)), pd.src_desc());
      args[DNNL_ARG_DST] = step->output(step->result(dataDesc(written, node.type.shape, cl)), pd.dst_desc());
      step->add(dnnl::deconvolution_forward(pd), std::move(args));
    }
    step->noteImpl(pd.impl_info_str());
    return step;
  };

  if (triesWinograd(node, x.shape, w.shape))
    if (auto step = winogradStep<Pd>(inPlace, true, out, layouts, make, build)) return step;
  return build(preferredPd<Pd>([&](Layout layout) { return make(layout, false, 1); }), 0);
}

std::unique_ptr<OneDnnStep> compileConvWeightGrad(const ir::Node& node, const TensorType& x, const TensorType& dy,
                                                  const dnnl::engine& engine, const StepLayouts& layouts) {
  ConvGeometry geo(node);
  const bool cl = ir::isChannelsLast(node.op, node.attrs);
  const Shape xs = channelsFirst(x.shape, cl), dys = channelsFirst(dy.shape, cl);
  const auto& kernel = ir::AttrReader(node.attrs, node.op).ints("kernel");
  // The input positions dy's windows read: p * stride - padding + k * dilation < read.
  Shape read = {xs[0], xs[1]};
  memory::dims padRight;
  for (size_t d = 0; d < kernel.size(); ++d) {
    int64_t reach = (dys[d + 2] - 1) * geo.stride[d] - geo.padding[d] + geo.span(d, kernel[d]);
    int64_t extent = std::min(xs[d + 2], reach);
    if (extent <= 0) return nullptr;  // every window lies in the padding
    read.push_back(extent);
    padRight.push_back(reach - extent);
  }
  const auto storedX = storedData(layouts, cl && read == xs, 0), storedDy = storedData(layouts, cl, 1);
  const bool inPlace = cl && read == xs && !storedX && !storedDy;
  Shape weightDims = groupedWeightDims(node.type.shape, geo.groups);
  memory::dims strides = spatialDims(geo.stride), dilates = oneDnnDilation(geo.dilation),
               padLeft = spatialDims(geo.padding);
  using Pd = dnnl::convolution_backward_weights::primitive_desc;
  // A primitive descriptor for a batch of xs[0] / chunks images.
  auto make = [&](Layout layout, bool wino, int64_t chunks) {
    memory::desc src = dataOrStored(storedX, chunks, read, x.shape, inPlace && !wino, layout),
                 weights = primitiveDesc(weightDims, layout),
                 dst = dataOrStored(storedDy, chunks, dys, dy.shape, inPlace && !wino, layout);
    auto algorithm = wino ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
    dnnl::convolution_forward::desc forward(dnnl::prop_kind::forward_training, algorithm, src, weights, dst, strides,
                                            dilates, padLeft, padRight);
    dnnl::convolution_forward::primitive_desc hint(forward, engine);
    dnnl::convolution_backward_weights::desc desc(algorithm, src, weights, dst, strides, dilates, padLeft, padRight);
    return Pd(desc, engine, hint);
  };
  auto buildWhole = [&](const Pd& pd) {
    auto step = std::make_unique<PrimitiveStep>("conv_weight_grad", engine, layouts);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, step->input(step->operand(0, dataDesc(read, x.shape, cl)), pd.src_desc())},
        {DNNL_ARG_DIFF_DST, step->input(step->operand(1, dataDesc(dys, dy.shape, cl)), pd.diff_dst_desc())},
        {DNNL_ARG_DIFF_WEIGHTS, step->output(step->result(rowMajorDesc(weightDims)), pd.diff_weights_desc())}};
    step->add(dnnl::convolution_backward_weights(pd), std::move(args));
    step->noteImpl(pd.impl_info_str());
    return step;
  };
  // Channels-last data in batch chunks: each chunk of x and dy copied into `pd`'s layouts,
  // its gradient computed, and the chunks' gradients summed.
  auto buildChunked = [&](const Pd& pd, int64_t chunks) {
    auto step = std::make_unique<PrimitiveStep>("conv_weight_grad" + chunksNote(chunks), engine, layouts);
    memory srcCopy = step->scratch(pd.src_desc()), dyCopy = step->scratch(pd.diff_dst_desc());
    memory gradient = step->output(step->result(rowMajorDesc(weightDims)), pd.diff_weights_desc());
    memory partial = chunks > 1 ? step->scratch(pd.diff_weights_desc()) : gradient;
    const memory::desc& w = pd.diff_weights_desc();
    dnnl::sum accumulate(dnnl::sum::primitive_desc(w, {1.f, 1.f}, {w, w}, engine));
    dnnl::convolution_backward_weights primitive(pd);
    for (int64_t k = 0; k < chunks; ++k) {
      addCopy(*step, chunkOf(*step, 0, x.shape, chunks, k), srcCopy);
      addCopy(*step, chunkOf(*step, 1, dy.shape, chunks, k), dyCopy);
      memory into = k == 0 ? gradient : partial;
      step->add(primitive, {{DNNL_ARG_SRC, srcCopy}, {DNNL_ARG_DIFF_DST, dyCopy}, {DNNL_ARG_DIFF_WEIGHTS, into}});
      if (k > 0)
        step->add(accumulate, {{DNNL_ARG_MULTIPLE_SRC, gradient}, {DNNL_ARG_MULTIPLE_SRC + 1, partial},
                               {DNNL_ARG_DST, gradient}});
    }
    step->noteImpl(pd.impl_info_str());
    return step;
  };

  auto build = [&](const Pd& pd, int64_t chunks) { return chunks > 0 ? buildChunked(pd, chunks) : buildWhole(pd); };

  if (triesWinograd(node, x.shape, dy.shape))
    if (auto step = winogradStep<Pd>(inPlace, true, dys, layouts, make, build)) return step;
  return buildWhole(preferredPd<Pd>([&](Layout layout) { return make(layout, false, 1); }));
}

}  // namespace weft::cpu::onednn
