#pragma once
/// The OpenMP places' CPUs, for programs weft starts: under OMP_PROC_BIND libgomp binds the
/// initial thread to the first place as it loads, and a program started from that thread
/// (weft restarting itself, the benchmark's PyTorch peer) would inherit that one CPU and run
/// all its threads there.

namespace weft::cpu {

/// Lets the calling thread run on the CPUs of every OpenMP place. False, changing nothing,
/// when OpenMP has no places (nothing was bound) or the system refuses.
bool unbindFromFirstPlace();

}  // namespace weft::cpu
