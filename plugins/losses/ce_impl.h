/* The shared implementation of loss.ce_count and loss.ce_membrane: cross-entropy of the
 * softmax of a [B, C] readout (spike counts or membranes), like snnTorch's ce_count_loss /
 * ce_rate_loss (log_softmax + NLLLoss, mean over the batch). Included by ce_count.c and
 * ce_membrane.c, which differ only in name and in what they expect as input. */
#ifndef SPK_PLUGIN_CE_IMPL_H
#define SPK_PLUGIN_CE_IMPL_H

#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "ce.cl"
#include "ce_cl.h"

static const spk_param_spec ce_params[] = {
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int ce_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_STEPS)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected a readout [B, C] without a time axis, got a tensor over "
                             "time steps (add a readout)");
    l->host->set_output(l, spk_shape_1d(1, SPK_TIME_NONE));
    return SPK_OK;
}

static int ce_forward(spk_layer *l, spk_exec *x)
{
    if (!x->loss || !x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "%s: no labels or loss tensor", l->type->name);
    const int C = spk_shape_size(&l->in[0]);
    int rc = SPK_LAUNCH(l, x, "ce_loss", (size_t)x->B, SPK_ARG_BUF(x->loss), SPK_ARG_BUF(x->in[0]),
                        SPK_ARG_BUF(x->labels), SPK_ARG_INT(x->B), SPK_ARG_INT(C));
    /* the layer's own output, when the host gave it one, mirrors the per-sample loss */
    if (!rc && x->out && x->out->buf != x->loss->buf && x->out->numel == x->loss->numel)
        rc = l->host->copy(x, x->out, x->loss);
    return rc;
}

static int ce_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    if (!x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "%s: no labels", l->type->name);
    const int C = spk_shape_size(&l->in[0]);
    return SPK_LAUNCH(l, x, "ce_grad", (size_t)x->B * (size_t)C, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(x->labels), SPK_ARG_INT(x->B),
                      SPK_ARG_INT(C), SPK_ARG_FLOAT(1.0f / (float)x->B));
}

static const spk_cpu_kernel ce_cpu_kernels[] = {
    SPK_CPU_KERNEL(ce_loss),
    SPK_CPU_KERNEL(ce_grad),
    {0},
};

#endif
