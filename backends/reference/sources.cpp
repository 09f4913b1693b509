// Kernels of the source ops: input, param, constant, iota and the random ops.
#include <vector>

#include "backends/reference/kernels.h"
#include "backends/reference/tensor_util.h"
#include "runtime/init.h"
#include "runtime/random.h"

namespace weft::reference {

using ir::TensorData;

/// Checks that a fed tensor has exactly the declared type and a matching buffer.
static TensorData checkedFeed(const KernelContext& ctx, const TensorData& feed) {
  if (feed.type != ctx.outType())
    ctx.fail("fed " + feed.type.str() + " but the graph declares " + ctx.outType().str());
  if (feed.bytes.size() != feed.type.byteSize())
    ctx.fail("the fed tensor holds " + std::to_string(feed.bytes.size()) + " bytes, but " +
             feed.type.str() + " needs " + std::to_string(feed.type.byteSize()));
  return feed;
}

TensorData kernelInput(const KernelContext& ctx) {
  auto it = ctx.feeds.find(ctx.node().name);
  if (it == ctx.feeds.end()) ctx.fail("no value was fed for this input (expects " + ctx.outType().str() + ")");
  return checkedFeed(ctx, it->second);
}

TensorData kernelParam(const KernelContext& ctx) {
  auto it = ctx.feeds.find(ctx.node().name);
  if (it != ctx.feeds.end()) return checkedFeed(ctx, it->second);
  TensorData value = runtime::initializeParam(ctx.node().name, ctx.outType(), ctx.node().attrs);
  if (value.type != ctx.outType()) ctx.fail("initializer produced " + value.type.str());
  return value;
}

TensorData kernelConstant(const KernelContext& ctx) {
  const ir::TensorDataPtr& value = ctx.attr().tensor("value");
  if (!value) ctx.fail("constant has no value");
  if (value->bytes.size() != value->type.byteSize())
    ctx.fail("constant value holds " + std::to_string(value->bytes.size()) + " bytes, but " +
             value->type.str() + " needs " + std::to_string(value->type.byteSize()));
  return *value;
}

TensorData kernelIota(const KernelContext& ctx) {
  TensorData out(ctx.outType());
  AxisSplit split = splitAround(out.type.shape, ctx.attr().i("axis"));
  for (int64_t i = 0; i < out.numel(); ++i) setInt(out, i, (i / split.inner) % split.size);
  return out;
}

TensorData kernelRandomUniform(const KernelContext& ctx) {
  TensorData out(ctx.outType());
  auto seed = static_cast<uint64_t>(ctx.attr().i("seed"));
  double low = ctx.attr().f("low"), high = ctx.attr().f("high");
  std::vector<double> draws(static_cast<size_t>(out.numel()));
  runtime::uniformsAt(seed, ctx.options.step, 0, out.numel(), draws.data());
  for (int64_t i = 0; i < out.numel(); ++i) store(out, i, low + (high - low) * draws[static_cast<size_t>(i)]);
  return out;
}

TensorData kernelRandomNormal(const KernelContext& ctx) {
  TensorData out(ctx.outType());
  auto seed = static_cast<uint64_t>(ctx.attr().i("seed"));
  double mean = ctx.attr().f("mean"), stddev = ctx.attr().f("std");
  std::vector<double> draws(static_cast<size_t>(out.numel()));
  runtime::normalsAt(seed, ctx.options.step, 0, out.numel(), draws.data());
  for (int64_t i = 0; i < out.numel(); ++i) store(out, i, mean + stddev * draws[static_cast<size_t>(i)]);
  return out;
}

}  // namespace weft::reference
