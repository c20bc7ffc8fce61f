/* neuron.if — the integrate-and-fire neuron: neuron.lif with beta = 1 (no leak), with the same
 * snnTorch timing (the reset at step t comes from m_{t-1}, detached by default).
 *
 *   r_t = H(m_{t-1} - thr), m_0 = 0
 *   subtract: m_t = m_{t-1} + I_t - r_t thr
 *   zero:     m_t = (1 - r_t) m_{t-1} + r_t reset_value + I_t
 *   none:     m_t = m_{t-1} + I_t
 *   s_t = H(m_t - thr)
 *
 * reset_value (default 0, snnTorch's reset to zero) is where a zero reset puts the membrane
 * before the step's input is added. The threshold is always a weight ([1] or [N], frozen unless
 * learnt) so one kernel serves all variants. Backward: BPTT with a surrogate derivative. */
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

/* wide lane blocks for this file's kernels on the CPU (spikecl/kernel.h) */
#undef SPK_LANES
#define SPK_LANES SPK_LANES_WIDE
#include "if.cl"
#include "if_cl.h"

_Static_assert(IF_SG_FAST_SIGMOID == SPK_SG_FAST_SIGMOID && IF_SG_ATAN == SPK_SG_ATAN &&
                   IF_SG_SIGMOID == SPK_SG_SIGMOID && IF_SG_TRIANGLE == SPK_SG_TRIANGLE,
               "if.cl surrogate ids must match spk_surrogate_kind");

typedef struct if_priv {
    int n;   /* neurons per sample */
    int cfg; /* reset | surrogate << 2 | output and detach flags (see if.cl) */
    float slope;
    float rv;   /* reset_value */
    int w_thr;  /* weight index */
    int s_mem;  /* saved membranes [T, B, N] */
    int s_gthr; /* per-(b, n) threshold gradient partials [B, N], -1 when not learnt */
} if_priv;

static const spk_param_spec if_params[] = {
    {"threshold", SPK_PARAM_INIT, "1.0", 1, 0, NULL,
     "firing threshold; a distribution makes it per-neuron"},
    {"learn_threshold", SPK_PARAM_BOOL, "false", 1, 0, NULL, "train the threshold"},
    {"per_neuron_threshold", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "one threshold per neuron even when it is a constant"},
    {"reset", SPK_PARAM_CHOICE, "subtract", 1, 0, "subtract|zero|none",
     "after a spike: subtract the threshold, set the membrane to reset_value, or nothing"},
    {"reset_value", SPK_PARAM_FLOAT, "0.0", 1, 0, NULL,
     "where reset: zero puts the membrane (before the step's input is added)"},
    {"detach_reset", SPK_PARAM_BOOL, "true", 1, 0, NULL,
     "no gradient through the reset term (snnTorch's default)"},
    {"surrogate", SPK_PARAM_SURROGATE, "fast_sigmoid", 1, 0, "fast_sigmoid|atan|sigmoid|triangle",
     "spike derivative in backward; slope 25 / atan alpha 2 / sigmoid 5 / triangle 1"},
    {"output", SPK_PARAM_CHOICE, "spikes", 1, 0, "spikes|membrane",
     "what the layer emits: spikes, or the membrane (for readout.membrane)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const float if_default_slope[4] = {25.0f, 2.0f, 5.0f, 1.0f};

static int if_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->time != SPK_TIME_STEPS && in->time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, N] or constant [B, N]), got "
                             "one without a time axis (a readout's output?)");
    if_priv p;
    memset(&p, 0, sizeof p);
    p.n = spk_shape_size(in);

    const char *reset = h->param_str(l, "reset");
    int rmode = strcmp(reset, "zero") == 0   ? IF_RESET_ZERO
                : strcmp(reset, "none") == 0 ? IF_RESET_NONE
                                             : IF_RESET_SUBTRACT;
    spk_surrogate sg = h->param_surrogate(l, "surrogate");
    if (sg.kind < 0 || sg.kind > 3)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "surrogate: expected fast_sigmoid, atan, sigmoid or triangle");
    p.slope = sg.slope > 0.0f ? sg.slope : if_default_slope[sg.kind];
    p.cfg = rmode | sg.kind << 2;
    if (strcmp(h->param_str(l, "output"), "membrane") == 0)
        p.cfg |= IF_CFG_OUT_MEM;
    if (!h->param_num(l, "detach_reset"))
        p.cfg |= IF_CFG_NODETACH;
    p.rv = (float)h->param_num(l, "reset_value");

    spk_init ti = h->param_init(l, "threshold");
    int learn_thr = h->param_num(l, "learn_threshold") != 0;
    int per_thr = ti.kind != SPK_INIT_CONSTANT || h->param_num(l, "per_neuron_threshold") != 0;
    spk_shape ws = {.ndim = 1, .dims = {per_thr ? p.n : 1}, .time = SPK_TIME_NONE};
    p.w_thr = h->add_weight(l, "threshold", ws, ti, err);
    if (p.w_thr < 0)
        return -p.w_thr;
    int rc = h->set_weight(l, p.w_thr, learn_thr ? 0 : SPK_WEIGHT_FROZEN, 0.0f, 0.0f, err);
    if (rc)
        return rc;

    p.s_mem = h->add_state(l, "mem", p.n, SPK_TIME_STEPS, err);
    if (p.s_mem < 0)
        return -p.s_mem;
    p.s_gthr = -1;
    if (learn_thr && (p.s_gthr = h->add_state(l, "grad_thr_part", p.n, SPK_TIME_NONE, err)) < 0)
        return -p.s_gthr;

    l->host->set_output(l, spk_shape_timed(*in, SPK_TIME_STEPS));
    if_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void if_destroy(spk_layer *l)
{
    free(l->priv);
}

static int if_in_stride(const spk_layer *l, int bn)
{
    return l->in[0].time == SPK_TIME_STEPS ? bn : 0;
}

static int if_layer_forward(spk_layer *l, spk_exec *x)
{
    const if_priv *p = l->priv;
    const spk_weight *wt = &l->weights[p->w_thr];
    const int bn = x->B * p->n;
    /* a fused readout's [B, n] output: the session gives it only with SPK_MEM_COUNT_OUT */
    const int cfg = p->cfg | (x->smooth ? IF_CFG_SMOOTH : 0) |
                    (x->out->shape.time == SPK_TIME_STEPS ? 0 : IF_CFG_COUNT);
    return SPK_LAUNCH(
        l, x, "if_forward", (size_t)bn, SPK_ARG_BUF(x->out), SPK_ARG_BUF(&l->state[p->s_mem].t),
        SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(&wt->value), SPK_ARG_INT(x->T), SPK_ARG_INT(bn),
        SPK_ARG_INT(p->n), SPK_ARG_INT(if_in_stride(l, bn)), SPK_ARG_INT(wt->value.numel > 1),
        SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope), SPK_ARG_FLOAT(p->rv));
}

/* Reduces the per-(b, n) partials in `part` into the weight's grad ([N] or [1]), accumulating;
 * two passes of a column sum instead of atomics, so every backend adds in the same order. */
/* Sums the per-(b, n) partials in `part` into the weight's grad ([N] or [1]), accumulating. */
static int if_reduce(spk_layer *l, spk_exec *x, spk_tensor *part, spk_weight *w)
{
    const if_priv *p = l->priv;
    return l->host->reduce_grad(x, &w->grad, part, x->B, p->n);
}

static int if_layer_backward(spk_layer *l, spk_exec *x)
{
    const if_priv *p = l->priv;
    spk_weight *wt = &l->weights[p->w_thr];
    const int bn = x->B * p->n;
    spk_tensor *mem = &l->state[p->s_mem].t;
    int want_gt = p->s_gthr >= 0 && !wt->frozen;
    int cfg = p->cfg | (x->smooth ? IF_CFG_SMOOTH : 0);
    if (x->grad_in[0])
        cfg |= IF_CFG_WANT_GIN;
    if (x->grad_out->shape.time != SPK_TIME_STEPS)
        cfg |= IF_CFG_GOUT_CONST;
    if (want_gt)
        cfg |= IF_CFG_WANT_GTHR;
    /* buffers a variant does not write still need a valid argument: the kernel skips them */
    spk_tensor *gin = x->grad_in[0] ? x->grad_in[0] : mem;
    spk_tensor *gtp = want_gt ? &l->state[p->s_gthr].t : mem;
    int rc = SPK_LAUNCH(l, x, "if_backward", (size_t)bn, SPK_ARG_BUF(gin), SPK_ARG_BUF(gtp),
                        SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(mem), SPK_ARG_BUF(&wt->value),
                        SPK_ARG_INT(x->T), SPK_ARG_INT(bn), SPK_ARG_INT(p->n),
                        SPK_ARG_INT(if_in_stride(l, bn)), SPK_ARG_INT(wt->value.numel > 1),
                        SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope), SPK_ARG_FLOAT(p->rv));
    if (rc)
        return rc;
    if (want_gt && (rc = if_reduce(l, x, gtp, wt)) != 0)
        return rc;
    return SPK_OK;
}

static const spk_cpu_kernel if_cpu_kernels[] = {
    SPK_CPU_KERNEL(if_forward),
    SPK_CPU_KERNEL(if_backward),
    {0},
};

const spk_layer_type spk_builtin_neuron_if = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "neuron.if",
    .kind = SPK_KIND_NEURON,
    .summary = "integrate-and-fire (LIF without leak), surrogate-gradient BPTT",
    .params = if_params,
    .init = if_init,
    .forward = if_layer_forward,
    .backward = if_layer_backward,
    .destroy = if_destroy,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT | SPK_MEM_GRAD_IN_PLACE |
              SPK_MEM_OUT_IN_PLACE | SPK_MEM_COUNT_OUT | SPK_MEM_STATE_OVER_INPUT,
    .kernels = {.owner = "neuron.if", .opencl_source = if_cl_source, .cpu_kernels = if_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_neuron_if);
