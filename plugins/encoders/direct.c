/* encoder.direct — direct (current) encoding: the scaled input is the input current at every
 * step. The output is stored once as a constant-in-time [B, F] tensor; consumers broadcast it
 * over T (a linear layer then runs once per window instead of T times). */
#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "direct.cl"
#include "direct_cl.h"

static const spk_param_spec direct_params[] = {
    {"gain", SPK_PARAM_FLOAT, "1", 1, 0, NULL, "input current = gain * input"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int direct_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_STEPS)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input without a time axis (the network input), got "
                             "one over time steps");
    l->host->set_output(l, spk_shape_timed(l->in[0], SPK_TIME_CONST));
    return SPK_OK;
}

/* [B, F] in both directions: the input and the output have no time axis */
static int direct_run(spk_layer *l, spk_exec *x, spk_tensor *dst, const spk_tensor *src)
{
    const int n = x->B * spk_shape_size(&l->in[0]);
    const float gain = (float)l->host->param_num(l, "gain");
    return SPK_LAUNCH(l, x, "direct_scale", (size_t)n, SPK_ARG_BUF(dst), SPK_ARG_BUF(src),
                      SPK_ARG_INT(n), SPK_ARG_FLOAT(gain));
}

static int direct_forward(spk_layer *l, spk_exec *x)
{
    return direct_run(l, x, x->out, x->in[0]);
}

static int direct_backward(spk_layer *l, spk_exec *x)
{
    return x->grad_in[0] ? direct_run(l, x, x->grad_in[0], x->grad_out) : SPK_OK;
}

static const spk_cpu_kernel direct_cpu_kernels[] = {
    SPK_CPU_KERNEL(direct_scale),
    {0},
};

const spk_layer_type spk_builtin_encoder_direct = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "encoder.direct",
    .kind = SPK_KIND_ENCODER,
    .summary = "direct encoding: gain * input as a current, the same at every step",
    .params = direct_params,
    .init = direct_init,
    .forward = direct_forward,
    .backward = direct_backward,
    .destroy = NULL,
    .memory =
        SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT, /* backward scales grad_out alone */
    .kernels = {.owner = "encoder.direct",
                .opencl_source = direct_cl_source,
                .cpu_kernels = direct_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_encoder_direct);
