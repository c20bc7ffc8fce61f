/* pool.max2d and pool.avg2d — 2-D pooling of [C, H, W] inputs with PyTorch's MaxPool2d /
 * AvgPool2d semantics: square kernel, stride (default: the kernel), zero padding of at most half
 * the kernel, floor rounding of the output size. Time folds into the batch, and a constant input
 * gives a constant output computed once per window. Max pooling sends the gradient to the first
 * maximal input in row-major window order (PyTorch's CPU rule on ties); average pooling counts
 * padding cells as zeros (count_include_pad=True, PyTorch's default). Backward gathers per
 * input cell over the windows that hold it, or, when windows do not overlap (stride >= kernel,
 * the usual MP2), scatters per window. */
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "pool.cl"
#include "pool_cl.h"

static const spk_param_spec pool_params[] = {
    {"kernel", SPK_PARAM_INT, NULL, 1, 1e6, NULL, "window height and width (square)"},
    {"stride", SPK_PARAM_INT, "0", 0, 1e6, NULL, "step between windows; 0: the kernel size"},
    {"padding", SPK_PARAM_INT, "0", 0, 1e6, NULL, "cells added on every side, at most kernel/2"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct pool_priv {
    int C, H, W, OH, OW, k, stride, pad;
    int s_arg; /* max: the winners' indices, [rows, C, OH, OW]; -1 for avg */
} pool_priv;

static int pool_init(spk_layer *l, int is_max, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->ndim != 3)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input of shape [channels, height, width], got %d "
                             "dimension%s",
                             in->ndim, in->ndim == 1 ? "" : "s");
    pool_priv p;
    p.C = in->dims[0], p.H = in->dims[1], p.W = in->dims[2];
    p.k = (int)h->param_num(l, "kernel");
    p.stride = (int)h->param_num(l, "stride");
    if (p.stride == 0)
        p.stride = p.k;
    p.pad = (int)h->param_num(l, "padding");
    if (2 * p.pad > p.k)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "padding: %d is more than half the kernel %d (a window could hold "
                             "only padding)",
                             p.pad, p.k);
    if (p.k > p.H + 2 * p.pad || p.k > p.W + 2 * p.pad)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "kernel %d is larger than the input %dx%d with padding %d", p.k, p.H,
                             p.W, p.pad);
    if ((double)p.H * p.W >= (double)(1 << 24))
        return spk_error_set(err, SPK_ERR_SHAPE, "input planes of %dx%d are too large", p.H, p.W);
    p.OH = (p.H + 2 * p.pad - p.k) / p.stride + 1;
    p.OW = (p.W + 2 * p.pad - p.k) / p.stride + 1;
    p.s_arg = -1;
    if (is_max) {
        const int t = in->time == SPK_TIME_STEPS ? SPK_TIME_STEPS : SPK_TIME_NONE;
        if ((p.s_arg = h->add_state(l, "argmax", p.C * p.OH * p.OW, t, err)) < 0)
            return -p.s_arg;
    }
    spk_shape out = {.ndim = 3, .dims = {p.C, p.OH, p.OW}, .time = in->time};
    h->set_output(l, out);
    pool_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    h->set_priv(l, pp);
    return SPK_OK;
}

static int pool_max_init(spk_layer *l, spk_error *err)
{
    return pool_init(l, 1, err);
}

static int pool_avg_init(spk_layer *l, spk_error *err)
{
    return pool_init(l, 0, err);
}

static void pool_destroy(spk_layer *l)
{
    free(l->priv);
}

/* Planes in the folded batch: (T*B or B) * C. */
static int pool_planes(const spk_layer *l, const spk_exec *x)
{
    const pool_priv *p = l->priv;
    return x->B * (l->in[0].time == SPK_TIME_STEPS ? x->T : 1) * p->C;
}

static int pool_max_forward_run(spk_layer *l, spk_exec *x)
{
    const pool_priv *p = l->priv;
    const int n = pool_planes(l, x) * p->OH; /* output rows */
    return SPK_LAUNCH(l, x, "pool_max_forward", (size_t)n, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(&l->state[p->s_arg].t), SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(n),
                      SPK_ARG_INT(p->H), SPK_ARG_INT(p->W), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW),
                      SPK_ARG_INT(p->k), SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad));
}

static int pool_max_backward_run(spk_layer *l, spk_exec *x)
{
    const pool_priv *p = l->priv;
    if (!x->grad_in[0])
        return SPK_OK;
    if (p->stride >= p->k) { /* disjoint windows: a scatter, no gather loops */
        const int n = pool_planes(l, x) * p->OH * p->OW;
        int rc = l->host->fill(x, x->grad_in[0], 0.0f);
        return rc ? rc
                  : SPK_LAUNCH(l, x, "pool_max_scatter", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                               SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(&l->state[p->s_arg].t),
                               SPK_ARG_INT(n), SPK_ARG_INT(p->H * p->W),
                               SPK_ARG_INT(p->OH * p->OW));
    }
    const int n = pool_planes(l, x) * p->H * p->W;
    return SPK_LAUNCH(l, x, "pool_max_backward", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(&l->state[p->s_arg].t), SPK_ARG_INT(n),
                      SPK_ARG_INT(p->H), SPK_ARG_INT(p->W), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW),
                      SPK_ARG_INT(p->k), SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad));
}

static int pool_avg_forward_run(spk_layer *l, spk_exec *x)
{
    const pool_priv *p = l->priv;
    const int n = pool_planes(l, x) * p->OH * p->OW;
    return SPK_LAUNCH(l, x, "pool_avg_forward", (size_t)n, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(n), SPK_ARG_INT(p->H), SPK_ARG_INT(p->W),
                      SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW), SPK_ARG_INT(p->k),
                      SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad));
}

static int pool_avg_backward_run(spk_layer *l, spk_exec *x)
{
    const pool_priv *p = l->priv;
    if (!x->grad_in[0])
        return SPK_OK;
    if (p->stride >= p->k) {
        const int n = pool_planes(l, x) * p->OH * p->OW;
        int rc = l->host->fill(x, x->grad_in[0], 0.0f);
        return rc ? rc
                  : SPK_LAUNCH(l, x, "pool_avg_scatter", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                               SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(n), SPK_ARG_INT(p->H),
                               SPK_ARG_INT(p->W), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW),
                               SPK_ARG_INT(p->k), SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad));
    }
    const int n = pool_planes(l, x) * p->H * p->W;
    return SPK_LAUNCH(l, x, "pool_avg_backward", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(n), SPK_ARG_INT(p->H),
                      SPK_ARG_INT(p->W), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW), SPK_ARG_INT(p->k),
                      SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad));
}

static const spk_cpu_kernel pool_cpu_kernels[] = {
    SPK_CPU_KERNEL(pool_max_forward),
    SPK_CPU_KERNEL(pool_max_backward),
    SPK_CPU_KERNEL(pool_avg_forward),
    SPK_CPU_KERNEL(pool_avg_backward),
    SPK_CPU_KERNEL(pool_max_scatter),
    SPK_CPU_KERNEL(pool_avg_scatter),
    {0},
};

const spk_layer_type spk_builtin_pool_max2d = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "pool.max2d",
    .kind = SPK_KIND_OTHER,
    .summary = "2-D max pooling of [C, H, W] (torch MaxPool2d; an OR on spikes)",
    .params = pool_params,
    .init = pool_max_init,
    .forward = pool_max_forward_run,
    .backward = pool_max_backward_run,
    .destroy = pool_destroy,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT, /* argmax in state */
    .kernels = {.owner = "pool.max2d",
                .opencl_source = pool_cl_source,
                .cpu_kernels = pool_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_pool_max2d);

const spk_layer_type spk_builtin_pool_avg2d = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "pool.avg2d",
    .kind = SPK_KIND_OTHER,
    .summary = "2-D average pooling of [C, H, W] (torch AvgPool2d, padding counted as zeros)",
    .params = pool_params,
    .init = pool_avg_init,
    .forward = pool_avg_forward_run,
    .backward = pool_avg_backward_run,
    .destroy = pool_destroy,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT,
    .kernels = {.owner = "pool.avg2d",
                .opencl_source = pool_cl_source,
                .cpu_kernels = pool_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_pool_avg2d);
