// PNG through libpng's simplified API (png_image), which handles libpng's error jumps
// internally and reports failures through png_image::message.
#include "runtime/png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ir/error.h"
#include "runtime/file_io.h"

namespace weft::runtime {

namespace {

/// libpng's default limit on image width and height when reading.
constexpr int64_t kMaxSide = 1000000;

/// Frees a png_image's resources on scope exit.
struct ImageGuard {
  png_image* image;
  ~ImageGuard() { png_image_free(image); }
};

png_image grayImageHeader(int64_t height, int64_t width) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_GRAY;
  return image;
}

}  // namespace

GrayImage makeImageGrid(const std::vector<float>& images, int64_t n, int64_t h, int64_t w, int64_t columns,
                        int padding) {
  if (n < 1 || h < 1 || w < 1 || columns < 1 || padding < 0)
    throw Error("image grid: need n, h, w, columns >= 1 and padding >= 0, got n=" + std::to_string(n) +
                " h=" + std::to_string(h) + " w=" + std::to_string(w) + " columns=" + std::to_string(columns) +
                " padding=" + std::to_string(padding));
  if (h > kMaxSide || w > kMaxSide || n > kMaxSide)
    throw Error("image grid: " + std::to_string(n) + " images of " + std::to_string(h) + "x" + std::to_string(w) +
                " are too large for a PNG");
  if (static_cast<int64_t>(images.size()) != n * h * w)
    throw Error("image grid: " + std::to_string(images.size()) + " pixel values given for " + std::to_string(n) +
                " images of " + std::to_string(h) + "x" + std::to_string(w));
  int64_t cols = std::min(columns, n);
  int64_t rows = (n + cols - 1) / cols;
  GrayImage grid;
  grid.width = cols * (w + padding) + padding;
  grid.height = rows * (h + padding) + padding;
  if (grid.width > kMaxSide || grid.height > kMaxSide)
    throw Error("image grid: " + std::to_string(grid.height) + "x" + std::to_string(grid.width) +
                " pixels exceed the PNG limit of " + std::to_string(kMaxSide) + " per side");
  grid.pixels.assign(static_cast<size_t>(grid.width * grid.height), 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t top = padding + (k / cols) * (h + padding);
    int64_t left = padding + (k % cols) * (w + padding);
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < w; ++c) {
        float v = images[(k * h + r) * w + c];
        float clamped = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 1.0f);
        grid.pixels[(top + r) * grid.width + left + c] = static_cast<uint8_t>(std::lround(clamped * 255.0f));
      }
  }
  return grid;
}

std::string encodePngGray(const GrayImage& image) {
  if (image.height < 1 || image.width < 1 || image.height > kMaxSide || image.width > kMaxSide ||
      static_cast<int64_t>(image.pixels.size()) != image.height * image.width)
    throw Error("cannot encode a " + std::to_string(image.height) + "x" + std::to_string(image.width) +
                " PNG from " + std::to_string(image.pixels.size()) + " pixels");
  png_image header = grayImageHeader(image.height, image.width);
  ImageGuard guard{&header};
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&header, nullptr, &size, 0, image.pixels.data(), 0, nullptr))
    throw Error(std::string("cannot encode PNG: ") + header.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&header, bytes.data(), &size, 0, image.pixels.data(), 0, nullptr))
    throw Error(std::string("cannot encode PNG: ") + header.message);
  bytes.resize(size);
  return bytes;
}

GrayImage decodePngGray(const std::string& bytes, const std::string& what) {
  png_image header;
  std::memset(&header, 0, sizeof header);
  header.version = PNG_IMAGE_VERSION;
  ImageGuard guard{&header};
  if (!png_image_begin_read_from_memory(&header, bytes.data(), bytes.size()))
    throw Error(what + ": not a readable PNG: " + header.message);
  header.format = PNG_FORMAT_GRAY;
  GrayImage image;
  image.height = header.height;
  image.width = header.width;
  image.pixels.resize(PNG_IMAGE_SIZE(header));
  if (!png_image_finish_read(&header, nullptr, image.pixels.data(), 0, nullptr))
    throw Error(what + ": cannot decode PNG: " + header.message);
  return image;
}

void writePngGrid(const std::string& path, const std::vector<float>& images, int64_t n, int64_t h, int64_t w,
                  int64_t columns, int padding) {
  std::string bytes;
  try {
    bytes = encodePngGray(makeImageGrid(images, n, h, w, columns, padding));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  writeFileAtomically(path, bytes);
}

GrayImage readPngGray(const std::string& path) { return decodePngGray(readFileBytes(path), path); }

}  // namespace weft::runtime
