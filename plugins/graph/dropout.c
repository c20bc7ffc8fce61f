/* dropout — inverted dropout (torch.nn.Dropout's scaling) on any activation, off in evaluation.
 * same_mask: true (the default) drops the same units at every time step of a window, as SNN
 * papers use it (SpikingJelly's multi-step Dropout); false draws a new mask per step, which is
 * what torch.nn.Dropout on the time-folded batch would do. The mask comes from Philox keyed on
 * the seed, the epoch, the sample's id and the layer (see dropout.cl), so nothing is stored. */
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "dropout.cl"
#include "dropout_cl.h"

static const spk_param_spec dropout_params[] = {
    {"p", SPK_PARAM_FLOAT, "0.5", 0, 0.99, NULL, "probability of dropping a value (< 1)"},
    {"same_mask", SPK_PARAM_BOOL, "true", 1, 0, NULL,
     "one mask for every step of the window (false: a new mask per step)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int dropout_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_NONE)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input over time (or constant in time), got one "
                             "without a time axis (a readout's output?)");
    spk_shape out = l->in[0];
    /* a constant input stays constant under a shared mask; a mask per step makes it vary */
    if (out.time == SPK_TIME_CONST && !l->host->param_num(l, "same_mask"))
        out.time = SPK_TIME_STEPS;
    l->host->set_output(l, out);
    return SPK_OK;
}

static int dropout_run(spk_layer *l, spk_exec *x, int backward)
{
    const int nf = spk_shape_size(&l->in[0]);
    const int ng = (nf + 3) / 4, n = x->B * ng;
    const int out_steps = l->out.time == SPK_TIME_STEPS ? x->T : 1;
    const int in_steps = l->in[0].time == SPK_TIME_STEPS;
    const int same = l->host->param_num(l, "same_mask") != 0;
    const float p = (float)l->host->param_num(l, "p");
    const uint32_t key1 = SPK_RNG_DROPOUT ^ (x->epoch << 4);
    if (!x->sample_ids)
        return l->host->error(x, SPK_ERR_INVALID, "no sample ids to key the mask on");
    spk_tensor *dst = backward ? x->grad_in[0] : x->out;
    const spk_tensor *src = backward ? x->grad_out : x->in[0];
    return SPK_LAUNCH(l, x, backward ? "dropout_backward" : "dropout_forward", (size_t)n,
                      SPK_ARG_BUF(dst), SPK_ARG_BUF(src), SPK_ARG_BUF(x->sample_ids),
                      SPK_ARG_INT(n), SPK_ARG_INT(ng), SPK_ARG_INT(x->B), SPK_ARG_INT(nf),
                      SPK_ARG_INT(out_steps), SPK_ARG_INT(in_steps), SPK_ARG_INT(same),
                      SPK_ARG_FLOAT(p), SPK_ARG_INT(x->training), SPK_ARG_INT(x->seed),
                      SPK_ARG_INT(key1), SPK_ARG_INT(l->index));
}

static int dropout_fwd(spk_layer *l, spk_exec *x)
{
    return dropout_run(l, x, 0);
}

static int dropout_bwd(spk_layer *l, spk_exec *x)
{
    return x->grad_in[0] ? dropout_run(l, x, 1) : SPK_OK;
}

static const spk_cpu_kernel dropout_cpu_kernels[] = {
    SPK_CPU_KERNEL(dropout_forward),
    SPK_CPU_KERNEL(dropout_backward),
    {0},
};

const spk_layer_type spk_builtin_dropout = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "dropout",
    .kind = SPK_KIND_OTHER,
    .summary = "inverted dropout (Philox mask, the same at every step by default), off in eval",
    .params = dropout_params,
    .init = dropout_init,
    .forward = dropout_fwd,
    .backward = dropout_bwd,
    .destroy = NULL,
    .kernels = {.owner = "dropout",
                .opencl_source = dropout_cl_source,
                .cpu_kernels = dropout_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_dropout);
