#!/usr/bin/env bash
# Installs dependencies, builds weft, then shows the main job: list the models, print the
# LeNet IR, run it on the interpreter and write its logits as .npy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
set -x
build/bin/weft list
build/bin/weft dump lenet_tiny
build/bin/weft run lenet --out build/demo-out
