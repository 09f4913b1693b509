#include "tools/training/feeds.h"

#include "ir/error.h"

namespace weft::training {

ir::TensorData convertTo(const ir::TensorData& t, const ir::TensorType& type) {
  if (t.numel() != type.numel())
    throw Error("cannot convert " + t.type.str() + " to " + type.str() + ": the element counts differ");
  if (t.type.dtype == type.dtype) {
    ir::TensorData out = t;
    out.type = type;
    return out;
  }
  ir::TensorData out(type);
  for (int64_t i = 0; i < t.numel(); ++i) out.set(i, t.get(i));
  return out;
}

reference::TensorMap batchFeeds(const ir::Graph& g, const runtime::Batch& b, const std::string& skip) {
  reference::TensorMap feeds;
  for (ir::ValueId v : g.inputs()) {
    const std::string& name = g.node(v).name;
    const ir::TensorType& type = g.type(v);
    if (name == skip) continue;
    const ir::TensorData* source = nullptr;
    if (name == "x")
      source = &b.images;
    else if (name == "y")
      source = &b.labels;
    else
      throw Error("@" + g.name() + " takes input '" + name + "' (" + type.str() +
                  "), which an image dataset cannot feed (it feeds x: images, y: labels)");
    if (source->numel() != type.numel())
      throw Error("@" + g.name() + " input '" + name + "' is " + type.str() + " but the batch holds " +
                  source->type.str());
    if (name == "y" && !ir::isInteger(type.dtype))
      throw Error("@" + g.name() + " input 'y' must be integer labels, got " + type.str());
    feeds[name] = convertTo(*source, type);
  }
  return feeds;
}

}  // namespace weft::training
