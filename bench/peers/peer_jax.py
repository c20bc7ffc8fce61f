"""Plain JAX peer: jit-compiled training step, lax.scan over time, custom_vjp surrogate
spike, optax Adam. The network runs layer by layer over the whole window (each synapse is one
matmul/convolution over all T*B rows, each neuron one scan), and with direct encoding the first
layer (and for the conv net its pooling) runs once per window: the "hoisted" form, as spikecl
does. One thread: run.py sets XLA_FLAGS (see README.md).

    python peer_jax.py mlp_direct --batches 20
"""

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def make_spike(kind, k):
    """Heaviside forward, snnTorch's surrogate derivative backward."""

    @jax.custom_vjp
    def spike(x):
        return (x > 0).astype(x.dtype)

    def fwd(x):
        return spike(x), x

    def bwd(x, g):
        if kind == "fast_sigmoid":
            d = k * jnp.abs(x) + 1.0
            return (g / (d * d),)
        u = (jnp.pi / 2) * k * x  # atan
        return (g * (0.5 * k) / (1.0 + u * u),)

    spike.defvjp(fwd, bwd)
    return spike


def lif(cur, T, spike, beta=0.9, thr=1.0, const=False):
    """snnTorch Leaky over the window: m_t = beta m_{t-1} + I_t - s_{t-1} thr (reset detached),
    s_t = spike(m_t - thr). cur is [T, ...], or [...] constant in time when const."""
    shape = cur.shape if const else cur.shape[1:]
    init = (jnp.zeros(shape, cur.dtype), jnp.zeros(shape, cur.dtype))

    def step(carry, c):
        m, s = carry
        if const:
            c = cur
        m = beta * m + c - lax.stop_gradient(s) * thr
        s = spike(m - thr)
        return (m, s), s

    _, out = lax.scan(step, init, None if const else cur, length=T)
    return out


def linear_init(key, n_in, n_out):
    bound = 1.0 / np.sqrt(n_in)  # nn.Linear's kaiming_uniform(a=sqrt(5)) and bias bound
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.uniform(k1, (n_out, n_in), jnp.float32, -bound, bound),
            "b": jax.random.uniform(k2, (n_out,), jnp.float32, -bound, bound)}


def conv_init(key, c_in, c_out, k):
    bound = 1.0 / np.sqrt(c_in * k * k)
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.uniform(k1, (c_out, c_in, k, k), jnp.float32, -bound, bound),
            "b": jax.random.uniform(k2, (c_out,), jnp.float32, -bound, bound)}


def dense(p, x):
    return x @ p["w"].T + p["b"]


def conv(p, x):
    y = lax.conv_general_dilated(x, p["w"], (1, 1), "VALID",
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + p["b"][None, :, None, None]


def maxpool2(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def build(w):
    T, B = w["T"], w["B"]
    spike = make_spike(*w["surrogate"])
    key = jax.random.PRNGKey(1)
    ks = jax.random.split(key, 3)
    poisson = w["encoding"] == "poisson"

    if w["kind"] == "mlp":
        params = {"fc1": linear_init(ks[0], w["n_in"], w["hidden"]),
                  "fc2": linear_init(ks[1], w["hidden"], w["classes"])}

        def net(p, x, rk):
            if poisson:
                xs = (jax.random.uniform(rk, (T,) + x.shape) < x).astype(jnp.float32)
                s1 = lif(dense(p["fc1"], xs), T, spike)
            else:
                s1 = lif(dense(p["fc1"], x), T, spike, const=True)  # hoisted
            return lif(dense(p["fc2"], s1), T, spike)
    elif w["kind"] == "on":
        params = {"fc": linear_init(ks[0], w["n_in"], w["classes"])}

        def net(p, x, rk):
            xs = (jax.random.uniform(rk, (T,) + x.shape) < x).astype(jnp.float32)
            return lif(dense(p["fc"], xs), T, spike)
    else:
        params = {"conv1": conv_init(ks[0], 1, 12, 5), "conv2": conv_init(ks[1], 12, 32, 5),
                  "fc": linear_init(ks[2], 32 * 4 * 4, 10)}

        def net(p, x, rk):
            x = x.reshape(B, 1, 28, 28)
            c1 = maxpool2(conv(p["conv1"], x))  # [B, 12, 12, 12], once per window
            s1 = lif(c1, T, spike, const=True)
            c2 = maxpool2(conv(p["conv2"], s1.reshape(T * B, 12, 12, 12)))
            s2 = lif(c2.reshape(T, B, 32 * 4 * 4), T, spike)
            return lif(dense(p["fc"], s2), T, spike)

    on = float(int(T * common.CORRECT_RATE))
    off = float(int(T * common.INCORRECT_RATE))

    def loss_fn(p, x, y, rk):
        counts = net(p, x, rk).sum(0)
        target = jnp.where(jax.nn.one_hot(y, w["classes"]) > 0, on, off)
        return jnp.mean((counts - target) ** 2) / T

    opt = optax.adam(w.get("lr", common.LR), b1=0.9, b2=0.999)

    @jax.jit
    def train_step(p, s, x, y, rk):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y, rk)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    @jax.jit
    def grad_step(p, x, y, rk):  # returned, so XLA cannot drop the gradients
        return jax.value_and_grad(loss_fn)(p, x, y, rk)

    return params, opt.init(params), train_step, grad_step


def main():
    args = common.parse_args()
    base = common.peak_rss_mb()
    w = common.WORKLOADS[args.workload]
    x_np, y_np, data = common.one_batch(w)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    params, opt_state, train_step, grad_step = build(w)
    state = {"p": params, "s": opt_state, "i": 0}
    key = jax.random.PRNGKey(2)

    def step():
        rk = jax.random.fold_in(key, state["i"])
        state["i"] += 1
        if args.no_update:
            loss, g = grad_step(state["p"], x, y, rk)
            jax.block_until_ready(g)
            return loss.block_until_ready()
        state["p"], state["s"], loss = train_step(state["p"], state["s"], x, y, rk)
        return loss.block_until_ready()

    common.run("jax", args.workload, step, args, base_rss=base,
               extra={"data": data, "version": jax.__version__})


if __name__ == "__main__":
    main()
