/* synapse.linear — a fully connected layer, y = x W^T + b, with PyTorch nn.Linear's layout
 * (weight [out, in], bias [out]) and default initialisation, so checkpoints load into torch.
 * Time folds into the rows: a [T, B, in] input is one GEMM of T*B rows, and a constant input
 * ([B, in], direct encoding) gives a constant output computed once per window. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "linear.cl"
#include "linear_cl.h"

static const spk_param_spec linear_params[] = {
    {"out", SPK_PARAM_INT, NULL, 1, 1e9, NULL, "number of output units"},
    {"bias", SPK_PARAM_BOOL, "true", 1, 0, NULL, "add a learnable bias"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* weight is weights[0]; the bias, when present, weights[1] */
typedef struct linear_priv {
    int n_in, n_out;
    int w_weight, w_bias; /* w_bias = -1 without a bias */
} linear_priv;

static int linear_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    linear_priv p;
    p.n_in = spk_shape_size(&l->in[0]);
    double out = h->param_num(l, "out");
    if (out < 1 || out > 1e9 || out != floor(out))
        return spk_error_set(err, SPK_ERR_INVALID, "out: expected an integer >= 1, got %g", out);
    p.n_out = (int)out;
    if (p.n_in < 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected a non-empty input, got %d features",
                             p.n_in);
    /* torch.nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) on the weight reduces to
     * U(-1/sqrt(in), 1/sqrt(in)), and the bias uses the same bound */
    const float bound = 1.0f / sqrtf((float)p.n_in);
    spk_init u = {SPK_INIT_UNIFORM, -bound, bound};
    spk_shape ws = {.ndim = 2, .dims = {p.n_out, p.n_in}, .time = SPK_TIME_NONE};
    p.w_weight = h->add_weight(l, "weight", ws, u, err);
    if (p.w_weight < 0)
        return -p.w_weight;
    int rc = h->set_weight(l, p.w_weight, SPK_WEIGHT_DECAY, 0.0f, 0.0f, err);
    if (rc)
        return rc;
    p.w_bias = -1;
    if (h->param_num(l, "bias")) {
        spk_shape bs = {.ndim = 1, .dims = {p.n_out}, .time = SPK_TIME_NONE};
        p.w_bias = h->add_weight(l, "bias", bs, u, err);
        if (p.w_bias < 0)
            return -p.w_bias;
    }
    l->host->set_output(l, spk_shape_1d(p.n_out, l->in[0].time));
    linear_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    l->host->set_priv(l, pp);
    return SPK_OK;
}

static void linear_destroy(spk_layer *l)
{
    free(l->priv);
}

/* Rows of the folded input: T*B over time, B when constant or time-free. */
static size_t linear_rows(const spk_layer *l, const spk_exec *x)
{
    return (size_t)x->B * (l->in[0].time == SPK_TIME_STEPS ? (size_t)x->T : 1u);
}

static int linear_forward(spk_layer *l, spk_exec *x)
{
    const linear_priv *p = l->priv;
    const size_t rows = linear_rows(l, x);
    const size_t ni = (size_t)p->n_in, no = (size_t)p->n_out;
    /* y[rows, out] = x[rows, in] * W^T */
    int rc = l->host->gemm(x, 0, 1, rows, no, ni, 1.0f, x->in[0], ni,
                           &l->weights[p->w_weight].value, ni, 0.0f, x->out, no);
    if (rc || p->w_bias < 0)
        return rc;
    return SPK_LAUNCH(l, x, "linear_bias", rows * no, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(&l->weights[p->w_bias].value), SPK_ARG_INT(rows * no),
                      SPK_ARG_INT(no));
}

static int linear_backward(spk_layer *l, spk_exec *x)
{
    const linear_priv *p = l->priv;
    const size_t rows = linear_rows(l, x);
    const size_t ni = (size_t)p->n_in, no = (size_t)p->n_out;
    spk_weight *w = &l->weights[p->w_weight];
    int rc;
    if (!w->frozen) {
        /* grad_W[out, in] += gy^T[out, rows] * x[rows, in] */
        rc = l->host->gemm(x, 1, 0, no, ni, rows, 1.0f, x->grad_out, no, x->in[0], ni, 1.0f,
                           &w->grad, ni);
        if (rc)
            return rc;
    }
    if (p->w_bias >= 0 && !l->weights[p->w_bias].frozen) {
        /* grad_bias[o] += sum over rows of gy[r, o]; the bias has one value per column, so
         * reduce_grad only reads gy */
        rc = l->host->reduce_grad(x, &l->weights[p->w_bias].grad, (spk_tensor *)x->grad_out,
                                  (int)rows, no);
        if (rc)
            return rc;
    }
    if (x->grad_in[0]) {
        /* grad_x[rows, in] = gy[rows, out] * W[out, in] */
        rc = l->host->gemm(x, 0, 0, rows, ni, no, 1.0f, x->grad_out, no, &w->value, ni, 0.0f,
                           x->grad_in[0], ni);
        if (rc)
            return rc;
    }
    return SPK_OK;
}

static const spk_cpu_kernel linear_cpu_kernels[] = {
    SPK_CPU_KERNEL(linear_bias),
    {0},
};

const spk_layer_type spk_builtin_synapse_linear = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "synapse.linear",
    .kind = SPK_KIND_SYNAPSE,
    .summary = "fully connected layer, y = x W^T + b (torch nn.Linear layout and init)",
    .params = linear_params,
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
    .destroy = linear_destroy,
    .kernels = {.owner = "synapse.linear",
                .opencl_source = linear_cl_source,
                .cpu_kernels = linear_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_synapse_linear);
