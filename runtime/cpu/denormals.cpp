// Flushing denormals during runs (see denormals.h): each thread of the team saves its MXCSR
// in a thread-local and sets FTZ and DAZ; the same team size restores them afterwards. A
// libgomp team of the same size is the same threads, and threads created in between (a
// larger team) start from the creating thread's bits, which are set. A thread restores only
// bits it saved; a run started inside a run (a host step's) keeps the first saved bits, and
// its end restores them, so the rest of the outer run keeps denormals (safe, only slower).
#include "runtime/cpu/denormals.h"

#include <omp.h>

#include <cstdlib>
#include <string>

#include "ir/error.h"
#include "runtime/cpu/environment.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define WEFT_HAS_MXCSR 1
#endif

namespace weft::cpu {
namespace {

#ifdef WEFT_HAS_MXCSR
constexpr unsigned kFlushToZero = 0x8000;     ///< MXCSR bit 15: denormal results become 0
constexpr unsigned kDenormalsAreZero = 0x40;  ///< MXCSR bit 6: denormal operands read as 0
thread_local unsigned savedControl = 0;       ///< this thread's MXCSR before the run
thread_local bool holding = false;            ///< savedControl holds this thread's bits
#endif

}  // namespace

bool defaultFlushDenormals() {
  return environmentChoice("WEFT_DENORMALS", {"flush", "keep"}, "'flush' (the default) or 'keep'") == 0;
}

DenormalsFlushed::DenormalsFlushed(bool flush, int threads) {
#ifdef WEFT_HAS_MXCSR
  if (!flush) return;
  threads_ = threads < 1 ? 1 : threads;
#pragma omp parallel num_threads(threads_)
  {
    if (!holding) savedControl = _mm_getcsr();  // a run inside a run keeps the outer bits
    holding = true;
    _mm_setcsr(savedControl | kFlushToZero | kDenormalsAreZero);
  }
#else
  (void)flush;
  (void)threads;
#endif
}

DenormalsFlushed::~DenormalsFlushed() {
#ifdef WEFT_HAS_MXCSR
  if (threads_ == 0) return;
#pragma omp parallel num_threads(threads_)
  if (holding) {  // only threads that saved their bits: never a thread-local's zero (all traps on)
    _mm_setcsr(savedControl);
    holding = false;
  }
#endif
}

}  // namespace weft::cpu
