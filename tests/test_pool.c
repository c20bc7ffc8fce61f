/* pool.max2d and pool.avg2d: forward and backward against a naive reference (max pooling's
 * backward as a scatter to the first maximal cell, an independent form of the kernel's gather),
 * ties on spike inputs, padding that never wins, backward against finite differences, shape
 * errors. */
#include "layer_check.h"

typedef struct pool_cfg {
    int C, H, W, k, stride, pad; /* stride 0: the kernel */
} pool_cfg;

static int st(const pool_cfg *c)
{
    return c->stride ? c->stride : c->k;
}

static int osz(int n, const pool_cfg *c)
{
    return (n + 2 * c->pad - c->k) / st(c) + 1;
}

/* Forward of `rows` images, and with gy the backward: max scatters each output gradient to the
 * first maximal real cell of its window in row-major order; avg spreads gy / k^2 over the
 * window's real cells. */
static void ref_pool(const pool_cfg *c, int is_max, int rows, const float *x, float *y,
                     const float *gy, float *gx)
{
    const int OH = osz(c->H, c), OW = osz(c->W, c), s = st(c);
    if (gx)
        memset(gx, 0, (size_t)rows * c->C * c->H * c->W * sizeof(float));
    for (int pl = 0; pl < rows * c->C; pl++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double acc = 0;
                int at = -1;
                for (int a = 0; a < c->k; a++)
                    for (int b = 0; b < c->k; b++) {
                        int iy = oy * s - c->pad + a, ix = ox * s - c->pad + b;
                        if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W)
                            continue;
                        float v = x[(pl * c->H + iy) * c->W + ix];
                        if (is_max && (at < 0 || v > acc))
                            acc = v, at = iy * c->W + ix;
                        if (!is_max)
                            acc += v;
                    }
                const int o = (pl * OH + oy) * OW + ox;
                y[o] = is_max ? (float)acc : (float)(acc / (c->k * c->k));
                if (!gx)
                    continue;
                if (is_max) {
                    gx[pl * c->H * c->W + at] += gy[o];
                    continue;
                }
                for (int a = 0; a < c->k; a++)
                    for (int b = 0; b < c->k; b++) {
                        int iy = oy * s - c->pad + a, ix = ox * s - c->pad + b;
                        if (iy >= 0 && iy < c->H && ix >= 0 && ix < c->W)
                            gx[(pl * c->H + iy) * c->W + ix] += gy[o] / (float)(c->k * c->k);
                    }
            }
}

enum { IN_UNIFORM, IN_SPIKES, IN_NEGATIVE };

static void check_ref(const char *type, const pool_cfg *c, int time, int values)
{
    const int is_max = strcmp(type, "pool.max2d") == 0, T = 3, B = 2;
    lc t;
    char yaml[96];
    snprintf(yaml, sizeof yaml, "{kernel: %d, stride: %d, padding: %d}", c->k, c->stride, c->pad);
    lc_new(&t, type, yaml, lc_shape(time, 3, c->C, c->H, c->W), T, B, 1);
    const spk_shape *o = &t.li->layer.out;
    cr_assert(o->ndim == 3 && o->dims[0] == c->C && o->dims[1] == osz(c->H, c) &&
                  o->dims[2] == osz(c->W, c) && o->time == time,
              "%s %s: output [%d, %d, %d]", type, yaml, o->dims[0], o->dims[1], o->dims[2]);
    const int rows = B * (time == SPK_TIME_STEPS ? T : 1);
    const size_t ni = t.li->in[0].numel, no = t.li->out.numel;
    float *x = malloc(ni * sizeof(float)), *gy = malloc(no * sizeof(float));
    spk_test_fill(x, ni, values == IN_NEGATIVE ? -2.0f : -1.0f,
                  values == IN_NEGATIVE ? -1.0f : 1.0f, (unsigned)(c->H * 7 + c->k));
    if (values == IN_SPIKES) /* many ties: whole windows of 1s or 0s */
        for (size_t i = 0; i < ni; i++)
            x[i] = x[i] < 0.2f ? 1.0f : 0.0f;
    spk_test_fill(gy, no, -1.0f, 1.0f, 5);
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    lc_backward_with(&t, gy);
    float *y = lc_fetch(&t, &t.li->out), *gx = lc_fetch(&t, &t.li->grad_in[0]);
    float *wy = malloc(no * sizeof(float)), *wgx = malloc(ni * sizeof(float));
    ref_pool(c, is_max, rows, x, wy, gy, wgx);
    /* max picks values: exact; avg sums k^2 values in the same order as the reference */
    double e = spk_test_nerr(y, wy, no);
    cr_expect_leq(e, is_max ? 0.0 : 1e-6, "%s %s time %d values %d: forward differs by %g", type,
                  yaml, time, values, e);
    e = spk_test_nerr(gx, wgx, ni);
    cr_expect_leq(e, 1e-6, "%s %s time %d values %d: backward differs by %g", type, yaml, time,
                  values, e);
    free(x), free(gy), free(y), free(gx), free(wy), free(wgx);
    lc_free(&t);
}

static const pool_cfg cfgs[] = {
    /* C H W k stride pad */
    {12, 24, 24, 2, 0, 0}, /* the seed's MP2 */
    {3, 7, 9, 2, 0, 0},    /* odd sizes: the last row and column fall outside every window */
    {2, 9, 8, 3, 2, 1},    /* overlapping windows, padding */
    {2, 10, 11, 3, 1, 1},  /* stride 1: every cell in up to 9 windows */
    {1, 5, 5, 5, 0, 2},    /* one window bigger than the image with padding */
    {4, 6, 7, 2, 3, 1},    /* stride > kernel: cells no window reads get 0 */
};

Test(pool, max_matches_reference)
{
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        check_ref("pool.max2d", &cfgs[i], SPK_TIME_STEPS, IN_UNIFORM);
        check_ref("pool.max2d", &cfgs[i], SPK_TIME_STEPS, IN_SPIKES);
        check_ref("pool.max2d", &cfgs[i], SPK_TIME_CONST, IN_UNIFORM);
        check_ref("pool.max2d", &cfgs[i], SPK_TIME_STEPS, IN_NEGATIVE);
    }
}

Test(pool, avg_matches_reference)
{
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        check_ref("pool.avg2d", &cfgs[i], SPK_TIME_STEPS, IN_UNIFORM);
        check_ref("pool.avg2d", &cfgs[i], SPK_TIME_CONST, IN_SPIKES);
    }
}

/* Ties, spelled out: a 4x4 plane of 1s pooled 2x2 sends each window's gradient to its top-left
 * cell; a padded cell never wins, even over negative values. */
Test(pool, max_ties_go_to_the_first_cell)
{
    lc t;
    lc_new(&t, "pool.max2d", "{kernel: 2}", lc_shape(SPK_TIME_STEPS, 3, 1, 4, 4), 1, 1, 1);
    float x[16], gy[4] = {1, 2, 3, 4}, gx[16];
    for (int i = 0; i < 16; i++)
        x[i] = 1.0f;
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    lc_backward_with(&t, gy);
    lc_get(&t, &t.li->grad_in[0], gx);
    const float want[16] = {1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0};
    for (int i = 0; i < 16; i++)
        cr_expect_eq(gx[i], want[i], "cell %d: %g, want %g", i, gx[i], want[i]);
    lc_free(&t);
    lc_new(&t, "pool.max2d", "{kernel: 3, stride: 2, padding: 1}",
           lc_shape(SPK_TIME_STEPS, 3, 1, 3, 3), 1, 1, 1);
    for (int i = 0; i < 9; i++)
        x[i] = -1.0f - (float)i;
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float y[4];
    lc_get(&t, &t.li->out, y);
    /* windows at (-1,-1), (-1,1), (1,-1), (1,1): their best real cells are 0, 1, 3, 4 */
    const float wy[4] = {-1, -2, -4, -5};
    for (int i = 0; i < 4; i++)
        cr_expect_eq(y[i], wy[i], "output %d: %g, want %g", i, y[i], wy[i]);
    lc_free(&t);
}

/* Backward against central differences of sum(out * R). Max pooling is piecewise linear: the
 * inputs are distinct multiples of 0.01 (a shuffled ramp), so a perturbation of 1e-3 never
 * changes a window's winner and the differences are exact up to float rounding. */
static void check_fd(const char *type, const char *yaml, int C, int H, int W, int time)
{
    lc t;
    lc_new(&t, type, yaml, lc_shape(time, 3, C, H, W), 2, 2, 1);
    const size_t ni = t.li->in[0].numel;
    float *x = malloc(ni * sizeof(float)), *key = malloc(ni * sizeof(float));
    spk_test_fill(key, ni, 0.0f, 1.0f, 3);
    for (size_t i = 0; i < ni; i++) { /* rank of key[i]: a permutation of 0..ni-1 */
        size_t r = 0;
        for (size_t j = 0; j < ni; j++)
            r += key[j] < key[i] || (key[j] == key[i] && j < i);
        x[i] = 0.01f * (float)r - 1.0f;
    }
    lc_set(&t, &t.li->in[0], x);
    float *R = malloc(t.li->out.numel * sizeof(float));
    spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 77);
    lc_fwd(&t);
    lc_backward_with(&t, R);
    float *gin = lc_fetch(&t, &t.li->grad_in[0]);
    double e = lc_fd_error(&t, &t.li->in[0], R, gin, 1e-3f);
    /* objective ~ sum of ~100 terms of size ~1 in float32 (rounding ~1e-6 absolute) over
     * 2e-3: ~1e-3 of gradients of size ~1 */
    cr_expect_leq(e, 5e-3, "%s %s time %d: grad_in error %g", type, yaml, time, e);
    free(x), free(key), free(R), free(gin);
    lc_free(&t);
}

Test(pool, backward_matches_finite_differences)
{
    check_fd("pool.max2d", "{kernel: 2}", 2, 5, 6, SPK_TIME_STEPS);
    check_fd("pool.max2d", "{kernel: 3, stride: 2, padding: 1}", 2, 7, 5, SPK_TIME_STEPS);
    check_fd("pool.max2d", "{kernel: 3, stride: 1, padding: 1}", 1, 5, 5, SPK_TIME_CONST);
    check_fd("pool.avg2d", "{kernel: 2}", 2, 5, 6, SPK_TIME_STEPS);
    check_fd("pool.avg2d", "{kernel: 3, stride: 2, padding: 1}", 2, 7, 5, SPK_TIME_CONST);
}

Test(pool, init_errors)
{
    lc t;
    spk_shape img = lc_shape(SPK_TIME_STEPS, 3, 2, 6, 6);
    cr_expect_neq(lc_try(&t, "pool.max2d", "{kernel: 3, padding: 2}", img, 2, 2), SPK_OK);
    cr_expect(strstr(t.err.msg, "padding: 2 is more than half the kernel 3"), "%s", t.err.msg);
    lc_free(&t);
    cr_expect_neq(lc_try(&t, "pool.avg2d", "{kernel: 7}", img, 2, 2), SPK_OK);
    cr_expect(strstr(t.err.msg, "kernel 7 is larger than the input 6x6"), "%s", t.err.msg);
    lc_free(&t);
    cr_expect_neq(
        lc_try(&t, "pool.max2d", "{kernel: 2}", lc_shape(SPK_TIME_STEPS, 1, 36, 0, 0), 2, 2),
        SPK_OK);
    cr_expect(strstr(t.err.msg, "expected an input of shape [channels, height, width]"), "%s",
              t.err.msg);
    lc_free(&t);
    cr_expect_neq(lc_try(&t, "pool.max2d", "{stride: 2}", img, 2, 2), SPK_OK, "kernel is required");
    lc_free(&t);
}

/* In a model: the file, line and column of the pooling layer. */
Test(pool, model_shape_error_names_the_layer)
{
    const char *yaml = "input: {shape: [1, 8, 8]}\n"
                       "time_steps: 2\n"
                       "layers:\n"
                       "  - {name: enc, type: encoder.direct}\n"
                       "  - {name: c1, type: synapse.conv2d, out: 4, kernel: 5}\n"
                       "  - {name: mp, type: pool.max2d, kernel: 5}\n"
                       "  - {name: n, type: neuron.lif}\n"
                       "readout: {type: readout.spike_count}\n"
                       "loss: {type: loss.ce_count}\n";
    spk_error err = {0};
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(yaml, "pool.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK);
    spk_session *s = NULL;
    cr_expect_neq(spk_session_new(m, be, 2, &s, &err), SPK_OK);
    cr_expect(strstr(err.msg, "pool.yaml:6:5: layer 'mp'") &&
                  strstr(err.msg, "kernel 5 is larger than the input 4x4"),
              "%s", err.msg);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}
