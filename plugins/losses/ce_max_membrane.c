/* loss.ce_max_membrane — snnTorch's ce_max_membrane_loss (snntorch/functional/loss.py, after
 * Zenke's SpyTorch): each output neuron's membrane is reduced to its maximum over the window,
 * and the cross-entropy (log-softmax + NLL) of those maxima is the loss:
 *
 *   m[b, c] = max_t u[t, b, c],   loss_b = logsumexp(m[b, :]) - m[b, label]
 *
 * The gradient goes to the first step of each maximum (torch.max's index on ties).
 *
 * Pairing: in a model the loss reads the readout, and readout.membrane {mode: max} over a
 * neuron with `output: membrane` already takes that maximum (routing its gradient the same
 * way); on its [B, C] output this loss is the cross-entropy of it, which is snnTorch's loss of
 * the membrane trace. Given the trace itself, [T, B, C] (readout.identity, once the session
 * accepts a readout over time), it takes the maximum here. */
#include "builtin.h"
#include "ce_time.h"

typedef struct maxmem_priv {
    int s_max, s_gmax; /* [B, C]: the maxima and their gradient */
} maxmem_priv;

static const spk_param_spec maxmem_params[] = {
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int maxmem_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const int C = spk_shape_size(&l->in[0]);
    maxmem_priv p;
    if ((p.s_max = l->host->add_state(l, "max", C, SPK_TIME_NONE, err)) < 0)
        return -p.s_max;
    if ((p.s_gmax = l->host->add_state(l, "grad_max", C, SPK_TIME_NONE, err)) < 0)
        return -p.s_gmax;
    l->host->set_output(l, spk_shape_1d(1, SPK_TIME_NONE));
    maxmem_priv *pp = l->host->alloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void maxmem_destroy(spk_layer *l)
{
    l->host->free(l->priv);
}

static int maxmem_forward(spk_layer *l, spk_exec *x)
{
    const maxmem_priv *p = l->priv;
    if (!x->loss || !x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "loss.ce_max_membrane: no labels or loss tensor");
    int steps, z_ts;
    ce_time_layout(l, x, &steps, &z_ts);
    const int C = spk_shape_size(&l->in[0]);
    /* the peaks per (b, c) first, so that the walk over time is spread over B * C items */
    int rc = SPK_LAUNCH(l, x, "ce_maxmem_peak", (size_t)x->B * (size_t)C,
                        SPK_ARG_BUF(&l->state[p->s_max].t), SPK_ARG_BUF(x->in[0]),
                        SPK_ARG_INT(x->B * C), SPK_ARG_INT(steps), SPK_ARG_INT(z_ts));
    if (!rc)
        rc = SPK_LAUNCH(l, x, "ce_maxmem_loss", (size_t)x->B, SPK_ARG_BUF(x->loss),
                        SPK_ARG_BUF(&l->state[p->s_max].t), SPK_ARG_BUF(x->labels),
                        SPK_ARG_INT(x->B), SPK_ARG_INT(C));
    return rc ? rc : ce_time_mirror(l, x);
}

static int maxmem_backward(spk_layer *l, spk_exec *x)
{
    const maxmem_priv *p = l->priv;
    if (!x->grad_in[0])
        return SPK_OK;
    if (!x->labels)
        return l->host->error(x, SPK_ERR_INVALID, "loss.ce_max_membrane: no labels");
    int steps, z_ts;
    ce_time_layout(l, x, &steps, &z_ts);
    return SPK_LAUNCH(l, x, "ce_maxmem_grad", (size_t)x->B * (size_t)spk_shape_size(&l->in[0]),
                      SPK_ARG_BUF(x->grad_in[0]), SPK_ARG_BUF(&l->state[p->s_gmax].t),
                      SPK_ARG_BUF(&l->state[p->s_max].t), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_BUF(x->labels), SPK_ARG_INT(x->B),
                      SPK_ARG_INT(spk_shape_size(&l->in[0])), SPK_ARG_INT(steps), SPK_ARG_INT(z_ts),
                      SPK_ARG_FLOAT(1.0f / (float)x->B));
}

const spk_layer_type spk_builtin_loss_ce_max_membrane = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "loss.ce_max_membrane",
    .kind = SPK_KIND_LOSS,
    .summary = "cross-entropy of each output's maximum membrane over time (snnTorch "
               "ce_max_membrane_loss); pair with readout.membrane {mode: max}",
    .params = maxmem_params,
    .init = maxmem_init,
    .forward = maxmem_forward,
    .backward = maxmem_backward,
    .destroy = maxmem_destroy,
    .kernels = {.owner = "loss.ce_max_membrane",
                .opencl_source = ce_time_cl_source,
                .cpu_kernels = ce_time_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_loss_ce_max_membrane);
