// The oneDNN steps of the pools: max_pool and avg_pool (pooling forward; the average divides
// by the whole window, padding included, as the reference does) and max_pool_grad (pooling
// forward-training for the workspace of argmax positions, then pooling backward, which
// routes each dy to its window's first maximum, in one step). The pools run on row-major,
// channels-last and channel-blocked data directly.
//
// Exactness: the reference and oneDNN agree on ties (the first maximum in window order wins,
// checked by the tests). They differ on NaN (the reference propagates it, oneDNN's max
// ignores it) and on a window whose inputs are all -inf (oneDNN's maximum starts from the
// lowest finite float); nothing at compile time can rule those out, so 1-D and 2-D f32 max
// pools run natively (native_max_pool.h) and only 3-D ones here.
#include "ir/channels_last.h"
#include "runtime/cpu/onednn_families.h"

namespace weft::cpu::onednn {
namespace {

/// The pooling geometry of a node, or nullopt when a padding reaches a whole window (a
/// window could then lie in the padding alone, which oneDNN does not model).
struct PoolGeometry {
  memory::dims window, stride, padding;
};

std::optional<PoolGeometry> poolGeometry(const ir::Node& node) {
  ir::AttrReader attr(node.attrs, node.op);
  PoolGeometry geo{spatialDims(attr.ints("window")), spatialDims(attr.ints("stride")), spatialDims(attr.ints("padding"))};
  for (size_t d = 0; d < geo.window.size(); ++d)
    if (geo.padding[d] >= geo.window[d]) return std::nullopt;
  return geo;
}

}  // namespace

std::unique_ptr<OneDnnStep> compilePool(const ir::Node& node, const ir::TensorType& x, const dnnl::engine& engine,
                                        const StepLayouts& layouts) {
  auto geo = poolGeometry(node);
  if (!geo) return nullptr;
  bool isMax = node.op == ir::OpKind::MaxPool;
  // Pooling reads its source in the layout it is given (channels-first data as the step
  // before passed it, channels-last data as stored: in place, or channel-blocked); a blocked
  // source gets a blocked result, converted into the result's layout unless that is the
  // same, and a channels-last source a channels-last one (converted if stored blocked).
  const bool cl = ir::isChannelsLast(node.op, node.attrs);
  const ir::Shape xs = cl ? ir::toChannelsFirst(x.shape) : x.shape, outs = cl ? ir::toChannelsFirst(node.type.shape) : node.type.shape;
  auto srcLayout = layouts.operand(0);
  memory::desc user = dataDesc(xs, x.shape, cl), out = dataDesc(outs, node.type.shape, cl);
  memory::desc src = srcLayout.value_or(user);
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference,
                                   isMax ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_include_padding,
                                   src, srcLayout ? anyDesc(outs) : out, geo->stride, geo->window,
                                   geo->padding, geo->padding);
  dnnl::pooling_forward::primitive_desc pd(desc, engine);
  if (srcLayout && !cl && isReferenceImpl(pd.impl_info_str())) return nullptr;  // read it row-major instead
  auto step = std::make_unique<PrimitiveStep>(isMax ? "max_pool" : "avg_pool", engine, layouts);
  step->add(dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, step->operand(0, user)},
                                        {DNNL_ARG_DST, step->output(step->result(out), pd.dst_desc())}});
  if (!cl) step->readsAnyLayoutOf(0);
  step->noteImpl(pd.impl_info_str());
  return step;
}

std::unique_ptr<OneDnnStep> compileMaxPoolGrad(const ir::Node& node, const ir::TensorType& x, const ir::TensorType& dy,
                                               const dnnl::engine& engine, const StepLayouts& layouts) {
  auto geo = poolGeometry(node);
  if (!geo) return nullptr;
  memory::desc src = rowMajorDesc(x.shape), pooled = rowMajorDesc(dy.shape);
  dnnl::pooling_forward::desc forward(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, src, pooled,
                                      geo->stride, geo->window, geo->padding, geo->padding);
  dnnl::pooling_forward::primitive_desc forwardPd(forward, engine);
  dnnl::pooling_backward::desc backward(dnnl::algorithm::pooling_max, src, pooled, geo->stride, geo->window,
                                        geo->padding, geo->padding);
  dnnl::pooling_backward::primitive_desc backwardPd(backward, engine, forwardPd);

  auto step = std::make_unique<PrimitiveStep>("max_pool_grad", engine, layouts);
  memory workspace = step->scratch(forwardPd.workspace_desc());
  step->add(dnnl::pooling_forward(forwardPd), {{DNNL_ARG_SRC, step->input(step->operand(0, src), forwardPd.src_desc())},
                                               {DNNL_ARG_DST, step->scratch(forwardPd.dst_desc())},
                                               {DNNL_ARG_WORKSPACE, workspace}});
  step->add(dnnl::pooling_backward(backwardPd),
            {{DNNL_ARG_DIFF_DST, step->input(step->operand(1, pooled), backwardPd.diff_dst_desc())},
             {DNNL_ARG_DIFF_SRC, step->output(step->result(src), backwardPd.diff_src_desc())},
             {DNNL_ARG_WORKSPACE, workspace}});
  step->noteImpl(backwardPd.impl_info_str());
  return step;
}

}  // namespace weft::cpu::onednn
