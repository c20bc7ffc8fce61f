/* encoder.poisson — rate (Poisson/Bernoulli) coding: at every step each feature spikes with
 * probability clamp(gain * x, 0, 1), like snntorch.spikegen.rate. The draws come from
 * Philox4x32-10 keyed by (seed, purpose, epoch) with counter (feature / 4, step, sample id), so
 * a sample draws the same spikes on every backend and in whatever batch it lands.
 *
 * Backward is a straight-through estimator of the expected spike: d E[s]/dx = gain where the
 * rate is not clipped (0 < gain x < 1) and 0 where it is; the per-step gradients are summed.
 * (The encoder is usually the first layer and needs no gradient; this makes input gradients,
 * e.g. for saliency or a learnable preprocessing layer, meaningful rather than zero.) */
#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "poisson.cl"
#include "poisson_cl.h"

static const spk_param_spec poisson_params[] = {
    {"gain", SPK_PARAM_FLOAT, "1", 0, 1e9, NULL, "spike probability per step = gain * input"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int poisson_init(spk_layer *l, spk_error *err)
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

static int poisson_forward(spk_layer *l, spk_exec *x)
{
    const int nf = spk_shape_size(&l->in[0]);
    const int ng = (nf + 3) / 4; /* one Philox draw per four features */
    const int n = x->T * x->B * ng;
    const float gain = (float)l->host->param_num(l, "gain");
    const uint32_t key1 = SPK_RNG_POISSON ^ (x->epoch << 4);
    if (!x->sample_ids)
        return l->host->error(x, SPK_ERR_INVALID, "no sample ids to key the spikes on");
    return SPK_LAUNCH(l, x, "poisson_encode", (size_t)n, SPK_ARG_BUF(x->out), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_BUF(x->sample_ids), SPK_ARG_INT(n), SPK_ARG_INT(ng),
                      SPK_ARG_INT(x->B), SPK_ARG_INT(nf), SPK_ARG_FLOAT(gain), SPK_ARG_INT(x->seed),
                      SPK_ARG_INT(key1));
}

static int poisson_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    const int bf = x->B * spk_shape_size(&l->in[0]);
    const float gain = (float)l->host->param_num(l, "gain");
    return SPK_LAUNCH(l, x, "poisson_grad", (size_t)bf, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(bf),
                      SPK_ARG_INT(x->T), SPK_ARG_FLOAT(gain));
}

static const spk_cpu_kernel poisson_cpu_kernels[] = {
    SPK_CPU_KERNEL(poisson_encode),
    SPK_CPU_KERNEL(poisson_grad),
    {0},
};

const spk_layer_type spk_builtin_encoder_poisson = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "encoder.poisson",
    .kind = SPK_KIND_ENCODER,
    .summary = "rate coding: Bernoulli spikes with probability gain * input (Philox RNG)",
    .params = poisson_params,
    .init = poisson_init,
    .forward = poisson_forward,
    .backward = poisson_backward,
    .destroy = NULL,
    .memory =
        SPK_MEM_OUT_FORWARD_ONLY, /* backward reads grad_out and the input, never the spikes */
    .kernels = {.owner = "encoder.poisson",
                .opencl_source = poisson_cl_source,
                .cpu_kernels = poisson_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_encoder_poisson);
