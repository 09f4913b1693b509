#!/usr/bin/python3
"""The memory peer of `weft bench --memory`: how many bytes of tensors PyTorch holds at the
peak of one training step of each model of torch_models.py (the models' specification).

    /usr/bin/python3 torch_memory.py --models-script PATH/torch_models.py [--threads 2]
                                     [--only mlp,lenet] --json out.json

Each model runs the training step torch_models.py times (Adam; dcgan's own step with its
two optimizers) once to create its gradients and optimizer state, then once more under the profiler
with memory recording. The peak is

    held bytes   the storages alive between steps: parameters, gradients, buffers, optimizer
                 state and the inputs the step reads (each storage counted once), plus
    step bytes   the highest point of the running sum of the step's allocations minus its
                 frees, in the order the profiler's operator events started.

This counts tensors only, as weft's planned peak (arena + state + scratch + inputs and
outputs) counts buffers only: neither side counts code, allocator slack or libraries.
Writes a JSON list of {"model", "held_bytes", "step_bytes", "peak_bytes"}.
"""
import argparse, importlib.util, json

import torch
from torch.profiler import ProfilerActivity, profile


def load_models(path):
    spec = importlib.util.spec_from_file_location("torch_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def storage_bytes(tensors):
    seen, total = set(), 0
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.storage().data_ptr() not in seen:
            seen.add(t.storage().data_ptr())
            total += t.storage().nbytes()
    return total


def closure_values(fn):
    return [c.cell_contents for c in (fn.__closure__ or ())]


def measure(models, name):
    torch.manual_seed(0)
    net, _, loss, example = models.MODELS[name]()
    net.train()
    captured = closure_values(loss)  # the inputs and labels; dcgan's two optimizers too
    optimizers = [v for v in captured if isinstance(v, torch.optim.Optimizer)]
    if optimizers:  # the closure is the whole step (dcgan)
        step = loss
    else:
        optimizers = [torch.optim.Adam(net.parameters(), 1e-3)]

        def step():
            optimizers[0].zero_grad()
            loss().backward()
            optimizers[0].step()

    step()
    params = list(net.parameters())
    state = [v for opt in optimizers for s in opt.state.values() for v in s.values()]
    held = storage_bytes(params + [p.grad for p in params] + list(net.buffers()) + state + list(example) + captured)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    changes = sorted((e.time_range.start, e.self_cpu_memory_usage)
                     for e in prof.events() if e.self_cpu_memory_usage != 0)
    live = peak = 0
    for _, change in changes:
        live += change
        peak = max(peak, live)
    return dict(model=name, held_bytes=held, step_bytes=peak, peak_bytes=held + peak)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models-script", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    models = load_models(a.models_script)
    names = [n for n in models.MODELS if not a.only or n in a.only.split(",")]
    rows = [measure(models, n) for n in names]
    for r in rows:
        print(f"{r['model']:8s} {r['peak_bytes'] / 2**20:9.2f} MiB", flush=True)
    json.dump(rows, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
