#!/usr/bin/env bash
# Installs dependencies, builds weft and runs every test (GoogleTest units and lit IR tests) under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build && ctest --output-on-failure -j "$(nproc)"
