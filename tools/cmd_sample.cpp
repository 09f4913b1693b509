// `weft sample`: decodes random latents with a generative model's decoder into a PNG grid.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "backends/reference/interpreter.h"
#include "ir/error.h"
#include "models/registry.h"
#include "runtime/png.h"
#include "runtime/random.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/training/checkpoint.h"

namespace weft::cli {
namespace {

const char* kSampleHelp = R"(usage: weft sample MODEL --out GRID.png [options]

Draws z ~ N(0, 1) and decodes it with a generative model's decoder (vae, vae_tiny), writing
the images as a grayscale PNG grid. Without --checkpoint the decoder has its initial
(untrained) parameters.

options:
  --out FILE             the PNG to write (required)
  --checkpoint FILE      parameters from a `weft train --checkpoint` file
  --n N                  number of samples (default 64)
  --columns N            images per grid row (default 8)
  --seed N               seed of the latent draws (default 0)
)";

}  // namespace

int cmdSample(int argc, char** argv) {
  Args args(argc, argv, 2, {"out", "checkpoint", "n", "columns", "seed"}, {"help"});
  if (args.has("help")) {
    std::cout << kSampleHelp;
    return 0;
  }
  if (args.positional().size() != 1) throw Error("weft sample needs one MODEL (see --help)");
  const std::string name = args.positional()[0];
  const models::ModelInfo* info = models::findModel(name);
  if (!info) {
    models::buildModel(name);  // throws the unknown-model error listing the known names
    return 1;
  }
  if (!info->decoder) throw Error("model '" + name + "' is not generative: it has no decoder to sample from");
  auto out = args.get("out");
  if (!out || out->empty()) throw Error("weft sample needs --out FILE.png");
  long long n = args.getInt("n", 64), columns = args.getInt("columns", 8), seed = args.getInt("seed", 0);
  if (n < 1 || columns < 1 || seed < 0) throw Error("--n and --columns must be positive and --seed >= 0");
  constexpr long long kMaxSamples = 1 << 16;  // a grid PNG of 65536 28x28 images is 51 MB already
  if (n > kMaxSamples) throw Error("--n " + std::to_string(n) + " is too many samples (at most 65536 in one grid)");

  models::BuildOptions build{.training = false, .batch = n, .seed = std::nullopt};
  std::string checkpoint = args.get("checkpoint", "");
  if (!checkpoint.empty()) {
    training::CheckpointInfo saved = training::readCheckpointInfo(checkpoint);
    if (saved.model != name)
      throw Error(checkpoint + ": the checkpoint is of model '" + saved.model + "', not '" + name + "'");
    build.seed = saved.seed;
  }
  ir::Graph decoder = info->decoder(build);
  reference::TensorMap feeds = reference::initialState(decoder);
  if (!checkpoint.empty()) training::loadCheckpointState(checkpoint, feeds, /*exact=*/false);

  const ir::TensorType& zType = decoder.type(*decoder.find("z"));
  ir::TensorData z(zType);
  for (int64_t i = 0; i < z.numel(); ++i) z.set(i, runtime::normalAt(static_cast<uint64_t>(seed), 0, i));
  feeds["z"] = z;
  ir::TensorData images = reference::run(decoder, feeds).at("images");

  const int64_t features = images.numel() / n;
  auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(features))));
  int64_t h = side * side == features ? side : 1, w = side * side == features ? side : features;
  std::vector<float> pixels(static_cast<size_t>(images.numel()));
  for (int64_t i = 0; i < images.numel(); ++i) pixels[static_cast<size_t>(i)] = static_cast<float>(images.get(i));
  runtime::writePngGrid(*out, pixels, n, h, w, columns);
  std::printf("wrote %lld samples (%lldx%lld) to %s\n", n, static_cast<long long>(h), static_cast<long long>(w),
              out->c_str());
  return 0;
}

}  // namespace weft::cli
