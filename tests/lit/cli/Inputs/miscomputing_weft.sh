#!/bin/sh
# weft ($WEFT_REAL) whose CPU backend runs compute on other inputs (--seed=1): fuzz_text_smoke.test
# checks that scripts/fuzz_text.py --mode structure reports the outputs that differ.
case " $* " in
  *" run "*"--backend=reference"*) ;;
  *" run "*) exec "$WEFT_REAL" "$@" --seed=1 ;;
esac
exec "$WEFT_REAL" "$@"
