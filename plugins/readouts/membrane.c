/* readout.membrane — reduces a membrane trace [T, B, C] over time to [B, C]: its mean, its max
 * or its last value (meant to follow a neuron with `output: membrane`, for ce_membrane). A
 * constant input passes through unchanged, whatever the mode. */
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "membrane.cl"
#include "membrane_cl.h"

static const spk_param_spec membrane_params[] = {
    {"mode", SPK_PARAM_CHOICE, "mean", 1, 0, "mean|max|last",
     "reduction over time; max routes its gradient to the first argmax"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int membrane_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time != SPK_TIME_STEPS && l->in[0].time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, C] membranes), got one without "
                             "a time axis");
    l->host->set_output(l, spk_shape_timed(l->in[0], SPK_TIME_NONE));
    return SPK_OK;
}

static int membrane_mode(const spk_layer *l)
{
    const char *m = l->host->param_str(l, "mode");
    return strcmp(m, "max") == 0    ? MEMBRANE_MAX
           : strcmp(m, "last") == 0 ? MEMBRANE_LAST
                                    : MEMBRANE_MEAN;
}

static int membrane_forward(spk_layer *l, spk_exec *x)
{
    const int n = x->B * spk_shape_size(&l->in[0]);
    if (l->in[0].time == SPK_TIME_CONST)
        return l->host->copy(x, x->out, x->in[0]);
    return SPK_LAUNCH(l, x, "membrane_reduce", (size_t)n, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(n), SPK_ARG_INT(x->T),
                      SPK_ARG_INT(membrane_mode(l)));
}

static int membrane_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    const int n = x->B * spk_shape_size(&l->in[0]);
    if (l->in[0].time == SPK_TIME_CONST)
        return l->host->copy(x, x->grad_in[0], x->grad_out);
    return SPK_LAUNCH(l, x, "membrane_grad", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(n),
                      SPK_ARG_INT(x->T), SPK_ARG_INT(membrane_mode(l)));
}

static const spk_cpu_kernel membrane_cpu_kernels[] = {
    SPK_CPU_KERNEL(membrane_reduce),
    SPK_CPU_KERNEL(membrane_grad),
    {0},
};

const spk_layer_type spk_builtin_readout_membrane = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "readout.membrane",
    .kind = SPK_KIND_READOUT,
    .summary = "membrane over the window reduced to its mean, max or last value",
    .params = membrane_params,
    .init = membrane_init,
    .forward = membrane_forward,
    .backward = membrane_backward,
    .destroy = NULL,
    .kernels = {.owner = "readout.membrane",
                .opencl_source = membrane_cl_source,
                .cpu_kernels = membrane_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_readout_membrane);
