"""spikecl's NIR files against the reference implementation, the `nir` package (PyPI).

(a) A spikecl model with known weights (conv with groups, average pooling, LIF with per-neuron
    decays, IF with a reset value, a linear layer on a 3-d input, a merge.add) is exported with
    `spikecl export`; nir.read (with its type checks) must give the node types, edges, shapes
    and values that docs/NIR.md's mapping says.
(b) An MLP and a conv net built with the nir package as snnTorch's export_to_nir builds them
    (Flatten with start_dim 0, Affine, Conv2d, AvgPool2d, LIF with tau = dt/(1-beta) and
    r = tau/dt) are written with nir.write, imported with `spikecl import`, and evaluated with
    `spikecl eval` on tests/data/mnist with labels set to the predictions of a NumPy forward
    pass of the NIR equations (Euler step dt, reset to v_reset at the spike's step). They must
    agree on at least 99% of the 500 digits: float32 sums in another order may move a membrane
    that sits on the threshold across it; the count that differs is printed.

Usage: check_nir.py SPIKECL_CLI MNIST_DIR
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import nir

CLI, MNIST = sys.argv[1], sys.argv[2]
DT = 1e-4
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    p = subprocess.run([CLI, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"spikecl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


NATIVE = """name: nir-native
input: {shape: [2, 8, 8], scale: 1.0}
time_steps: 4
layers:
  - {name: enc, type: encoder.direct}
  - {name: conv1, type: synapse.conv2d, out: 4, kernel: 3, padding: 1, groups: 2}
  - {name: pool, type: pool.avg2d, kernel: 2}
  - {name: lif1, type: neuron.lif, beta: 0.8, per_neuron_beta: true, reset: zero, threshold: 0.5}
  - {name: fc1, type: synapse.linear, out: 6}
  - {name: if1, type: neuron.if, reset: zero, reset_value: 0.1, threshold: 0.7}
  - {name: fc2, type: synapse.linear, out: 3, bias: false}
  - {name: fc3, type: synapse.linear, out: 3, from: [if1]}
  - {name: sum, type: merge.add, from: [fc2, fc3]}
  - {name: lif2, type: neuron.lif, beta: 0.5, reset: zero}
readout: {type: readout.spike_count}
loss: {type: loss.ce_count}
"""


def part_a(tmp):
    rng = np.random.default_rng(1)
    w = {
        "conv1.weight": rng.normal(size=(4, 1, 3, 3)), "conv1.bias": rng.normal(size=4),
        "lif1.beta": rng.uniform(0, 1, size=64), "lif1.threshold": [0.5],
        "fc1.weight": rng.normal(size=(6, 64)), "fc1.bias": rng.normal(size=6),
        "if1.threshold": [0.7], "fc2.weight": rng.normal(size=(3, 6)),
        "fc3.weight": rng.normal(size=(3, 6)), "fc3.bias": rng.normal(size=3),
        "lif2.beta": [0.5], "lif2.threshold": [1.0],
    }
    w = {k: np.asarray(v, dtype=np.float32) for k, v in w.items()}
    yaml = os.path.join(tmp, "native.yaml")
    with open(yaml, "w") as f:
        f.write(NATIVE)
    write_safetensors(os.path.join(tmp, "native.safetensors"), w)
    out = os.path.join(tmp, "native.nir")
    run("export", yaml, "--weights", os.path.join(tmp, "native.safetensors"), "-o", out)
    g = nir.read(out)  # type_check=True: every edge's shapes must agree
    with h5py.File(out) as f:
        check(f["version"][()] == b"1.0.8", f"version {f['version'][()]}")
    types = {k: type(v).__name__ for k, v in g.nodes.items()}
    want = {"input": "Input", "conv1": "Conv2d", "pool": "AvgPool2d", "lif1": "LIF",
            "fc1_flatten": "Flatten", "fc1": "Affine", "if1": "IF", "fc2": "Linear",
            "fc3": "Affine", "lif2": "LIF", "output": "Output"}
    check(types == want, f"node types {types}")
    edges = set(map(tuple, g.edges))
    want_edges = {("input", "conv1"), ("conv1", "pool"), ("pool", "lif1"),
                  ("lif1", "fc1_flatten"), ("fc1_flatten", "fc1"), ("fc1", "if1"),
                  ("if1", "fc2"), ("if1", "fc3"), ("fc2", "lif2"), ("fc3", "lif2"),
                  ("lif2", "output")}
    check(edges == want_edges, f"edges {sorted(edges)}")
    n = g.nodes
    check(list(n["input"].input_type["input"]) == [2, 8, 8], "input shape")
    c = n["conv1"]
    # groups 2 goes out as the dense convolution it equals (nir's type check ignores groups)
    dense = np.zeros((4, 2, 3, 3), np.float32)
    dense[:2, :1], dense[2:, 1:] = w["conv1.weight"][:2], w["conv1.weight"][2:]
    check(np.array_equal(c.weight, dense) and np.array_equal(c.bias, w["conv1.bias"]),
          "conv1 values")
    check(list(c.padding) == [1, 1] and list(c.stride) == [1, 1] and int(c.groups) == 1,
          f"conv1 padding {c.padding} stride {c.stride} groups {c.groups}")
    check(list(c.input_shape) == [8, 8], f"conv1 input_shape {c.input_shape}")
    p = n["pool"]
    check(list(p.kernel_size) == [2, 2] and list(p.stride) == [2, 2], "pool kernel/stride")
    l1 = n["lif1"]
    beta = w["lif1.beta"].astype(np.float64).reshape(4, 4, 4)
    check(l1.tau.shape == (4, 4, 4), f"lif1 tau shape {l1.tau.shape}")
    check(np.allclose(l1.tau, DT / (1 - beta), rtol=1e-12), "lif1 tau = dt / (1 - beta)")
    check(np.allclose(l1.r, 1 / (1 - beta), rtol=1e-12), "lif1 r = tau / dt")
    check(np.all(l1.v_leak == 0) and np.all(l1.v_threshold == np.float32(0.5)), "lif1 v_*")
    check(np.all(l1.v_reset == 0), "lif1 v_reset")
    check(np.array_equal(n["fc1_flatten"].input_type["input"], [4, 4, 4]), "flatten input")
    check(np.array_equal(n["fc1"].weight, w["fc1.weight"]), "fc1 weight")
    i1 = n["if1"]
    check(i1.r.shape == (6,) and np.all(i1.r == 1), "if1 r")
    check(np.all(i1.v_threshold == np.float32(0.7)), "if1 v_threshold")
    check(np.all(i1.v_reset == np.float32(0.1)), "if1 v_reset = reset_value")
    check(np.array_equal(n["fc2"].weight, w["fc2.weight"]), "fc2 weight")
    check(np.array_equal(n["fc3"].bias, w["fc3.bias"]), "fc3 bias")
    check(np.allclose(n["lif2"].tau, DT / 0.5) and n["lif2"].tau.shape == (3,), "lif2 tau")
    check(list(n["output"].output_type["output"]) == [3], "output shape")
    md = g.metadata
    check(float(md["dt"]) == DT and int(md["time_steps"]) == 4, f"metadata {md}")
    print(f"(a) spikecl export read by nir {nir.version}: {len(n)} nodes checked")


def snn_lif(n_shape, beta, thr):
    """nir.LIF as snnTorch's export_to_nir writes a Leaky(beta, threshold)."""
    tau = np.full(n_shape, DT / (1 - beta), dtype=np.float32)
    return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(n_shape, np.float32),
                   v_threshold=np.full(n_shape, thr, np.float32))


def lif_run(cur, node, T):
    """NIR LIF, Euler step DT, reset to v_reset at the spike's step; cur [T, B, ...] or
    [B, ...] (the same current every step). Returns spikes [T, B, ...]."""
    beta = 1 - DT / node.tau.astype(np.float64)
    g = node.r * DT / node.tau
    v = np.zeros(cur.shape[-node.tau.ndim - 1:])
    out = []
    for t in range(T):
        i = cur[t] if cur.ndim == v.ndim + 1 else cur
        v = beta * v + g * i
        z = v > node.v_threshold
        v = np.where(z, node.v_reset, v)
        out.append(z.astype(np.float64))
    return np.stack(out)


def conv(x, node):
    """[..., C, H, W] -> [..., O, H', W'], stride 1, no padding."""
    k = node.weight.shape[-1]
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(-2, -1))
    return np.einsum("...chwij,ocij->...ohw", win, node.weight.astype(np.float64)) + \
        node.bias[:, None, None]


def avgpool2(x):
    s = x.shape
    return x.reshape(*s[:-2], s[-2] // 2, 2, s[-1] // 2, 2).mean(axis=(-3, -1))


def read_idx_images():
    with gzip.open(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz")) as f:
        d = f.read()
    n, h, w = struct.unpack(">III", d[4:16])
    return np.frombuffer(d[16:], np.uint8).reshape(n, 1, h, w).astype(np.float64) / 255


def eval_agreement(tmp, tag, graph, predict, T):
    path = os.path.join(tmp, tag + ".nir")
    nir.write(path, graph)
    out = os.path.join(tmp, tag + "-import")
    run("import", path, "-o", out, "--time-steps", str(T), "--input-scale", str(1 / 255))
    x = read_idx_images()
    pred = predict(x).argmax(axis=1)
    data = os.path.join(tmp, tag + "-data")
    os.makedirs(data, exist_ok=True)
    shutil.copy(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz"), data)
    with open(os.path.join(data, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 2049, len(pred)) + pred.astype(np.uint8).tobytes())
    r = run("eval", os.path.join(out, "model.yaml"), "--weights",
            os.path.join(out, "model.safetensors"), "--data", data, "--device", "cpu")
    agree = r["test_accuracy"]
    differ = round((1 - agree) * len(pred))
    print(f"(b) {tag}: spikecl agrees with the NumPy NIR forward on {agree:.4f} of "
          f"{len(pred)} digits ({differ} differ; {len(set(pred))} classes predicted)")
    check(agree >= 0.99, f"{tag}: agreement {agree}")
    check(len(set(pred)) > 2, f"{tag}: the reference predicts {len(set(pred))} classes only")
    return r


def part_b(tmp):
    rng = np.random.default_rng(7)
    T = 6
    # MLP: Flatten -> Affine 784x64 -> LIF -> Affine 64x10 -> LIF
    w1 = (rng.normal(size=(64, 784)) * 0.08).astype(np.float32)
    b1 = (rng.normal(size=64) * 0.1).astype(np.float32)
    w2 = (rng.normal(size=(10, 64)) * 0.4).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    lif1, lif2 = snn_lif((64,), 0.9, 1.0), snn_lif((10,), 0.8, 1.0)
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([1, 28, 28])}),
               "0": nir.Flatten(input_type={"input": np.array([1, 28, 28])}, start_dim=0,
                                end_dim=-1),
               "1": nir.Affine(weight=w1, bias=b1), "2": lif1,
               "3": nir.Affine(weight=w2, bias=b2), "4": lif2,
               "output": nir.Output(output_type={"output": np.array([10])})},
        edges=[("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "4"), ("4", "output")])

    def mlp(x):
        h = x.reshape(len(x), -1).astype(np.float32) @ w1.T + b1
        s1 = lif_run(h.astype(np.float64), lif1, T)
        s2 = lif_run((s1 @ w2.T.astype(np.float64)) + b2, lif2, T)
        return s2.sum(axis=0)

    eval_agreement(tmp, "snntorch-mlp", g, mlp, T)

    # conv: Conv2d 1->4 k5 -> AvgPool2d 2 -> LIF -> Flatten -> Affine 576x10 -> LIF
    wc = (rng.normal(size=(4, 1, 5, 5)) * 0.5).astype(np.float32)
    bc = (rng.normal(size=4) * 0.1).astype(np.float32)
    wf = (rng.normal(size=(10, 576)) * 0.15).astype(np.float32)
    bf = np.zeros(10, np.float32)
    lc, lo = snn_lif((4, 12, 12), 0.9, 0.5), snn_lif((10,), 0.8, 1.0)
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([1, 28, 28])}),
               "conv": nir.Conv2d(input_shape=(28, 28), weight=wc, stride=1, padding=0,
                                  dilation=1, groups=1, bias=bc),
               "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                     padding=np.array([0, 0])),
               "lif": lc,
               "flat": nir.Flatten(input_type={"input": np.array([4, 12, 12])}, start_dim=0,
                                   end_dim=-1),
               "fc": nir.Affine(weight=wf, bias=bf), "out_lif": lo,
               "output": nir.Output(output_type={"output": np.array([10])})},
        edges=[("input", "conv"), ("conv", "pool"), ("pool", "lif"), ("lif", "flat"),
               ("flat", "fc"), ("fc", "out_lif"), ("out_lif", "output")])

    def convnet(x):
        c = avgpool2(conv(x, g.nodes["conv"]))
        s1 = lif_run(c, lc, T)
        h = s1.reshape(T, len(x), -1) @ wf.T.astype(np.float64) + bf
        return lif_run(h, lo, T).sum(axis=0)

    eval_agreement(tmp, "snntorch-conv", g, convnet, T)


with tempfile.TemporaryDirectory() as tmp:
    part_a(tmp)
    part_b(tmp)
if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("all NIR reference checks passed")
