# A stand-in for bench/torch_memory.py in `weft bench --memory` tests: takes the same
# arguments and writes the same JSON (one row per model in --only, 100 MiB peak each).
import argparse, json

ap = argparse.ArgumentParser()
ap.add_argument("--models-script", required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--only", default="")
ap.add_argument("--json", required=True)
a = ap.parse_args()
mib = 1 << 20
rows = [dict(model=m, held_bytes=60 * mib, step_bytes=40 * mib, peak_bytes=100 * mib) for m in a.only.split(",")]
json.dump(rows, open(a.json, "w"), indent=1)
