#pragma once
/// Flushing denormal floats while a compiled program runs. Arithmetic on denormals (values
/// below 2^-126 in f32) takes a microcode assist of about a hundred cycles on x86 cores, and
/// long training runs make them: Adam's moments and small gradients decay towards zero.
/// weft's CPU runs therefore set the MXCSR bits FTZ (denormal results become 0) and DAZ
/// (denormal operands read as 0) on every thread that runs a step, as TensorFlow does on its
/// threads, and put each thread's bits back when the run ends. WEFT_DENORMALS=keep keeps
/// IEEE denormals (the reference interpreter always does). On CPUs other than x86 nothing
/// changes.
namespace weft::cpu {

/// Whether runs flush denormals unless told otherwise: false when the environment variable
/// WEFT_DENORMALS is "keep", true when it is unset, empty or "flush"; throws weft::Error
/// naming the variable for any other value.
bool defaultFlushDenormals();

/// While alive, FTZ and DAZ are set on the calling thread and on the threads of an OpenMP
/// team of `threads` (those that run the steps); the destructor restores each thread's
/// previous bits. With `flush` false it does nothing.
class DenormalsFlushed {
 public:
  DenormalsFlushed(bool flush, int threads);
  ~DenormalsFlushed();
  DenormalsFlushed(const DenormalsFlushed&) = delete;
  DenormalsFlushed& operator=(const DenormalsFlushed&) = delete;

 private:
  int threads_ = 0;  ///< the team size set, 0 when nothing was set
};

}  // namespace weft::cpu
