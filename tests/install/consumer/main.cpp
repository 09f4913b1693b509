/// Round-trips tensors through .npy and safetensors files and an image through PNG with the
/// installed weft runtime, and prints what it read back (checked by run_install_test.sh).
#include <cstdio>
#include <string>

#include "ir/error.h"
#include "runtime/npy.h"
#include "runtime/png.h"
#include "runtime/safetensors.h"

using weft::ir::DType;
using weft::ir::TensorData;
using weft::ir::TensorType;

/// A tensor of type `t` whose element i is start + i * step.
static TensorData ramp(DType dtype, weft::ir::Shape shape, double start, double step) {
  TensorData t(TensorType{dtype, shape});
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, start + static_cast<double>(i) * step);
  return t;
}

/// Sum of the elements of `t`.
static double sum(const TensorData& t) {
  double s = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t.get(i);
  return s;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: weft_consumer WORK_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    TensorData weights = ramp(DType::f32, {2, 3}, -1.0, 0.5);  // -1 -0.5 0 0.5 1 1.5
    TensorData counts = ramp(DType::i64, {4}, 10.0, 10.0);     // 10 20 30 40

    weft::runtime::writeNpy(dir + "/weights.npy", weights);
    TensorData npy = weft::runtime::readNpy(dir + "/weights.npy");
    std::printf("npy %s sum=%g equal=%d\n", npy.type.str().c_str(), sum(npy), npy == weights);

    weft::runtime::saveSafetensors(dir + "/model.safetensors", {{"fc.weight", weights}, {"steps", counts}},
                                   {{"producer", "consumer"}});
    weft::runtime::TensorMap loaded = weft::runtime::loadSafetensors(dir + "/model.safetensors");
    weft::runtime::MetadataMap meta = weft::runtime::readSafetensorsMetadata(dir + "/model.safetensors");
    std::printf("safetensors n=%zu %s sum=%g %s sum=%g producer=%s\n", loaded.size(),
                loaded.at("fc.weight").type.str().c_str(), sum(loaded.at("fc.weight")),
                loaded.at("steps").type.str().c_str(), sum(loaded.at("steps")), meta["producer"].c_str());

    weft::runtime::GrayImage image;
    image.height = 3;
    image.width = 4;
    for (int i = 0; i < 12; ++i) image.pixels.push_back(static_cast<uint8_t>(i * 20));
    weft::runtime::GrayImage decoded = weft::runtime::decodePngGray(weft::runtime::encodePngGray(image), "image");
    long pixelSum = 0;
    for (uint8_t p : decoded.pixels) pixelSum += p;
    std::printf("png %lldx%lld sum=%ld\n", static_cast<long long>(decoded.height),
                static_cast<long long>(decoded.width), pixelSum);

    std::string truncated = weft::runtime::serializeNpy(weights);
    truncated.resize(truncated.size() - 4);
    try {
      weft::runtime::parseNpy(truncated, "truncated.npy");
      std::printf("truncated npy: no error\n");
    } catch (const weft::Error&) {
      std::printf("truncated npy: weft::Error\n");
    }
  } catch (const weft::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
