/* neuron.alif — the adaptive-threshold LIF of the LSNN (Bellec et al., NeurIPS 2018) as a plugin
 * built outside spikecl; README.md gives the equations and keys, docs/PLUGINS.md the how-to.
 *
 *   a_t = rho a_{t-1} + s_{t-1},  b_t = b0 + beta_a a_t,
 *   v_t = beta v_{t-1} + I_t - s_{t-1} b_{t-1},  s_t = H(v_t - b_t)   (fast-sigmoid surrogate)
 *
 * Backward is BPTT through v and a; the reset term is detached unless detach_reset: false. beta
 * is a weight ([1], or [N] from a distribution), trained with learn_beta. The plugin calls only
 * the host table, so it loads into any spikecl with plugin ABI 1.x, x >= the minor it was built
 * with (SPK_PLUGIN_DEFINE checks). */
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "alif.cl"   /* the kernels, compiled as C for the CPU backend */
#include "alif_cl.h" /* alif_cl_source: the same file's text, for OpenCL (generated) */

typedef struct alif_priv {
    int n;        /* neurons per sample */
    int cfg;      /* ALIF_CFG_NODETACH when the reset is not detached */
    int in_steps; /* 0 for a constant input: every step reads the same [B, N] */
    float rho, b0, beta_a, slope;
    int w_beta;   /* weight index of beta */
    int s_v, s_a; /* saved v_t and a_t, [T, B, N] */
    int s_gbeta;  /* per-(b, n) partials of dL/dbeta [B, N], -1 when not learnt */
} alif_priv;

static const spk_param_spec alif_params[] = {
    {"beta", SPK_PARAM_INIT, "0.9", 0, 1, NULL,
     "membrane decay per step; a distribution ({uniform: [0.8, 0.95]}) makes it per-neuron"},
    {"learn_beta", SPK_PARAM_BOOL, "false", 1, 0, NULL, "train beta (clamped to [0, 1])"},
    {"rho", SPK_PARAM_FLOAT, "0.9", 0, 1, NULL, "decay of the adaptation variable per step"},
    {"b0", SPK_PARAM_FLOAT, "1.0", 0, 1e6, NULL, "baseline threshold"},
    {"beta_a", SPK_PARAM_FLOAT, "0.2", 0, 1e6, NULL,
     "threshold increase per unit of adaptation (each spike adds 1 to it)"},
    {"slope", SPK_PARAM_FLOAT, "25", 1e-3, 1e6, NULL, "fast-sigmoid surrogate slope"},
    {"detach_reset", SPK_PARAM_BOOL, "true", 1, 0, NULL,
     "no gradient through the reset term s_{t-1} b_{t-1}"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int alif_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1 || l->in[0].time == SPK_TIME_NONE)
        return h->set_error(err, SPK_ERR_SHAPE,
                            "expected one input over time ([T, B, N] or constant [B, N])");
    spk_init bi = h->param_init(l, "beta");
    float hi = bi.kind == SPK_INIT_UNIFORM ? bi.b : bi.a;
    if (bi.kind != SPK_INIT_NORMAL && (bi.a < 0.0f || hi > 1.0f || bi.a > hi))
        return h->set_error(err, SPK_ERR_INVALID, "beta: expected values in [0, 1], got [%g, %g]",
                            bi.a, hi);
    alif_priv *p = h->alloc(sizeof *p);
    if (!p)
        return h->set_error(err, SPK_ERR_NOMEM, "out of memory");
    h->set_priv(l, p); /* the host calls destroy even when init fails below */
    *p = (alif_priv){.n = spk_shape_size(&l->in[0]),
                     .in_steps = l->in[0].time == SPK_TIME_STEPS,
                     .cfg = h->param_num(l, "detach_reset") ? 0 : ALIF_CFG_NODETACH,
                     .rho = (float)h->param_num(l, "rho"),
                     .b0 = (float)h->param_num(l, "b0"),
                     .beta_a = (float)h->param_num(l, "beta_a"),
                     .slope = (float)h->param_num(l, "slope"),
                     .s_gbeta = -1};
    int learn = h->param_num(l, "learn_beta") != 0;
    spk_shape ws = spk_shape_1d(bi.kind == SPK_INIT_CONSTANT ? 1 : p->n, SPK_TIME_NONE);
    if ((p->w_beta = h->add_weight(l, "beta", ws, bi, err)) < 0)
        return -p->w_beta;
    int rc = h->set_weight(l, p->w_beta, (learn ? 0 : SPK_WEIGHT_FROZEN) | SPK_WEIGHT_CLAMP, 0.0f,
                           1.0f, err);
    if (rc)
        return rc;
    if ((p->s_v = h->add_state(l, "v", p->n, SPK_TIME_STEPS, err)) < 0)
        return -p->s_v;
    if ((p->s_a = h->add_state(l, "a", p->n, SPK_TIME_STEPS, err)) < 0)
        return -p->s_a;
    if (learn && (p->s_gbeta = h->add_state(l, "grad_beta_part", p->n, SPK_TIME_NONE, err)) < 0)
        return -p->s_gbeta;
    h->set_output(l, spk_shape_timed(l->in[0], SPK_TIME_STEPS));
    return SPK_OK;
}

static void alif_destroy(spk_layer *l)
{
    l->host->free(l->priv);
}

static int alif_forward_layer(spk_layer *l, spk_exec *x)
{
    const alif_priv *p = l->priv;
    const spk_weight *wb = &l->weights[p->w_beta];
    const int bn = x->B * p->n, cfg = p->cfg | (x->smooth ? ALIF_CFG_SMOOTH : 0);
    return SPK_LAUNCH(l, x, "alif_forward", (size_t)bn, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(&l->state[p->s_v].t), SPK_ARG_BUF(&l->state[p->s_a].t),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(&wb->value), SPK_ARG_INT(x->T),
                      SPK_ARG_INT(bn), SPK_ARG_INT(p->n), SPK_ARG_INT(p->in_steps ? bn : 0),
                      SPK_ARG_INT(wb->value.numel > 1), SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->rho),
                      SPK_ARG_FLOAT(p->b0), SPK_ARG_FLOAT(p->beta_a), SPK_ARG_FLOAT(p->slope));
}

static int alif_backward_layer(spk_layer *l, spk_exec *x)
{
    const alif_priv *p = l->priv;
    spk_weight *wb = &l->weights[p->w_beta];
    const int bn = x->B * p->n;
    spk_tensor *v = &l->state[p->s_v].t;
    const int want_gin = x->grad_in[0] != NULL, want_gb = p->s_gbeta >= 0 && !wb->frozen;
    if (!want_gin && !want_gb)
        return SPK_OK;
    const int cfg = p->cfg | (x->smooth ? ALIF_CFG_SMOOTH : 0) |
                    (want_gin ? ALIF_CFG_WANT_GIN : 0) | (want_gb ? ALIF_CFG_WANT_GBETA : 0);
    /* a buffer the kernel will not write still has to be a valid argument */
    spk_tensor *gin = x->grad_in[0] ? x->grad_in[0] : v;
    spk_tensor *part = want_gb ? &l->state[p->s_gbeta].t : v;
    int rc = SPK_LAUNCH(l, x, "alif_backward", (size_t)bn, SPK_ARG_BUF(gin), SPK_ARG_BUF(part),
                        SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(v), SPK_ARG_BUF(&l->state[p->s_a].t),
                        SPK_ARG_BUF(&wb->value), SPK_ARG_INT(x->T), SPK_ARG_INT(bn),
                        SPK_ARG_INT(p->n), SPK_ARG_INT(p->in_steps ? bn : 0),
                        SPK_ARG_INT(wb->value.numel > 1), SPK_ARG_INT(cfg), SPK_ARG_FLOAT(p->rho),
                        SPK_ARG_FLOAT(p->b0), SPK_ARG_FLOAT(p->beta_a), SPK_ARG_FLOAT(p->slope));
    if (rc || !want_gb)
        return rc;
    /* dL/dbeta: the partials summed over the batch, into [N] or, for a shared beta, over the
     * neurons too */
    return l->host->reduce_grad(x, &wb->grad, part, x->B, p->n);
}

static const spk_cpu_kernel alif_cpu_kernels[] = {
    SPK_CPU_KERNEL(alif_forward),
    SPK_CPU_KERNEL(alif_backward),
    {0},
};

static const spk_layer_type alif_type = {
    SPK_LAYER_TYPE_HEADER,
    .name = "neuron.alif",
    .version = "1.1.0",
    .kind = SPK_KIND_NEURON,
    .summary = "adaptive-threshold LIF (LSNN, Bellec et al. 2018), surrogate-gradient BPTT",
    .params = alif_params,
    .init = alif_init,
    .forward = alif_forward_layer,
    .backward = alif_backward_layer,
    .destroy = alif_destroy,
    .kernels = {.owner = "neuron.alif",
                .opencl_source = alif_cl_source,
                .cpu_kernels = alif_cpu_kernels},
};

SPK_PLUGIN_DEFINE(&alif_type) /* the entry point, with its version check */
