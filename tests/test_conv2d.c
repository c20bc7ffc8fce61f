/* synapse.conv2d: forward against a naive direct convolution, backward against finite
 * differences, over odd sizes, stride, padding, dilation and groups, stepped and constant
 * inputs; the PyTorch layout and initialisation; shape errors at load with file:line:col. */
#include <omp.h>

#include "layer_check.h"

typedef struct conv_cfg {
    int C, H, W, O, k, stride, pad, dil, groups, bias;
} conv_cfg;

/* The path under test and the input: `sparse` is the layer's key; keep < 1 zeroes the other
 * inputs (a deterministic pattern), binary turns the kept ones into 1 (spikes). */
typedef struct path_cfg {
    const char *sparse;
    double keep;
    int binary;
} path_cfg;
static const path_cfg DEFAULT_PATH = {"auto", 1.0, 0};

static void sparsify(lc *t, spk_tensor *x, const path_cfg *pc, unsigned seed)
{
    if (pc->keep >= 1.0 && !pc->binary)
        return;
    float *v = lc_fetch(t, x);
    for (size_t i = 0; i < x->numel; i++) {
        const unsigned h = (unsigned)(i * 2654435761u) ^ (seed * 40503u);
        if ((double)((h >> 8) % 1000) >= pc->keep * 1000.0)
            v[i] = 0.0f;
        else if (pc->binary)
            v[i] = 1.0f;
    }
    lc_set(t, x, v);
    free(v);
}

static int out_size(int n, const conv_cfg *c)
{
    return (n + 2 * c->pad - c->dil * (c->k - 1) - 1) / c->stride + 1;
}

/* y[r, o, oy, ox] = b[o] + sum over the group's channels and taps, in double. */
static void ref_conv(const conv_cfg *c, int rows, const float *x, const float *w, const float *b,
                     float *y)
{
    const int OH = out_size(c->H, c), OW = out_size(c->W, c);
    const int cg = c->C / c->groups, og = c->O / c->groups;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < c->O; o++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double s = b ? b[o] : 0.0;
                    for (int ci = 0; ci < cg; ci++) {
                        const int ch = (o / og) * cg + ci;
                        for (int a = 0; a < c->k; a++)
                            for (int bb = 0; bb < c->k; bb++) {
                                const int iy = oy * c->stride - c->pad + a * c->dil;
                                const int ix = ox * c->stride - c->pad + bb * c->dil;
                                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W)
                                    continue;
                                s += (double)x[((r * c->C + ch) * c->H + iy) * c->W + ix] *
                                     w[((o * cg + ci) * c->k + a) * c->k + bb];
                            }
                    }
                    y[((r * c->O + o) * OH + oy) * OW + ox] = (float)s;
                }
}

static void yaml_of(const conv_cfg *c, const char *sparse, char *buf, size_t n)
{
    snprintf(buf, n,
             "{out: %d, kernel: %d, stride: %d, padding: %d, dilation: %d, groups: %d, "
             "bias: %s, sparse: %s}",
             c->O, c->k, c->stride, c->pad, c->dil, c->groups, c->bias ? "true" : "false", sparse);
}

static void check_forward_path(const conv_cfg *c, int time, int T, int B, const path_cfg *pc)
{
    lc t;
    char yaml[200];
    yaml_of(c, pc->sparse, yaml, sizeof yaml);
    lc_new(&t, "synapse.conv2d", yaml, lc_shape(time, 3, c->C, c->H, c->W), T, B, 3);
    const spk_shape *o = &t.li->layer.out;
    cr_assert(o->ndim == 3 && o->dims[0] == c->O && o->dims[1] == out_size(c->H, c) &&
                  o->dims[2] == out_size(c->W, c),
              "%s: output shape [%d, %d, %d]", yaml, o->dims[0], o->dims[1], o->dims[2]);
    cr_assert_eq(o->time, time, "the output keeps the input's time mode");
    lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, (unsigned)(c->C * 31 + c->H));
    sparsify(&t, &t.li->in[0], pc, 3);
    lc_fwd(&t);
    const int rows = B * (time == SPK_TIME_STEPS ? T : 1);
    float *x = lc_fetch(&t, &t.li->in[0]);
    float *w = lc_fetch(&t, &lc_weight(&t, "weight")->value);
    float *b = c->bias ? lc_fetch(&t, &lc_weight(&t, "bias")->value) : NULL;
    const size_t n = t.li->out.numel;
    cr_assert_eq(n, (size_t)rows * spk_shape_size(o));
    float *want = malloc(n * sizeof(float));
    ref_conv(c, rows, x, w, b, want);
    float *got = lc_fetch(&t, &t.li->out);
    /* float32 sums of up to ~100 products of values <= 1: rounding ~1e-6 of the magnitude */
    double e = spk_test_nerr(got, want, n);
    cr_expect_leq(e, 1e-5, "%s time %d: forward differs by %g", yaml, time, e);
    free(x), free(w), free(b), free(want), free(got);
    lc_free(&t);
}

static void check_forward(const conv_cfg *c, int time, int T, int B)
{
    check_forward_path(c, time, T, B, &DEFAULT_PATH);
}

Test(conv2d, forward_matches_direct_convolution)
{
    /* C H W O k stride pad dil groups bias */
    const conv_cfg cfgs[] = {
        {1, 28, 28, 12, 5, 1, 0, 1, 1, 1}, /* the seed's first layer */
        {3, 7, 9, 5, 3, 1, 1, 1, 1, 1},    /* odd sizes, padding */
        {2, 11, 8, 4, 3, 2, 0, 1, 1, 0},   /* stride 2, no bias */
        {3, 10, 13, 7, 2, 3, 2, 1, 1, 1},  /* stride 3 with padding */
        {2, 9, 9, 3, 3, 1, 2, 2, 1, 1},    /* dilation */
        {4, 6, 7, 6, 3, 2, 1, 1, 2, 1},    /* groups 2 */
        {6, 5, 5, 6, 3, 1, 1, 1, 6, 0},    /* depthwise */
        {6, 8, 7, 9, 3, 2, 1, 2, 3, 1},    /* everything at once */
        {5, 1, 1, 3, 1, 1, 0, 1, 1, 1},    /* 1x1 image, 1x1 kernel */
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        check_forward(&cfgs[i], SPK_TIME_STEPS, 3, 2);
        check_forward(&cfgs[i], SPK_TIME_CONST, 4, 3);
    }
    check_forward(&cfgs[1], SPK_TIME_NONE, 2, 5);
}

/* Backward against central differences of sum(out * R). The layer is linear in x, W and b, so
 * the differences have no truncation error; float32 rounding of the objective (~1e-6 absolute
 * on sums of a few hundred terms) over eps = 1e-2 is ~1e-4 of gradients of size ~1. A wrong
 * index, a tap sent to the wrong place or a missing group is off by O(1). */
static void check_fd_path(const conv_cfg *c, int time, int T, int B, const path_cfg *pc)
{
    lc t;
    char yaml[200];
    yaml_of(c, pc->sparse, yaml, sizeof yaml);
    lc_new(&t, "synapse.conv2d", yaml, lc_shape(time, 3, c->C, c->H, c->W), T, B, 5);
    lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, (unsigned)(c->O * 13 + c->W));
    sparsify(&t, &t.li->in[0], pc, 5);
    float *R = malloc(t.li->out.numel * sizeof(float));
    spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 77);
    lc_fwd(&t);
    lc_backward_with(&t, R);
    float *gin = lc_fetch(&t, &t.li->grad_in[0]);
    spk_weight *w = lc_weight(&t, "weight");
    float *gw = lc_fetch(&t, &w->grad);
    const double tol = 1e-3;
    double e = lc_fd_error(&t, &t.li->in[0], R, gin, 1e-2f);
    cr_expect_leq(e, tol, "%s time %d: grad_in error %g", yaml, time, e);
    e = lc_fd_error(&t, &w->value, R, gw, 1e-2f);
    cr_expect_leq(e, tol, "%s time %d: grad weight error %g", yaml, time, e);
    if (c->bias) {
        spk_weight *b = lc_weight(&t, "bias");
        float *gb = lc_fetch(&t, &b->grad);
        e = lc_fd_error(&t, &b->value, R, gb, 1e-2f);
        cr_expect_leq(e, tol, "%s time %d: grad bias error %g", yaml, time, e);
        free(gb);
    }
    free(R), free(gin), free(gw);
    lc_free(&t);
}

static void check_fd(const conv_cfg *c, int time, int T, int B)
{
    check_fd_path(c, time, T, B, &DEFAULT_PATH);
}

Test(conv2d, backward_matches_finite_differences)
{
    const conv_cfg cfgs[] = {
        {2, 7, 6, 3, 3, 1, 1, 1, 1, 1}, /* padding, odd sizes */
        {2, 9, 8, 3, 3, 2, 0, 1, 1, 1}, /* stride 2: inputs no window reads get 0 */
        {3, 8, 7, 2, 2, 3, 2, 1, 1, 0}, /* stride 3 > kernel, padding */
        {2, 9, 9, 2, 3, 1, 1, 3, 1, 1}, /* dilation 3 */
        {4, 5, 6, 6, 3, 2, 1, 2, 2, 1}, /* groups with stride and dilation */
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        check_fd(&cfgs[i], SPK_TIME_STEPS, 2, 2);
        check_fd(&cfgs[i], SPK_TIME_CONST, 3, 2);
    }
}

/* The sparse path (it follows the nonzero inputs): against the same direct convolution and
 * finite differences, on spikes, on sparse real values and on dense values (it is exact for any
 * input, only slower), over the same odd sizes, strides, padding and dilation. Groups take the
 * dense path whatever the key says, so their cases check that fallback. */
Test(conv2d, sparse_path_matches_direct_convolution)
{
    /* C H W O k stride pad dil groups bias */
    const conv_cfg cfgs[] = {
        {12, 12, 12, 32, 5, 1, 0, 1, 1, 1}, /* the seed's conv2 */
        {3, 7, 9, 5, 3, 1, 1, 1, 1, 1},     /* odd sizes, padding */
        {2, 11, 8, 4, 3, 2, 0, 1, 1, 0},    /* stride 2, no bias */
        {3, 10, 13, 7, 2, 3, 2, 1, 1, 1},   /* stride 3 with padding */
        {2, 9, 9, 3, 3, 1, 2, 2, 1, 1},     /* dilation */
        {6, 8, 7, 9, 3, 2, 1, 2, 3, 1},     /* groups: the dense fallback */
        {5, 1, 1, 3, 1, 1, 0, 1, 1, 1},     /* 1x1 image, 1x1 kernel */
        {4, 6, 5, 17, 3, 2, 2, 2, 1, 1},    /* O not a multiple of the vector width */
    };
    const path_cfg paths[] = {
        {"always", 0.15, 1}, {"always", 0.3, 0}, {"always", 1.0, 0}, {"auto", 0.1, 1}};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        for (size_t j = 0; j < sizeof paths / sizeof paths[0]; j++) {
            check_forward_path(&cfgs[i], SPK_TIME_STEPS, 3, 2, &paths[j]);
            check_forward_path(&cfgs[i], SPK_TIME_CONST, 2, 3, &paths[j]);
        }
}

Test(conv2d, sparse_path_backward_matches_finite_differences)
{
    const conv_cfg cfgs[] = {
        {2, 7, 6, 3, 3, 1, 1, 1, 1, 1}, /* padding, odd sizes */
        {2, 9, 8, 3, 3, 2, 0, 1, 1, 1}, /* stride 2: inputs no window reads get 0 */
        {3, 8, 7, 2, 2, 3, 2, 1, 1, 0}, /* stride 3 > kernel, padding */
        {2, 9, 9, 2, 3, 1, 1, 3, 1, 1}, /* dilation 3 */
    };
    const path_cfg paths[] = {{"always", 0.2, 1}, {"always", 0.4, 0}, {"always", 1.0, 0}};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        for (size_t j = 0; j < sizeof paths / sizeof paths[0]; j++) {
            check_fd_path(&cfgs[i], SPK_TIME_STEPS, 2, 2, &paths[j]);
            check_fd_path(&cfgs[i], SPK_TIME_CONST, 3, 2, &paths[j]);
        }
}

/* Both paths on the same weights and spikes: outputs and every gradient agree to float32
 * summation error (they add the same products in different orders). Enough images (T * B = 40)
 * that the weight gradient's image blocks and the input gradient's GEMM chunks both split. */
static void check_paths_agree(void)
{
    const char *cfg = "{out: 20, kernel: 5, padding: 1, sparse: %s}";
    float *res[2][4];
    for (int m = 0; m < 2; m++) {
        char yaml[120];
        snprintf(yaml, sizeof yaml, cfg, m ? "never" : "always");
        lc t;
        lc_new(&t, "synapse.conv2d", yaml, lc_shape(SPK_TIME_STEPS, 3, 7, 11, 13), 8, 5, 21);
        const path_cfg spikes = {"always", 0.1, 1};
        lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, 4);
        sparsify(&t, &t.li->in[0], &spikes, 9);
        lc_fill(&t, &t.li->grad_out, -1.0f, 1.0f, 6);
        lc_fwd(&t);
        lc_bwd(&t);
        res[m][0] = lc_fetch(&t, &t.li->out);
        res[m][1] = lc_fetch(&t, &t.li->grad_in[0]);
        res[m][2] = lc_fetch(&t, &lc_weight(&t, "weight")->grad);
        res[m][3] = lc_fetch(&t, &lc_weight(&t, "bias")->grad);
        const size_t n[4] = {t.li->out.numel, t.li->grad_in[0].numel,
                             lc_weight(&t, "weight")->grad.numel, 20};
        if (m == 1) {
            const char *what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
            for (int k = 0; k < 4; k++) {
                double e = spk_test_nerr(res[0][k], res[1][k], n[k]);
                cr_expect_leq(e, 1e-5, "%s: sparse and dense differ by %g", what[k], e);
            }
        }
        lc_free(&t);
    }
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 4; k++)
            free(res[m][k]);
}

/* On one thread the input gradient goes through blocks of a few images; on more, in one GEMM. */
Test(conv2d, sparse_and_dense_paths_agree)
{
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    check_paths_agree();
    omp_set_num_threads(threads > 1 ? threads : 2);
    check_paths_agree();
    omp_set_num_threads(threads);
}

/* Weight gradients accumulate over backward calls; grad_in is overwritten. */
Test(conv2d, weight_grads_accumulate)
{
    const char *yamls[] = {"{out: 4, kernel: 3, padding: 1}", "{out: 4, kernel: 3, groups: 2}",
                           "{out: 4, kernel: 3, padding: 1, sparse: always}"};
    for (int k = 0; k < 3; k++) {
        lc t;
        lc_new(&t, "synapse.conv2d", yamls[k], lc_shape(SPK_TIME_STEPS, 3, 2, 5, 5), 2, 2, 9);
        lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, 1);
        lc_fill(&t, &t.li->grad_out, -1.0f, 1.0f, 2);
        lc_fwd(&t);
        lc_bwd(&t);
        spk_weight *w = lc_weight(&t, "weight"), *b = lc_weight(&t, "bias");
        float *gw1 = lc_fetch(&t, &w->grad), *gb1 = lc_fetch(&t, &b->grad);
        float *gi1 = lc_fetch(&t, &t.li->grad_in[0]);
        spk_layer *l = &t.li->layer;
        cr_assert_eq(l->type->backward(l, &t.li->x), SPK_OK, "%s", t.li->err.msg);
        float *gw2 = lc_fetch(&t, &w->grad), *gb2 = lc_fetch(&t, &b->grad);
        float *gi2 = lc_fetch(&t, &t.li->grad_in[0]);
        double nz = 0;
        for (size_t i = 0; i < w->grad.numel; i++) {
            cr_expect_float_eq(gw2[i], 2 * gw1[i], 1e-5, "%s: weight grad %zu: %g then %g",
                               yamls[k], i, gw1[i], gw2[i]);
            nz += fabs(gw1[i]);
        }
        cr_expect_gt(nz, 0.1);
        for (int i = 0; i < 4; i++)
            cr_expect_float_eq(gb2[i], 2 * gb1[i], 1e-5);
        for (size_t i = 0; i < t.li->grad_in[0].numel; i++)
            cr_expect_float_eq(gi2[i], gi1[i], 1e-6);
        free(gw1), free(gb1), free(gi1), free(gw2), free(gb2), free(gi2);
        lc_free(&t);
    }
}

/* PyTorch layout and init: weight [out, in/groups, k, k], bias [out], both
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups * k * k. */
Test(conv2d, torch_layout_and_init)
{
    lc t;
    lc_new(&t, "synapse.conv2d", "{out: 40, kernel: 5, groups: 2}",
           lc_shape(SPK_TIME_STEPS, 3, 4, 9, 9), 2, 2, 4);
    spk_weight *w = lc_weight(&t, "weight"), *b = lc_weight(&t, "bias");
    cr_expect(w->shape.ndim == 4 && w->shape.dims[0] == 40 && w->shape.dims[1] == 2 &&
              w->shape.dims[2] == 5 && w->shape.dims[3] == 5);
    cr_expect(b->shape.ndim == 1 && b->shape.dims[0] == 40);
    cr_expect(w->decay && !b->decay && !w->frozen && !b->frozen);
    const float bound = 1.0f / sqrtf(50.0f);
    float *v = lc_fetch(&t, &w->value);
    double lo = 1, hi = -1, mean = 0;
    for (size_t i = 0; i < w->value.numel; i++) {
        lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
        mean += v[i] / (double)w->value.numel;
    }
    /* 2000 uniform draws: extremes within 1% of the bounds, the mean within ~4 sigma
     * (sigma = 0.141 / sqrt(3 * 2000) ~ 1.8e-3) */
    cr_expect(lo >= -bound && hi <= bound && lo < -0.99 * bound && hi > 0.99 * bound,
              "weights in [%g, %g], bound %g", lo, hi, bound);
    cr_expect_lt(fabs(mean), 8e-3);
    free(v);
    v = lc_fetch(&t, &b->value);
    for (int i = 0; i < 40; i++)
        cr_expect(v[i] >= -bound && v[i] <= bound);
    free(v);
    lc_free(&t);
}

/* A model's shape errors are refused when the session is built from it, naming the file, the
 * line and column of the layer, and what was expected. */
static void expect_model_error(const char *layers, const char *line_col, const char *what)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "input: {shape: [3, 8, 8]}\n"
             "time_steps: 2\n"
             "layers:\n"
             "  - {name: enc, type: encoder.direct}\n"
             "%s"
             "  - {name: fc, type: synapse.linear, out: 4}\n"
             "  - {name: n, type: neuron.lif}\n"
             "readout: {type: readout.spike_count}\n"
             "loss: {type: loss.ce_count}\n",
             layers);
    spk_error err = {0};
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(yaml, "conv.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK);
    spk_session *s = NULL;
    int rc = spk_session_new(m, be, 2, &s, &err);
    cr_expect_neq(rc, SPK_OK, "%s: accepted", layers);
    char where[64];
    snprintf(where, sizeof where, "conv.yaml:%s: layer 'c'", line_col);
    cr_expect(strstr(err.msg, where) && strstr(err.msg, what), "%s: got '%s'", layers, err.msg);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

Test(conv2d, shape_errors_name_the_layer)
{
    expect_model_error("  - {name: c, type: synapse.conv2d, out: 4, kernel: 9}\n", "5:5",
                       "kernel 9 (dilation 1: extent 9) is larger than the input 8x8");
    expect_model_error("  - {name: c, type: synapse.conv2d, out: 4, kernel: 3, dilation: 5}\n",
                       "5:5", "extent 11");
    expect_model_error("  - {name: c, type: synapse.conv2d, out: 4, kernel: 3, groups: 2}\n", "5:5",
                       "groups: 2 must divide the input channels (3)");
    expect_model_error("  - {name: c, type: synapse.conv2d, out: 5, kernel: 3, groups: 3}\n", "5:5",
                       "and out (5)");
    expect_model_error("  - {name: f, type: synapse.linear, out: 7}\n"
                       "  - {name: c, type: synapse.conv2d, out: 4, kernel: 3}\n",
                       "6:5", "expected an input of shape [channels, height, width]");
    /* padding makes a kernel larger than the image fit */
    spk_error err = {0};
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string("input: {shape: [3, 8, 8]}\ntime_steps: 2\nlayers:\n"
                                       "  - {name: enc, type: encoder.direct}\n"
                                       "  - {name: c, type: synapse.conv2d, out: 4, kernel: 9, "
                                       "padding: 1}\n"
                                       "  - {name: n, type: neuron.lif}\n"
                                       "readout: {type: readout.spike_count}\n"
                                       "loss: {type: loss.ce_count}\n",
                                       "ok.yaml", &m, &err),
                 SPK_OK, "%s", err.msg);
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK);
    spk_session *s = NULL;
    cr_expect_eq(spk_session_new(m, be, 2, &s, &err), SPK_OK, "%s", err.msg);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

/* A convolutional network end to end: conv on the constant image, pooling, a grouped and
 * strided conv on spikes, a linear layer reading [C, H, W] flattened. */
static const char *net_yaml =
    "input: {shape: [2, 9, 9]}\n"
    "time_steps: 3\n"
    "seed: 5\n"
    "layers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: c1, type: synapse.conv2d, out: 4, kernel: 3, padding: 1}\n"
    "  - {name: p1, type: pool.avg2d, kernel: 2, stride: 2, padding: 1}\n"
    "  - {name: n1, type: neuron.lif, beta: 0.8, threshold: 0.3, detach_reset: false,\n"
    "     surrogate: {type: fast_sigmoid, slope: 2}}\n"
    "  - {name: c2, type: synapse.conv2d, out: 6, kernel: 2, stride: 2, groups: 2}\n"
    "  - {name: n2, type: neuron.lif, beta: 0.7, threshold: 0.3, surrogate: atan,\n"
    "     detach_reset: false}\n"
    "  - {name: fc, type: synapse.linear, out: 3}\n"
    "  - {name: n3, type: neuron.lif, beta: 0.8, threshold: 0.3, detach_reset: false,\n"
    "     surrogate: {type: fast_sigmoid, slope: 2}}\n"
    "readout: {type: readout.spike_count}\n"
    "loss: {type: loss.ce_count}\n"
    "train: {batch: 4, optimizer: {type: adam, lr: 0.02}}\n";

static double net_loss(spk_session *s, const float *x, const int32_t *y, int n)
{
    spk_batch_stats st = {0};
    spk_error err = {0};
    cr_assert_eq(spk_session_eval_batch(s, x, y, n, &st, &err), 0, "%s", err.msg);
    return st.loss_sum / n;
}

/* Smooth mode makes the network differentiable: every weight's gradient (a sample of entries)
 * against central differences of the mean loss, with test_graph's bound (float32 truncation
 * and rounding: 2e-3 absolute + 3% relative); surrogate slopes of 2 keep the gradients of the
 * first layer well above that (slope 25 leaves them ~1e-4). Average pooling keeps the network
 * smooth; max pooling's kinks are checked in test_pool. */
Test(conv2d, network_gradients_match_finite_differences)
{
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(net_yaml, "net.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), 0, "%s", err.msg);
    spk_session_set_smooth(s, 1);
    float x[4 * 162];
    spk_test_fill(x, 4 * 162, 0.0f, 1.5f, 7);
    int32_t y[4] = {0, 2, 1, 2};
    spk_batch_stats st = {0};
    cr_assert_eq(spk_session_forward_backward(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    int checked = 0;
    for (int i = 0; i < spk_session_weight_count(s); i++) {
        const char *name = spk_session_weight_name(s, i);
        if (strncmp(name, "c1.", 3) && strncmp(name, "c2.", 3) && strncmp(name, "fc.", 3))
            continue; /* the neurons' constants are frozen here */
        size_t n = spk_session_weight_numel(s, i);
        float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
        spk_session_weight_get(s, i, w, &err);
        spk_session_grad_get(s, i, g, &err);
        double gmax = 0;
        for (size_t j = 0; j < n; j++)
            gmax = fmax(gmax, fabs(g[j]));
        cr_expect_gt(gmax, 1e-3, "%s: backward gives no gradient (max %g)", name, gmax);
        for (size_t j = 0; j < n; j += 1 + n / 9) {
            const float eps = 1e-2f, keep = w[j];
            w[j] = keep + eps;
            spk_session_weight_set(s, i, w, &err);
            double lp = net_loss(s, x, y, 4);
            w[j] = keep - eps;
            spk_session_weight_set(s, i, w, &err);
            double lm = net_loss(s, x, y, 4);
            w[j] = keep;
            spk_session_weight_set(s, i, w, &err);
            double fd = (lp - lm) / (2 * eps);
            cr_expect(fabs(fd - g[j]) <= 2e-3 + 0.03 * fabs(fd),
                      "%s[%zu]: backward %.6g, finite differences %.6g", name, j, g[j], fd);
            checked++;
        }
        free(w);
        free(g);
    }
    cr_assert_gt(checked, 30);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

/* Training steps lower the loss on a fixed batch, with max pooling and spikes. */
Test(conv2d, network_trains)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "%s", net_yaml);
    char *p = strstr(yaml, "pool.avg2d");
    memcpy(p, "pool.max2d", 10);
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(yaml, "net.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), 0, "%s", err.msg);
    float x[4 * 162];
    spk_test_fill(x, 4 * 162, 0.0f, 1.5f, 11);
    int32_t y[4] = {1, 0, 2, 1};
    double first = net_loss(s, x, y, 4);
    for (int i = 0; i < 60; i++) {
        spk_batch_stats st = {0};
        cr_assert_eq(spk_session_train_batch(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    }
    double last = net_loss(s, x, y, 4);
    cr_expect_lt(last, 0.7 * first, "loss %.4f -> %.4f", first, last);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

/* The CLI refuses a model with a convolution that does not fit its input: exit 2, with the
 * file, line and column of the layer. */
Test(conv2d, cli_refuses_a_kernel_larger_than_its_input)
{
    char *path = spk_test_write("bad_conv.yaml", "input: {shape: [1, 6, 6]}\n"
                                                 "time_steps: 2\n"
                                                 "layers:\n"
                                                 "  - {name: enc, type: encoder.direct}\n"
                                                 "  - {name: c, type: synapse.conv2d, out: 2,\n"
                                                 "     kernel: 7}\n"
                                                 "  - {name: n, type: neuron.lif}\n"
                                                 "readout: {type: readout.spike_count}\n"
                                                 "loss: {type: loss.ce_count}\n");
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s bench %s --device cpu --batches 1", SPK_CLI, path);
    int rc = spk_test_run(cmd, &out);
    cr_expect_eq(rc, 2, "exit %d: %s", rc, out);
    cr_expect(out && strstr(out, "bad_conv.yaml:5:5: layer 'c' (synapse.conv2d): kernel 7"), "%s",
              out);
    free(out);
    free(path);
}

/* The shipped model stays loadable and trainable: models/fmnist_conv.yaml builds a session and
 * takes training steps on a small random batch (no data set needed). */
Test(conv2d, shipped_model_builds_and_trains)
{
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load(SPK_SOURCE_DIR "/models/fmnist_conv.yaml", &m, &err), 0, "%s",
                 err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 2, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_input_size(s), 784);
    cr_assert_eq(spk_session_classes(s), 10);
    float x[2 * 784];
    spk_test_fill(x, 2 * 784, 0.0f, 255.0f, 3);
    int32_t y[2] = {3, 7};
    spk_batch_stats st = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(spk_session_train_batch(s, x, y, 2, &st, &err), 0, "%s", err.msg);
    cr_expect(isfinite(st.loss_sum), "loss %g", st.loss_sum);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}
