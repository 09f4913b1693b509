/*
 * aot_classifier: classifies Fashion-MNIST test images with the `mlp` model compiled ahead of
 * time (`weft compile mlp --aot`): a C program that links the bundle's object and weft's
 * runtime, and nothing of the compiler.
 *
 *   aot_classifier WEIGHTS.safetensors [DATA_DIR] [COUNT]
 *
 * WEIGHTS: the bundle's own file (initial, untrained weights) or one saved by aot_train.
 * DATA_DIR: where t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz are
 * (default /usr/share/datasets/fashion-mnist). COUNT: test images to classify (default 10000).
 * Prints the first predictions and the accuracy.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "classifier.h"

static const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Reads `count` bytes after a `header`-byte header of the gzip'd IDX file `path`; 0 on failure. */
static int readIdx(const char* path, int header, uint8_t* out, long count) {
  gzFile f = gzopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return 0;
  }
  uint8_t skip[16];
  int ok = gzread(f, skip, (unsigned)header) == header && gzread(f, out, (unsigned)count) == count;
  gzclose(f);
  if (!ok) fprintf(stderr, "%s: too short for %ld entries\n", path, count);
  return ok;
}

/* Fails with the model's message. */
static int fail(weft_model* model, const char* what) {
  fprintf(stderr, "%s: %s\n", what, model ? weft_model_error(model) : weft_last_error());
  weft_model_destroy(model);
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s WEIGHTS.safetensors [DATA_DIR] [COUNT]\n", argv[0]);
    return 2;
  }
  const char* dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
  long count = argc > 3 ? atol(argv[3]) : 10000;
  if (count < 1 || count > 10000) count = 10000;

  static const int64_t xShape[] = CLASSIFIER_INPUT_X_SHAPE;
  const long batch = (long)xShape[0], pixels = (long)xShape[1];
  const long classes = CLASSIFIER_OUTPUT_LOGITS_ELEMENTS / batch;

  uint8_t* images = malloc((size_t)(count * pixels));
  uint8_t* labels = malloc((size_t)count);
  float* x = calloc((size_t)(batch * pixels), sizeof(float));
  int32_t* y = calloc((size_t)batch, sizeof(int32_t));
  char path[4096];
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
  if (!images || !labels || !x || !y || !readIdx(path, 16, images, count * pixels)) return 1;
  snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
  if (!readIdx(path, 8, labels, count)) return 1;

  weft_model* model = NULL;
  if (weft_model_create(&classifier_bundle, &model) != WEFT_OK) return fail(NULL, "create");
  if (weft_model_load_weights(model, argv[1]) != WEFT_OK) return fail(model, "load weights");
  if (weft_model_set_input(model, CLASSIFIER_INPUT_X_NAME, x, CLASSIFIER_INPUT_X_BYTES) != WEFT_OK ||
      weft_model_set_input(model, CLASSIFIER_INPUT_Y_NAME, y, CLASSIFIER_INPUT_Y_BYTES) != WEFT_OK)
    return fail(model, "set input");

  long correct = 0;
  for (long first = 0; first < count; first += batch) {
    long n = count - first < batch ? count - first : batch;
    memset(x, 0, (size_t)(batch * pixels) * sizeof(float));
    for (long i = 0; i < n * pixels; ++i)  /* standardized as in training: (p/255 - mean) / std */
      x[i] = ((float)images[first * pixels + i] / 255.0f - 0.2860f) / 0.3530f;
    for (long i = 0; i < n; ++i) y[i] = labels[first + i];
    if (weft_model_run(model) != WEFT_OK) return fail(model, "run");
    const float* logits = weft_model_output(model, CLASSIFIER_OUTPUT_LOGITS_NAME, NULL);
    if (!logits) return fail(model, "output");
    for (long i = 0; i < n; ++i) {
      long best = 0;
      for (long c = 1; c < classes; ++c)
        if (logits[i * classes + c] > logits[i * classes + best]) best = c;
      correct += best == labels[first + i];
      if (first + i < 8)
        printf("image %ld: %s (label: %s)\n", first + i, kClassNames[best], kClassNames[labels[first + i]]);
    }
  }
  printf("accuracy: %.2f%% on %ld test images\n", 100.0 * (double)correct / (double)count, count);
  weft_model_destroy(model);
  free(images);
  free(labels);
  free(x);
  free(y);
  return 0;
}
