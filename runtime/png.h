#pragma once
/// 8-bit grayscale PNG output (image grids for samples and reconstructions) and input.
#include <cstdint>
#include <string>
#include <vector>

namespace weft::runtime {

/// A decoded 8-bit grayscale image.
struct GrayImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;  ///< height * width, row-major
};

/// Lays out `n` images of h x w pixels (row-major in `images`, values in [0, 1]: clamped,
/// NaN as 0) in a grid of min(columns, n) columns, with `padding` black pixels around and
/// between them, as torchvision's make_grid does. Throws weft::Error for inconsistent sizes.
GrayImage makeImageGrid(const std::vector<float>& images, int64_t n, int64_t h, int64_t w, int64_t columns,
                        int padding = 2);

/// PNG bytes of an 8-bit grayscale image. Throws weft::Error when libpng fails.
std::string encodePngGray(const GrayImage& image);

/// Decodes PNG bytes to 8-bit grayscale (color is converted); `what` names the source in
/// errors.
GrayImage decodePngGray(const std::string& bytes, const std::string& what);

/// Writes makeImageGrid(...) as an 8-bit grayscale PNG at `path`, atomically (temporary
/// file, then rename). Errors name the path.
void writePngGrid(const std::string& path, const std::vector<float>& images, int64_t n, int64_t h, int64_t w,
                  int64_t columns, int padding = 2);

/// Reads a PNG file as 8-bit grayscale. Errors name the path.
GrayImage readPngGray(const std::string& path);

}  // namespace weft::runtime
