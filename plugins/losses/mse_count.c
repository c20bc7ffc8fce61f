/* loss.mse_count — snnTorch's mse_count_loss (snntorch/functional/loss.py): the spike count of
 * the label's class is pulled towards int(T * correct_rate), the others towards
 * int(T * incorrect_rate); the loss is torch's MSELoss (mean over B*C) divided by T. Per sample:
 * loss_b = sum_c (count - target)^2 / (C T), so the batch mean is snnTorch's value. */
#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "mse_count.cl"
#include "mse_count_cl.h"

static const spk_param_spec mse_count_params[] = {
    {"correct_rate", SPK_PARAM_FLOAT, "0.8", 0, 1, NULL,
     "target spike rate of the label's class (fraction of T)"},
    {"incorrect_rate", SPK_PARAM_FLOAT, "0.2", 0, 1, NULL,
     "target spike rate of the other classes"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int mse_count_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_STEPS)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected spike counts [B, C] (a readout's output), got a tensor "
                             "over time steps");
    if (l->time_steps < 1)
        return spk_error_set(err, SPK_ERR_INVALID, "expected time_steps >= 1, got %d",
                             l->time_steps);
    l->host->set_output(l, spk_shape_1d(1, SPK_TIME_NONE));
    return SPK_OK;
}

/* Targets as snnTorch computes them: Python's int() of a double product truncates. */
static void mse_count_targets(const spk_layer *l, float *on, float *off)
{
    const double T = (double)l->time_steps;
    *on = (float)(int)(T * l->host->param_num(l, "correct_rate"));
    *off = (float)(int)(T * l->host->param_num(l, "incorrect_rate"));
}

static int mse_count_forward(spk_layer *l, spk_exec *x)
{
    if (!x->loss || !x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "loss.mse_count: no labels or loss tensor");
    const int C = spk_shape_size(&l->in[0]);
    float on, off;
    mse_count_targets(l, &on, &off);
    const float scale = 1.0f / ((float)C * (float)l->time_steps);
    int rc =
        SPK_LAUNCH(l, x, "mse_count_loss", (size_t)x->B, SPK_ARG_BUF(x->loss),
                   SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(x->labels), SPK_ARG_INT(x->B), SPK_ARG_INT(C),
                   SPK_ARG_FLOAT(on), SPK_ARG_FLOAT(off), SPK_ARG_FLOAT(scale));
    /* the layer's own output, when the host gave it one, mirrors the per-sample loss */
    if (!rc && x->out && x->out->buf != x->loss->buf && x->out->numel == x->loss->numel)
        rc = l->host->copy(x, x->out, x->loss);
    return rc;
}

static int mse_count_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    if (!x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "loss.mse_count: no labels");
    const int C = spk_shape_size(&l->in[0]);
    const int n = x->B * C;
    float on, off;
    mse_count_targets(l, &on, &off);
    const float gscale = 2.0f / ((float)x->B * (float)C * (float)l->time_steps);
    return SPK_LAUNCH(l, x, "mse_count_grad", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(x->labels), SPK_ARG_INT(n), SPK_ARG_INT(C),
                      SPK_ARG_FLOAT(on), SPK_ARG_FLOAT(off), SPK_ARG_FLOAT(gscale));
}

static const spk_cpu_kernel mse_count_cpu_kernels[] = {
    SPK_CPU_KERNEL(mse_count_loss),
    SPK_CPU_KERNEL(mse_count_grad),
    {0},
};

const spk_layer_type spk_builtin_loss_mse_count = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "loss.mse_count",
    .kind = SPK_KIND_LOSS,
    .summary = "MSE of spike counts against correct/incorrect target rates (snnTorch)",
    .params = mse_count_params,
    .init = mse_count_init,
    .forward = mse_count_forward,
    .backward = mse_count_backward,
    .destroy = NULL,
    .kernels = {.owner = "loss.mse_count",
                .opencl_source = mse_count_cl_source,
                .cpu_kernels = mse_count_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_loss_mse_count);
