/* neuron.lif — the leaky integrate-and-fire neuron with snnTorch `Leaky` semantics
 * (snntorch/_neurons/leaky.py: the reset comes from the previous step's membrane through
 * mem_reset(), detached; subtract: beta*m + I - r*thr; zero: (1 - r)*m decays, then + I).
 *
 *   r_t = H(m_{t-1} - thr), m_0 = 0
 *   subtract: m_t = beta m_{t-1} + I_t - r_t thr
 *   zero:     m_t = beta ((1 - r_t) m_{t-1} + r_t reset_value) + I_t
 *   none:     m_t = beta m_{t-1} + I_t
 *   s_t = H(m_t - thr)
 *
 * beta and threshold are always weights ([1] or [N]) so one kernel serves all variants; the
 * ones not learnt are frozen. Backward: BPTT with a surrogate derivative, in one fused kernel. */
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

/* wide lane blocks for this file's kernels on the CPU (spikecl/kernel.h) */
#undef SPK_LANES
#define SPK_LANES SPK_LANES_WIDE
#include "lif.cl"
#include "lif_cl.h"

_Static_assert(LIF_SG_FAST_SIGMOID == SPK_SG_FAST_SIGMOID && LIF_SG_ATAN == SPK_SG_ATAN &&
                   LIF_SG_SIGMOID == SPK_SG_SIGMOID && LIF_SG_TRIANGLE == SPK_SG_TRIANGLE,
               "lif.cl surrogate ids must match spk_surrogate_kind");

typedef struct lif_priv {
    int n;   /* neurons per sample */
    int cfg; /* reset | surrogate << 2 | output and detach flags (see lif.cl) */
    float slope;
    float rv;            /* reset_value: where reset: zero puts the membrane */
    int w_beta, w_thr;   /* weight indices */
    int s_mem;           /* saved membranes [T, B, N] */
    int s_gbeta, s_gthr; /* per-(b, n) gradient partials [B, N], -1 when not learnt */
    int recompute;       /* LIF_CFG_RECOMPUTE when the last forward kept no trace */
} lif_priv;

static const spk_param_spec lif_params[] = {
    {"beta", SPK_PARAM_INIT, "0.9", 0, 1, NULL,
     "membrane decay per step; a distribution ({uniform: [0, 1]}) makes it per-neuron"},
    {"per_neuron_beta", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "one beta per neuron even when beta is a constant"},
    {"learn_beta", SPK_PARAM_BOOL, "false", 1, 0, NULL, "train beta (clamped to [0, 1])"},
    {"threshold", SPK_PARAM_INIT, "1.0", 1, 0, NULL, "firing threshold"},
    {"learn_threshold", SPK_PARAM_BOOL, "false", 1, 0, NULL, "train the threshold"},
    {"per_neuron_threshold", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "one threshold per neuron even when it is a constant"},
    {"reset", SPK_PARAM_CHOICE, "subtract", 1, 0, "subtract|zero|none",
     "after a spike: subtract the threshold, zero the membrane, or nothing"},
    {"reset_value", SPK_PARAM_FLOAT, "0.0", 1, 0, NULL,
     "where reset: zero puts the membrane (before it decays and the step's input is added)"},
    {"detach_reset", SPK_PARAM_BOOL, "true", 1, 0, NULL,
     "no gradient through the reset term (snnTorch's default)"},
    {"surrogate", SPK_PARAM_SURROGATE, "fast_sigmoid", 1, 0, "fast_sigmoid|atan|sigmoid|triangle",
     "spike derivative in backward; slope 25 / atan alpha 2 / sigmoid 5 / triangle 1"},
    {"output", SPK_PARAM_CHOICE, "spikes", 1, 0, "spikes|membrane",
     "what the layer emits: spikes, or the membrane (for readout.membrane)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const float lif_default_slope[4] = {25.0f, 2.0f, 5.0f, 1.0f};

/* Declares a [1] or [N] weight; returns its index or a negative status. */
static int lif_add_param_weight(spk_layer *l, const char *name, spk_init init, int per_neuron,
                                int n, int learn, spk_error *err)
{
    spk_shape s = {.ndim = 1, .dims = {per_neuron ? n : 1}, .time = SPK_TIME_NONE};
    int w = l->host->add_weight(l, name, s, init, err);
    if (w < 0)
        return w;
    int rc = l->host->set_weight(l, w, learn ? 0 : SPK_WEIGHT_FROZEN, 0.0f, 0.0f, err);
    return rc ? -rc : w;
}

static int lif_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->time != SPK_TIME_STEPS && in->time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, N] or constant [B, N]), got "
                             "one without a time axis (a readout's output?)");
    lif_priv p;
    memset(&p, 0, sizeof p);
    p.n = spk_shape_size(in);

    const char *reset = h->param_str(l, "reset");
    int rmode = strcmp(reset, "zero") == 0   ? LIF_RESET_ZERO
                : strcmp(reset, "none") == 0 ? LIF_RESET_NONE
                                             : LIF_RESET_SUBTRACT;
    spk_surrogate sg = h->param_surrogate(l, "surrogate");
    if (sg.kind < 0 || sg.kind > 3)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "surrogate: expected fast_sigmoid, atan, sigmoid or triangle");
    /* a surrogate given by name only leaves the slope to the type's default */
    p.slope = sg.slope > 0.0f ? sg.slope : lif_default_slope[sg.kind];
    p.rv = (float)h->param_num(l, "reset_value");
    p.cfg = rmode | sg.kind << 2;
    if (strcmp(h->param_str(l, "output"), "membrane") == 0)
        p.cfg |= LIF_CFG_OUT_MEM;
    if (!h->param_num(l, "detach_reset"))
        p.cfg |= LIF_CFG_NODETACH;

    spk_init bi = h->param_init(l, "beta");
    if (bi.kind == SPK_INIT_CONSTANT && (bi.a < 0.0f || bi.a > 1.0f))
        return spk_error_set(err, SPK_ERR_INVALID, "beta: expected a value in [0, 1], got %g",
                             bi.a);
    if (bi.kind == SPK_INIT_UNIFORM && (bi.a < 0.0f || bi.b > 1.0f || bi.a > bi.b))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "beta: expected a uniform range inside [0, 1], got [%g, %g]", bi.a,
                             bi.b);
    int learn_beta = h->param_num(l, "learn_beta") != 0;
    int per_beta = bi.kind != SPK_INIT_CONSTANT || h->param_num(l, "per_neuron_beta") != 0;
    p.w_beta = lif_add_param_weight(l, "beta", bi, per_beta, p.n, learn_beta, err);
    if (p.w_beta < 0)
        return -p.w_beta;
    int rc = h->set_weight(l, p.w_beta, (learn_beta ? 0 : SPK_WEIGHT_FROZEN) | SPK_WEIGHT_CLAMP,
                           0.0f, 1.0f, err);
    if (rc)
        return rc;

    spk_init ti = h->param_init(l, "threshold");
    int learn_thr = h->param_num(l, "learn_threshold") != 0;
    int per_thr = ti.kind != SPK_INIT_CONSTANT || h->param_num(l, "per_neuron_threshold") != 0;
    p.w_thr = lif_add_param_weight(l, "threshold", ti, per_thr, p.n, learn_thr, err);
    if (p.w_thr < 0)
        return -p.w_thr;

    p.s_mem = h->add_state(l, "mem", p.n, SPK_TIME_STEPS, err);
    if (p.s_mem < 0)
        return -p.s_mem;
    p.s_gbeta = p.s_gthr = -1;
    if (learn_beta && (p.s_gbeta = h->add_state(l, "grad_beta_part", p.n, SPK_TIME_NONE, err)) < 0)
        return -p.s_gbeta;
    if (learn_thr && (p.s_gthr = h->add_state(l, "grad_thr_part", p.n, SPK_TIME_NONE, err)) < 0)
        return -p.s_gthr;

    l->host->set_output(l, spk_shape_timed(*in, SPK_TIME_STEPS));
    lif_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void lif_destroy(spk_layer *l)
{
    free(l->priv);
}

static int lif_in_stride(const spk_layer *l, int bn)
{
    return l->in[0].time == SPK_TIME_STEPS ? bn : 0;
}

/* A training pass on the CPU with a constant input (direct encoding) keeps no membrane trace:
 * backward recomputes it (lif.cl), and the "mem" state then holds only that input. Inference
 * passes, which probes inspect, keep the trace. */
static int lif_recompute(const spk_layer *l, const spk_exec *x)
{
    return x->training && spk_builtin_host_memory(x) && l->in[0].time != SPK_TIME_STEPS &&
                   x->T <= LIF_RECOMPUTE_MAX_T && !getenv("SPIKECL_LIF_TRACE")
               ? LIF_CFG_RECOMPUTE
               : 0;
}

static int lif_layer_forward(spk_layer *l, spk_exec *x)
{
    lif_priv *p = l->priv;
    const spk_weight *wb = &l->weights[p->w_beta], *wt = &l->weights[p->w_thr];
    const int bn = x->B * p->n;
    p->recompute = lif_recompute(l, x);
    /* a fused readout's [B, n] output: the session gives it only with SPK_MEM_COUNT_OUT */
    const int cfg = p->cfg | p->recompute | (x->smooth ? LIF_CFG_SMOOTH : 0) |
                    (x->out->shape.time == SPK_TIME_STEPS ? 0 : LIF_CFG_COUNT);
    return SPK_LAUNCH(l, x, "lif_forward", (size_t)bn, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(&l->state[p->s_mem].t), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_BUF(&wb->value), SPK_ARG_BUF(&wt->value), SPK_ARG_INT(x->T),
                      SPK_ARG_INT(bn), SPK_ARG_INT(p->n), SPK_ARG_INT(lif_in_stride(l, bn)),
                      SPK_ARG_INT(wb->value.numel > 1), SPK_ARG_INT(wt->value.numel > 1),
                      SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope), SPK_ARG_FLOAT(p->rv));
}

/* Sums the per-(b, n) partials in `part` into the weight's grad ([N] or [1]), accumulating. */
static int lif_reduce(spk_layer *l, spk_exec *x, spk_tensor *part, spk_weight *w)
{
    const lif_priv *p = l->priv;
    return l->host->reduce_grad(x, &w->grad, part, x->B, p->n);
}

static int lif_layer_backward(spk_layer *l, spk_exec *x)
{
    const lif_priv *p = l->priv;
    spk_weight *wb = &l->weights[p->w_beta], *wt = &l->weights[p->w_thr];
    const int bn = x->B * p->n;
    spk_tensor *mem = &l->state[p->s_mem].t;
    int want_gb = p->s_gbeta >= 0 && !wb->frozen;
    int want_gt = p->s_gthr >= 0 && !wt->frozen;
    int cfg = p->cfg | p->recompute | (x->smooth ? LIF_CFG_SMOOTH : 0);
    if (x->grad_in[0])
        cfg |= LIF_CFG_WANT_GIN;
    if (x->grad_out->shape.time != SPK_TIME_STEPS)
        cfg |= LIF_CFG_GOUT_CONST;
    if (want_gb)
        cfg |= LIF_CFG_WANT_GBETA;
    if (want_gt)
        cfg |= LIF_CFG_WANT_GTHR;
    /* buffers a variant does not write still need a valid argument: the kernel skips them */
    spk_tensor *gin = x->grad_in[0] ? x->grad_in[0] : mem;
    spk_tensor *gbp = want_gb ? &l->state[p->s_gbeta].t : mem;
    spk_tensor *gtp = want_gt ? &l->state[p->s_gthr].t : mem;
    int rc = SPK_LAUNCH(l, x, "lif_backward", (size_t)bn, SPK_ARG_BUF(gin), SPK_ARG_BUF(gbp),
                        SPK_ARG_BUF(gtp), SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(mem),
                        SPK_ARG_BUF(&wb->value), SPK_ARG_BUF(&wt->value), SPK_ARG_INT(x->T),
                        SPK_ARG_INT(bn), SPK_ARG_INT(p->n), SPK_ARG_INT(lif_in_stride(l, bn)),
                        SPK_ARG_INT(wb->value.numel > 1), SPK_ARG_INT(wt->value.numel > 1),
                        SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope), SPK_ARG_FLOAT(p->rv));
    if (rc)
        return rc;
    if (want_gb && (rc = lif_reduce(l, x, gbp, wb)) != 0)
        return rc;
    if (want_gt && (rc = lif_reduce(l, x, gtp, wt)) != 0)
        return rc;
    return SPK_OK;
}

static const spk_cpu_kernel lif_cpu_kernels[] = {
    SPK_CPU_KERNEL(lif_forward),
    SPK_CPU_KERNEL(lif_backward),
    {0},
};

const spk_layer_type spk_builtin_neuron_lif = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "neuron.lif",
    .kind = SPK_KIND_NEURON,
    .summary = "leaky integrate-and-fire (snnTorch Leaky), surrogate-gradient BPTT",
    .params = lif_params,
    .init = lif_init,
    .forward = lif_layer_forward,
    .backward = lif_layer_backward,
    .destroy = lif_destroy,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT | SPK_MEM_GRAD_IN_PLACE |
              SPK_MEM_OUT_IN_PLACE | SPK_MEM_COUNT_OUT | SPK_MEM_STATE_OVER_INPUT,
    .kernels = {.owner = "neuron.lif",
                .opencl_source = lif_cl_source,
                .cpu_kernels = lif_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_neuron_lif);
