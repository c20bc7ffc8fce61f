/* readout.identity — passes the last layer's output through unchanged, time axis included
 * ([T, B, C] or a constant [B, C]), for losses that need every step (loss.ce_rate,
 * loss.ce_max_membrane on the raw membrane trace). Its accuracy is meant to be scored on the
 * spike count, the sum over the steps: a session has to accept a readout over time for that. */
#include "builtin.h"
#include "spikecl/plugin.h"

static const spk_param_spec identity_params[] = {
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int identity_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time != SPK_TIME_STEPS && l->in[0].time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, C]), got one without a time "
                             "axis");
    l->host->set_output(l, l->in[0]);
    return SPK_OK;
}

static int identity_forward(spk_layer *l, spk_exec *x)
{
    return l->host->copy(x, x->out, x->in[0]);
}

static int identity_backward(spk_layer *l, spk_exec *x)
{
    return x->grad_in[0] ? l->host->copy(x, x->grad_in[0], x->grad_out) : SPK_OK;
}

const spk_layer_type spk_builtin_readout_identity = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "readout.identity",
    .kind = SPK_KIND_READOUT,
    .summary = "the output over time, unchanged (for per-step losses such as loss.ce_rate)",
    .params = identity_params,
    .init = identity_init,
    .forward = identity_forward,
    .backward = identity_backward,
    .destroy = NULL,
    .kernels = {.owner = "readout.identity", .opencl_source = NULL, .cpu_kernels = NULL},
};
SPK_BUILTIN(spk_builtin_readout_identity);
