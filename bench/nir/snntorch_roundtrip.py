"""Networks between snnTorch and spikecl through NIR, on the 10,000 Fashion-MNIST test images.

  1. snnTorch -> spikecl: a 784-300-10 Leaky MLP trained in snnTorch, exported with
     snntorch.export_to_nir, imported with `spikecl import`; counts the test predictions on which
     spikecl and snnTorch differ.
  2. spikecl -> snnTorch: the same network trained with `spikecl train`, exported with
     `spikecl export`, imported with snntorch.import_from_nir; the same count.

Not part of CI: it needs torch and snntorch (pip; CPU torch is enough:
`pip install torch --index-url https://download.pytorch.org/whl/cpu; pip install snntorch nir`).
Both sides see the same input, the pixel times float32(0.00392157) as spikecl scales it, the
same every step (direct encoding). The neurons reset to zero (snnTorch `reset_mechanism="zero"`,
spikecl `reset: zero`): NIR has no subtracting reset (docs/NIR.md).

snnTorch 1.0.0 with nir 1.0.8 needs two things for export_to_nir to pass nir's type check: beta
and threshold given per neuron (a scalar gives parameters of shape () that do not match the
layer) and ignore_dims=[0] (else the Output keeps the batch dimension). Its import turns NIR's
Flatten(start_dim=0) into torch.nn.Flatten(0), which would flatten the batch too, so the
spikecl model of direction 2 takes its input flat (input.shape [784]) and no Flatten is written.

Usage: python bench/nir/snntorch_roundtrip.py [SPIKECL] [--epochs N] [--time-steps T]
"""
import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time

import numpy as np
import nir
import snntorch as snn
import torch
from snntorch import functional as SF
from snntorch import utils
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

DATA = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
SCALE = np.float32(0.00392157)

ap = argparse.ArgumentParser()
ap.add_argument("spikecl", nargs="?", default="build/spikecl")
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--time-steps", type=int, default=10)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
T = args.time_steps
torch.set_num_threads(args.threads)
torch.manual_seed(1)


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        d = f.read()
    if struct.unpack(">I", d[:4])[0] == 2049:
        return np.frombuffer(d[8:], np.uint8)
    n = struct.unpack(">I", d[4:8])[0]
    return np.frombuffer(d[16:], np.uint8).reshape(n, 784)


xtr, ytr = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
xte, yte = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
Xte = torch.from_numpy(xte.astype(np.float32) * SCALE)


def spikecl(*a):
    p = subprocess.run([args.spikecl, *a], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"spikecl {' '.join(a)}: {p.stdout}{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def spikecl_agreement(tmp, model, weights, pred):
    """spikecl eval with labels = the other side's predictions: its accuracy is the agreement."""
    d = os.path.join(tmp, "labels-" + str(time.monotonic_ns()))
    os.makedirs(d)
    shutil.copy(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), d)
    with open(os.path.join(d, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 2049, len(pred)) + pred.astype(np.uint8).tobytes())
    r = spikecl("eval", model, "--weights", weights, "--data", d, "--device", "cpu",
                "--threads", str(args.threads))
    return round(r["test_accuracy"] * len(pred))


def spike_counts(net, X, batch=500, stateful=False):
    out = []
    with torch.no_grad():
        for i in range(0, len(X), batch):
            x = X[i:i + batch]
            utils.reset(net)
            state, count = None, 0
            for _ in range(T):
                if stateful:
                    s, state = net(x, state) if state is not None else net(x)
                else:
                    s = net(x)
                s = s[0] if isinstance(s, tuple) else s
                count = count + s
            out.append(count)
    return torch.cat(out).numpy()


def leaky(n, **kw):
    return snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n), init_hidden=True,
                     reset_mechanism="zero", **kw)


def snntorch_to_spikecl(tmp):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 300), leaky(300),
                              torch.nn.Linear(300, 10), leaky(10, output=True))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = SF.ce_count_loss()
    Xtr = torch.from_numpy(xtr.astype(np.float32) * SCALE).reshape(-1, 1, 28, 28)
    Ytr = torch.from_numpy(ytr.astype(np.int64))
    t0 = time.time()
    for _ in range(args.epochs):
        perm = torch.randperm(len(Xtr))
        for i in range(0, len(Xtr), 128):
            b = perm[i:i + 128]
            utils.reset(net)
            spk = torch.stack([net(Xtr[b])[0] for _ in range(T)])
            loss = loss_fn(spk, Ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.time() - t0
    counts = spike_counts(net, Xte.reshape(-1, 1, 28, 28))
    pred = counts.argmax(axis=1)  # first maximum on ties, as spikecl
    acc = (pred == yte).mean()
    g = export_to_nir(net, torch.zeros(1, 1, 28, 28), ignore_dims=[0])
    path = os.path.join(tmp, "snntorch.nir")
    nir.write(path, g)
    out = os.path.join(tmp, "from-snntorch")
    spikecl("import", path, "-o", out, "--time-steps", str(T), "--input-scale", str(SCALE))
    model, weights = os.path.join(out, "model.yaml"), os.path.join(out, "model.safetensors")
    same = spikecl_agreement(tmp, model, weights, pred)
    sacc = spikecl("eval", model, "--weights", weights, "--data", DATA, "--device", "cpu",
                   "--threads", str(args.threads))["test_accuracy"]
    print(f"1. snnTorch -> spikecl: snnTorch trained {args.epochs} epoch(s) in {train_s:.0f} s, "
          f"test accuracy {acc:.4f}; spikecl {sacc:.4f}; predictions that differ: "
          f"{len(pred) - same} of {len(pred)}")
    return len(pred) - same


MODEL = f"""name: nir-bench
input: {{shape: [784], scale: {SCALE}}}
time_steps: {T}
seed: 1
layers:
  - {{name: input, type: encoder.direct}}
  - {{name: fc1, type: synapse.linear, out: 300}}
  - {{name: lif1, type: neuron.lif, beta: 0.9, reset: zero, surrogate: atan}}
  - {{name: fc2, type: synapse.linear, out: 10}}
  - {{name: lif2, type: neuron.lif, beta: 0.9, reset: zero, surrogate: atan}}
readout: {{type: readout.spike_count}}
loss: {{type: loss.ce_count}}
train:
  data: {{format: idx, images: {DATA}/train-images-idx3-ubyte.gz,
         labels: {DATA}/train-labels-idx1-ubyte.gz}}
  test: {{format: idx, images: {DATA}/t10k-images-idx3-ubyte.gz,
         labels: {DATA}/t10k-labels-idx1-ubyte.gz}}
  batch: 128
  epochs: {args.epochs}
  optimizer: {{type: adam, lr: 2.0e-3}}
"""


def spikecl_to_snntorch(tmp):
    yaml = os.path.join(tmp, "nir-bench.yaml")
    with open(yaml, "w") as f:
        f.write(MODEL)
    run = os.path.join(tmp, "run")
    r = spikecl("train", yaml, "--out", run, "--device", "cpu", "--threads", str(args.threads))
    weights = os.path.join(run, "model.safetensors")
    path = os.path.join(tmp, "spikecl.nir")
    spikecl("export", yaml, "--weights", weights, "-o", path)
    net = import_from_nir(nir.read(path))
    counts = spike_counts(net, Xte, stateful=True)
    pred = counts.argmax(axis=1)
    acc = (pred == yte).mean()
    same = spikecl_agreement(tmp, yaml, weights, pred)
    print(f"2. spikecl -> snnTorch: spikecl trained {args.epochs} epoch(s) in {r['seconds']:.0f} s, "
          f"test accuracy {r['test_accuracy']:.4f}; snnTorch {acc:.4f}; predictions that "
          f"differ: {len(pred) - same} of {len(pred)}")
    return len(pred) - same


with tempfile.TemporaryDirectory() as tmp:
    snntorch_to_spikecl(tmp)
    spikecl_to_snntorch(tmp)
