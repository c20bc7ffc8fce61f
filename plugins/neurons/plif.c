/* neuron.plif — the parametric leaky integrate-and-fire neuron (Fang et al., "Incorporating
 * Learnable Membrane Time Constant to Enhance Learning of Spiking Neural Networks", ICCV 2021;
 * SpikingJelly's ParametricLIFNode). The membrane time constant is learnt through
 * 1/tau = sigmoid(w), one w per layer as in the paper (or one per neuron).
 *
 *   V_0 = v_reset
 *   decay_input true:  H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau
 *   decay_input false: H_t = V_{t-1} - (V_{t-1} - v_reset) / tau + X_t
 *   S_t = H(H_t - v_threshold)                       (fires in the same step, unlike snnTorch)
 *   hard reset: V_t = H_t (1 - S_t) + v_reset S_t
 *   soft reset: V_t = H_t - S_t v_threshold
 *
 * w starts at -log(init_tau - 1) so that sigmoid(w) = 1/init_tau. Defaults follow the paper's
 * own code (fangwei123456/Parametric-Leaky-Integrate-and-Fire-Spiking-Neuron, codes/models.py:
 * PLIFNode(init_tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True,
 * surrogate_function=surrogate.ATan()), ATan's alpha being 2). SpikingJelly's library class
 * (spikingjelly/activation_based/neuron.py) defaults differently, to detach_reset=False and a
 * Sigmoid surrogate (alpha 4): set `detach_reset: false, surrogate: {type: sigmoid, slope: 4}`
 * for that. SpikingJelly's soft reset (v_reset=None) leaks towards 0; here it leaks towards
 * v_reset, which is the same at the default v_reset = 0. The membrane output is H_t. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

/* wide lane blocks for this file's kernels on the CPU (spikecl/kernel.h) */
#undef SPK_LANES
#define SPK_LANES SPK_LANES_WIDE
#include "plif.cl"
#include "plif_cl.h"

_Static_assert(PLIF_SG_FAST_SIGMOID == SPK_SG_FAST_SIGMOID && PLIF_SG_ATAN == SPK_SG_ATAN &&
                   PLIF_SG_SIGMOID == SPK_SG_SIGMOID && PLIF_SG_TRIANGLE == SPK_SG_TRIANGLE,
               "plif.cl surrogate ids must match spk_surrogate_kind");

typedef struct plif_priv {
    int n;   /* neurons per sample */
    int cfg; /* reset, decay_input, surrogate << 2, output and detach flags (see plif.cl) */
    float slope;
    float vth, vr;
    int w_w;  /* weight index of w */
    int s_h;  /* saved H_t [T, B, N] */
    int s_gw; /* per-(b, n) gradient partials of w [B, N], -1 when not learnt */
} plif_priv;

static const spk_param_spec plif_params[] = {
    {"init_tau", SPK_PARAM_FLOAT, "2.0", 1.0, 1e9, NULL,
     "initial membrane time constant (> 1); w starts at -log(init_tau - 1)"},
    {"learn_tau", SPK_PARAM_BOOL, "true", 1, 0, NULL, "train w, where 1/tau = sigmoid(w)"},
    {"per_neuron_tau", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "one w per neuron (the paper shares one per layer)"},
    {"v_threshold", SPK_PARAM_FLOAT, "1.0", 1, 0, NULL, "firing threshold"},
    {"v_reset", SPK_PARAM_FLOAT, "0.0", 1, 0, NULL,
     "resting potential, start value and hard-reset value of the membrane"},
    {"reset", SPK_PARAM_CHOICE, "hard", 1, 0, "hard|soft",
     "after a spike: set the membrane to v_reset, or subtract v_threshold"},
    {"decay_input", SPK_PARAM_BOOL, "true", 1, 0, NULL,
     "the input is divided by tau too (false: added as it is)"},
    {"detach_reset", SPK_PARAM_BOOL, "true", 1, 0, NULL,
     "no gradient through the spike in the reset (the paper's setting)"},
    {"surrogate", SPK_PARAM_SURROGATE, "atan", 1, 0, "fast_sigmoid|atan|sigmoid|triangle",
     "spike derivative in backward; atan alpha 2 / fast_sigmoid 25 / sigmoid 5 / triangle 1"},
    {"output", SPK_PARAM_CHOICE, "spikes", 1, 0, "spikes|membrane",
     "what the layer emits: spikes, or H_t, the membrane before the reset"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const float plif_default_slope[4] = {25.0f, 2.0f, 5.0f, 1.0f};

static int plif_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->time != SPK_TIME_STEPS && in->time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, N] or constant [B, N]), got "
                             "one without a time axis (a readout's output?)");
    plif_priv p;
    memset(&p, 0, sizeof p);
    p.n = spk_shape_size(in);

    spk_surrogate sg = h->param_surrogate(l, "surrogate");
    if (sg.kind < 0 || sg.kind > 3)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "surrogate: expected fast_sigmoid, atan, sigmoid or triangle");
    p.slope = sg.slope > 0.0f ? sg.slope : plif_default_slope[sg.kind];
    p.cfg = sg.kind << 2;
    if (strcmp(h->param_str(l, "reset"), "soft") == 0)
        p.cfg |= PLIF_CFG_SOFT;
    if (!h->param_num(l, "decay_input"))
        p.cfg |= PLIF_CFG_NODECAY;
    if (strcmp(h->param_str(l, "output"), "membrane") == 0)
        p.cfg |= PLIF_CFG_OUT_MEM;
    if (!h->param_num(l, "detach_reset"))
        p.cfg |= PLIF_CFG_NODETACH;
    p.vth = (float)h->param_num(l, "v_threshold");
    p.vr = (float)h->param_num(l, "v_reset");

    const double tau = h->param_num(l, "init_tau");
    if (!(tau > 1.0))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "init_tau: expected a time constant > 1 (1/tau = sigmoid(w) < 1), "
                             "got %g",
                             tau);
    const int learn = h->param_num(l, "learn_tau") != 0;
    const int per = h->param_num(l, "per_neuron_tau") != 0;
    spk_init wi = {.kind = SPK_INIT_CONSTANT, .a = (float)-log(tau - 1.0), .b = 0.0f};
    spk_shape ws = {.ndim = 1, .dims = {per ? p.n : 1}, .time = SPK_TIME_NONE};
    p.w_w = h->add_weight(l, "w", ws, wi, err);
    if (p.w_w < 0)
        return -p.w_w;
    int rc = h->set_weight(l, p.w_w, learn ? 0 : SPK_WEIGHT_FROZEN, 0.0f, 0.0f, err);
    if (rc)
        return rc;

    if ((p.s_h = h->add_state(l, "mem", p.n, SPK_TIME_STEPS, err)) < 0)
        return -p.s_h;
    p.s_gw = -1;
    if (learn && (p.s_gw = h->add_state(l, "grad_w_part", p.n, SPK_TIME_NONE, err)) < 0)
        return -p.s_gw;

    l->host->set_output(l, spk_shape_timed(*in, SPK_TIME_STEPS));
    plif_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void plif_destroy(spk_layer *l)
{
    free(l->priv);
}

static int plif_in_stride(const spk_layer *l, int bn)
{
    return l->in[0].time == SPK_TIME_STEPS ? bn : 0;
}

static int plif_layer_forward(spk_layer *l, spk_exec *x)
{
    const plif_priv *p = l->priv;
    const spk_weight *w = &l->weights[p->w_w];
    const int bn = x->B * p->n;
    /* a fused readout's [B, n] output: the session gives it only with SPK_MEM_COUNT_OUT */
    const int cfg = p->cfg | (x->smooth ? PLIF_CFG_SMOOTH : 0) |
                    (x->out->shape.time == SPK_TIME_STEPS ? 0 : PLIF_CFG_COUNT);
    return SPK_LAUNCH(
        l, x, "plif_forward", (size_t)bn, SPK_ARG_BUF(x->out), SPK_ARG_BUF(&l->state[p->s_h].t),
        SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(&w->value), SPK_ARG_INT(x->T), SPK_ARG_INT(bn),
        SPK_ARG_INT(p->n), SPK_ARG_INT(plif_in_stride(l, bn)), SPK_ARG_INT(w->value.numel > 1),
        SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope), SPK_ARG_FLOAT(p->vth), SPK_ARG_FLOAT(p->vr));
}

/* Reduces the per-(b, n) partials in `part` into the weight's grad ([N] or [1]), accumulating;
 * two passes of a column sum instead of atomics, so every backend adds in the same order. */
/* Sums the per-(b, n) partials in `part` into the weight's grad ([N] or [1]), accumulating. */
static int plif_reduce(spk_layer *l, spk_exec *x, spk_tensor *part, spk_weight *w)
{
    const plif_priv *p = l->priv;
    return l->host->reduce_grad(x, &w->grad, part, x->B, p->n);
}

static int plif_layer_backward(spk_layer *l, spk_exec *x)
{
    const plif_priv *p = l->priv;
    spk_weight *w = &l->weights[p->w_w];
    const int bn = x->B * p->n;
    spk_tensor *hm = &l->state[p->s_h].t;
    int want_gw = p->s_gw >= 0 && !w->frozen;
    int cfg = p->cfg | (x->smooth ? PLIF_CFG_SMOOTH : 0);
    if (x->grad_in[0])
        cfg |= PLIF_CFG_WANT_GIN;
    if (x->grad_out->shape.time != SPK_TIME_STEPS)
        cfg |= PLIF_CFG_GOUT_CONST;
    if (want_gw)
        cfg |= PLIF_CFG_WANT_GW;
    /* buffers a variant does not write still need a valid argument: the kernel skips them */
    spk_tensor *gin = x->grad_in[0] ? x->grad_in[0] : hm;
    spk_tensor *gwp = want_gw ? &l->state[p->s_gw].t : hm;
    int rc = SPK_LAUNCH(l, x, "plif_backward", (size_t)bn, SPK_ARG_BUF(gin), SPK_ARG_BUF(gwp),
                        SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(hm), SPK_ARG_BUF(x->in[0]),
                        SPK_ARG_BUF(&w->value), SPK_ARG_INT(x->T), SPK_ARG_INT(bn),
                        SPK_ARG_INT(p->n), SPK_ARG_INT(plif_in_stride(l, bn)),
                        SPK_ARG_INT(w->value.numel > 1), SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope),
                        SPK_ARG_FLOAT(p->vth), SPK_ARG_FLOAT(p->vr));
    if (rc)
        return rc;
    if (want_gw && (rc = plif_reduce(l, x, gwp, w)) != 0)
        return rc;
    return SPK_OK;
}

static const spk_cpu_kernel plif_cpu_kernels[] = {
    SPK_CPU_KERNEL(plif_forward),
    SPK_CPU_KERNEL(plif_backward),
    {0},
};

const spk_layer_type spk_builtin_neuron_plif = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "neuron.plif",
    .kind = SPK_KIND_NEURON,
    .summary = "parametric LIF with a learnt time constant (Fang et al. 2021, SpikingJelly PLIF)",
    .params = plif_params,
    .init = plif_init,
    .forward = plif_layer_forward,
    .backward = plif_layer_backward,
    .destroy = plif_destroy,
    /* backward reads its input: its trace cannot take the input's place */
    .memory =
        SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_GRAD_IN_PLACE | SPK_MEM_OUT_IN_PLACE | SPK_MEM_COUNT_OUT,
    .kernels = {.owner = "neuron.plif",
                .opencl_source = plif_cl_source,
                .cpu_kernels = plif_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_neuron_plif);
