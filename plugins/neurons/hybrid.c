/* neuron.hybrid — the seed's global-local neuron, after Wu et al., "Brain-inspired global-local
 * learning incorporated with neuromorphic computing", Nature Communications 13, 65 (2022). It is
 * a synapse and a neuron in one: weights W trained by BPTT (the global part) and, per sample, a
 * Hebbian trace P (out x in) that grows inside the time window with meta-parameters alpha, eta,
 * beta that BPTT also trains (the local part). Per output neuron, with k = dt / tau_u:
 *
 *   u_t = (1 - s_{t-1}) (1 - k) u_{t-1} + k (relu(W x_t + b) e^(-t dt / tau_w) + alpha P_{t-1} x_t)
 *   P_t = P_{t-1} e^(-dt / tau_w) + eta (sigmoid(u_t) + beta) x_t^T,   P_{-1} = 0, u_{-1} = 0
 *   s_t = H(u_t - V_th), sigmoid surrogate in backward
 *
 * The seed writes the input factor as e^(-m / tau_w); its source, Wu et al.'s code
 * (yjwu17/Spike-Based-Hybrid-plasticity-Network, example/model_hp.py), scales step `step` by
 * decay_factor = exp(-step / tau_w): m is the elapsed time t dt (the step index at dt = 1).
 * Shapes follow that code too: alpha is one scalar per layer (alpha1 = rand(1)), eta and beta
 * one value per output neuron (its post-synaptic eta has shape [1, out]; in the seed's rule
 * beta is added to the post-synaptic sigmoid, so it lives on the output side as well), all
 * initialised U(0, 0.01) like its 1e-2 * rand(...). P is reset for every sample (the seed's
 * per-sample trace), not carried across batches as in Wu et al.'s training script.
 *
 * P is never stored. Unrolled, P_{t-1} x_t = sum_{tau<t} d^(t-1-tau) eta (sigmoid(u_tau) + beta)
 * (x_tau . x_t) with d = e^(-dt / tau_w): the trace enters only through the Gram matrix of the
 * sample's inputs over the window, G[b, tau, t] = x_tau . x_t (T x T per sample). Forward and
 * backward need O(B T^2) floats for it instead of B x out x in per step (128 x 300 x 784 floats
 * = 120 MB at the seed's size), and the gradient of x through P is a sum of T terms per input.
 * W x_t + b goes through one GEMM for all t (once per window for a constant input). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "hybrid.cl"
#include "hybrid_cl.h"

typedef struct hybrid_priv {
    int n_in, n_out, T;
    int cfg; /* HYB_CFG_OUT_MEM | HYB_CFG_NODETACH | HYB_CFG_BIAS */
    float k, d, vth, slope;
    int w_weight, w_bias; /* w_bias = -1 without a bias */
    int w_alpha, w_eta, w_beta;
    int s_pre, s_gpre, s_mem, s_adj, s_gram, s_ggram, s_part;
} hybrid_priv;

static const spk_param_spec hybrid_params[] = {
    {"out", SPK_PARAM_INT, NULL, 1, 1e9, NULL, "number of output neurons"},
    {"bias", SPK_PARAM_BOOL, "true", 1, 0, NULL, "a learnable bias in W x + b (nn.Linear's)"},
    {"tau_u", SPK_PARAM_FLOAT, "5", 1e-6, 1e9, NULL, "membrane time constant (k = dt / tau_u)"},
    {"tau_w", SPK_PARAM_FLOAT, "1", 1e-6, 1e9, NULL,
     "time constant of the Hebbian trace's decay and of the input factor e^(-t dt / tau_w)"},
    {"dt", SPK_PARAM_FLOAT, "1", 1e-6, 1e9, NULL, "time step"},
    {"threshold", SPK_PARAM_FLOAT, "0.2", 1, 0, NULL, "firing threshold V_th"},
    {"alpha", SPK_PARAM_INIT, "{uniform: [0, 0.01]}", 1, 0, NULL,
     "weight of the Hebbian term alpha P x (one per layer)"},
    {"learn_alpha", SPK_PARAM_BOOL, "true", 1, 0, NULL, "train alpha"},
    {"eta", SPK_PARAM_INIT, "{uniform: [0, 0.01]}", 1, 0, NULL,
     "Hebbian learning rate, one per output neuron"},
    {"learn_eta", SPK_PARAM_BOOL, "true", 1, 0, NULL, "train eta"},
    {"beta", SPK_PARAM_INIT, "{uniform: [0, 0.01]}", 1, 0, NULL,
     "offset of the post-synaptic factor sigmoid(u) + beta, one per output neuron"},
    {"learn_beta", SPK_PARAM_BOOL, "true", 1, 0, NULL, "train beta"},
    /* the seed names no slope; 5 is neuron.lif's sigmoid default, and trained best here */
    {"slope", SPK_PARAM_FLOAT, "5", 1e-6, 1e9, NULL,
     "sigmoid surrogate: dS/du = slope sigmoid(slope x) (1 - sigmoid(slope x)), x = u - V_th"},
    {"detach_reset", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "no gradient through the reset factor (1 - s_{t-1})"},
    {"output", SPK_PARAM_CHOICE, "spikes", 1, 0, "spikes|membrane",
     "what the layer emits: spikes, or the membrane u (for readout.membrane)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int hybrid_meta_weight(spk_layer *l, const char *name, int n, const char *learn,
                              spk_error *err)
{
    spk_shape s = {.ndim = 1, .dims = {n}, .time = SPK_TIME_NONE};
    int w = l->host->add_weight(l, name, s, l->host->param_init(l, name), err);
    if (w < 0)
        return w;
    unsigned flags = l->host->param_num(l, learn) == 0 ? SPK_WEIGHT_FROZEN : 0;
    int rc = l->host->set_weight(l, w, flags, 0.0f, 0.0f, err);
    return rc ? -rc : w;
}

static int hybrid_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->time != SPK_TIME_STEPS && in->time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, N] or constant [B, N]), got "
                             "one without a time axis (a readout's output?)");
    hybrid_priv p;
    memset(&p, 0, sizeof p);
    p.n_in = spk_shape_size(in);
    p.T = l->time_steps;
    double out = h->param_num(l, "out");
    if (out < 1 || out > 1e9 || out != floor(out))
        return spk_error_set(err, SPK_ERR_INVALID, "out: expected an integer >= 1, got %g", out);
    p.n_out = (int)out;
    if (p.n_in < 1 || p.T < 1)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected a non-empty input and T >= 1, got %d "
                             "features and T = %d",
                             p.n_in, p.T);
    const double dt = h->param_num(l, "dt"), tau_u = h->param_num(l, "tau_u");
    if (dt > tau_u)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "dt / tau_u = %g: expected at most 1 (the membrane would grow "
                             "with alternating sign)",
                             dt / tau_u);
    p.k = (float)(dt / tau_u);
    p.d = (float)exp(-dt / h->param_num(l, "tau_w"));
    p.vth = (float)h->param_num(l, "threshold");
    p.slope = (float)h->param_num(l, "slope");
    if (strcmp(h->param_str(l, "output"), "membrane") == 0)
        p.cfg |= HYB_CFG_OUT_MEM;
    if (!h->param_num(l, "detach_reset"))
        p.cfg |= HYB_CFG_NODETACH;

    /* W and b as torch.nn.Linear initialises them: U(-1/sqrt(in), 1/sqrt(in)) */
    const float bound = 1.0f / sqrtf((float)p.n_in);
    spk_init u = {SPK_INIT_UNIFORM, -bound, bound};
    spk_shape ws = {.ndim = 2, .dims = {p.n_out, p.n_in}, .time = SPK_TIME_NONE};
    if ((p.w_weight = h->add_weight(l, "weight", ws, u, err)) < 0)
        return -p.w_weight;
    int rc = h->set_weight(l, p.w_weight, SPK_WEIGHT_DECAY, 0.0f, 0.0f, err);
    if (rc)
        return rc;
    p.w_bias = -1;
    if (h->param_num(l, "bias")) {
        spk_shape bs = {.ndim = 1, .dims = {p.n_out}, .time = SPK_TIME_NONE};
        if ((p.w_bias = h->add_weight(l, "bias", bs, u, err)) < 0)
            return -p.w_bias;
        p.cfg |= HYB_CFG_BIAS;
    }
    if ((p.w_alpha = hybrid_meta_weight(l, "alpha", 1, "learn_alpha", err)) < 0)
        return -p.w_alpha;
    if ((p.w_eta = hybrid_meta_weight(l, "eta", p.n_out, "learn_eta", err)) < 0)
        return -p.w_eta;
    if ((p.w_beta = hybrid_meta_weight(l, "beta", p.n_out, "learn_beta", err)) < 0)
        return -p.w_beta;

    /* a constant input gives a constant pre-activation: [B, out] */
    const int pre_time = in->time == SPK_TIME_STEPS ? SPK_TIME_STEPS : SPK_TIME_NONE;
    if ((p.s_pre = h->add_state(l, "pre", p.n_out, pre_time, err)) < 0)
        return -p.s_pre;
    if ((p.s_gpre = h->add_state(l, "grad_pre", p.n_out, pre_time, err)) < 0)
        return -p.s_gpre;
    if ((p.s_mem = h->add_state(l, "mem", p.n_out, SPK_TIME_STEPS, err)) < 0)
        return -p.s_mem;
    if ((p.s_adj = h->add_state(l, "adjoint", p.n_out, SPK_TIME_STEPS, err)) < 0)
        return -p.s_adj;
    if ((p.s_gram = h->add_state(l, "gram", p.T * p.T, SPK_TIME_NONE, err)) < 0)
        return -p.s_gram;
    if ((p.s_ggram = h->add_state(l, "grad_gram", p.T * p.T, SPK_TIME_NONE, err)) < 0)
        return -p.s_ggram;
    if ((p.s_part = h->add_state(l, "grad_meta_part", 3 * p.n_out, SPK_TIME_NONE, err)) < 0)
        return -p.s_part;

    l->host->set_output(l, spk_shape_1d(p.n_out, SPK_TIME_STEPS));
    hybrid_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void hybrid_destroy(spk_layer *l)
{
    free(l->priv);
}

static int hybrid_steps(const spk_layer *l)
{
    return l->in[0].time == SPK_TIME_STEPS;
}

static spk_tensor *hybrid_st(spk_layer *l, int i)
{
    return &l->state[i].t;
}

static int hybrid_check_T(spk_layer *l, spk_exec *x)
{
    const hybrid_priv *p = l->priv;
    if (x->T != p->T)
        return l->host->error(x, SPK_ERR_INVALID, "neuron.hybrid: built for T = %d, run at %d",
                              p->T, x->T);
    return SPK_OK;
}

static int hybrid_layer_forward(spk_layer *l, spk_exec *x)
{
    const hybrid_priv *p = l->priv;
    int rc = hybrid_check_T(l, x);
    if (rc)
        return rc;
    const int steps = hybrid_steps(l);
    const size_t rows = (size_t)x->B * (steps ? (size_t)x->T : 1u);
    const size_t ni = (size_t)p->n_in, no = (size_t)p->n_out;
    const int bn = x->B * p->n_out;
    spk_tensor *pre = hybrid_st(l, p->s_pre), *gram = hybrid_st(l, p->s_gram);
    const spk_weight *w = l->weights;
    /* pre[rows, out] = x[rows, in] W^T; the bias is added inside the fused kernel */
    rc = l->host->gemm(x, 0, 1, rows, no, ni, 1.0f, x->in[0], ni, &w[p->w_weight].value, ni, 0.0f,
                       pre, no);
    if (rc)
        return rc;
    rc = SPK_LAUNCH(l, x, "hybrid_gram", (size_t)x->B * (size_t)(p->T * (p->T - 1) / 2),
                    SPK_ARG_BUF(gram), SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(x->B), SPK_ARG_INT(p->T),
                    SPK_ARG_INT(p->n_in), SPK_ARG_INT(steps ? x->B * p->n_in : 0));
    if (rc)
        return rc;
    const spk_tensor *bias = p->w_bias >= 0 ? &w[p->w_bias].value : pre;
    return SPK_LAUNCH(
        l, x, "hybrid_forward", (size_t)bn, SPK_ARG_BUF(x->out),
        SPK_ARG_BUF(hybrid_st(l, p->s_mem)), SPK_ARG_BUF(pre), SPK_ARG_BUF(bias), SPK_ARG_BUF(gram),
        SPK_ARG_BUF(&w[p->w_alpha].value), SPK_ARG_BUF(&w[p->w_eta].value),
        SPK_ARG_BUF(&w[p->w_beta].value), SPK_ARG_INT(p->T), SPK_ARG_INT(bn), SPK_ARG_INT(p->n_out),
        SPK_ARG_INT(steps ? bn : 0), SPK_ARG_INT(p->cfg | (x->smooth ? HYB_CFG_SMOOTH : 0)),
        SPK_ARG_FLOAT(p->k), SPK_ARG_FLOAT(p->d), SPK_ARG_FLOAT(p->vth), SPK_ARG_FLOAT(p->slope));
}

static int hybrid_layer_backward(spk_layer *l, spk_exec *x)
{
    const hybrid_priv *p = l->priv;
    int rc = hybrid_check_T(l, x);
    if (rc)
        return rc;
    const int steps = hybrid_steps(l);
    const size_t rows = (size_t)x->B * (steps ? (size_t)x->T : 1u);
    const size_t ni = (size_t)p->n_in, no = (size_t)p->n_out;
    const int bn = x->B * p->n_out;
    spk_weight *w = l->weights;
    spk_tensor *pre = hybrid_st(l, p->s_pre), *gpre = hybrid_st(l, p->s_gpre);
    spk_tensor *mem = hybrid_st(l, p->s_mem), *adj = hybrid_st(l, p->s_adj);
    spk_tensor *gram = hybrid_st(l, p->s_gram), *part = hybrid_st(l, p->s_part);
    const spk_tensor *bias = p->w_bias >= 0 ? &w[p->w_bias].value : pre;
    spk_weight *wa = &w[p->w_alpha], *we = &w[p->w_eta], *wb = &w[p->w_beta];
    rc = SPK_LAUNCH(l, x, "hybrid_backward", (size_t)bn, SPK_ARG_BUF(gpre), SPK_ARG_BUF(adj),
                    SPK_ARG_BUF(part), SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(mem), SPK_ARG_BUF(pre),
                    SPK_ARG_BUF(bias), SPK_ARG_BUF(gram), SPK_ARG_BUF(&wa->value),
                    SPK_ARG_BUF(&we->value), SPK_ARG_BUF(&wb->value), SPK_ARG_INT(p->T),
                    SPK_ARG_INT(bn), SPK_ARG_INT(p->n_out), SPK_ARG_INT(steps ? bn : 0),
                    SPK_ARG_INT(p->cfg | (x->smooth ? HYB_CFG_SMOOTH : 0)), SPK_ARG_FLOAT(p->k),
                    SPK_ARG_FLOAT(p->d), SPK_ARG_FLOAT(p->vth), SPK_ARG_FLOAT(p->slope));
    if (rc)
        return rc;
    const int want = (!wa->frozen) | (!we->frozen) << 1 | (!wb->frozen) << 2;
    if (want) {
        rc = SPK_LAUNCH(l, x, "hybrid_reduce", 3 * no, SPK_ARG_BUF(&we->grad),
                        SPK_ARG_BUF(&wb->grad), SPK_ARG_BUF(part), SPK_ARG_INT(x->B),
                        SPK_ARG_INT(p->n_out), SPK_ARG_INT(want));
        if (!rc && (want & 1))
            rc = SPK_LAUNCH(l, x, "hybrid_reduce_alpha", 1, SPK_ARG_BUF(&wa->grad),
                            SPK_ARG_BUF(part), SPK_ARG_INT(p->n_out));
        if (rc)
            return rc;
    }
    if (p->w_bias >= 0 && !w[p->w_bias].frozen) {
        rc = l->host->reduce_grad(x, &w[p->w_bias].grad, gpre, (int)rows, p->n_out);
        if (rc)
            return rc;
    }
    if (!w[p->w_weight].frozen) {
        /* grad_W[out, in] += gpre^T[out, rows] x[rows, in] */
        rc = l->host->gemm(x, 1, 0, no, ni, rows, 1.0f, gpre, no, x->in[0], ni, 1.0f,
                           &w[p->w_weight].grad, ni);
        if (rc)
            return rc;
    }
    if (!x->grad_in[0])
        return SPK_OK;
    /* grad_x = gpre W, then the path through the Gram matrix (the Hebbian term) */
    rc = l->host->gemm(x, 0, 0, rows, ni, no, 1.0f, gpre, no, &w[p->w_weight].value, ni, 0.0f,
                       x->grad_in[0], ni);
    if (rc || p->T < 2)
        return rc;
    spk_tensor *ggram = hybrid_st(l, p->s_ggram);
    rc = SPK_LAUNCH(l, x, "hybrid_gram_grad", (size_t)x->B * p->T * p->T, SPK_ARG_BUF(ggram),
                    SPK_ARG_BUF(adj), SPK_ARG_BUF(mem), SPK_ARG_BUF(&wa->value),
                    SPK_ARG_BUF(&we->value), SPK_ARG_BUF(&wb->value), SPK_ARG_INT(x->B),
                    SPK_ARG_INT(p->T), SPK_ARG_INT(p->n_out), SPK_ARG_FLOAT(p->d));
    if (rc)
        return rc;
    const size_t n = rows * ni;
    return SPK_LAUNCH(l, x, "hybrid_gin", n, SPK_ARG_BUF(x->grad_in[0]), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_BUF(ggram), SPK_ARG_INT(n), SPK_ARG_INT(x->B), SPK_ARG_INT(p->T),
                      SPK_ARG_INT(p->n_in), SPK_ARG_INT(steps ? x->B * p->n_in : 0));
}

static const spk_cpu_kernel hybrid_cpu_kernels[] = {
    SPK_CPU_KERNEL(hybrid_gram),         SPK_CPU_KERNEL(hybrid_forward),
    SPK_CPU_KERNEL(hybrid_backward),     SPK_CPU_KERNEL(hybrid_reduce),
    SPK_CPU_KERNEL(hybrid_reduce_alpha), SPK_CPU_KERNEL(hybrid_gram_grad),
    SPK_CPU_KERNEL(hybrid_gin),          {0},
};

const spk_layer_type spk_builtin_neuron_hybrid = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "neuron.hybrid",
    .kind = SPK_KIND_NEURON,
    .summary = "global-local neuron (Wu et al. 2022): own weights, per-sample Hebbian trace "
               "with learnt alpha, eta, beta",
    .params = hybrid_params,
    .init = hybrid_init,
    .forward = hybrid_layer_forward,
    .backward = hybrid_layer_backward,
    .destroy = hybrid_destroy,
    .kernels = {.owner = "neuron.hybrid",
                .opencl_source = hybrid_cl_source,
                .cpu_kernels = hybrid_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_neuron_hybrid);
