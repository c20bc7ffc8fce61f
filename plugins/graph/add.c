/* merge.add: the sum of its inputs (a skip connection's merge). Inputs must have the same size;
 * a time-constant input is broadcast over the steps of a stepped one. */
#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "add.cl"
#include "add_cl.h"

static int add_init(spk_layer *l, spk_error *err)
{
    if (l->n_in < 2)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected at least 2 inputs (from: [a, b])");
    int n = spk_shape_size(&l->in[0]);
    int time = SPK_TIME_CONST;
    for (int i = 0; i < l->n_in; i++) {
        if (spk_shape_size(&l->in[i]) != n)
            return spk_error_set(err, SPK_ERR_SHAPE,
                                 "input %d has %d values per sample, input 1 has %d", i + 1,
                                 spk_shape_size(&l->in[i]), n);
        if (l->in[i].time == SPK_TIME_NONE)
            return spk_error_set(err, SPK_ERR_SHAPE, "input %d has no time axis", i + 1);
        if (l->in[i].time == SPK_TIME_STEPS)
            time = SPK_TIME_STEPS;
    }
    l->host->set_output(l, spk_shape_timed(l->in[0], time));
    return SPK_OK;
}

/* rows of one input: T*B when stepped, B when constant */
static int rows(const spk_exec *x, int time)
{
    return time == SPK_TIME_STEPS ? x->T * x->B : x->B;
}

static int add_forward(spk_layer *l, spk_exec *x)
{
    int n = spk_shape_size(&l->out);
    int total = rows(x, l->out.time) * n;
    int rc = l->host->fill(x, x->out, 0.0f);
    for (int i = 0; !rc && i < l->n_in; i++) {
        /* a constant input repeats every B*n values */
        int period = l->in[i].time == SPK_TIME_STEPS ? total : x->B * n;
        rc = SPK_LAUNCH(l, x, "merge_add_acc", (size_t)total, SPK_ARG_BUF(x->out),
                        SPK_ARG_BUF(x->in[i]), SPK_ARG_INT(total), SPK_ARG_INT(period));
    }
    return rc;
}

static int add_backward(spk_layer *l, spk_exec *x)
{
    int n = spk_shape_size(&l->out);
    int steps = l->out.time == SPK_TIME_STEPS ? x->T : 1;
    for (int i = 0; i < l->n_in; i++) {
        if (!x->grad_in[i])
            continue;
        /* a constant input's gradient sums the output gradient over the steps */
        int in_steps = l->in[i].time == SPK_TIME_STEPS ? steps : 1;
        int count = x->B * n * in_steps;
        int rc = SPK_LAUNCH(l, x, "merge_add_grad", (size_t)count, SPK_ARG_BUF(x->grad_in[i]),
                            SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(count),
                            SPK_ARG_INT(in_steps == steps ? 1 : steps), SPK_ARG_INT(count));
        if (rc)
            return rc;
    }
    return SPK_OK;
}

static const spk_cpu_kernel add_cpu[] = {
    SPK_CPU_KERNEL(merge_add_acc),
    SPK_CPU_KERNEL(merge_add_grad),
    {0},
};

static const spk_param_spec add_params[] = {{0}};

const spk_layer_type spk_builtin_merge_add = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "merge.add",
    .kind = SPK_KIND_OTHER,
    .summary = "sum of two or more inputs (skip connections)",
    .params = add_params,
    .init = add_init,
    .forward = add_forward,
    .backward = add_backward,
    .memory = SPK_MEM_OUT_FORWARD_ONLY | SPK_MEM_BACKWARD_NO_INPUT,
    .kernels = {.owner = "merge.add", .opencl_source = add_cl_source, .cpu_kernels = add_cpu},
};
SPK_BUILTIN(spk_builtin_merge_add);
