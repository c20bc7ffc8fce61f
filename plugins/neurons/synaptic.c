/* neuron.synaptic — the second-order LIF neuron of snnTorch `Synaptic`: an input current that
 * decays with alpha feeds a membrane that decays with beta.
 *
 *   r_t = H(m_{t-1} - thr), syn_0 = m_0 = 0
 *   syn_t = alpha syn_{t-1} + I_t
 *   subtract: m_t = beta m_{t-1} + syn_t - r_t thr
 *   zero:     m_t = (1 - r_t) (beta m_{t-1} + syn_t)
 *   none:     m_t = beta m_{t-1} + syn_t
 *   s_t = H(m_t - thr)
 *
 * What this follows in snntorch/_neurons/synaptic.py (jeshraghian/snntorch): forward() computes
 * `self.reset = self.mem_reset(self.mem)` from the previous membrane before the state update;
 * _base_state_function gives syn = alpha.clamp(0,1) syn + input and mem = beta.clamp(0,1) mem +
 * syn (the new syn); _base_sub subtracts reset*threshold from mem; _base_zero subtracts
 * reset*(beta mem + syn) from mem and reset*0 from syn (the current is not reset). mem_reset()
 * in snntorch/_neurons/neurons.py detaches the reset (`.clone().detach()`): detach_reset true.
 * snnTorch clamps alpha and beta to [0, 1] in the forward; here the optimizer clamps the stored
 * values after each step, which gives the same forward.
 *
 * alpha, beta and threshold are always weights ([1] or [N]) so one kernel serves all variants;
 * the ones not learnt are frozen. Backward: BPTT with a surrogate derivative, one fused kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

/* wide lane blocks for this file's kernels on the CPU (spikecl/kernel.h) */
#undef SPK_LANES
#define SPK_LANES SPK_LANES_WIDE
#include "synaptic.cl"
#include "synaptic_cl.h"

_Static_assert(SYN_SG_FAST_SIGMOID == SPK_SG_FAST_SIGMOID && SYN_SG_ATAN == SPK_SG_ATAN &&
                   SYN_SG_SIGMOID == SPK_SG_SIGMOID && SYN_SG_TRIANGLE == SPK_SG_TRIANGLE,
               "synaptic.cl surrogate ids must match spk_surrogate_kind");

enum { SYN_W_ALPHA, SYN_W_BETA, SYN_W_THR, SYN_NW };

typedef struct syn_priv {
    int n;   /* neurons per sample */
    int cfg; /* reset | surrogate << 2 | output and detach flags (see synaptic.cl) */
    float slope;
    int w[SYN_NW];      /* weight indices: alpha, beta, threshold */
    int s_mem, s_syn;   /* saved membranes and currents [T, B, N] */
    int s_part[SYN_NW]; /* per-(b, n) gradient partials [B, N], -1 when not learnt */
} syn_priv;

static const spk_param_spec syn_params[] = {
    {"alpha", SPK_PARAM_INIT, "0.9", 0, 1, NULL,
     "synaptic current decay per step; a distribution ({uniform: [0, 1]}) makes it per-neuron"},
    {"per_neuron_alpha", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "one alpha per neuron even when alpha is a constant"},
    {"learn_alpha", SPK_PARAM_BOOL, "false", 1, 0, NULL, "train alpha (clamped to [0, 1])"},
    {"beta", SPK_PARAM_INIT, "0.8", 0, 1, NULL,
     "membrane decay per step; a distribution makes it per-neuron"},
    {"per_neuron_beta", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "one beta per neuron even when beta is a constant"},
    {"learn_beta", SPK_PARAM_BOOL, "false", 1, 0, NULL, "train beta (clamped to [0, 1])"},
    {"threshold", SPK_PARAM_INIT, "1.0", 1, 0, NULL, "firing threshold"},
    {"learn_threshold", SPK_PARAM_BOOL, "false", 1, 0, NULL, "train the threshold"},
    {"per_neuron_threshold", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "one threshold per neuron even when it is a constant"},
    {"reset", SPK_PARAM_CHOICE, "subtract", 1, 0, "subtract|zero|none",
     "after a spike: subtract the threshold, zero the membrane, or nothing"},
    {"detach_reset", SPK_PARAM_BOOL, "true", 1, 0, NULL,
     "no gradient through the reset term (snnTorch's default)"},
    {"surrogate", SPK_PARAM_SURROGATE, "fast_sigmoid", 1, 0, "fast_sigmoid|atan|sigmoid|triangle",
     "spike derivative in backward; slope 25 / atan alpha 2 / sigmoid 5 / triangle 1"},
    {"output", SPK_PARAM_CHOICE, "spikes", 1, 0, "spikes|membrane",
     "what the layer emits: spikes, or the membrane (for readout.membrane)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const float syn_default_slope[4] = {25.0f, 2.0f, 5.0f, 1.0f};

/* Declares a [1] or [N] weight; returns its index or a negative status. */
static int syn_add_param_weight(spk_layer *l, const char *name, spk_init init, int per_neuron,
                                int n, int learn, spk_error *err)
{
    spk_shape s = {.ndim = 1, .dims = {per_neuron ? n : 1}, .time = SPK_TIME_NONE};
    int w = l->host->add_weight(l, name, s, init, err);
    if (w < 0)
        return w;
    int rc = l->host->set_weight(l, w, learn ? 0 : SPK_WEIGHT_FROZEN, 0.0f, 0.0f, err);
    return rc ? -rc : w;
}

/* A decay constant (alpha or beta): its value must lie in [0, 1]; clamped there when trained. */
static int syn_add_decay(spk_layer *l, syn_priv *p, int slot, const char *name, spk_error *err)
{
    const spk_host_api *h = l->host;
    char key[SPK_NAME_MAX];
    spk_init in = h->param_init(l, name);
    if (in.kind == SPK_INIT_CONSTANT && (in.a < 0.0f || in.a > 1.0f))
        return spk_error_set(err, SPK_ERR_INVALID, "%s: expected a value in [0, 1], got %g", name,
                             in.a);
    if (in.kind == SPK_INIT_UNIFORM && (in.a < 0.0f || in.b > 1.0f || in.a > in.b))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%s: expected a uniform range inside [0, 1], got [%g, %g]", name, in.a,
                             in.b);
    snprintf(key, sizeof key, "learn_%s", name);
    int learn = h->param_num(l, key) != 0;
    snprintf(key, sizeof key, "per_neuron_%s", name);
    int per = in.kind != SPK_INIT_CONSTANT || h->param_num(l, key) != 0;
    int w = syn_add_param_weight(l, name, in, per, p->n, learn, err);
    if (w < 0)
        return -w;
    int rc =
        h->set_weight(l, w, (learn ? 0 : SPK_WEIGHT_FROZEN) | SPK_WEIGHT_CLAMP, 0.0f, 1.0f, err);
    if (rc)
        return rc;
    p->w[slot] = w;
    return SPK_OK;
}

static int syn_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->time != SPK_TIME_STEPS && in->time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, N] or constant [B, N]), got "
                             "one without a time axis (a readout's output?)");
    syn_priv p;
    memset(&p, 0, sizeof p);
    p.n = spk_shape_size(in);

    const char *reset = h->param_str(l, "reset");
    int rmode = strcmp(reset, "zero") == 0   ? SYN_RESET_ZERO
                : strcmp(reset, "none") == 0 ? SYN_RESET_NONE
                                             : SYN_RESET_SUBTRACT;
    spk_surrogate sg = h->param_surrogate(l, "surrogate");
    if (sg.kind < 0 || sg.kind > 3)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "surrogate: expected fast_sigmoid, atan, sigmoid or triangle");
    p.slope = sg.slope > 0.0f ? sg.slope : syn_default_slope[sg.kind];
    p.cfg = rmode | sg.kind << 2;
    if (strcmp(h->param_str(l, "output"), "membrane") == 0)
        p.cfg |= SYN_CFG_OUT_MEM;
    if (!h->param_num(l, "detach_reset"))
        p.cfg |= SYN_CFG_NODETACH;

    int rc = syn_add_decay(l, &p, SYN_W_ALPHA, "alpha", err);
    if (!rc)
        rc = syn_add_decay(l, &p, SYN_W_BETA, "beta", err);
    if (rc)
        return rc;
    spk_init ti = h->param_init(l, "threshold");
    int learn_thr = h->param_num(l, "learn_threshold") != 0;
    int per_thr = ti.kind != SPK_INIT_CONSTANT || h->param_num(l, "per_neuron_threshold") != 0;
    p.w[SYN_W_THR] = syn_add_param_weight(l, "threshold", ti, per_thr, p.n, learn_thr, err);
    if (p.w[SYN_W_THR] < 0)
        return -p.w[SYN_W_THR];

    if ((p.s_mem = h->add_state(l, "mem", p.n, SPK_TIME_STEPS, err)) < 0)
        return -p.s_mem;
    if ((p.s_syn = h->add_state(l, "syn", p.n, SPK_TIME_STEPS, err)) < 0)
        return -p.s_syn;
    static const char *const part_name[SYN_NW] = {"grad_alpha_part", "grad_beta_part",
                                                  "grad_thr_part"};
    for (int k = 0; k < SYN_NW; k++) {
        p.s_part[k] = -1;
        if (l->weights[p.w[k]].frozen)
            continue;
        if ((p.s_part[k] = h->add_state(l, part_name[k], p.n, SPK_TIME_NONE, err)) < 0)
            return -p.s_part[k];
    }

    l->host->set_output(l, spk_shape_timed(*in, SPK_TIME_STEPS));
    syn_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void syn_destroy(spk_layer *l)
{
    free(l->priv);
}

static int syn_in_stride(const spk_layer *l, int bn)
{
    return l->in[0].time == SPK_TIME_STEPS ? bn : 0;
}

static int syn_layer_forward(spk_layer *l, spk_exec *x)
{
    const syn_priv *p = l->priv;
    const spk_weight *wa = &l->weights[p->w[SYN_W_ALPHA]];
    const spk_weight *wb = &l->weights[p->w[SYN_W_BETA]];
    const spk_weight *wt = &l->weights[p->w[SYN_W_THR]];
    const int bn = x->B * p->n;
    /* a fused readout's [B, n] output: the session gives it only with SPK_MEM_COUNT_OUT */
    const int cfg = p->cfg | (x->smooth ? SYN_CFG_SMOOTH : 0) |
                    (x->out->shape.time == SPK_TIME_STEPS ? 0 : SYN_CFG_COUNT);
    return SPK_LAUNCH(l, x, "syn_forward", (size_t)bn, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(&l->state[p->s_mem].t), SPK_ARG_BUF(&l->state[p->s_syn].t),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(&wa->value), SPK_ARG_BUF(&wb->value),
                      SPK_ARG_BUF(&wt->value), SPK_ARG_INT(x->T), SPK_ARG_INT(bn),
                      SPK_ARG_INT(p->n), SPK_ARG_INT(syn_in_stride(l, bn)),
                      SPK_ARG_INT(wa->value.numel > 1), SPK_ARG_INT(wb->value.numel > 1),
                      SPK_ARG_INT(wt->value.numel > 1), SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope));
}

/* Reduces the per-(b, n) partials in `part` into the weight's grad ([N] or [1]), accumulating;
 * two passes of a column sum instead of atomics, so every backend adds in the same order. */
/* Sums the per-(b, n) partials in `part` into the weight's grad ([N] or [1]), accumulating. */
static int syn_reduce(spk_layer *l, spk_exec *x, spk_tensor *part, spk_weight *w)
{
    const syn_priv *p = l->priv;
    return l->host->reduce_grad(x, &w->grad, part, x->B, p->n);
}

static int syn_layer_backward(spk_layer *l, spk_exec *x)
{
    static const int want_flag[SYN_NW] = {SYN_CFG_WANT_GALPHA, SYN_CFG_WANT_GBETA,
                                          SYN_CFG_WANT_GTHR};
    const syn_priv *p = l->priv;
    const int bn = x->B * p->n;
    spk_tensor *mem = &l->state[p->s_mem].t;
    spk_weight *w[SYN_NW];
    spk_tensor *part[SYN_NW];
    int cfg = p->cfg | (x->smooth ? SYN_CFG_SMOOTH : 0);
    if (x->grad_in[0])
        cfg |= SYN_CFG_WANT_GIN;
    if (x->grad_out->shape.time != SPK_TIME_STEPS)
        cfg |= SYN_CFG_GOUT_CONST;
    for (int k = 0; k < SYN_NW; k++) {
        w[k] = &l->weights[p->w[k]];
        /* a weight frozen after init (fine-tuning) gets no gradient */
        int want = p->s_part[k] >= 0 && !w[k]->frozen;
        /* buffers a variant does not write still need a valid argument: the kernel skips them */
        part[k] = want ? &l->state[p->s_part[k]].t : mem;
        if (want)
            cfg |= want_flag[k];
    }
    spk_tensor *gin = x->grad_in[0] ? x->grad_in[0] : mem;
    int rc = SPK_LAUNCH(
        l, x, "syn_backward", (size_t)bn, SPK_ARG_BUF(gin), SPK_ARG_BUF(part[SYN_W_ALPHA]),
        SPK_ARG_BUF(part[SYN_W_BETA]), SPK_ARG_BUF(part[SYN_W_THR]), SPK_ARG_BUF(x->grad_out),
        SPK_ARG_BUF(mem), SPK_ARG_BUF(&l->state[p->s_syn].t), SPK_ARG_BUF(&w[SYN_W_ALPHA]->value),
        SPK_ARG_BUF(&w[SYN_W_BETA]->value), SPK_ARG_BUF(&w[SYN_W_THR]->value), SPK_ARG_INT(x->T),
        SPK_ARG_INT(bn), SPK_ARG_INT(p->n), SPK_ARG_INT(syn_in_stride(l, bn)),
        SPK_ARG_INT(w[SYN_W_ALPHA]->value.numel > 1), SPK_ARG_INT(w[SYN_W_BETA]->value.numel > 1),
        SPK_ARG_INT(w[SYN_W_THR]->value.numel > 1), SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->slope));
    if (rc)
        return rc;
    for (int k = 0; k < SYN_NW; k++)
        if ((cfg & want_flag[k]) && (rc = syn_reduce(l, x, part[k], w[k])) != 0)
            return rc;
    return SPK_OK;
}

static const spk_cpu_kernel syn_cpu_kernels[] = {
    SPK_CPU_KERNEL(syn_forward),
    SPK_CPU_KERNEL(syn_backward),
    {0},
};

const spk_layer_type spk_builtin_neuron_synaptic = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "neuron.synaptic",
    .kind = SPK_KIND_NEURON,
    .summary = "second-order LIF with a decaying synaptic current (snnTorch Synaptic)",
    .params = syn_params,
    .init = syn_init,
    .forward = syn_layer_forward,
    .backward = syn_layer_backward,
    .destroy = syn_destroy,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT | SPK_MEM_GRAD_IN_PLACE |
              SPK_MEM_OUT_IN_PLACE | SPK_MEM_COUNT_OUT | SPK_MEM_STATE_OVER_INPUT,
    .kernels = {.owner = "neuron.synaptic",
                .opencl_source = synaptic_cl_source,
                .cpu_kernels = syn_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_neuron_synaptic);
