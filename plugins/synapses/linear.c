/* synapse.linear — a fully connected layer, y = x W^T + b, with PyTorch nn.Linear's layout
 * (weight [out, in], bias [out]) and default initialisation, so checkpoints load into torch.
 * Time folds into the rows: a [T, B, in] input is one GEMM of T*B rows, and a constant input
 * ([B, in], direct encoding) gives a constant output computed once per window.
 *
 * Sparse path: when the input is mostly zeros, as spikes are, forward adds the weight columns
 * of each row's nonzero inputs and the weight gradient adds the output gradient rows to those
 * inputs' columns (linear.cl), work in proportion to the nonzeros; the input gradient stays a
 * GEMM. `sparse: auto` takes it on host-memory backends (reading the measured density back is
 * a copy, not a wait on a device queue) when at most SPARSE_MAX_DENSITY of the inputs are
 * nonzero; `always` and `never` force a path (tests, OpenCL). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/backend.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "linear.cl"
#include "linear_cl.h"

static const spk_param_spec linear_params[] = {
    {"out", SPK_PARAM_INT, NULL, 1, 1e9, NULL, "number of output units"},
    {"bias", SPK_PARAM_BOOL, "true", 1, 0, NULL, "add a learnable bias"},
    {"sparse", SPK_PARAM_CHOICE, "auto", 0, 0, "auto|always|never",
     "follow the nonzero inputs (spikes) instead of a dense GEMM: auto chooses by the measured "
     "density on the CPU"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* weight is weights[0]; the bias, when present, weights[1] */
typedef struct linear_priv {
    int n_in, n_out;
    int w_weight, w_bias; /* w_bias = -1 without a bias */
    int s_list;           /* the sparse path's lists and transposed weight; -1 with never */
    int sparse_mode;      /* 0 auto, 1 always, 2 never */
    int sparse_now;       /* the path the last forward took, for its backward */
} linear_priv;

/* Forward and weight gradient of the sparse path cost ~out adds per nonzero input, against the
 * GEMM's in * out multiply-adds per row at several times the speed per operation, plus a pass
 * over the inputs for the lists. Measured with OpenBLAS on one core of this project's machine,
 * the GEMM won on every shipped model: fmnist_poisson_mlp's fc1 (784 -> 300, 29% nonzero:
 * forward 58 against 47 ms), the 10-output layers of fmnist_lif_mlp and fmnist_conv (7%), whose
 * rows are too short to amortise the lists. So auto takes it only for wide layers on very
 * sparse input. */
#define SPARSE_MAX_DENSITY 0.05
#define SPARSE_MIN_OUT     64
#define SPARSE_SAMPLES     64 /* rows whose nonzeros are counted for the density */
#define SPARSE_BLOCK_BYTES (256 << 10)

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
    p.sparse_mode = (int)h->param_num(l, "sparse");
    p.sparse_now = 0;
    p.s_list = -1;
    /* per row: its list (in + 1 floats) and the room for the transposed weight [in, out] (in
     * floats: enough when there are at least `out` rows, checked per call) */
    const int rows_time = l->in[0].time == SPK_TIME_STEPS ? SPK_TIME_STEPS : SPK_TIME_NONE;
    if (p.sparse_mode != 2 &&
        (p.s_list = h->add_state(l, "nonzero_lists", 2 * p.n_in + 1, rows_time, err)) < 0)
        return -p.s_list;
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

/* Where the transposed weight starts in the list state: after the rows' lists. */
static size_t linear_wt_at(const linear_priv *p, size_t rows)
{
    return rows * ((size_t)p->n_in + 1);
}

/* Outputs per block of the sparse kernels: the block's columns of the [in, out] transposed
 * weight (or its gradient) fit in SPARSE_BLOCK_BYTES, a multiple of 16 floats. */
static int linear_out_block(const linear_priv *p)
{
    int ob = SPARSE_BLOCK_BYTES / ((int)sizeof(float) * p->n_in) / 16 * 16;
    return ob < 16 ? 16 : ob > p->n_out ? p->n_out : ob;
}

/* Picks the path of this forward (and its backward) into p->sparse_now. */
static int linear_choose(spk_layer *l, spk_exec *x, size_t rows)
{
    linear_priv *p = l->priv;
    p->sparse_now = 0;
    if (p->s_list < 0 || rows < (size_t)p->n_out || p->sparse_mode == 2)
        return SPK_OK;
    if (p->sparse_mode == 1) {
        p->sparse_now = 1;
        return SPK_OK;
    }
    if (!spk_builtin_host_memory(x) || p->n_out < SPARSE_MIN_OUT)
        return SPK_OK;
    /* the counts go to the output, which either path then overwrites */
    const int ns = rows < SPARSE_SAMPLES ? (int)rows : SPARSE_SAMPLES;
    int rc =
        SPK_LAUNCH(l, x, "linear_count_nonzero", (size_t)ns, SPK_ARG_BUF(x->out),
                   SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(ns), SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in));
    float cnt[SPARSE_SAMPLES];
    if (!rc)
        rc = spk_builtin_read(x, x->out, 0, cnt, (size_t)ns);
    if (rc)
        return rc;
    double nz = 0.0;
    for (int i = 0; i < ns; i++)
        nz += cnt[i];
    p->sparse_now = nz <= SPARSE_MAX_DENSITY * (double)ns * p->n_in;
    return SPK_OK;
}

static int linear_sparse_fwd_run(spk_layer *l, spk_exec *x, size_t rows)
{
    const linear_priv *p = l->priv;
    spk_tensor *list = &l->state[p->s_list].t;
    const size_t at = linear_wt_at(p, rows);
    int n = p->n_in * p->n_out;
    int rc = SPK_LAUNCH(l, x, "linear_transpose_w", (size_t)n, SPK_ARG_BUF(list),
                        SPK_ARG_BUF(&l->weights[p->w_weight].value), SPK_ARG_INT(n),
                        SPK_ARG_INT(p->n_out), SPK_ARG_INT(p->n_in), SPK_ARG_INT(at));
    if (rc)
        return rc;
    rc = SPK_LAUNCH(l, x, "linear_sparse_lists", rows, SPK_ARG_BUF(list), SPK_ARG_BUF(x->in[0]),
                    SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in));
    const spk_tensor *bias = p->w_bias >= 0 ? &l->weights[p->w_bias].value : list;
    /* all outputs at once: blocks of outputs (as the weight gradient does) reread each row's
     * list and inputs once per block, which cost more than they saved in forward (measured on
     * fmnist_poisson_mlp's fc1) */
    const int ob = p->n_out;
    for (int o0 = 0; o0 < p->n_out && !rc; o0 += ob) {
        const int o1 = o0 + ob < p->n_out ? o0 + ob : p->n_out;
        rc = SPK_LAUNCH(l, x, "linear_sparse_forward", rows, SPK_ARG_BUF(x->out), SPK_ARG_BUF(list),
                        SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(bias), SPK_ARG_INT(rows),
                        SPK_ARG_INT(p->n_in), SPK_ARG_INT(p->n_out), SPK_ARG_INT(p->w_bias >= 0),
                        SPK_ARG_INT(at), SPK_ARG_INT(o0), SPK_ARG_INT(o1));
    }
    return rc;
}

static int linear_forward(spk_layer *l, spk_exec *x)
{
    const linear_priv *p = l->priv;
    const size_t rows = linear_rows(l, x);
    const size_t ni = (size_t)p->n_in, no = (size_t)p->n_out;
    int rc0 = linear_choose(l, x, rows);
    if (rc0)
        return rc0;
    if (p->sparse_now)
        return linear_sparse_fwd_run(l, x, rows);
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
    if (!w->frozen && p->sparse_now) {
        /* the transposed gradient over the nonzeros into the list state, then added to grad_W */
        spk_tensor *list = &l->state[p->s_list].t;
        const size_t at = linear_wt_at(p, rows);
        const int ob = linear_out_block(p), nb = (p->n_out + ob - 1) / ob;
        rc = SPK_LAUNCH(l, x, "linear_sparse_wgrad", (size_t)nb, SPK_ARG_BUF(list),
                        SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(nb),
                        SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in), SPK_ARG_INT(p->n_out),
                        SPK_ARG_INT(at), SPK_ARG_INT(ob));
        const int n = p->n_in * p->n_out;
        if (!rc)
            rc = SPK_LAUNCH(l, x, "linear_add_transposed", (size_t)n, SPK_ARG_BUF(&w->grad),
                            SPK_ARG_BUF(list), SPK_ARG_INT(n), SPK_ARG_INT(p->n_out),
                            SPK_ARG_INT(p->n_in), SPK_ARG_INT(at));
        if (rc)
            return rc;
    } else if (!w->frozen) {
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
    SPK_CPU_KERNEL(linear_bias),         SPK_CPU_KERNEL(linear_count_nonzero),
    SPK_CPU_KERNEL(linear_transpose_w),  SPK_CPU_KERNEL(linear_sparse_forward),
    SPK_CPU_KERNEL(linear_sparse_wgrad), SPK_CPU_KERNEL(linear_add_transposed),
    SPK_CPU_KERNEL(linear_sparse_lists), {0},
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
