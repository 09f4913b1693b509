#!/bin/sh
# weft ($WEFT_REAL) whose interpreter runs die of a segmentation fault: fuzz_text_smoke.test
# checks that scripts/fuzz_text.py reports them.
case " $* " in *" run "*"--backend=reference"*) kill -SEGV $$ ;; esac
exec "$WEFT_REAL" "$@"
