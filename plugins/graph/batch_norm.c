/* norm.batch2d — batch normalisation per channel over the time-folded batch: the statistics of
 * channel c are taken over all T*B images and their H*W pixels (B images for an input constant
 * in time), one affine (gamma, beta) per channel. This is SpikingJelly's multi-step
 * BatchNorm2d (BatchNorm2d on [T*B, C, H, W]), i.e. tdBN (Zheng et al. 2021) without its
 * alpha * V_th scaling of the normalised value (a learnt gamma can take that role); not BNTT,
 * which keeps statistics per time step. Running statistics (PyTorch's momentum rule, unbiased
 * running_var) are used in evaluation and kept in the checkpoint under PyTorch's names:
 * <layer>.weight, .bias, .running_mean, .running_var (num_batches_tracked is not written; torch
 * fills it in on load). Inputs are [C, H, W], or [C] (BatchNorm1d). */
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "batch_norm.cl"
#include "batch_norm_cl.h"

static const spk_param_spec bn_params[] = {
    {"momentum", SPK_PARAM_FLOAT, "0.1", 0, 1, NULL,
     "running statistics: new = (1 - momentum) old + momentum batch"},
    {"eps", SPK_PARAM_FLOAT, "1e-5", 0, 1, NULL, "added to the variance"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct bn_priv {
    int C, HW;
    int w_gamma, w_beta, w_mean, w_var, s_stats, s_part;
} bn_priv;

static int bn_add(spk_layer *l, const char *name, int C, float v, int frozen, spk_error *err)
{
    spk_shape s = {.ndim = 1, .dims = {C}, .time = SPK_TIME_NONE};
    spk_init init = {SPK_INIT_CONSTANT, v, 0.0f};
    int i = l->host->add_weight(l, name, s, init, err);
    /* running statistics: kept in the checkpoint, not trained */
    if (i >= 0 && frozen) {
        int rc = l->host->set_weight(l, i, SPK_WEIGHT_FROZEN, 0.0f, 0.0f, err);
        if (rc)
            return -rc;
    }
    return i;
}

static int bn_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->ndim != 3 && in->ndim != 1)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input of shape [channels, height, width] or "
                             "[channels], got %d dimensions",
                             in->ndim);
    if (in->time == SPK_TIME_NONE)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time (or constant in time), got one "
                             "without a time axis");
    bn_priv p;
    p.C = in->dims[0];
    p.HW = spk_shape_size(in) / p.C;
    if ((p.w_gamma = bn_add(l, "weight", p.C, 1.0f, 0, err)) < 0)
        return -p.w_gamma;
    if ((p.w_beta = bn_add(l, "bias", p.C, 0.0f, 0, err)) < 0)
        return -p.w_beta;
    if ((p.w_mean = bn_add(l, "running_mean", p.C, 0.0f, 1, err)) < 0)
        return -p.w_mean;
    if ((p.w_var = bn_add(l, "running_var", p.C, 1.0f, 1, err)) < 0)
        return -p.w_var;
    /* per channel: mean and 1/std of the last forward, dbeta and dgamma of the last backward
     * (a state holds B copies of per_sample; only the first 4C values are used) */
    if ((p.s_stats = l->host->add_state(l, "stats", 4 * p.C, SPK_TIME_NONE, err)) < 0)
        return -p.s_stats;
    /* partial sums per (channel, image), two sets for backward */
    const int t = in->time == SPK_TIME_STEPS ? SPK_TIME_STEPS : SPK_TIME_NONE;
    if ((p.s_part = l->host->add_state(l, "partial", 2 * p.C, t, err)) < 0)
        return -p.s_part;
    l->host->set_output(l, *in);
    bn_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void bn_destroy(spk_layer *l)
{
    free(l->priv);
}

static int bn_rows(const spk_layer *l, const spk_exec *x)
{
    return x->B * (l->in[0].time == SPK_TIME_STEPS ? x->T : 1);
}

/* Partial sums (what 0: of x, 1: of squared deviations from the mean), then the per-channel
 * step of bn_stats that uses them. */
static int bn_stats_step(spk_layer *l, spk_exec *x, int step)
{
    const bn_priv *p = l->priv;
    const int rows = bn_rows(l, x), n = rows * p->C;
    const double nv = (double)rows * p->HW;
    spk_tensor *stats = &l->state[p->s_stats].t, *part = &l->state[p->s_part].t;
    int rc = SPK_OK;
    if (step < 2)
        rc = SPK_LAUNCH(l, x, "bn_partial", (size_t)n, SPK_ARG_BUF(part), SPK_ARG_BUF(x->in[0]),
                        SPK_ARG_BUF(stats), SPK_ARG_INT(n), SPK_ARG_INT(p->C), SPK_ARG_INT(rows),
                        SPK_ARG_INT(p->HW), SPK_ARG_INT(step));
    if (rc)
        return rc;
    return SPK_LAUNCH(l, x, "bn_stats", (size_t)p->C, SPK_ARG_BUF(stats),
                      SPK_ARG_BUF(&l->weights[p->w_mean].value),
                      SPK_ARG_BUF(&l->weights[p->w_var].value), SPK_ARG_BUF(part),
                      SPK_ARG_INT(p->C), SPK_ARG_INT(rows), SPK_ARG_FLOAT(1.0 / nv),
                      SPK_ARG_FLOAT(l->host->param_num(l, "momentum")),
                      SPK_ARG_FLOAT(nv > 1 ? nv / (nv - 1) : 1.0),
                      SPK_ARG_FLOAT(l->host->param_num(l, "eps")), SPK_ARG_INT(step));
}

static int bn_forward_run(spk_layer *l, spk_exec *x)
{
    const bn_priv *p = l->priv;
    const int n = bn_rows(l, x) * p->C;
    /* training: the batch's mean, then its variance; evaluation: the running statistics */
    int rc = x->training ? bn_stats_step(l, x, 0) : bn_stats_step(l, x, 2);
    if (!rc && x->training)
        rc = bn_stats_step(l, x, 1);
    if (rc)
        return rc;
    return SPK_LAUNCH(l, x, "bn_apply", (size_t)n, SPK_ARG_BUF(x->out), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_BUF(&l->state[p->s_stats].t),
                      SPK_ARG_BUF(&l->weights[p->w_gamma].value),
                      SPK_ARG_BUF(&l->weights[p->w_beta].value), SPK_ARG_INT(n), SPK_ARG_INT(p->C),
                      SPK_ARG_INT(p->HW));
}

static int bn_backward_run(spk_layer *l, spk_exec *x)
{
    const bn_priv *p = l->priv;
    const int rows = bn_rows(l, x), n = rows * p->C;
    spk_tensor *stats = &l->state[p->s_stats].t, *part = &l->state[p->s_part].t;
    int rc = SPK_LAUNCH(l, x, "bn_grad_partial", (size_t)n, SPK_ARG_BUF(part),
                        SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(stats),
                        SPK_ARG_INT(n), SPK_ARG_INT(p->C), SPK_ARG_INT(rows), SPK_ARG_INT(p->HW));
    if (!rc)
        rc = SPK_LAUNCH(l, x, "bn_grad_reduce", (size_t)p->C, SPK_ARG_BUF(stats),
                        SPK_ARG_BUF(&l->weights[p->w_gamma].grad),
                        SPK_ARG_BUF(&l->weights[p->w_beta].grad), SPK_ARG_BUF(part),
                        SPK_ARG_INT(p->C), SPK_ARG_INT(rows));
    if (rc || !x->grad_in[0])
        return rc;
    return SPK_LAUNCH(l, x, "bn_grad_input", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(stats),
                      SPK_ARG_BUF(&l->weights[p->w_gamma].value), SPK_ARG_INT(n), SPK_ARG_INT(p->C),
                      SPK_ARG_INT(p->HW), SPK_ARG_FLOAT(1.0 / ((double)rows * p->HW)),
                      SPK_ARG_INT(x->training));
}

static const spk_cpu_kernel bn_cpu_kernels[] = {
    SPK_CPU_KERNEL(bn_partial),
    SPK_CPU_KERNEL(bn_stats),
    SPK_CPU_KERNEL(bn_apply),
    SPK_CPU_KERNEL(bn_grad_partial),
    SPK_CPU_KERNEL(bn_grad_reduce),
    SPK_CPU_KERNEL(bn_grad_input),
    {0},
};

const spk_layer_type spk_builtin_norm_batch2d = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "norm.batch2d",
    .kind = SPK_KIND_OTHER,
    .summary = "batch norm per channel over T*B*H*W (multi-step BatchNorm2d; torch names)",
    .params = bn_params,
    .init = bn_init,
    .forward = bn_forward_run,
    .backward = bn_backward_run,
    .destroy = bn_destroy,
    .kernels = {.owner = "norm.batch2d",
                .opencl_source = batch_norm_cl_source,
                .cpu_kernels = bn_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_norm_batch2d);
