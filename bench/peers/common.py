"""Shared parts of the peer benchmarks: the workloads (the same networks as spikecl's models),
one batch of input, the timing loop and the JSON result line.

Every peer script is run as `python peer_X.py WORKLOAD [--batches N] [--warmup N]` and prints one
JSON object on its last stdout line. run.py starts each (peer, workload) in its own process, so
that peak RSS is per workload and runs of different peers can alternate.
"""

import argparse
import gzip
import json
import os
import resource
import sys
import time


FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
FMNIST_LABELS = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"

# Each workload mirrors a spikecl model file (the path is in "model"). Neurons: snnTorch Leaky,
# beta 0.9, threshold 1, subtract reset from the previous step's spike, reset detached.
# Loss: snnTorch mse_count_loss(correct_rate=0.8, incorrect_rate=0.2). Optimizer: Adam
# (lr 2e-3, betas 0.9/0.999; 1e-4 for the Open Neuromorphic shapes). PyTorch's default initialisation of Linear and Conv2d.
WORKLOADS = {
    "mlp_direct": dict(model="models/fmnist_lif_mlp.yaml", kind="mlp", encoding="direct",
                       n_in=784, hidden=300, classes=10, T=25, B=128,
                       surrogate=("fast_sigmoid", 25.0), data="fmnist"),
    "mlp_poisson": dict(model="models/fmnist_poisson_mlp.yaml", kind="mlp", encoding="poisson",
                        n_in=784, hidden=300, classes=10, T=25, B=128,
                        surrogate=("fast_sigmoid", 25.0), data="fmnist"),
    # Open Neuromorphic benchmark shape: Linear(N->N) + LIF, B=16, T=500; Poisson-coded uniform
    # noise as input (see bench/models/on_lif_*.yaml), N classes for the loss
    "on_1024": dict(model="bench/models/on_lif_1024.yaml", kind="on", encoding="poisson",
                    n_in=1024, classes=1024, T=500, B=16, lr=1e-4,
                    surrogate=("fast_sigmoid", 25.0), data="uniform"),
    "on_4096": dict(model="bench/models/on_lif_4096.yaml", kind="on", encoding="poisson",
                    n_in=4096, classes=4096, T=500, B=16, lr=1e-4,
                    surrogate=("fast_sigmoid", 25.0), data="uniform"),
    # 12C5-MP2-32C5-MP2-FC10, atan surrogate (alpha 2), direct encoding
    "conv": dict(model="models/fmnist_conv.yaml", kind="conv", encoding="direct",
                 n_in=784, classes=10, T=10, B=128, surrogate=("atan", 2.0), data="fmnist"),
}

LR = 2e-3
CORRECT_RATE, INCORRECT_RATE = 0.8, 0.2


def parse_args(frameworks=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("workload", choices=sorted(WORKLOADS))
    if frameworks:
        p.add_argument("--framework", choices=frameworks, required=True)
    p.add_argument("--batches", type=int, default=10, help="timed training steps")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed steps after the first (compiling) one")
    p.add_argument("--no-update", action="store_true",
                   help="time forward and backward only (the gradients), no optimizer step: "
                        "the Open Neuromorphic benchmark's protocol")
    return p.parse_args()


def _read_idx(path, count, offset):
    import numpy as np  # not at the top: run.py imports this module without numpy

    with gzip.open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=offset)[: count]


def one_batch(w, seed=1):
    """The input batch, repeated at every step: the first B Fashion-MNIST training images
    scaled to [0, 1] (spikecl bench also trains on one batch of the model's data), else
    uniform noise in [0, 1) as spikecl bench feeds a model without data. Labels as int32."""
    import numpy as np

    B, n = w["B"], w["n_in"]
    if w["data"] == "fmnist" and os.path.exists(FMNIST):
        x = _read_idx(FMNIST, B * 784, 16).reshape(B, 784).astype(np.float32) / 255.0
        y = _read_idx(FMNIST_LABELS, B, 8).astype(np.int32)
        return x, y, "real"
    rng = np.random.default_rng(seed)
    x = rng.random((B, n), dtype=np.float32)
    y = (np.arange(B) % w["classes"]).astype(np.int32)
    return x, y, "synthetic"


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(framework, workload, step, args, extra=None, base_rss=None):
    """Times `step()` (one training step, returning a value whose float() is the loss and that
    blocks until the step is done): the first call (tracing, JIT compilation) apart, then
    args.warmup untimed calls, then args.batches timed calls. Prints the JSON line."""
    w = WORKLOADS[workload]
    if base_rss is None:
        base_rss = peak_rss_mb()
    t0 = time.perf_counter()
    loss0 = float(step())
    first_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        float(step())
    times = []
    loss = loss0
    for _ in range(args.batches):
        t0 = time.perf_counter()
        loss = float(step())
        times.append(time.perf_counter() - t0)
    total = sum(times)
    times.sort()
    out = {
        "framework": framework,
        "workload": workload,
        "train_samples_per_s": round(w["B"] * args.batches / total, 1),
        "train_s": round(total, 6),  # the timed steps, unrounded enough for ms per step
        "step_ms_median": round(1e3 * times[len(times) // 2], 3),
        "step_ms_min": round(1e3 * times[0], 3),
        # the first step includes tracing/compilation; minus a median step it is the compile time
        "first_step_s": round(first_s, 3),
        "compile_s": round(max(0.0, first_s - times[len(times) // 2]), 3),
        "loss_first": loss0,
        "loss_last": loss,
        # without updates only the random draws change the loss: nothing to check
        "loss_decreased": None if args.no_update else loss < loss0,
        "update": not args.no_update,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_import_mb": round(base_rss, 1),
        "batch": w["B"],
        "batches": args.batches,
        "time_steps": w["T"],
    }
    if extra:
        out.update(extra)
    sys.stdout.flush()
    print(json.dumps(out))
