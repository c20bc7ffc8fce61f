/* encoder.latency — time-to-first-spike coding with snnTorch's semantics
 * (snntorch.spikegen.latency / latency_code, snntorch/spikegen.py): each input value fires one
 * spike, the larger the value the earlier. The spike time, in steps, is
 *
 *   log code (default):  t = tau ln(x' / (x' - threshold)),  x' = max(x, threshold + epsilon)
 *                        (an RC neuron charged by a constant current x reaches threshold at t)
 *   linear: true:        t = min(tau (1 - x), tau (1 - threshold))
 *
 * rounded half to even (torch.round) to a step index. normalize: true stretches the code onto
 * the window: the log code is scaled so that the latest possible time (a value at or below
 * the threshold) lands on step T - 1, and the linear code uses tau = T - 1. Values under the
 * threshold fire at that latest time unless clip: true, which silences them.
 *
 * Where snnTorch's result depends on the rest of the batch, this encoder keeps each value to
 * itself: its log-code normalisation divides by the batch's largest spike time, which equals
 * the saturated time used here whenever a value in the batch is at or below threshold +
 * epsilon (any image with a dark pixel); times past the window fire no spike (snnTorch clamps
 * them to the last step and then clears that whole step); linear inputs above 1 fire at step
 * 0 (snnTorch raises an error, or rescales the batch when normalising).
 *
 * The output is [T, B, F] spikes. The code is a step function of the input: no gradient
 * reaches the input (grad_in, when asked for, is zero). */
#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "latency.cl"
#include "latency_cl.h"

static const spk_param_spec latency_params[] = {
    {"tau", SPK_PARAM_FLOAT, "1", 1e-9, 1e9, NULL,
     "RC time constant of the code, in steps (linear: steps per unit of input)"},
    {"threshold", SPK_PARAM_FLOAT, "0.01", 1e-9, 0.999999999, NULL,
     "values below it fire last (or not at all with clip); in (0, 1)"},
    {"epsilon", SPK_PARAM_FLOAT, "1e-7", 1e-30, 1, NULL,
     "log code: inputs are raised to threshold + epsilon, bounding the latest time"},
    {"linear", SPK_PARAM_BOOL, "false", 1, 0, NULL, "linear code instead of the log code"},
    {"normalize", SPK_PARAM_BOOL, "false", 1, 0, NULL,
     "stretch the code so that the latest spike falls on the last step"},
    {"clip", SPK_PARAM_BOOL, "false", 1, 0, NULL, "values below the threshold do not fire"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int latency_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_STEPS)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input without a time axis (the network input), got "
                             "one over time steps");
    l->host->set_output(l, spk_shape_timed(l->in[0], SPK_TIME_STEPS));
    return SPK_OK;
}

static int latency_forward(spk_layer *l, spk_exec *x)
{
    const spk_host_api *h = l->host;
    const int n = x->B * spk_shape_size(&l->in[0]);
    const double thr = h->param_num(l, "threshold");
    const int cfg = (h->param_num(l, "linear") ? LAT_LINEAR : 0) |
                    (h->param_num(l, "normalize") ? LAT_NORMALIZE : 0) |
                    (h->param_num(l, "clip") ? LAT_CLIP : 0);
    /* threshold + epsilon summed in double and rounded once, like torch.clamp's Python bound */
    const float lo = (float)(thr + h->param_num(l, "epsilon"));
    return SPK_LAUNCH(l, x, "latency_encode", (size_t)n, SPK_ARG_BUF(x->out), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_INT(n), SPK_ARG_INT(x->T), SPK_ARG_FLOAT(h->param_num(l, "tau")),
                      SPK_ARG_FLOAT(thr), SPK_ARG_FLOAT(lo), SPK_ARG_INT(cfg));
}

static int latency_backward(spk_layer *l, spk_exec *x)
{
    return x->grad_in[0] ? l->host->fill(x, x->grad_in[0], 0.0f) : SPK_OK;
}

static const spk_cpu_kernel latency_cpu_kernels[] = {
    SPK_CPU_KERNEL(latency_encode),
    {0},
};

const spk_layer_type spk_builtin_encoder_latency = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "encoder.latency",
    .kind = SPK_KIND_ENCODER,
    .summary = "time-to-first-spike coding: one spike per value, earlier for larger values "
               "(snnTorch spikegen.latency)",
    .params = latency_params,
    .init = latency_init,
    .forward = latency_forward,
    .backward = latency_backward,
    .destroy = NULL,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT, /* backward writes zeros */
    .kernels = {.owner = "encoder.latency",
                .opencl_source = latency_cl_source,
                .cpu_kernels = latency_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_encoder_latency);
