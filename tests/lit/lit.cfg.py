# lit configuration of weft's IR golden tests: each .weft file carries RUN lines that pipe
# the `weft` CLI into FileCheck.
import os
import lit.formats

config.name = "weft-ir"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".weft", ".test"]
config.test_source_root = os.path.dirname(__file__)
# Temporary files and lit's timing cache go to the build tree, never the sources.
config.test_exec_root = lit_config.params.get("exec_root", os.path.join(lit_config.params.get("weft_bin", "."), "..", "lit"))
bin_dir = lit_config.params.get("weft_bin")
llvm_bin = lit_config.params.get("llvm_bin", "/usr/lib/llvm-19/bin")
config.environment["PATH"] = os.pathsep.join([bin_dir, llvm_bin, config.environment.get("PATH", os.environ["PATH"])])
config.substitutions.append(("%weft", os.path.join(bin_dir, "weft")))
config.excludes = ["lit.cfg.py", "Inputs"]
# Tests share two loaded cores: OpenMP workers sleep instead of spinning between regions.
config.environment["OMP_WAIT_POLICY"] = "passive"
# Compiled kernels are cached in the build tree, never in the user's ~/.cache.
if "cache_dir" in lit_config.params:
    config.environment["WEFT_CACHE_DIR"] = lit_config.params["cache_dir"]
# A build with AddressSanitizer aborts on allocations larger than it supports instead of
# failing them, so the tests of out-of-memory messages do not run there.
if lit_config.params.get("sanitize", "OFF") == "ON":
    config.available_features.add("sanitized")
# weft's AVX-512 steps (the triangular matmuls, fuse-attention's) run only where the CPU has it.
try:
    with open("/proc/cpuinfo") as cpuinfo:
        if " avx512f" in cpuinfo.read():
            config.available_features.add("avx512")
except OSError:
    pass
# Tests of how OpenMP spreads weft's workers need two CPUs to spread them over.
if len(os.sched_getaffinity(0)) >= 2:
    config.available_features.add("multicore")
# Tests reading the real Fashion-MNIST files (package dataset-fashion-mnist) run where it is.
fashion_mnist = "/usr/share/datasets/fashion-mnist"
if os.path.exists(os.path.join(fashion_mnist, "train-images-idx3-ubyte.gz")):
    config.available_features.add("fashion-mnist")
    config.substitutions.append(("%fmnist", fashion_mnist))
# The differential fuzzer's smoke test runs where a python3 has numpy: Debian's, with
# python3-numpy (scripts/install-deps.sh installs it), or the first on PATH.
import subprocess
for python in ("/usr/bin/python3", "python3"):
    try:
        found = subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode == 0
    except OSError:
        found = False
    if found:
        config.available_features.add("numpy")
        config.substitutions.append(("%numpy_python", python))
        break
