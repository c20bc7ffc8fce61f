/* synapse.conv2d — a 2-D convolution over [C, H, W] inputs with PyTorch nn.Conv2d's layout
 * (weight [out, in/groups, kh, kw], bias [out]) and default initialisation, so checkpoints load
 * into torch. Time folds into the batch: the T*B (or B, for a constant input) images are one
 * im2col into columns [K, rows*P], one GEMM [out, K] x [K, rows*P] and one reorder to NCHW.
 * Backward: the weight gradient is one GEMM of the output gradient with the saved columns, the
 * input gradient one GEMM into columns and a col2im gather. Groups run as one GEMM with a
 * block-diagonal weight (zeros between groups): g times the multiply-adds of a per-group loop, but
 * one call.
 *
 * Sparse path (groups == 1): when the input is mostly zeros, as spikes are, the work follows the
 * nonzero inputs instead (conv2d.cl): forward adds each one's weight columns to the outputs it
 * reaches and the weight gradient adds the output gradient there, with no columns at all; the
 * input gradient, which is dense, stays one GEMM and col2im. `sparse: auto` takes it when the
 * backend's memory is the host's (reading the density back is a copy, not a wait on a device
 * queue) and the measured fraction of nonzero inputs is at most SPARSE_MAX_DENSITY; `always`
 * and `never` force a path (tests, OpenCL). */
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "conv2d.cl"
#include "conv2d_cl.h"

static const spk_param_spec conv2d_params[] = {
    {"out", SPK_PARAM_INT, NULL, 1, 1e9, NULL, "number of output channels"},
    {"kernel", SPK_PARAM_INT, NULL, 1, 1e6, NULL, "kernel height and width (square)"},
    {"stride", SPK_PARAM_INT, "1", 1, 1e6, NULL, "step between kernel positions"},
    {"padding", SPK_PARAM_INT, "0", 0, 1e6, NULL, "zeros added on every side"},
    {"dilation", SPK_PARAM_INT, "1", 1, 1e6, NULL, "spacing between kernel taps"},
    {"groups", SPK_PARAM_INT, "1", 1, 1e6, NULL,
     "channel groups (in and out must be divisible by it)"},
    {"bias", SPK_PARAM_BOOL, "true", 1, 0, NULL, "add a learnable bias per output channel"},
    {"sparse", SPK_PARAM_CHOICE, "auto", 0, 0, "auto|always|never",
     "follow the nonzero inputs (spikes) instead of im2col + GEMM: auto chooses by the measured "
     "density on the CPU"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct conv2d_priv {
    int C, H, W, O, OH, OW, k, stride, pad, dil, groups;
    int w_weight, w_bias;               /* w_bias = -1 without a bias */
    int s_col, s_dcol, s_ocol, s_wfull; /* state indices; s_wfull = -1 when groups == 1 */
    int s_list;                         /* the sparse path's nonzero lists; -1 with groups */
    int sparse_mode;                    /* 0 auto, 1 always, 2 never */
    int sparse_now;                     /* the path the last forward took, for its backward */
} conv2d_priv;

/* Sparse forward and weight gradient cost ~k*k*O adds per nonzero input against the GEMM's
 * C*k*k*O multiply-adds per output pixel; measured on the seed's conv2 (12->32, 5x5, 12x12) with
 * OpenBLAS on one core the sparse path stays ahead up to about this density. */
#define SPARSE_MAX_DENSITY 0.25
#define SPARSE_SAMPLES     64          /* images whose nonzeros are counted for the density */
#define SPARSE_BLOCKS      32          /* image blocks of the sparse weight gradient */
#define SPARSE_COL_BYTES   (256 << 10) /* input-gradient columns per GEMM on the CPU */

static int conv2d_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    const spk_shape *in = &l->in[0];
    if (in->ndim != 3)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input of shape [channels, height, width], got %d "
                             "dimension%s (input: {shape: [C, H, W]})",
                             in->ndim, in->ndim == 1 ? "" : "s");
    conv2d_priv p;
    p.C = in->dims[0], p.H = in->dims[1], p.W = in->dims[2];
    p.O = (int)h->param_num(l, "out");
    p.k = (int)h->param_num(l, "kernel");
    p.stride = (int)h->param_num(l, "stride");
    p.pad = (int)h->param_num(l, "padding");
    p.dil = (int)h->param_num(l, "dilation");
    p.groups = (int)h->param_num(l, "groups");
    if (p.C % p.groups || p.O % p.groups)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "groups: %d must divide the input channels (%d) and out (%d)",
                             p.groups, p.C, p.O);
    const long extent = (long)p.dil * (p.k - 1) + 1; /* the kernel's reach with dilation */
    const long ph = (long)p.H + 2L * p.pad, pw = (long)p.W + 2L * p.pad;
    if (extent > ph || extent > pw)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "kernel %d (dilation %d: extent %ld) is larger than the input "
                             "%dx%d with padding %d (%ldx%ld)",
                             p.k, p.dil, extent, p.H, p.W, p.pad, ph, pw);
    p.OH = (int)((ph - extent) / p.stride + 1);
    p.OW = (int)((pw - extent) / p.stride + 1);
    const int kk = p.k * p.k, K = p.C * kk, P = p.OH * p.OW;
    /* torch.nn.Conv2d.reset_parameters: kaiming_uniform(a=sqrt(5)) reduces to
     * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups * kh * kw; the bias the same */
    const float bound = 1.0f / sqrtf((float)(p.C / p.groups * kk));
    spk_init u = {SPK_INIT_UNIFORM, -bound, bound};
    spk_shape ws = {.ndim = 4, .dims = {p.O, p.C / p.groups, p.k, p.k}, .time = SPK_TIME_NONE};
    p.w_weight = h->add_weight(l, "weight", ws, u, err);
    if (p.w_weight < 0)
        return -p.w_weight;
    int rc = h->set_weight(l, p.w_weight, SPK_WEIGHT_DECAY, 0.0f, 0.0f, err);
    if (rc)
        return rc;
    p.w_bias = -1;
    if (h->param_num(l, "bias")) {
        spk_shape bs = {.ndim = 1, .dims = {p.O}, .time = SPK_TIME_NONE};
        p.w_bias = h->add_weight(l, "bias", bs, u, err);
        if (p.w_bias < 0)
            return -p.w_bias;
    }
    /* columns kept from forward for the weight gradient, their gradient, and the GEMM's
     * [O, rows*P] output (the output gradient's reorder in backward); per folded image */
    const int rows_time = in->time == SPK_TIME_STEPS ? SPK_TIME_STEPS : SPK_TIME_NONE;
    if ((p.s_col = h->add_state(l, "col", P * K, rows_time, err)) < 0)
        return -p.s_col;
    if ((p.s_dcol = h->add_state(l, "scratch_dcol", P * K, rows_time, err)) < 0)
        return -p.s_dcol;
    if ((p.s_ocol = h->add_state(l, "out_cols", P * p.O, rows_time, err)) < 0)
        return -p.s_ocol;
    p.s_wfull = -1;
    p.sparse_mode = (int)h->param_num(l, "sparse");
    p.sparse_now = 0;
    p.s_list = -1;
    /* the nonzero inputs of every input row: [C, H, 2 * W + 1] per image */
    if (p.groups == 1 && p.sparse_mode != 2 &&
        (p.s_list = h->add_state(l, "nonzero_lists", p.C * p.H * (2 * p.W + 1), rows_time, err)) <
            0)
        return -p.s_list;
    /* groups: the block-diagonal weight [O, K] (backward first puts the full weight gradient
     * there, then rebuilds the weight). A state holds B copies of per_sample (the batch is not
     * known here), so this spends B times what it needs. */
    if (p.groups > 1 && (p.s_wfull = h->add_state(l, "wfull", p.O * K, SPK_TIME_NONE, err)) < 0)
        return -p.s_wfull;
    spk_shape out = {.ndim = 3, .dims = {p.O, p.OH, p.OW}, .time = in->time};
    h->set_output(l, out);
    conv2d_priv *pp = malloc(sizeof *pp);
    if (!pp)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    *pp = p;
    h->set_priv(l, pp);
    return SPK_OK;
}

static void conv2d_destroy(spk_layer *l)
{
    free(l->priv);
}

/* Images in the folded batch: T*B over time, B when constant or time-free. */
static int conv2d_rows(const spk_layer *l, const spk_exec *x)
{
    return x->B * (l->in[0].time == SPK_TIME_STEPS ? x->T : 1);
}

/* The [O, K] matrix the GEMMs use: the weight itself, or its block-diagonal spread. */
static const spk_tensor *conv2d_wmat(spk_layer *l, spk_exec *x, int *rc)
{
    const conv2d_priv *p = l->priv;
    const spk_tensor *w = &l->weights[p->w_weight].value;
    *rc = SPK_OK;
    if (p->s_wfull < 0)
        return w;
    spk_tensor *wf = &l->state[p->s_wfull].t;
    const int kk = p->k * p->k, n = p->O * p->C * kk;
    *rc = SPK_LAUNCH(l, x, "conv2d_expand_groups", (size_t)n, SPK_ARG_BUF(wf), SPK_ARG_BUF(w),
                     SPK_ARG_INT(n), SPK_ARG_INT(p->O), SPK_ARG_INT(p->C), SPK_ARG_INT(kk),
                     SPK_ARG_INT(p->groups));
    return wf;
}

/* The dcol state doubles as the sparse path's scratch (it is idle there until the input
 * gradient's GEMM): the transposed weight [K, O] in forward, the weight gradient's partial sums
 * [SPARSE_BLOCKS, K, O] in backward. */
static int conv2d_sparse_fits(const conv2d_priv *p, const spk_tensor *dcol, int rows)
{
    const size_t KO = (size_t)p->C * p->k * p->k * p->O;
    const int nblk = rows < SPARSE_BLOCKS ? rows : SPARSE_BLOCKS;
    return KO * (size_t)nblk <= dcol->numel;
}

/* Picks the path of this forward (and its backward) into p->sparse_now. */
static int conv2d_choose(spk_layer *l, spk_exec *x, int rows)
{
    conv2d_priv *p = l->priv;
    p->sparse_now = 0;
    if (p->s_list < 0 || p->sparse_mode == 2 ||
        !conv2d_sparse_fits(p, &l->state[p->s_dcol].t, rows))
        return SPK_OK;
    if (p->sparse_mode == 1) {
        p->sparse_now = 1;
        return SPK_OK;
    }
    if (!spk_builtin_host_memory(x))
        return SPK_OK;
    /* the counts go to the columns' first values, which im2col overwrites when the dense path
     * is taken (the sparse one leaves the columns alone) */
    spk_tensor *scratch = &l->state[p->s_col].t;
    const int ns = rows < SPARSE_SAMPLES ? rows : SPARSE_SAMPLES;
    const int len = p->C * p->H * p->W, at = 0;
    int rc = SPK_LAUNCH(l, x, "conv2d_count_nonzero", (size_t)ns, SPK_ARG_BUF(scratch),
                        SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(ns), SPK_ARG_INT(rows), SPK_ARG_INT(len),
                        SPK_ARG_INT(at));
    float cnt[SPARSE_SAMPLES];
    if (!rc)
        rc = spk_builtin_read(x, scratch, (size_t)at, cnt, (size_t)ns);
    if (rc)
        return rc;
    double nz = 0.0;
    for (int i = 0; i < ns; i++)
        nz += cnt[i];
    p->sparse_now = nz <= SPARSE_MAX_DENSITY * (double)ns * len;
    return SPK_OK;
}

/* Forward over the nonzero inputs: the transposed weight, then one pass per image that lists
 * the nonzeros (kept for backward) and adds their weight columns. */
static int conv2d_sparse_fwd_run(spk_layer *l, spk_exec *x, int rows)
{
    const conv2d_priv *p = l->priv;
    const int K = p->C * p->k * p->k;
    spk_tensor *list = &l->state[p->s_list].t, *wt = &l->state[p->s_dcol].t;
    spk_tensor *acc = &l->state[p->s_ocol].t;
    int n = K * p->O;
    int rc = SPK_LAUNCH(l, x, "conv2d_transpose_w", (size_t)n, SPK_ARG_BUF(wt),
                        SPK_ARG_BUF(&l->weights[p->w_weight].value), SPK_ARG_INT(n),
                        SPK_ARG_INT(p->O), SPK_ARG_INT(K), SPK_ARG_INT(p->k));
    if (rc)
        return rc;
    const spk_tensor *bias = p->w_bias >= 0 ? &l->weights[p->w_bias].value : wt;
    n = rows;
    return SPK_LAUNCH(l, x, "conv2d_sparse_forward", (size_t)n, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(acc), SPK_ARG_BUF(list), SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(wt),
                      SPK_ARG_BUF(bias), SPK_ARG_INT(n), SPK_ARG_INT(p->C), SPK_ARG_INT(p->H),
                      SPK_ARG_INT(p->W), SPK_ARG_INT(p->O), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW),
                      SPK_ARG_INT(p->k), SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad),
                      SPK_ARG_INT(p->dil), SPK_ARG_INT(p->w_bias >= 0));
}

static int conv2d_forward(spk_layer *l, spk_exec *x)
{
    const conv2d_priv *p = l->priv;
    const int rows = conv2d_rows(l, x), P = p->OH * p->OW, K = p->C * p->k * p->k;
    const size_t M = (size_t)rows * P;
    spk_tensor *col = &l->state[p->s_col].t, *yo = &l->state[p->s_ocol].t;
    /* the kernels index in int: the columns, the output and the input must fit */
    if ((double)M * K > INT_MAX || (double)M * p->O > INT_MAX ||
        (double)rows * p->C * p->H * p->W > INT_MAX)
        return l->host->error(x, SPK_ERR_SHAPE,
                              "layer '%s': %d images of %d x %d column values exceed the int "
                              "indexing of the kernels; use a smaller batch",
                              l->name, rows, P, K > p->O ? K : p->O);
    int rc = conv2d_choose(l, x, rows);
    if (rc)
        return rc;
    if (p->sparse_now)
        return conv2d_sparse_fwd_run(l, x, rows);
    int n = K * rows;
    rc = SPK_LAUNCH(l, x, "conv2d_im2col", (size_t)n, SPK_ARG_BUF(col), SPK_ARG_BUF(x->in[0]),
                    SPK_ARG_INT(n), SPK_ARG_INT(rows), SPK_ARG_INT(p->C), SPK_ARG_INT(p->H),
                    SPK_ARG_INT(p->W), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW), SPK_ARG_INT(p->k),
                    SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad), SPK_ARG_INT(p->dil));
    if (rc)
        return rc;
    const spk_tensor *wm = conv2d_wmat(l, x, &rc);
    if (rc)
        return rc;
    /* yo[O, M] = W[O, K] * col[K, M] */
    rc = l->host->gemm(x, 0, 0, (size_t)p->O, M, (size_t)K, 1.0f, wm, (size_t)K, col, M, 0.0f, yo,
                       M);
    if (rc)
        return rc;
    const spk_tensor *bias = p->w_bias >= 0 ? &l->weights[p->w_bias].value : wm;
    n = rows * p->O;
    return SPK_LAUNCH(l, x, "conv2d_to_nchw", (size_t)n, SPK_ARG_BUF(x->out), SPK_ARG_BUF(yo),
                      SPK_ARG_BUF(bias), SPK_ARG_INT(n), SPK_ARG_INT(rows), SPK_ARG_INT(p->O),
                      SPK_ARG_INT(P), SPK_ARG_INT(p->w_bias >= 0));
}

/* Backward of the sparse path. The weight gradient follows the nonzero inputs; the bias
 * gradient sums the NCHW output gradient's runs per channel; the input
 * gradient, dense, is the GEMM W^T gt^T into columns [K, pixels] and their col2im, a few
 * images at a time so that the columns stay in the CPU's cache. */
static int conv2d_sparse_bwd_run(spk_layer *l, spk_exec *x, int rows)
{
    const conv2d_priv *p = l->priv;
    const int K = p->C * p->k * p->k, P = p->OH * p->OW;
    spk_tensor *list = &l->state[p->s_list].t, *scratch = &l->state[p->s_dcol].t;
    spk_tensor *gt = &l->state[p->s_ocol].t;
    spk_weight *w = &l->weights[p->w_weight];
    int n = rows * P;
    int rc =
        SPK_LAUNCH(l, x, "conv2d_to_pixel_major", (size_t)n, SPK_ARG_BUF(gt),
                   SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(n), SPK_ARG_INT(p->O), SPK_ARG_INT(P));
    if (rc)
        return rc;
    if (!w->frozen) {
        const int nblk = rows < SPARSE_BLOCKS ? rows : SPARSE_BLOCKS;
        n = p->C * nblk;
        rc =
            SPK_LAUNCH(l, x, "conv2d_sparse_wgrad", (size_t)n, SPK_ARG_BUF(scratch),
                       SPK_ARG_BUF(gt), SPK_ARG_BUF(list), SPK_ARG_INT(n), SPK_ARG_INT(rows),
                       SPK_ARG_INT(nblk), SPK_ARG_INT(p->C), SPK_ARG_INT(p->H), SPK_ARG_INT(p->W),
                       SPK_ARG_INT(p->O), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW), SPK_ARG_INT(p->k),
                       SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad), SPK_ARG_INT(p->dil));
        n = p->O * K;
        if (!rc)
            rc = SPK_LAUNCH(l, x, "conv2d_sparse_wgrad_sum", (size_t)n, SPK_ARG_BUF(&w->grad),
                            SPK_ARG_BUF(scratch), SPK_ARG_INT(n), SPK_ARG_INT(p->O), SPK_ARG_INT(K),
                            SPK_ARG_INT(nblk), SPK_ARG_INT(p->k));
        if (rc)
            return rc;
    }
    /* the bias gradient: column sums of the pixel-major gradient, rows (image, pixel) in order
     * from 0 as before; the host's column sum runs the O channels in SIMD lanes where a kernel
     * per channel ran O dependent chains of rows * P adds (2.3% of fmnist_conv's step) */
    if (p->w_bias >= 0 && !l->weights[p->w_bias].frozen &&
        (rc = l->host->reduce_grad(x, &l->weights[p->w_bias].grad, gt, rows * P, p->O)))
        return rc;
    if (!x->grad_in[0])
        return SPK_OK;
    /* blocks of images on one CPU thread; with more threads one GEMM and one col2im over all
     * the images, each spread over the threads (a fork per block of a few images cost more than
     * the cache saved, and collapses when a busy neighbour holds a core) */
    int chunk = rows;
    if (spk_builtin_host_memory(x) && omp_get_max_threads() == 1) {
        chunk = SPARSE_COL_BYTES / ((int)sizeof(float) * P * K);
        chunk = chunk < 1 ? 1 : chunk > rows ? rows : chunk;
    }
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        const int ch = rows - r0 < chunk ? rows - r0 : chunk;
        const size_t cols = (size_t)ch * P;
        /* dcol[K, ch * P] = W^T[K, O] * gt[r0 * P.., O]^T */
        rc = spk_builtin_gemm_at(x, 1, 1, (size_t)K, cols, (size_t)p->O, 1.0f, &w->value, 0,
                                 (size_t)K, gt, (size_t)r0 * P * p->O, (size_t)p->O, 0.0f, scratch,
                                 0, cols);
        if (rc)
            return rc;
        n = ch * p->C;
        rc = SPK_LAUNCH(l, x, "conv2d_col2im", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                        SPK_ARG_BUF(scratch), SPK_ARG_INT(n), SPK_ARG_INT(ch), SPK_ARG_INT(p->C),
                        SPK_ARG_INT(p->H), SPK_ARG_INT(p->W), SPK_ARG_INT(p->OH),
                        SPK_ARG_INT(p->OW), SPK_ARG_INT(p->k), SPK_ARG_INT(p->stride),
                        SPK_ARG_INT(p->pad), SPK_ARG_INT(p->dil), SPK_ARG_INT(r0));
        if (rc)
            return rc;
    }
    return SPK_OK;
}

static int conv2d_backward(spk_layer *l, spk_exec *x)
{
    const conv2d_priv *p = l->priv;
    const int rows = conv2d_rows(l, x), P = p->OH * p->OW, kk = p->k * p->k, K = p->C * kk;
    const size_t M = (size_t)rows * P;
    spk_tensor *col = &l->state[p->s_col].t, *go = &l->state[p->s_ocol].t;
    spk_weight *w = &l->weights[p->w_weight];
    if (p->sparse_now)
        return conv2d_sparse_bwd_run(l, x, rows);
    int n = rows * p->O;
    /* go = the output gradient as [O, M] */
    int rc =
        SPK_LAUNCH(l, x, "conv2d_from_nchw", (size_t)n, SPK_ARG_BUF(go), SPK_ARG_BUF(x->grad_out),
                   SPK_ARG_INT(n), SPK_ARG_INT(rows), SPK_ARG_INT(p->O), SPK_ARG_INT(P));
    if (rc)
        return rc;
    if (!w->frozen) {
        if (p->s_wfull < 0) {
            /* grad_W[O, K] += go[O, M] * col^T[M, K] */
            rc = l->host->gemm(x, 0, 1, (size_t)p->O, (size_t)K, M, 1.0f, go, M, col, M, 1.0f,
                               &w->grad, (size_t)K);
        } else {
            /* the full [O, C*kk] gradient into wfull (the spread weight is rebuilt below
             * before it is used again), then its diagonal blocks into grad_W */
            spk_tensor *wf = &l->state[p->s_wfull].t;
            rc = l->host->gemm(x, 0, 1, (size_t)p->O, (size_t)K, M, 1.0f, go, M, col, M, 0.0f, wf,
                               (size_t)K);
            const int ng = p->O * (p->C / p->groups) * kk;
            if (!rc)
                rc = SPK_LAUNCH(l, x, "conv2d_gather_groups", (size_t)ng, SPK_ARG_BUF(&w->grad),
                                SPK_ARG_BUF(wf), SPK_ARG_INT(ng), SPK_ARG_INT(p->O),
                                SPK_ARG_INT(p->C), SPK_ARG_INT(kk), SPK_ARG_INT(p->groups));
        }
        if (rc)
            return rc;
    }
    if (p->w_bias >= 0 && !l->weights[p->w_bias].frozen) {
        rc = SPK_LAUNCH(l, x, "conv2d_bias_grad", (size_t)p->O,
                        SPK_ARG_BUF(&l->weights[p->w_bias].grad), SPK_ARG_BUF(go),
                        SPK_ARG_INT(p->O), SPK_ARG_INT(M));
        if (rc)
            return rc;
    }
    if (!x->grad_in[0])
        return SPK_OK;
    const spk_tensor *wm = conv2d_wmat(l, x, &rc);
    if (rc)
        return rc;
    /* dcol[K, M] = W^T[K, O] * go[O, M], then gathered back onto the input */
    spk_tensor *dcol = &l->state[p->s_dcol].t;
    rc = l->host->gemm(x, 1, 0, (size_t)K, M, (size_t)p->O, 1.0f, wm, (size_t)K, go, M, 0.0f, dcol,
                       M);
    if (rc)
        return rc;
    n = rows * p->C;
    return SPK_LAUNCH(l, x, "conv2d_col2im", (size_t)n, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(dcol), SPK_ARG_INT(n), SPK_ARG_INT(rows), SPK_ARG_INT(p->C),
                      SPK_ARG_INT(p->H), SPK_ARG_INT(p->W), SPK_ARG_INT(p->OH), SPK_ARG_INT(p->OW),
                      SPK_ARG_INT(p->k), SPK_ARG_INT(p->stride), SPK_ARG_INT(p->pad),
                      SPK_ARG_INT(p->dil), SPK_ARG_INT(0));
}

static const spk_cpu_kernel conv2d_cpu_kernels[] = {
    SPK_CPU_KERNEL(conv2d_count_nonzero),
    SPK_CPU_KERNEL(conv2d_transpose_w),
    SPK_CPU_KERNEL(conv2d_sparse_forward),
    SPK_CPU_KERNEL(conv2d_to_pixel_major),
    SPK_CPU_KERNEL(conv2d_sparse_wgrad),
    SPK_CPU_KERNEL(conv2d_sparse_wgrad_sum),
    SPK_CPU_KERNEL(conv2d_im2col),
    SPK_CPU_KERNEL(conv2d_col2im),
    SPK_CPU_KERNEL(conv2d_to_nchw),
    SPK_CPU_KERNEL(conv2d_from_nchw),
    SPK_CPU_KERNEL(conv2d_bias_grad),
    SPK_CPU_KERNEL(conv2d_expand_groups),
    SPK_CPU_KERNEL(conv2d_gather_groups),
    {0},
};

const spk_layer_type spk_builtin_synapse_conv2d = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "synapse.conv2d",
    .kind = SPK_KIND_SYNAPSE,
    .summary = "2-D convolution over [C, H, W] (torch nn.Conv2d layout and init)",
    .params = conv2d_params,
    .init = conv2d_init,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .destroy = conv2d_destroy,
    .memory = SPK_MEM_OUT_FORWARD_ONLY,
    .kernels = {.owner = "synapse.conv2d",
                .opencl_source = conv2d_cl_source,
                .cpu_kernels = conv2d_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_synapse_conv2d);
