/* A plugin as it was written for ABI 1.0, built against the 1.0 headers in abi-1.0/ (see
 * CMakeLists.txt): today's host must load it and train with it. It does everything the 1.0 way
 * that 1.1 replaced with host calls: writes layer->out, layer->priv and its weight's settings
 * directly, hand-formats its errors, sums its own gradient and writes its own entry point.
 * neuron.abi10_gain: y_t = g[n] x_t with a learnable per-neuron gain g clamped to [0, 1.5]. */
#include <stdarg.h>
#include <stdio.h>

#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#if SPK_ABI_MAJOR != 1 || SPK_ABI_MINOR != 0
#error "the 1.0 fixture must be built against tests/plugins/abi-1.0"
#endif

#include "abi10_plugin.cl"
#include "abi10_plugin_cl.h"

typedef struct a10_priv {
    int n, w_gain, s_part;
} a10_priv;

static const spk_param_spec a10_params[] = {
    {"gain", SPK_PARAM_INIT, "1.0", 0, 1.5, NULL, "initial gain per neuron"},
    {"learn_gain", SPK_PARAM_BOOL, "true", 1, 0, NULL, "train the gain"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int a10_fail(spk_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

static int a10_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1 || l->in[0].time == SPK_TIME_NONE)
        return a10_fail(err, SPK_ERR_SHAPE, "expected one input over time");
    a10_priv p = {spk_shape_size(&l->in[0]), -1, -1};
    spk_shape ws = {.ndim = 1, .dims = {p.n}, .time = SPK_TIME_NONE};
    if ((p.w_gain = h->add_weight(l, "gain", ws, h->param_init(l, "gain"), err)) < 0)
        return -p.w_gain;
    spk_weight *w = &l->weights[p.w_gain];
    w->frozen = h->param_num(l, "learn_gain") == 0;
    w->clamp = 1;
    w->lo = 0.0f;
    w->hi = 1.5f;
    if (!w->frozen && (p.s_part = h->add_state(l, "grad_gain_part", p.n, SPK_TIME_NONE, err)) < 0)
        return -p.s_part;
    l->out = l->in[0];
    l->out.time = SPK_TIME_STEPS;
    a10_priv *pp = h->alloc(sizeof *pp);
    if (!pp)
        return a10_fail(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->priv = pp;
    return SPK_OK;
}

static void a10_destroy(spk_layer *l)
{
    l->host->free(l->priv);
    l->priv = NULL;
}

static int a10_stride(const spk_layer *l, int bn)
{
    return l->in[0].time == SPK_TIME_STEPS ? bn : 0;
}

static int a10_forward_layer(spk_layer *l, spk_exec *x)
{
    const a10_priv *p = l->priv;
    const int bn = x->B * p->n;
    return SPK_LAUNCH(l, x, "a10_forward", (size_t)bn, SPK_ARG_BUF(x->out), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_BUF(&l->weights[p->w_gain].value), SPK_ARG_INT(x->T), SPK_ARG_INT(bn),
                      SPK_ARG_INT(p->n), SPK_ARG_INT(a10_stride(l, bn)));
}

static int a10_backward_layer(spk_layer *l, spk_exec *x)
{
    const a10_priv *p = l->priv;
    spk_weight *w = &l->weights[p->w_gain];
    const int bn = x->B * p->n, want_part = p->s_part >= 0 && !w->frozen;
    if (!x->grad_in[0] && !want_part)
        return SPK_OK;
    spk_tensor *part = want_part ? &l->state[p->s_part].t : x->out;
    spk_tensor *gin = x->grad_in[0] ? x->grad_in[0] : x->out;
    int rc = SPK_LAUNCH(l, x, "a10_backward", (size_t)bn, SPK_ARG_BUF(gin), SPK_ARG_BUF(part),
                        SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(&w->value),
                        SPK_ARG_INT(x->T), SPK_ARG_INT(bn), SPK_ARG_INT(p->n),
                        SPK_ARG_INT(a10_stride(l, bn)), SPK_ARG_INT(x->grad_in[0] != NULL),
                        SPK_ARG_INT(want_part));
    if (rc || !want_part)
        return rc;
    return SPK_LAUNCH(l, x, "a10_colsum", (size_t)p->n, SPK_ARG_BUF(&w->grad), SPK_ARG_BUF(part),
                      SPK_ARG_INT(p->n), SPK_ARG_INT(x->B));
}

static const spk_cpu_kernel a10_cpu_kernels[] = {
    SPK_CPU_KERNEL(a10_forward),
    SPK_CPU_KERNEL(a10_backward),
    SPK_CPU_KERNEL(a10_colsum),
    {0},
};

static const spk_layer_type a10_type = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "neuron.abi10_gain",
    .kind = SPK_KIND_NEURON,
    .summary = "ABI 1.0 fixture: y = g x with a learnable per-neuron gain",
    .params = a10_params,
    .init = a10_init,
    .forward = a10_forward_layer,
    .backward = a10_backward_layer,
    .destroy = a10_destroy,
    .kernels = {.owner = "neuron.abi10_gain",
                .opencl_source = abi10_plugin_cl_source,
                .cpu_kernels = a10_cpu_kernels},
};

int spk_plugin_init(const spk_host_api *host, spk_registry *reg, spk_error *err);
int spk_plugin_init(const spk_host_api *host, spk_registry *reg, spk_error *err)
{
    if (host->abi_major != SPK_ABI_MAJOR)
        return a10_fail(err, SPK_ERR_PLUGIN, "built for spikecl plugin ABI 1.x");
    return host->register_type(reg, &a10_type, err);
}
