/* synapse.linear — a fully connected layer, y = x W^T + b, with PyTorch nn.Linear's layout
 * (weight [out, in], bias [out]) and default initialisation, so checkpoints load into torch.
 * Time folds into the rows: a [T, B, in] input is one GEMM of T*B rows, and a constant input
 * ([B, in], direct encoding) gives a constant output computed once per window.
 *
 * Spike input has two more paths (linear.cl), both fed by a packed bit state (a bit per input,
 * ceil(in / 32) words per row) that one pass over the input makes, counting the nonzeros and
 * the values other than 0 and 1 on the way:
 * - list: forward adds the weight columns of each row's set bits, the weight gradient the
 *   output gradient rows into those inputs' columns; work in proportion to the nonzeros, exact
 *   for any values. Below SPARSE_MAX_DENSITY nonzeros.
 * - table (input exactly 0 or 1, the Method of Four Russians): per tile of outputs and chunk of
 *   8 inputs, the 256 subset sums of the chunk's weight columns; a row adds one of them per
 *   chunk, ~8x fewer adds than the GEMM's multiply-adds. The weight gradient likewise, with
 *   subset sums of 8 rows of the output gradient looked up by each input's bits in those rows.
 * The input gradient stays a GEMM. `sparse: auto` chooses on host-memory backends, where reading
 * the counts back is a copy, not a wait on a device queue; OpenCL runs the GEMMs unless a model
 * says `always` (list) or `bits` (table, which refuses input that is not binary). Both need
 * room in the scratch state (2 ceil(in / 32) + 192 floats per row: enough from a few hundred
 * rows); where it is short, `always` falls back to the GEMMs and `bits` to loops over each row's
 * bits. After packing, `bits` reads only the bits, so it promises the session (host->set_memory)
 * that its input's floats are free once packed: the output may overwrite them, and backward
 * never reads them. */
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
    {"sparse", SPK_PARAM_CHOICE, "auto", 0, 0, "auto|always|never|bits",
     "spike input: follow the nonzero inputs (always) or sum tables of weight subsets over the "
     "input bits (bits, input of 0s and 1s) instead of a dense GEMM; auto chooses by the "
     "measured input on the CPU"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

enum { MODE_AUTO, MODE_ALWAYS, MODE_NEVER, MODE_BITS };
enum { PATH_DENSE, PATH_LIST, PATH_TABLE };

/* How the last forward ran, for its backward. Scratch layout (floats): the transposed bits
 * [ceil(rows / 32), in] (table path only), 3 counts per 32 rows at cnt_at, then from work_at
 * the tables (table path) or the transposed weight and its gradient (list path). */
typedef struct linear_plan {
    int path;
    int nt, g; /* table path: tile width and chunks per group; list path: outputs per block in
                  forward and in the weight gradient */
    int cnt_at, work_at;    /* float offsets in the scratch */
    int fwd_wave, bwd_wave; /* tiles per launch: as many as the scratch holds */
    int rb;                 /* table path: rows per block in forward */
} linear_plan;

/* weight is weights[0]; the bias, when present, weights[1] */
typedef struct linear_priv {
    int n_in, n_out;
    int w_weight, w_bias; /* w_bias = -1 without a bias */
    int s_bits, s_scr;    /* the bit state and the scratch; -1 with never */
    int sparse_mode;      /* MODE_* */
    linear_plan plan;
} linear_priv;

/* List path: forward and weight gradient cost ~out adds per nonzero input, against the GEMM's
 * in * out multiply-adds per row at several times the speed per operation. Measured with
 * OpenBLAS on one core of this project's machine, the GEMM won on every shipped model's dense
 * spikes (fmnist_poisson_mlp's fc1, 29% nonzero: forward 58 against 47 ms) and on the
 * 10-output layers (7%), whose rows are too short to amortise the walk. So auto takes it only
 * for wide layers on very sparse input. */
#define SPARSE_MAX_DENSITY 0.05
#define SPARSE_MIN_OUT     64
#define SPARSE_SAMPLES     64 /* rows whose values are counted before anything else */
#define SPARSE_BLOCK_BYTES (256 << 10)
/* Table path: in / 8 adds of a tile per row and tile, plus the tables (255 adds of a tile per
 * 8 inputs and tile per group of chunks, and in the weight gradient per 8 rows). Measured on
 * one core (Poisson 784 -> out, fc forward + backward against the GEMMs): out 16 breaks even
 * at 1024 rows; out 32 gains 12% at 512 rows and 30-40% from 1024; out 64 breaks even at 512
 * rows (the scratch holds only narrow tiles there) and gains 35-45% from 1024; 256 rows lose
 * (narrow tiles, one chunk per group). So auto takes it from BITS_MIN_ROWS rows and
 * BITS_MIN_OUT outputs. BITS_G chunks per group: G tables of 256 x 64 floats (64 KiB each)
 * stay in L2 while the rows are looked up, beside the rows' sums that stream through it; 4
 * chunks are one word of each row's bits. On a Zen 4 core (1 MiB L2), bench/models/
 * on_lif_4096.yaml's fc forward took 1.8-2.1 s with 8, 1.2 s with 4 and 1.1-1.2 s with 3,
 * before the word-major bits (linear.cl); fmnist_poisson_mlp's fc1 is within noise. */
#define BITS_MIN_ROWS  512
#define BITS_MIN_OUT   32
#define BITS_G         4
#define BITS_ROW_BLOCK 8192
/* Floats per row for tables, beyond the transposed bits: room for two or more tiles per launch
 * (fmnist_poisson_mlp's fc1, 3,200 rows: 2 in forward, 3 in the weight gradient), which the
 * threads share (SPK_FOR_TASKS). */
#define SCRATCH_ROW_EXTRA 192

static int linear_words(int n_in)
{
    return (n_in + 31) / 32;
}

static int linear_init(spk_layer *l, spk_error *err)
{
    const spk_host_api *h = l->host;
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    linear_priv p;
    memset(&p, 0, sizeof p);
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
    /* bits: after packing the input's bits, forward and backward read only those, never its
     * floats ([T, B, in] of them against in / 8 bytes a row), whose memory the session may
     * then give to the output or to gradients */
    if (p.sparse_mode == MODE_BITS)
        h->set_memory(l, l->memory | SPK_MEM_BACKWARD_NO_INPUT | SPK_MEM_OUT_IN_PLACE);
    p.s_bits = p.s_scr = -1;
    /* per row: its bits; and scratch for the transposed bits (their blocks of 32 rows need
     * twice a row's words when rows are few), the counts and the tables or transposed weight,
     * whose room each call checks. Named scratch*: not results to compare between backends. */
    const int rows_time = l->in[0].time == SPK_TIME_STEPS ? SPK_TIME_STEPS : SPK_TIME_NONE;
    const int nw = linear_words(p.n_in);
    if (p.sparse_mode != MODE_NEVER) {
        p.s_bits = h->add_state(l, "scratch_bits", nw, rows_time, err);
        if (p.s_bits < 0)
            return -p.s_bits;
        p.s_scr = h->add_state(l, "scratch", 2 * nw + SCRATCH_ROW_EXTRA, rows_time, err);
        if (p.s_scr < 0)
            return -p.s_scr;
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

/* The path the last forward of layer l took (PATH_*: 0 dense, 1 list, 2 table): for the
 * tests, which link the library's objects. */
int spk_linear_path(const spk_layer *l);
int spk_linear_path(const spk_layer *l)
{
    const linear_priv *p = l->priv;
    return p ? p->plan.path : -1;
}

/* Rows of the folded input: T*B over time, B when constant or time-free. */
static size_t linear_rows(const spk_layer *l, const spk_exec *x)
{
    return (size_t)x->B * (l->in[0].time == SPK_TIME_STEPS ? (size_t)x->T : 1u);
}

/* Outputs per block of the list path's weight gradient: the block's columns of the [in, out]
 * transposed gradient fit in SPARSE_BLOCK_BYTES, a multiple of 16 floats. */
static int linear_out_block(const linear_priv *p)
{
    int ob = SPARSE_BLOCK_BYTES / ((int)sizeof(float) * p->n_in) / 16 * 16;
    return ob < 16 ? 16 : ob > p->n_out ? p->n_out : ob;
}

/* The table path's plan for `rows` rows in a scratch of cap floats (the transposed bits first):
 * the widest tile (64, 32, 16 outputs, no wider than the layer needs) whose tables for one
 * chunk and the weight gradient's accumulator fit, then as many chunks per group (up to
 * BITS_G) and tiles per launch as fit. 0 when nothing fits. */
static int linear_plan_table(const linear_priv *p, size_t rows, size_t cap, linear_plan *pl)
{
    const size_t nb32 = (rows + 31) / 32, ni = (size_t)p->n_in;
    /* the tables start on a 64-byte line (the scratch does): a table row read across lines
     * costs twice the loads, and the lookups are bound by them (fmnist_poisson_mlp's fc1 on one
     * core: the forward and weight-gradient kernels 5.5 -> 3.5 ms each) */
    const size_t work = (nb32 * (ni + 3) + 15) / 16 * 16;
    const int nt_max = p->n_out > 32 ? 64 : p->n_out > 16 ? 32 : 16;
    for (int nt = nt_max; nt >= 16; nt /= 2) {
        /* forward: tables and a block of row sums; weight gradient: tables, accumulators */
        const size_t tab = 256u * (size_t)nt, acc = (ni + 1) * (size_t)nt;
        if (work + tab + acc > cap)
            continue;
        size_t g = (cap - work - acc) / tab;
        g = g > BITS_G ? BITS_G : g;
        size_t rb = rows < BITS_ROW_BLOCK ? rows : BITS_ROW_BLOCK;
        if (work + g * tab + rb * (size_t)nt > cap)
            rb = (cap - work - g * tab) / (size_t)nt;
        const size_t tiles = ((size_t)p->n_out + (size_t)nt - 1) / (size_t)nt;
        size_t fw = (cap - work) / (g * tab + rb * (size_t)nt), bw = (cap - work) / (g * tab + acc);
        pl->path = PATH_TABLE;
        pl->nt = nt;
        pl->g = (int)g;
        pl->rb = (int)rb;
        pl->cnt_at = (int)(nb32 * ni);
        pl->work_at = (int)work;
        pl->fwd_wave = (int)(fw < tiles ? fw : tiles);
        pl->bwd_wave = (int)(bw < tiles ? bw : tiles);
        return 1;
    }
    return 0;
}

/* The list path's plan: the transposed weight (or gradient) of a block of outputs after the
 * counts, in blocks as wide as fit (forward: all outputs if they do; the weight gradient's also
 * within SPARSE_BLOCK_BYTES, which keeps them in cache over the rows). */
static int linear_plan_list(const linear_priv *p, size_t rows, size_t cap, linear_plan *pl)
{
    const size_t work = 3 * ((rows + 31) / 32);
    if (work + (size_t)p->n_in > cap)
        return 0;
    size_t ob = (cap - work) / (size_t)p->n_in;
    ob = ob > (size_t)p->n_out ? (size_t)p->n_out : ob;
    const int cb = linear_out_block(p);
    memset(pl, 0, sizeof *pl);
    pl->path = PATH_LIST;
    pl->work_at = (int)work;
    pl->nt = (int)ob;
    pl->g = cb < (int)ob ? cb : (int)ob;
    return 1;
}

/* Bits (and with a table plan the transposed bits) and counts of all rows; with `counts`, the
 * counts read back: nonzeros, values other than 0 and 1, and the last of those. */
static int linear_pack_run(spk_layer *l, spk_exec *x, size_t rows, const linear_plan *pl,
                           double counts[3])
{
    const linear_priv *p = l->priv;
    spk_tensor *bits = &l->state[p->s_bits].t, *scr = &l->state[p->s_scr].t;
    const size_t nb32 = (rows + 31) / 32;
    int rc = SPK_LAUNCH(l, x, "linear_pack", nb32, SPK_ARG_BUF(bits), SPK_ARG_BUF(scr),
                        SPK_ARG_BUF(scr), SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(nb32),
                        SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in),
                        SPK_ARG_INT(pl->path == PATH_TABLE), SPK_ARG_INT(pl->cnt_at));
    if (rc || !counts)
        return rc;
    float *c = malloc(3 * nb32 * sizeof *c);
    if (!c)
        return spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory");
    rc = spk_builtin_read(x, scr, (size_t)pl->cnt_at, c, 3 * nb32);
    counts[0] = counts[1] = counts[2] = 0.0;
    for (size_t b = 0; !rc && b < nb32; b++) {
        counts[0] += c[3 * b];
        counts[1] += c[3 * b + 1];
        if (c[3 * b + 1] > 0.0f)
            counts[2] = c[3 * b + 2];
    }
    free(c);
    return rc;
}

/* Picks the path of this forward (and its backward) into p->plan and packs the bits for the
 * list and table paths. */
static int linear_choose(spk_layer *l, spk_exec *x, size_t rows)
{
    linear_priv *p = l->priv;
    linear_plan *pl = &p->plan;
    memset(pl, 0, sizeof *pl);
    if (p->sparse_mode == MODE_NEVER)
        return SPK_OK;
    const size_t cap = l->state[p->s_scr].t.numel;
    linear_plan table, list;
    const int table_fits = linear_plan_table(p, rows, cap, &table);
    const int list_fits = linear_plan_list(p, rows, cap, &list);
    double cnt[3];
    if (p->sparse_mode == MODE_ALWAYS) {
        if (list_fits)
            *pl = list;
        return list_fits ? linear_pack_run(l, x, rows, pl, NULL) : SPK_OK;
    }
    if (p->sparse_mode == MODE_BITS) {
        /* checked on every backend (a read back): a table sum over other values would be
         * silently wrong. Without room for the tables, the counts go to the scratch's start. */
        linear_plan pack;
        memset(&pack, 0, sizeof pack);
        int rc = linear_pack_run(l, x, rows, table_fits ? &table : &pack, cnt);
        if (rc)
            return rc;
        if (cnt[1] > 0)
            return spk_error_set(x->err, SPK_ERR_INVALID,
                                 "sparse: bits needs inputs that are 0 or 1, found %g", cnt[2]);
        if (table_fits)
            *pl = table;
        return SPK_OK;
    }
    if (!spk_builtin_host_memory(x) || p->n_out < BITS_MIN_OUT || (!table_fits && !list_fits))
        return SPK_OK;
    /* a sample of rows first (its counts go to the output, which every path overwrites) */
    const int ns = rows < SPARSE_SAMPLES ? (int)rows : SPARSE_SAMPLES;
    if (2 * (size_t)ns > x->out->numel)
        return SPK_OK;
    int rc =
        SPK_LAUNCH(l, x, "linear_count_nonzero", (size_t)ns, SPK_ARG_BUF(x->out),
                   SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(ns), SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in));
    float c[2 * SPARSE_SAMPLES];
    if (!rc)
        rc = spk_builtin_read(x, x->out, 0, c, 2 * (size_t)ns);
    if (rc)
        return rc;
    double nz = 0.0, odd = 0.0;
    for (int i = 0; i < ns; i++)
        nz += c[2 * i], odd += c[2 * i + 1];
    const double dens = nz / ((double)ns * p->n_in);
    const int list_ok = list_fits && p->n_out >= SPARSE_MIN_OUT;
    if (odd == 0 && table_fits && rows >= BITS_MIN_ROWS &&
        !(list_ok && dens <= SPARSE_MAX_DENSITY)) {
        /* binary so far: all rows packed and counted, the table path if they all are */
        if ((rc = linear_pack_run(l, x, rows, &table, cnt)))
            return rc;
        if (cnt[1] == 0) {
            *pl = table;
            return SPK_OK;
        }
        if (!(list_ok && cnt[0] <= SPARSE_MAX_DENSITY * (double)rows * p->n_in))
            return SPK_OK;
    } else if (!(list_ok && dens <= SPARSE_MAX_DENSITY)) {
        return SPK_OK;
    }
    *pl = list;
    return linear_pack_run(l, x, rows, pl, NULL);
}

static int linear_list_forward(spk_layer *l, spk_exec *x, size_t rows)
{
    const linear_priv *p = l->priv;
    spk_tensor *bits = &l->state[p->s_bits].t, *scr = &l->state[p->s_scr].t;
    const spk_tensor *bias = p->w_bias >= 0 ? &l->weights[p->w_bias].value : scr;
    const int at = p->plan.work_at;
    int rc = SPK_OK;
    for (int o0 = 0; o0 < p->n_out && !rc; o0 += p->plan.nt) {
        const int o1 = p->n_out - o0 < p->plan.nt ? p->n_out : o0 + p->plan.nt;
        const int n = p->n_in * (o1 - o0);
        rc = SPK_LAUNCH(l, x, "linear_transpose_w", (size_t)n, SPK_ARG_BUF(scr),
                        SPK_ARG_BUF(&l->weights[p->w_weight].value), SPK_ARG_INT(n),
                        SPK_ARG_INT(p->n_in), SPK_ARG_INT(at), SPK_ARG_INT(o0),
                        SPK_ARG_INT(o1 - o0));
        if (!rc)
            rc = SPK_LAUNCH(l, x, "linear_sparse_forward", rows, SPK_ARG_BUF(x->out),
                            SPK_ARG_BUF(bits), SPK_ARG_BUF(scr), SPK_ARG_BUF(x->in[0]),
                            SPK_ARG_BUF(bias), SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in),
                            SPK_ARG_INT(p->n_out), SPK_ARG_INT(p->w_bias >= 0), SPK_ARG_INT(at),
                            SPK_ARG_INT(o0), SPK_ARG_INT(o1));
    }
    return rc;
}

/* Tiles in waves of as many as the scratch holds tables for. */
static int linear_table_forward(spk_layer *l, spk_exec *x, size_t rows)
{
    const linear_priv *p = l->priv;
    const linear_plan *pl = &p->plan;
    spk_tensor *bits = &l->state[p->s_bits].t, *scr = &l->state[p->s_scr].t;
    const spk_tensor *bias = p->w_bias >= 0 ? &l->weights[p->w_bias].value : scr;
    const int tiles = (p->n_out + pl->nt - 1) / pl->nt;
    int rc = SPK_OK;
    for (int t0 = 0; t0 < tiles && !rc; t0 += pl->fwd_wave) {
        const int n = tiles - t0 < pl->fwd_wave ? tiles - t0 : pl->fwd_wave;
        rc = SPK_LAUNCH(l, x, "linear_bits_forward", (size_t)n, SPK_ARG_BUF(x->out),
                        SPK_ARG_BUF(bits), SPK_ARG_BUF(&l->weights[p->w_weight].value),
                        SPK_ARG_BUF(bias), SPK_ARG_BUF(scr), SPK_ARG_INT(n), SPK_ARG_INT(t0),
                        SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in), SPK_ARG_INT(p->n_out),
                        SPK_ARG_INT(p->w_bias >= 0), SPK_ARG_INT(pl->rb), SPK_ARG_INT(pl->work_at),
                        SPK_ARG_INT(pl->nt), SPK_ARG_INT(pl->g));
    }
    return rc;
}

static int linear_forward(spk_layer *l, spk_exec *x)
{
    const linear_priv *p = l->priv;
    const size_t rows = linear_rows(l, x);
    const size_t ni = (size_t)p->n_in, no = (size_t)p->n_out;
    int rc = linear_choose(l, x, rows);
    if (rc)
        return rc;
    if (p->plan.path == PATH_LIST)
        return linear_list_forward(l, x, rows);
    if (p->plan.path == PATH_TABLE)
        return linear_table_forward(l, x, rows);
    if (p->sparse_mode == MODE_BITS) /* too few rows for the tables: from the bits, per row */
        return SPK_LAUNCH(l, x, "linear_bits_forward_rows", rows, SPK_ARG_BUF(x->out),
                          SPK_ARG_BUF(&l->state[p->s_bits].t),
                          SPK_ARG_BUF(&l->weights[p->w_weight].value),
                          SPK_ARG_BUF(p->w_bias >= 0 ? &l->weights[p->w_bias].value
                                                     : &l->weights[p->w_weight].value),
                          SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in), SPK_ARG_INT(p->n_out),
                          SPK_ARG_INT(p->w_bias >= 0));
    /* y[rows, out] = x[rows, in] * W^T */
    rc = l->host->gemm(x, 0, 1, rows, no, ni, 1.0f, x->in[0], ni, &l->weights[p->w_weight].value,
                       ni, 0.0f, x->out, no);
    if (rc || p->w_bias < 0)
        return rc;
    return SPK_LAUNCH(l, x, "linear_bias", rows * no, SPK_ARG_BUF(x->out),
                      SPK_ARG_BUF(&l->weights[p->w_bias].value), SPK_ARG_INT(rows * no),
                      SPK_ARG_INT(no));
}

/* grad_W += the list path's gradient over the set bits, a block of outputs at a time. */
static int linear_list_wgrad(spk_layer *l, spk_exec *x, size_t rows)
{
    const linear_priv *p = l->priv;
    spk_tensor *bits = &l->state[p->s_bits].t, *scr = &l->state[p->s_scr].t;
    const int at = p->plan.work_at;
    int rc = SPK_OK;
    for (int o0 = 0; o0 < p->n_out && !rc; o0 += p->plan.g) {
        const int o1 = p->n_out - o0 < p->plan.g ? p->n_out : o0 + p->plan.g;
        rc = SPK_LAUNCH(l, x, "linear_sparse_wgrad", 1, SPK_ARG_BUF(scr), SPK_ARG_BUF(bits),
                        SPK_ARG_BUF(x->in[0]), SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(1),
                        SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in), SPK_ARG_INT(p->n_out),
                        SPK_ARG_INT(at), SPK_ARG_INT(o0), SPK_ARG_INT(o1));
        const int n = p->n_in * (o1 - o0);
        if (!rc)
            rc = SPK_LAUNCH(l, x, "linear_add_transposed", (size_t)n,
                            SPK_ARG_BUF(&l->weights[p->w_weight].grad), SPK_ARG_BUF(scr),
                            SPK_ARG_INT(n), SPK_ARG_INT(p->n_in), SPK_ARG_INT(at), SPK_ARG_INT(o0),
                            SPK_ARG_INT(o1 - o0));
    }
    return rc;
}

/* grad_W += the table path's gradient, tiles in waves; the transposed bits from forward's pack
 * are at the scratch's start. */
static int linear_table_wgrad(spk_layer *l, spk_exec *x, size_t rows, int with_bias)
{
    const linear_priv *p = l->priv;
    const linear_plan *pl = &p->plan;
    spk_tensor *scr = &l->state[p->s_scr].t;
    const spk_tensor *gb = with_bias ? &l->weights[p->w_bias].grad : scr;
    const int tiles = (p->n_out + pl->nt - 1) / pl->nt;
    int rc = SPK_OK;
    for (int t0 = 0; t0 < tiles && !rc; t0 += pl->bwd_wave) {
        const int n = tiles - t0 < pl->bwd_wave ? tiles - t0 : pl->bwd_wave;
        rc = SPK_LAUNCH(l, x, "linear_bits_wgrad", (size_t)n,
                        SPK_ARG_BUF(&l->weights[p->w_weight].grad), SPK_ARG_BUF(gb),
                        SPK_ARG_BUF(scr), SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(scr),
                        SPK_ARG_INT(n), SPK_ARG_INT(t0), SPK_ARG_INT(rows), SPK_ARG_INT(p->n_in),
                        SPK_ARG_INT(p->n_out), SPK_ARG_INT(with_bias), SPK_ARG_INT(pl->work_at),
                        SPK_ARG_INT(pl->nt), SPK_ARG_INT(pl->g));
    }
    return rc;
}

static int linear_backward(spk_layer *l, spk_exec *x)
{
    const linear_priv *p = l->priv;
    const size_t rows = linear_rows(l, x);
    const size_t ni = (size_t)p->n_in, no = (size_t)p->n_out;
    spk_weight *w = &l->weights[p->w_weight];
    int rc = SPK_OK;
    int bias_todo = p->w_bias >= 0 && !l->weights[p->w_bias].frozen;
    if (!w->frozen) {
        if (p->plan.path == PATH_LIST)
            rc = linear_list_wgrad(l, x, rows);
        else if (p->plan.path == PATH_TABLE) /* with the bias gradient, from its tables */
            rc = linear_table_wgrad(l, x, rows, bias_todo), bias_todo = 0;
        else if (p->sparse_mode == MODE_BITS) /* the bits forward packed, row-major */
            rc = SPK_LAUNCH(l, x, "linear_bits_wgrad_rows", no, SPK_ARG_BUF(&w->grad),
                            SPK_ARG_BUF(&l->state[p->s_bits].t), SPK_ARG_BUF(x->grad_out),
                            SPK_ARG_INT(no), SPK_ARG_INT(rows), SPK_ARG_INT(ni));
        else /* grad_W[out, in] += gy^T[out, rows] * x[rows, in] */
            rc = l->host->gemm(x, 1, 0, no, ni, rows, 1.0f, x->grad_out, no, x->in[0], ni, 1.0f,
                               &w->grad, ni);
        if (rc)
            return rc;
    }
    if (bias_todo) {
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
    SPK_CPU_KERNEL(linear_count_nonzero),
    SPK_CPU_KERNEL(linear_pack),
    SPK_CPU_KERNEL(linear_transpose_w),
    SPK_CPU_KERNEL(linear_sparse_forward),
    SPK_CPU_KERNEL(linear_sparse_wgrad),
    SPK_CPU_KERNEL(linear_add_transposed),
    SPK_CPU_KERNEL(linear_bits_forward),
    SPK_CPU_KERNEL(linear_bits_wgrad),
    SPK_CPU_KERNEL(linear_bits_forward_rows),
    SPK_CPU_KERNEL(linear_bits_wgrad_rows),
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
    .memory = SPK_MEM_OUT_FORWARD_ONLY,
    .kernels = {.owner = "synapse.linear",
                .opencl_source = linear_cl_source,
                .cpu_kernels = linear_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_synapse_linear);
