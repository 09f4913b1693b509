// aot_train: trains the `mlp` model on Fashion-MNIST with its training step compiled ahead of
// time (`weft compile mlp --aot --train`): forward, backward and the Adam update are one call
// into the bundle; the program links the bundle's object and weft's runtime, not the compiler.
//
//   aot_train OUT.safetensors [DATA_DIR] [EPOCHS] [LIMIT]
//
// Starts from the parameters' initializers, trains EPOCHS (default 1) epochs over the first
// LIMIT (default all 60000) training images with learning rate 1e-3, prints the mean loss as
// it goes, and saves the parameters and optimizer state to OUT (which aot_classifier loads).
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer.h"

namespace {

/// The `count` bytes after a `header`-byte header of the gzip'd IDX file `path`.
std::vector<uint8_t> readIdx(const std::string& path, int header, size_t count) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> skip(static_cast<size_t>(header)), data(count);
  bool ok = gzread(f, skip.data(), static_cast<unsigned>(header)) == header &&
            gzread(f, data.data(), static_cast<unsigned>(count)) == static_cast<int>(count);
  gzclose(f);
  if (!ok) throw std::runtime_error(path + ": too short for " + std::to_string(count) + " entries");
  return data;
}

/// Throws the model's message when `status` is not WEFT_OK.
void check(weft_status status, weft_model* model, const char* what) {
  if (status != WEFT_OK)
    throw std::runtime_error(std::string(what) + ": " + (model ? weft_model_error(model) : weft_last_error()));
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.safetensors [DATA_DIR] [EPOCHS] [LIMIT]\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  const std::string dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
  const int epochs = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;
  size_t count = argc > 4 ? static_cast<size_t>(std::atol(argv[4])) : 60000;
  if (count < 1 || count > 60000) count = 60000;

  constexpr int64_t kShape[] = TRAINER_INPUT_X_SHAPE;
  const size_t batch = static_cast<size_t>(kShape[0]), pixels = static_cast<size_t>(kShape[1]);
  std::vector<uint8_t> images = readIdx(dir + "/train-images-idx3-ubyte.gz", 16, count * pixels);
  std::vector<uint8_t> labels = readIdx(dir + "/train-labels-idx1-ubyte.gz", 8, count);

  weft_model* model = nullptr;
  check(weft_model_create(&trainer_bundle, &model), nullptr, "create");
  std::vector<float> x(batch * pixels);
  std::vector<int32_t> y(batch);
  float lr = 1e-3f;
  check(weft_model_set_input(model, TRAINER_INPUT_X_NAME, x.data(), TRAINER_INPUT_X_BYTES), model, "set x");
  check(weft_model_set_input(model, TRAINER_INPUT_Y_NAME, y.data(), TRAINER_INPUT_Y_BYTES), model, "set y");
  check(weft_model_set_input(model, TRAINER_INPUT_LR_NAME, &lr, TRAINER_INPUT_LR_BYTES), model, "set lr");

  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937 shuffle(0);
  size_t steps = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), shuffle);
    double lossSum = 0;
    size_t lossCount = 0;
    for (size_t first = 0; first + batch <= count; first += batch) {  // whole batches only
      for (size_t i = 0; i < batch; ++i) {
        size_t k = order[first + i];
        for (size_t p = 0; p < pixels; ++p)  // standardized: (p/255 - mean) / std
          x[i * pixels + p] = (static_cast<float>(images[k * pixels + p]) / 255.0f - 0.2860f) / 0.3530f;
        y[i] = labels[k];
      }
      check(weft_model_step(model), model, "step");
      lossSum += *static_cast<const float*>(weft_model_output(model, TRAINER_OUTPUT_LOSS_NAME, nullptr));
      ++lossCount;
      if (++steps % 100 == 0) {
        std::printf("epoch %d step %zu: mean loss %.4f\n", epoch, steps, lossSum / static_cast<double>(lossCount));
        lossSum = 0;
        lossCount = 0;
      }
    }
  }
  check(weft_model_save_weights(model, out.c_str()), model, "save");
  std::printf("trained %zu steps; saved %s\n", steps, out.c_str());
  weft_model_destroy(model);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "aot_train: %s\n", e.what());
  return 1;
}
