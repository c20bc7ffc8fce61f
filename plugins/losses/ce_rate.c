/* loss.ce_rate — snnTorch's ce_rate_loss (snntorch/functional/loss.py): log-softmax + NLL of
 * the output spikes at every time step, summed over the steps and divided by T, so the label's
 * neuron is pushed to fire at every step and the others to stay silent. Per sample:
 *
 *   loss_b = (1/T) sum_t [logsumexp(s[t, b, :]) - s[t, b, label]]
 *
 * and the batch mean is snnTorch's value (its NLLLoss averages over the batch per step).
 *
 * It needs the outputs per step, [T, B, C], which no readout that removes time can give: the
 * input is meant to come from readout.identity (the session has to accept a readout over time
 * for that, scoring accuracy by the spike count). A constant [B, C] input counts as the same
 * value at every step (the mean of T equal terms). Over spike counts, use loss.ce_count. */
#include "builtin.h"
#include "ce_time.h"

static const spk_param_spec ce_rate_params[] = {
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int ce_rate_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_NONE)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected the output spikes at every step [T, B, C] (readout."
                             "identity), got a tensor without a time axis (for spike counts use "
                             "loss.ce_count)");
    l->host->set_output(l, spk_shape_1d(1, SPK_TIME_NONE));
    /* state 0: the cross-entropy of each (t, b), summed per sample by ce_rate_loss */
    const int st = l->host->add_state(l, "nll", 1, SPK_TIME_STEPS, err);
    return st < 0 ? -st : SPK_OK;
}

static int ce_rate_forward(spk_layer *l, spk_exec *x)
{
    if (!x->loss || !x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "loss.ce_rate: no labels or loss tensor");
    int steps, z_ts;
    ce_time_layout(l, x, &steps, &z_ts);
    /* one item per (t, b) for the softmax walks, then the sum over steps per sample */
    int rc =
        SPK_LAUNCH(l, x, "ce_rate_nll", (size_t)steps * (size_t)x->B, SPK_ARG_BUF(&l->state[0].t),
                   SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(x->labels), SPK_ARG_INT(steps * x->B),
                   SPK_ARG_INT(x->B), SPK_ARG_INT(spk_shape_size(&l->in[0])), SPK_ARG_INT(z_ts));
    if (!rc)
        rc = SPK_LAUNCH(l, x, "ce_rate_loss", (size_t)x->B, SPK_ARG_BUF(x->loss),
                        SPK_ARG_BUF(&l->state[0].t), SPK_ARG_INT(x->B), SPK_ARG_INT(steps));
    return rc ? rc : ce_time_mirror(l, x);
}

static int ce_rate_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    if (!x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "loss.ce_rate: no labels");
    int steps, z_ts;
    ce_time_layout(l, x, &steps, &z_ts);
    const int n = steps * x->B * spk_shape_size(&l->in[0]); /* one item per (t, b, c) */
    return SPK_LAUNCH(l, x, "ce_rate_grad", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(x->labels), SPK_ARG_INT(n),
                      SPK_ARG_INT(x->B), SPK_ARG_INT(spk_shape_size(&l->in[0])),
                      SPK_ARG_FLOAT(1.0f / ((float)steps * (float)x->B)));
}

const spk_layer_type spk_builtin_loss_ce_rate = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "loss.ce_rate",
    .kind = SPK_KIND_LOSS,
    .summary = "cross-entropy of the output spikes at every step, averaged over time (snnTorch "
               "ce_rate_loss)",
    .params = ce_rate_params,
    .init = ce_rate_init,
    .forward = ce_rate_forward,
    .backward = ce_rate_backward,
    .destroy = NULL,
    .kernels = {.owner = "loss.ce_rate",
                .opencl_source = ce_time_cl_source,
                .cpu_kernels = ce_time_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_loss_ce_rate);
