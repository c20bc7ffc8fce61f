/* readout.spike_count — the number of spikes per output unit over the window: [T, B, C] ->
 * [B, C] (snnTorch's spike-count readout for mse_count_loss and accuracy). A constant input
 * counts T times. */
#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "spike_count.cl"
#include "spike_count_cl.h"

static const spk_param_spec spike_count_params[] = {
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int spike_count_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time != SPK_TIME_STEPS && l->in[0].time != SPK_TIME_CONST)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time ([T, B, C] spikes), got one without a "
                             "time axis");
    l->host->set_output(l, spk_shape_timed(l->in[0], SPK_TIME_NONE));
    return SPK_OK;
}

static int spike_count_forward(spk_layer *l, spk_exec *x)
{
    const int n = x->B * spk_shape_size(&l->in[0]);
    const int ts = l->in[0].time == SPK_TIME_STEPS ? n : 0;
    return SPK_LAUNCH(l, x, "spike_count_sum", (size_t)n, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(n), SPK_ARG_INT(x->T), SPK_ARG_INT(ts));
}

static int spike_count_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    const int m = x->B * spk_shape_size(&l->in[0]);
    const int steps = l->in[0].time == SPK_TIME_STEPS;
    /* [T, B, C] gets grad_out at every t; a constant [B, C] input counted T times gets T * it */
    const float scale = steps ? 1.0f : (float)x->T;
    return SPK_LAUNCH(l, x, "spike_count_bcast", (size_t)m, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(m), SPK_ARG_INT(steps ? x->T : 1),
                      SPK_ARG_FLOAT(scale));
}

static const spk_cpu_kernel spike_count_cpu_kernels[] = {
    SPK_CPU_KERNEL(spike_count_sum),
    SPK_CPU_KERNEL(spike_count_bcast),
    {0},
};

const spk_layer_type spk_builtin_readout_spike_count = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "readout.spike_count",
    .kind = SPK_KIND_READOUT,
    .summary = "spikes per unit summed over the time window",
    .params = spike_count_params,
    .init = spike_count_init,
    .forward = spike_count_forward,
    .backward = spike_count_backward,
    .destroy = NULL,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT | SPK_MEM_SUM_OVER_STEPS,
    .kernels = {.owner = "readout.spike_count",
                .opencl_source = spike_count_cl_source,
                .cpu_kernels = spike_count_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_readout_spike_count);
