#ifndef WEFT_RUNTIME_WEFT_H
#define WEFT_RUNTIME_WEFT_H
/*
 * The C interface of weft's runtime: what a program calls to run an ahead-of-time bundle
 * (`weft compile MODEL --aot -o DIR` writes NAME.o, NAME.h and NAME.safetensors; NAME.h
 * includes this header and declares the bundle's descriptor `NAME_bundle`).
 *
 *   weft_model* model = NULL;
 *   if (weft_model_create(&mlp_bundle, &model) != WEFT_OK) { puts(weft_last_error()); ... }
 *   weft_model_load_weights(model, "mlp.safetensors");
 *   weft_model_set_input(model, "x", images, sizeof images);
 *   weft_model_run(model);
 *   const float* logits = weft_model_output(model, "logits", NULL);
 *   weft_model_destroy(model);
 *
 * Every function returns a status; on failure the model's message (weft_model_error) or, for
 * weft_model_create, the thread's last message (weft_last_error) says what and where.
 * Nothing here aborts the program. A model runs one call at a time (not thread-safe);
 * different models may run on different threads.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the bundle ABI this header describes: the layout of weft_bundle and
 *  weft_kernel, the kernels' calling convention, and the weights' metadata. A bundle or
 *  weights file of another version is refused with WEFT_ERROR_ABI. */
#define WEFT_ABI_VERSION 6

/** What a call did. */
typedef enum weft_status {
  WEFT_OK = 0,
  WEFT_ERROR_ARGUMENT = 1,    /**< a null pointer, an unknown input or output name, a wrong byte size */
  WEFT_ERROR_IO = 2,          /**< a file that cannot be read or written */
  WEFT_ERROR_FORMAT = 3,      /**< a weights file that is not a valid safetensors file (truncated, corrupt) */
  WEFT_ERROR_MISMATCH = 4,    /**< weights of another model, or a tensor missing or of the wrong dtype or shape */
  WEFT_ERROR_ABI = 5,         /**< a bundle or weights file made for another ABI version */
  WEFT_ERROR_UNSUPPORTED = 6, /**< this CPU cannot run a step of the bundle (oneDNN has no implementation) */
  WEFT_ERROR_STATE = 7,       /**< a call out of order: running before every input is set, step() on an inference bundle */
  WEFT_ERROR_INTERNAL = 8     /**< a bug in weft: please report it with the message */
} weft_status;

/** Element types, as NAME.h lists them for every input, output and parameter. */
typedef enum weft_dtype {
  WEFT_F32 = 0,
  WEFT_F64 = 1,
  WEFT_BF16 = 2,
  WEFT_I32 = 3,
  WEFT_I64 = 4,
  WEFT_BOOL = 5 /**< one byte per element, 0 or 1 */
} weft_dtype;

/** One generated kernel of a bundle, called through its packed entry point:
 *  args[0] points to the output pointer, args[1..num_inputs] to the pointers of its inputs
 *  and then of its further outputs (the optimizer moments a parameter's update kernel
 *  writes at the same elements, or the side sums a loop kernel adds up), then to the
 *  int64_t begin and end of the parallel range [begin, end) within [0, parallel_extent).
 *  The table holds one kernel per generated step of the program (fused nodes whose value
 *  another step writes have none), in node order.
 *  Calls on disjoint ranges write disjoint parts of the outputs, unless
 *  partial_sums is 1: then the kernel is an f32 sum over its range, each call writes the
 *  whole output, and the output is the sum of the calls' outputs. Side sums (further
 *  outputs that are sums, which the program's steps name) are likewise written whole by
 *  each call, as the sum over its range. `work` (the elements all
 *  calls evaluate together) decides whether the runtime splits the range across threads.
 *  Written by `weft compile --aot`; programs never build one. */
typedef struct weft_kernel {
  const char* name;
  void (*packed)(void** args);
  int64_t num_inputs;
  int64_t parallel_extent;
  int64_t work;
  int64_t partial_sums; /**< 0 or 1 */
} weft_kernel;

/** A bundle's descriptor, defined in its object file (NAME_bundle): the compiled graph as
 *  weft IR text (the runtime builds the schedule and memory plan from it) and one kernel
 *  per generated step (see weft_kernel), in node order. */
typedef struct weft_bundle {
  int64_t abi_version;       /**< WEFT_ABI_VERSION of the compiler that wrote it */
  const char* name;          /**< the bundle's name (a C identifier) */
  const char* program;       /**< the compiled graph's text, NUL-terminated */
  int64_t program_bytes;     /**< strlen(program) */
  const weft_kernel* kernels;
  int64_t kernel_count;
  const char* cpu_features;  /**< the x86 features its code needs, comma-separated (avx2,fma,avx512f,...);
                                  weft_model_create refuses a CPU that lacks one (WEFT_ERROR_UNSUPPORTED) */
  int64_t channel_block;     /**< 16 when it stores convolution data in 16-channel blocks (AVX-512 hosts), else 0 */
} weft_bundle;

/** A bundle made runnable: its schedule, its arena and its parameters (and optimizer state). */
typedef struct weft_model weft_model;

/** The ABI version this runtime was built with (WEFT_ABI_VERSION of its header). */
int weft_runtime_abi_version(void);

/** The message of the last failed call on this thread: of weft_model_create (which has no
 *  model to hold it), and also of any other call, e.g. one given a NULL model. */
const char* weft_last_error(void);

/** Makes `bundle` runnable: checks its ABI version, builds its schedule (oneDNN primitives
 *  created once here) and allocates its arena and parameter block. Parameters start as the
 *  bundle's initializers say, drawn when first needed (a run, step, save or param call), so a
 *  model whose weights file is loaded first never draws them. Uses WEFT_THREADS
 *  worker threads when set, else 2. Runs flush denormal floats to zero unless WEFT_DENORMALS
 *  is "keep" (another value than "flush" or "keep" fails with WEFT_ERROR_ARGUMENT). On
 *  failure *model is NULL; see weft_last_error(). */
weft_status weft_model_create(const weft_bundle* bundle, weft_model** model);

/** weft_model_create with memory the caller owns, as Glow bundles allow: `arena` (at least
 *  NAME_ARENA_BYTES) holds the activations and `state` (at least NAME_STATE_BYTES) the
 *  parameters; both 64-byte aligned and alive until weft_model_destroy. As the caller may
 *  write parameters there at any time, every run converts the weights the model keeps in
 *  oneDNN's layouts again. */
weft_status weft_model_create_with_memory(const weft_bundle* bundle, void* arena, size_t arena_bytes, void* state,
                                          size_t state_bytes, weft_model** model);

/** Frees the model (not memory passed to weft_model_create_with_memory). NULL is ignored. */
void weft_model_destroy(weft_model* model);

/** The message of the model's last failed call ("" when none). */
const char* weft_model_error(const weft_model* model);

/** Sets the worker threads (1 to 1024) the model runs with; other counts are WEFT_ERROR_ARGUMENT. */
weft_status weft_model_set_threads(weft_model* model, int threads);

/** Whether the model's runs flush denormal floats to zero (`flush` 1, the default unless
 *  WEFT_DENORMALS=keep) or keep IEEE denormals (0): flushing sets FTZ and DAZ on the threads
 *  that run the steps and restores them afterwards; denormals cost about a hundred cycles an
 *  operation on x86, and long training runs make them. Other values are WEFT_ERROR_ARGUMENT. */
weft_status weft_model_set_denormals(weft_model* model, int flush);

/** Sets the step counter that random ops (dropout, noise) draw with, as the JIT's
 *  RunOptions::step: the same counter draws the same numbers. It starts at 0 and
 *  weft_model_step advances it by one; weft_model_run leaves it. */
weft_status weft_model_set_step(weft_model* model, uint64_t step);

/** Replaces the parameters with a safetensors file written by `weft compile --aot` or by
 *  weft_model_save_weights. Checks the ABI version and model name in its metadata, and that
 *  every parameter is there with its dtype and shape (tensors the bundle does not have, such
 *  as the optimizer state of a training bundle's file, are ignored). On failure the
 *  parameters are unchanged. */
weft_status weft_model_load_weights(weft_model* model, const char* path);

/** weft_model_load_weights from `size` bytes in memory (for programs without a file system). */
weft_status weft_model_load_weights_from_memory(weft_model* model, const void* data, size_t size);

/** Writes every parameter (and optimizer state) to a safetensors file, atomically. */
weft_status weft_model_save_weights(weft_model* model, const char* path);

/** Binds input `name` to `data` (dense, row-major, of the dtype and shape NAME.h lists;
 *  `bytes` must equal its size). The data is read, not copied, by the next run or step:
 *  it must stay alive until then. */
weft_status weft_model_set_input(weft_model* model, const char* name, const void* data, size_t bytes);

/** Runs the graph once on the bound inputs (a training bundle computes its outputs and
 *  gradients but does not update the parameters). */
weft_status weft_model_run(weft_model* model);

/** Runs one training step: weft_model_run, then the graph's updates applied to the
 *  parameters and optimizer state. WEFT_ERROR_STATE for a bundle without updates. */
weft_status weft_model_step(weft_model* model);

/** Output `name` of the last run (valid until the next run, step or destroy), or NULL when
 *  there is no such output or no run has completed yet (weft_model_error says which);
 *  `bytes` (when not NULL) receives its size (0 with NULL). */
const void* weft_model_output(const weft_model* model, const char* name, size_t* bytes);

/** Parameter `name`'s current value (writable: a program may set it directly; valid until
 *  the next step, which may move it), or NULL when there is no such parameter; `bytes` (when
 *  not NULL) receives its size. Once a program has such a pointer, every run converts the
 *  weights the model keeps in oneDNN's layouts again, so that writes through it count. */
void* weft_model_param(weft_model* model, const char* name, size_t* bytes);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_RUNTIME_WEFT_H */
