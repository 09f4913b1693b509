// Channels-last windowed ops in the reference backend: the node runs through its
// channels-first view (data operands transposed to [N, C, S...], the channels-first kernel,
// the data result transposed back), so every kernel keeps one layout.
#include "backends/reference/kernels.h"
#include "ir/channels_last.h"
#include "ir/graph.h"

namespace weft::reference {

bool isChannelsLast(const KernelContext& ctx) { return ir::isChannelsLast(ctx.node().op, ctx.node().attrs); }

ir::TensorData viaChannelsFirst(const KernelContext& ctx, Kernel kernel) {
  const ir::Node& node = ctx.node();
  ir::Graph view(ctx.graph.name());
  std::vector<ir::TensorData> firsts;  // the transposed data operands
  firsts.reserve(node.operands.size());
  std::vector<const ir::TensorData*> operands;
  std::vector<ir::TensorType> types;
  auto run = [&](ir::ValueId v, std::vector<const ir::TensorData*> in) {
    return kernelFor(view.node(v).op)(KernelContext{view, v, std::move(in), ctx.feeds, ctx.options});
  };
  for (size_t i = 0; i < node.operands.size(); ++i) {
    const ir::TensorData& x = ctx.in(i);
    ir::ValueId in = view.addInput("in" + std::to_string(i), x.type);
    if (!ir::isDataOperand(node.op, i)) {
      operands.push_back(&x);
      types.push_back(x.type);
      continue;
    }
    ir::Node t;
    t.op = ir::OpKind::Transpose;
    t.operands = {in};
    t.attrs["perm"] = ir::toChannelsFirstPerm(x.type.shape.size());
    t.type = {x.type.dtype, ir::toChannelsFirst(x.type.shape)};
    t.loc = node.loc;
    firsts.push_back(run(view.addNode(t), {&x}));
    types.push_back(t.type);
  }
  size_t next = 0;
  for (size_t i = 0; i < node.operands.size(); ++i)
    if (ir::isDataOperand(node.op, i)) operands.insert(operands.begin() + static_cast<long>(i), &firsts[next++]);
  ir::Node first = node;
  first.attrs.erase("channels_last");
  first.operands.clear();
  for (size_t i = 0; i < types.size(); ++i) first.operands.push_back(static_cast<ir::ValueId>(i));
  first.type = ir::inferType(first.op, types, first.attrs);
  first.name.clear();
  ir::TensorData out = run(view.addNode(first), operands);
  if (!ir::hasDataResult(node.op)) return out;
  ir::Node back;
  back.op = ir::OpKind::Transpose;
  back.operands = {view.size() - 1};
  back.attrs["perm"] = ir::toChannelsLastPerm(out.type.shape.size());
  back.type = node.type;
  back.loc = node.loc;
  return run(view.addNode(back), {&out});
}

}  // namespace weft::reference
