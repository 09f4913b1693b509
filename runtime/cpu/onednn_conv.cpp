// The oneDNN steps of the convolution family: conv (forward, with post-ops), conv_transpose
// (deconvolution forward) and conv_weight_grad (convolution backward-weights). Operands and
// results are row-major user buffers; the primitives run in the layouts preferredPd picks,
// reordered inside the step. A channels_last node's data are [N, spatial..., C] buffers, seen
// by oneDNN as channels-first dims with channels-last strides, which its kernels read and
// write in place (no reorder).
//
// Geometry: weft pads symmetrically and its extents follow floor division, while oneDNN
// wants padding_r to make the extents exact. Where weft's extent is shorter than what the
// padding allows (conv_weight_grad's dy, conv_transpose's output_padding) the step views a
// prefix of the longer tensor instead, so that padding_r stays >= 0:
//  - conv_weight_grad reads only the input positions dy's windows reach;
//  - conv_transpose writes only the output positions some input reaches, the rest are zeros.
#include <cstring>

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

/// The descriptor a primitive is created with for data of channels-first `dims` stored as
/// `stored`: channels-last data `inPlace`, else `layout`'s. A step that views a prefix of
/// channels-last data (strided, which oneDNN's fast kernels do not take, nor a mix of it with
/// whole channels-last data) converts all its data like channels-first data.
memory::desc primitiveData(const Shape& dims, const Shape& stored, bool inPlace, Layout layout) {
  return inPlace ? dataDesc(dims, stored, true) : primitiveDesc(dims, layout);
}

/// The Winograd primitive descriptor `make(Layout::Chosen, true)` when `winograd` and oneDNN
/// has a non-reference implementation of it (its data then converted in and out of its
/// blocked layout); otherwise preferredPd's choice among `make(layout, false)`.
template <class Pd, class Make>
Pd convPd(bool winograd, const Make& make) {
  if (winograd) try {
      Pd pd = make(Layout::Chosen, true);
      if (!isReferenceImpl(pd.impl_info_str())) return pd;
    } catch (const dnnl::error&) {
    }
  return preferredPd<Pd>([&](Layout layout) { return make(layout, false); });
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
  dnnl::primitive_attr attr = postOpAttr(postOps, out.size(), cl);
  const bool winograd = triesWinograd(node, x.shape, w.shape) && (!cl || layouts.mayConvertChannelsLast);
  auto pd = convPd<dnnl::convolution_forward::primitive_desc>(winograd, [&](Layout layout, bool wino) {
    memory::desc src = primitiveData(xs, x.shape, cl && !wino, layout), weights = primitiveDesc(weightDims, layout),
                 dst = primitiveData(out, node.type.shape, cl && !wino, layout);
    auto algorithm = wino ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
    // Winograd's inference form wants weights pre-transformed (a slow reorder each run, as
    // the weights are operands); its training form transforms them inside the primitive.
    auto prop = wino ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    auto desc = biasOperand >= 0
                    ? dnnl::convolution_forward::desc(prop, algorithm, src, weights, bias, dst, spatialDims(geo.stride),
                                                      oneDnnDilation(geo.dilation), pads, pads)
                    : dnnl::convolution_forward::desc(prop, algorithm, src, weights, dst, spatialDims(geo.stride),
                                                      oneDnnDilation(geo.dilation), pads, pads);
    return dnnl::convolution_forward::primitive_desc(desc, attr, engine);
  });
  if ((!postOps.empty() || biasOperand >= 0) && isReferenceImpl(pd.impl_info_str())) return nullptr;

  auto step = std::make_unique<PrimitiveStep>(std::string(biasOperand >= 0 ? "conv+bias" : "conv") +
                                                  postOpNames(postOps),
                                              engine, layouts);
  memory dst = step->output(step->result(dataDesc(out, node.type.shape, cl)), pd.dst_desc());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, step->input(step->operand(0, dataDesc(xs, x.shape, cl)), pd.src_desc())},
      {DNNL_ARG_WEIGHTS, step->input(step->operand(1, rowMajorDesc(weightDims)), pd.weights_desc())},
      {DNNL_ARG_DST, dst}};
  if (biasOperand >= 0) args[DNNL_ARG_BIAS] = step->operand(static_cast<size_t>(biasOperand), bias);
  if (sumIndex >= 0)  // the sum post-op adds what the destination holds: the residual
    step->copyFirst(step->operand(static_cast<size_t>(postOps[static_cast<size_t>(sumIndex)].operand),
                                  dataDesc(out, node.type.shape, cl)),
                    dst);
  bindPostOpInputs(*step, postOps, out.size(), args, cl);
  step->add(dnnl::convolution_forward(pd), std::move(args));
  step->noteImpl(pd.impl_info_str());
  return step;
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
  const bool inPlace = cl && written == out;
  Shape weightDims = groupedWeightDims({w.shape[1] * geo.groups, w.shape[0] / geo.groups}, geo.groups);
  for (size_t d = 2; d < w.shape.size(); ++d) weightDims.push_back(w.shape[d]);
  const bool winograd = triesWinograd(node, x.shape, w.shape) && (!inPlace || layouts.mayConvertChannelsLast);
  auto pd = convPd<dnnl::deconvolution_forward::primitive_desc>(winograd, [&](Layout layout, bool wino) {
    auto algorithm = wino ? dnnl::algorithm::deconvolution_winograd : dnnl::algorithm::deconvolution_direct;
    dnnl::deconvolution_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm,
                                           primitiveData(xs, x.shape, inPlace && !wino, layout),
                                           primitiveDesc(weightDims, layout),
                                           primitiveData(written, node.type.shape, inPlace && !wino, layout),
                                           spatialDims(geo.stride), oneDnnDilation(geo.dilation),
                                           spatialDims(geo.padding), padRight);
    return dnnl::deconvolution_forward::primitive_desc(desc, engine);
  });

  auto step = std::make_unique<PrimitiveStep>("conv_transpose", engine, layouts);
  if (written != out) step->zeroResultFirst(node.type.byteSize());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, step->input(step->operand(0, dataDesc(xs, x.shape, cl)), pd.src_desc())},
      {DNNL_ARG_WEIGHTS, step->input(step->operand(1, transposedWeightDesc(w.shape, geo.groups)), pd.weights_desc())},
      {DNNL_ARG_DST, step->output(step->result(dataDesc(written, node.type.shape, cl)), pd.dst_desc())}};
  step->add(dnnl::deconvolution_forward(pd), std::move(args));
  step->noteImpl(pd.impl_info_str());
  return step;
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
  const bool inPlace = cl && read == xs;
  Shape weightDims = groupedWeightDims(node.type.shape, geo.groups);
  memory::dims strides = spatialDims(geo.stride), dilates = oneDnnDilation(geo.dilation),
               padLeft = spatialDims(geo.padding);
  const bool winograd = triesWinograd(node, x.shape, dy.shape) && (!inPlace || layouts.mayConvertChannelsLast);
  auto pd = convPd<dnnl::convolution_backward_weights::primitive_desc>(winograd, [&](Layout layout, bool wino) {
    memory::desc src = primitiveData(read, x.shape, inPlace && !wino, layout), weights = primitiveDesc(weightDims, layout),
                 dst = primitiveData(dys, dy.shape, inPlace && !wino, layout);
    auto algorithm = wino ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
    dnnl::convolution_forward::desc forward(dnnl::prop_kind::forward_training, algorithm, src, weights, dst, strides,
                                            dilates, padLeft, padRight);
    dnnl::convolution_forward::primitive_desc hint(forward, engine);
    dnnl::convolution_backward_weights::desc desc(algorithm, src, weights, dst, strides, dilates, padLeft, padRight);
    return dnnl::convolution_backward_weights::primitive_desc(desc, engine, hint);
  });

  auto step = std::make_unique<PrimitiveStep>("conv_weight_grad", engine, layouts);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, step->input(step->operand(0, dataDesc(read, x.shape, cl)), pd.src_desc())},
      {DNNL_ARG_DIFF_DST, step->input(step->operand(1, dataDesc(dys, dy.shape, cl)), pd.diff_dst_desc())},
      {DNNL_ARG_DIFF_WEIGHTS, step->output(step->result(rowMajorDesc(weightDims)), pd.diff_weights_desc())}};
  step->add(dnnl::convolution_backward_weights(pd), std::move(args));
  step->noteImpl(pd.impl_info_str());
  return step;
}

}  // namespace weft::cpu::onednn
