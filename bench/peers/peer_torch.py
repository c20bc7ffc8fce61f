"""PyTorch-based peers (CPU, one thread):

  snntorch          snnTorch Leaky, eager, written as snnTorch's tutorials do: a Python loop
                    over time steps running every layer at every step (the first layer is
                    recomputed at each step even for direct encoding)
  snntorch_compile  snnTorch Leaky under torch.compile, layer by layer over the window: each
                    synapse is one matmul/convolution over all T*B rows, and with direct
                    encoding the first layer (and its pooling) runs once per window ("hoisted")
  spikingjelly      SpikingJelly activation_based, multi-step mode (step_mode='m'), torch
                    implementation, LIFNode(tau=10, decay_input=False, v_reset=None, detach_reset=True)
                    = beta 0.9 with subtract reset; direct input repeated over T as its tutorials do
  norse             Norse LIFBoxCell (a leaky membrane without current term) with reset_subtract,
                    SuperSpike surrogate (= fast sigmoid), looped over time steps; the input is
                    scaled by dt*tau_mem_inv = 0.1 (v' = 0.9 v + 0.1 i), so the initial weights
                    are scaled by 10 to give the same dynamics

    python peer_torch.py mlp_direct --framework snntorch --batches 10
"""

import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

warnings.filterwarnings("ignore")
FRAMEWORKS = ["snntorch", "snntorch_compile", "spikingjelly", "norse"]


class _FastSigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = ctx.k * x.abs() + 1.0
        return g / (d * d), None


class FastSigmoid(nn.Module):
    """snnTorch's fast_sigmoid surrogate, as a SpikingJelly surrogate_function."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return _FastSigmoid.apply(x, self.k)


def mse_count_loss(spk, y, T, C):
    """snnTorch's mse_count_loss(correct_rate=0.8, incorrect_rate=0.2): spike counts over time
    against int(T*0.8) for the label and int(T*0.2) elsewhere, MSE over B*C, divided by T."""
    counts = spk.sum(0)
    on = float(int(T * common.CORRECT_RATE))
    off = float(int(T * common.INCORRECT_RATE))
    target = torch.full_like(counts, off)
    target.scatter_(1, y.long().unsqueeze(1), on)
    return F.mse_loss(counts, target) / T


def layers(w):
    """The synapses of the workload, with PyTorch's default initialisation."""
    torch.manual_seed(1)
    if w["kind"] == "mlp":
        return nn.ModuleDict({"fc1": nn.Linear(w["n_in"], w["hidden"]),
                              "fc2": nn.Linear(w["hidden"], w["classes"])})
    if w["kind"] == "on":
        return nn.ModuleDict({"fc": nn.Linear(w["n_in"], w["classes"])})
    return nn.ModuleDict({"conv1": nn.Conv2d(1, 12, 5), "conv2": nn.Conv2d(12, 32, 5),
                          "fc": nn.Linear(32 * 4 * 4, 10)})


def stages(w, L, direct_x):
    """The network as a list of (synapse function, spiking?) stages; the conv net's pools
    belong to the synapse before them."""
    if w["kind"] == "mlp":
        return [L["fc1"], L["fc2"]]
    if w["kind"] == "on":
        return [L["fc"]]
    return [lambda x: F.max_pool2d(L["conv1"](x), 2), lambda x: F.max_pool2d(L["conv2"](x), 2),
            lambda x: L["fc"](x.flatten(1))]


def encode(w, x):
    """[B, ...] -> what the first layer reads: x itself (direct: constant in time) or the
    Poisson spikes [T, B, ...] (snntorch.spikegen.rate draws the same Bernoulli spikes)."""
    if w["encoding"] == "poisson":
        return (torch.rand((w["T"],) + tuple(x.shape)) < x).float()
    return x


# --- snnTorch --------------------------------------------------------------------------------

def build_snntorch(w, compiled):
    import snntorch as snn
    from snntorch import surrogate

    kind, k = w["surrogate"]
    sg = surrogate.fast_sigmoid(slope=k) if kind == "fast_sigmoid" else surrogate.atan(alpha=k)
    L = layers(w)
    syn = stages(w, L, None)
    lifs = nn.ModuleList([snn.Leaky(beta=0.9, threshold=1.0, spike_grad=sg,
                                    reset_mechanism="subtract") for _ in syn])
    T, B = w["T"], w["B"]
    params = list(L.parameters())

    def img(x):
        return x.view(-1, 1, 28, 28) if w["kind"] == "conv" else x

    def net_eager(x):
        """snnTorch's tutorial form: every layer at every step."""
        mems = [lif.init_leaky() for lif in lifs]
        inp = encode(w, x)
        rec = []
        for t in range(T):
            h = img(inp[t] if w["encoding"] == "poisson" else inp)
            for i, (f, lif) in enumerate(zip(syn, lifs)):
                h, mems[i] = lif(f(h), mems[i])
            rec.append(h)
        return torch.stack(rec)

    def net_layerwise(x, inp):
        """Layer by layer over the window; a constant input runs its first synapse once."""
        h, const = (inp, False) if w["encoding"] == "poisson" else (img(x), True)
        for f, lif in zip(syn, lifs):
            if const:
                cur = f(h)
            else:
                cur = f(h.reshape((T * B,) + h.shape[2:]))
                cur = cur.reshape((T, B) + cur.shape[1:])
            mem = torch.zeros_like(cur if const else cur[0])
            rec = []
            for t in range(T):
                s, mem = lif(cur if const else cur[t], mem)
                rec.append(s)
            h, const = torch.stack(rec), False
        return h

    if not compiled:
        def loss_fn(x, y):
            return mse_count_loss(net_eager(x), y, T, w["classes"])
    else:
        def loss_inner(x, y, inp):
            return mse_count_loss(net_layerwise(x, inp), y, T, w["classes"])
        loss_c = torch.compile(loss_inner)

        def loss_fn(x, y):
            # the Poisson draw stays outside the compiled graph (a random op inside it
            # would be compiled as well; either way the draw is part of the timed step)
            inp = encode(w, x) if w["encoding"] == "poisson" else None
            return loss_c(x, y, inp)
    return params, loss_fn, snn.__version__


# --- SpikingJelly ----------------------------------------------------------------------------

def build_spikingjelly(w):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    import spikingjelly

    kind, k = w["surrogate"]
    T = w["T"]

    def lif():
        sg = FastSigmoid(k) if kind == "fast_sigmoid" else surrogate.ATan(alpha=k)
        return neuron.LIFNode(tau=10.0, decay_input=False, v_threshold=1.0, v_reset=None,
                              surrogate_function=sg, detach_reset=True, step_mode="m")

    torch.manual_seed(1)
    if w["kind"] == "mlp":
        net = nn.Sequential(layer.Linear(w["n_in"], w["hidden"]), lif(),
                            layer.Linear(w["hidden"], w["classes"]), lif())
    elif w["kind"] == "on":
        net = nn.Sequential(layer.Linear(w["n_in"], w["classes"]), lif())
    else:
        net = nn.Sequential(layer.Conv2d(1, 12, 5), layer.MaxPool2d(2), lif(),
                            layer.Conv2d(12, 32, 5), layer.MaxPool2d(2), lif(),
                            layer.Flatten(), layer.Linear(32 * 4 * 4, 10), lif())
    functional.set_step_mode(net, "m")

    def loss_fn(x, y):
        if w["encoding"] == "poisson":
            xs = encode(w, x)
        else:
            xs = x.unsqueeze(0).repeat(T, *([1] * x.dim()))
        if w["kind"] == "conv":
            xs = xs.view(T, -1, 1, 28, 28)
        loss = mse_count_loss(net(xs), y, T, w["classes"])
        return loss

    def after_step():
        functional.reset_net(net)

    return list(net.parameters()), loss_fn, spikingjelly.__version__ if hasattr(
        spikingjelly, "__version__") else _dist_version("spikingjelly"), after_step


# --- Norse -----------------------------------------------------------------------------------

def build_norse(w):
    from norse.torch import LIFBoxCell, LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract

    kind, k = w["surrogate"]
    if kind != "fast_sigmoid":
        # Norse has no atan surrogate: its "super" (SuperSpike, 1/(alpha|x|+1)^2, the fast
        # sigmoid) stands in for it at the same cost
        k = 25.0
    p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(100.0), v_th=torch.as_tensor(1.0),
                         method="super", alpha=torch.as_tensor(k), reset_method=reset_subtract)
    L = layers(w)
    with torch.no_grad():  # v' = 0.9 v + 0.1 i: weights x10 give snnTorch Leaky's v' = 0.9 v + i
        for q in L.parameters():
            q.mul_(1.0 / (1e-3 * 100.0))
    syn = stages(w, L, None)
    cells = [LIFBoxCell(p, dt=1e-3) for _ in syn]
    T = w["T"]

    def loss_fn(x, y):
        inp = encode(w, x)
        states = [None] * len(cells)
        rec = []
        for t in range(T):
            h = inp[t] if w["encoding"] == "poisson" else inp
            if w["kind"] == "conv":
                h = h.view(-1, 1, 28, 28)
            for i, (f, cell) in enumerate(zip(syn, cells)):
                h, states[i] = cell(f(h), states[i])
            rec.append(h)
        return mse_count_loss(torch.stack(rec), y, T, w["classes"])

    return list(L.parameters()), loss_fn, _dist_version("norse")


def _dist_version(name):
    from importlib.metadata import version
    try:
        return version(name)
    except Exception:  # noqa: BLE001 - a version string is informative only
        return "?"


def main():
    args = common.parse_args(FRAMEWORKS)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    base = common.peak_rss_mb()
    w = common.WORKLOADS[args.workload]
    x_np, y_np, data = common.one_batch(w)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    after = None
    if args.framework.startswith("snntorch"):
        params, loss_fn, ver = build_snntorch(w, args.framework == "snntorch_compile")
    elif args.framework == "spikingjelly":
        params, loss_fn, ver, after = build_spikingjelly(w)
    else:
        params, loss_fn, ver = build_norse(w)
    opt = torch.optim.Adam(params, lr=w.get("lr", common.LR), betas=(0.9, 0.999))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x, y)
        loss.backward()
        if not args.no_update:
            opt.step()
        if after:
            after()
        return loss.item()

    common.run(args.framework, args.workload, step, args, base_rss=base,
               extra={"data": data, "version": ver, "torch": torch.__version__})


if __name__ == "__main__":
    main()
