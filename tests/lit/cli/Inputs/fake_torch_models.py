# A stand-in for shared/bench/torch_models.py in `weft bench --peer` tests: takes the same
# arguments and writes the same JSON (one row per model in --only and mode, 1000 ms each);
# with FAKE_PEER_LOG set, appends its --only to that file (which models each run timed); with
# FAKE_PEER_CPUS_LOG set, appends how many CPUs it may run on.
import argparse, json, os

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--iters", type=int, default=20)
ap.add_argument("--only", default="")
ap.add_argument("--json", default="")
a = ap.parse_args()
rows = [dict(model=m, mode=mode, median_ms=1000.0, min_ms=999.0, max_ms=1001.0)
        for m in a.only.split(",") for mode in ("infer", "train")]
json.dump(rows, open(a.json, "w"), indent=1)
if os.environ.get("FAKE_PEER_LOG"):
    with open(os.environ["FAKE_PEER_LOG"], "a") as log:
        log.write("only " + a.only + "\n")
if os.environ.get("FAKE_PEER_CPUS_LOG"):
    with open(os.environ["FAKE_PEER_CPUS_LOG"], "a") as log:
        log.write("cpus %d\n" % len(os.sched_getaffinity(0)))
