/* readout.spike_count and readout.membrane: forward against naive loops, backward against
 * finite differences. */
#include "layer_check.h"

static float *random_R(lc *t, unsigned seed)
{
    float *R = malloc(t->li->out.numel * sizeof(float));
    spk_test_fill(R, t->li->out.numel, -1.0f, 1.0f, seed);
    return R;
}

/* ---- spike_count ---- */

static void check_spike_count(int T, int B, int C, int const_in)
{
    lc t;
    lc_new(&t, "readout.spike_count", NULL,
           lc_shape(const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, C, 0, 0), T, B, 1);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_NONE);
    cr_assert_eq(t.li->out.numel, (size_t)B * C);
    /* spikes (0/1) for a [T, B, C] input; any values for a constant one */
    size_t nin = t.li->in[0].numel;
    float *x = malloc(nin * sizeof(float));
    spk_test_fill(x, nin, 0.0f, 1.0f, (unsigned)(T + C));
    if (!const_in)
        for (size_t i = 0; i < nin; i++)
            x[i] = x[i] < 0.4f ? 1.0f : 0.0f;
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float *y = lc_fetch(&t, &t.li->out);
    for (int i = 0; i < B * C; i++) {
        double want = 0;
        for (int tt = 0; tt < T; tt++)
            want += x[const_in ? i : tt * B * C + i];
        cr_expect(fabs(y[i] - want) <= 1e-5 * fmax(1.0, want), "count[%d] = %g, expected %g", i,
                  y[i], want);
    }
    /* backward: grad_in[t, b, c] = grad_out[b, c] (T times it for a constant input) */
    float *R = random_R(&t, 3);
    lc_backward_with(&t, R);
    float *g = lc_fetch(&t, &t.li->grad_in[0]);
    for (size_t i = 0; i < nin; i++) {
        float want = const_in ? (float)T * R[i] : R[i % ((size_t)B * C)];
        cr_expect_float_eq(g[i], want, 1e-5);
    }
    /* linear: exact differences up to float32 rounding of the objective */
    double e = lc_fd_error(&t, &t.li->in[0], R, g, 1e-2f);
    cr_expect_leq(e, 1e-3, "T%d B%d C%d: grad_in error %g", T, B, C, e);
    free(x), free(y), free(R), free(g);
    lc_free(&t);
}

Test(spike_count, forward_backward)
{
    check_spike_count(1, 1, 1, 0);
    check_spike_count(25, 3, 10, 0);
    check_spike_count(7, 5, 13, 0);
    check_spike_count(6, 2, 3, 1);
}

Test(spike_count, needs_time)
{
    lc t;
    int rc = lc_try(&t, "readout.spike_count", NULL, lc_shape(SPK_TIME_NONE, 1, 4, 0, 0), 3, 2);
    cr_expect_eq(rc, SPK_ERR_SHAPE, "%s", t.err.msg);
    lc_free(&t);
}

/* ---- membrane ---- */

enum { MEAN, MAX, LAST };

/* Values with every (b, c) column's entries apart by >= 0.05, so that the argmax does not move
 * under the +-1e-3 perturbations of the finite differences. */
static void distinct_trace(float *x, int T, int n, unsigned seed)
{
    int perm[64];
    cr_assert_leq(T, 64);
    unsigned r = seed * 2654435761u + 1u;
    for (int i = 0; i < n; i++) {
        /* a random permutation of 0..T-1 per column (Fisher-Yates) */
        for (int t = 0; t < T; t++)
            perm[t] = t;
        for (int t = T - 1; t > 0; t--) {
            r = r * 1664525u + 1013904223u;
            int j = (int)((r >> 8) % (unsigned)(t + 1)), k = perm[t];
            perm[t] = perm[j];
            perm[j] = k;
        }
        for (int t = 0; t < T; t++)
            x[t * n + i] = 0.05f * (float)perm[t] - 0.4f + 0.001f * (float)(i % 7);
    }
}

static void check_membrane(const char *mode, int m, int T, int B, int C, int const_in)
{
    lc t;
    char yaml[32];
    snprintf(yaml, sizeof yaml, "{mode: %s}", mode);
    lc_new(&t, "readout.membrane", yaml,
           lc_shape(const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, C, 0, 0), T, B, 1);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_NONE);
    const int n = B * C;
    size_t nin = t.li->in[0].numel;
    float *x = malloc(nin * sizeof(float));
    if (const_in)
        spk_test_fill(x, nin, -1.0f, 1.0f, 5);
    else
        distinct_trace(x, T, n, (unsigned)(T * 7 + C));
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float *y = lc_fetch(&t, &t.li->out);
    for (int i = 0; i < n; i++) {
        double want;
        if (const_in) {
            want = x[i];
        } else if (m == LAST) {
            want = x[(T - 1) * n + i];
        } else if (m == MAX) {
            want = x[i];
            for (int tt = 1; tt < T; tt++)
                want = fmax(want, x[tt * n + i]);
        } else {
            want = 0;
            for (int tt = 0; tt < T; tt++)
                want += x[tt * n + i] / (double)T;
        }
        cr_expect(fabs(y[i] - want) <= 1e-6, "%s: out[%d] = %g, expected %g", mode, i, y[i], want);
    }
    float *R = random_R(&t, 9);
    lc_backward_with(&t, R);
    float *g = lc_fetch(&t, &t.li->grad_in[0]);
    /* piecewise linear with the kinks of max more than eps away: differences are exact up to
     * float32 rounding of the objective (~1e-7 / 2e-3) */
    double e = lc_fd_error(&t, &t.li->in[0], R, g, 1e-3f);
    cr_expect_leq(e, 1e-3, "%s T%d: grad_in error %g", mode, T, e);
    free(x), free(y), free(R), free(g);
    lc_free(&t);
}

Test(membrane, modes)
{
    check_membrane("mean", MEAN, 9, 3, 5, 0);
    check_membrane("max", MAX, 9, 3, 5, 0);
    check_membrane("last", LAST, 9, 3, 5, 0);
    check_membrane("mean", MEAN, 1, 2, 3, 0);
    check_membrane("max", MAX, 4, 1, 7, 1);
}

/* Ties: max's gradient goes to the first argmax only. */
Test(membrane, max_ties_route_to_first)
{
    lc t;
    lc_new(&t, "readout.membrane", "{mode: max}", lc_shape(SPK_TIME_STEPS, 1, 1, 0, 0), 4, 1, 1);
    const float x[4] = {0.2f, 0.7f, 0.7f, 0.1f};
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    const float R = 3.0f;
    lc_backward_with(&t, &R);
    float g[4];
    lc_get(&t, &t.li->grad_in[0], g);
    cr_expect(g[0] == 0.0f && g[1] == 3.0f && g[2] == 0.0f && g[3] == 0.0f, "%g %g %g %g", g[0],
              g[1], g[2], g[3]);
    lc_free(&t);
}

/* ---- lane blocks: bit-identical to one item summing t ascending ---- */

static int same_bits(float a, float b)
{
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    return ua == ub;
}

/* Any values (order matters for their sums), B*C past one lane block with a tail, and past
 * the 4096 items where the lane loop goes parallel. */
static void check_spike_count_exact(int T, int B, int C, int const_in)
{
    lc t;
    lc_new(&t, "readout.spike_count", NULL,
           lc_shape(const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, C, 0, 0), T, B, 1);
    const int n = B * C;
    size_t nin = t.li->in[0].numel;
    float *x = malloc(nin * sizeof(float));
    spk_test_fill(x, nin, -3.0f, 3.0f, (unsigned)(T * 31 + C));
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float *y = lc_fetch(&t, &t.li->out);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float want = 0.0f;
        for (int tt = 0; tt < T; tt++)
            want += x[const_in ? i : tt * n + i];
        bad += !same_bits(y[i], want);
    }
    cr_expect_eq(bad, 0, "T%d B%d C%d const %d: %d counts differ from the t-ascending sum", T, B, C,
                 const_in, bad);
    float *R = random_R(&t, 11);
    lc_backward_with(&t, R);
    float *g = lc_fetch(&t, &t.li->grad_in[0]);
    bad = 0;
    for (size_t i = 0; i < nin; i++)
        bad += !same_bits(g[i], const_in ? (float)T * R[i] : R[i % (size_t)n]);
    cr_expect_eq(bad, 0, "T%d B%d C%d const %d: %d gradients differ", T, B, C, const_in, bad);
    free(x), free(y), free(R), free(g);
    lc_free(&t);
}

Test(spike_count, lanes_bit_exact)
{
    check_spike_count_exact(7, 3, 103, 0);
    check_spike_count_exact(3, 5, 1000, 0);
    check_spike_count_exact(5, 3, 103, 1);
    check_spike_count_exact(1, 1, 129, 0);
}

/* Every mode against one item's loop, bit for bit; NaNs, ties and a NaN at t = 0 in the trace. */
static void check_membrane_exact(const char *mode, int m, int T, int B, int C)
{
    lc t;
    char yaml[32];
    snprintf(yaml, sizeof yaml, "{mode: %s}", mode);
    lc_new(&t, "readout.membrane", yaml, lc_shape(SPK_TIME_STEPS, 1, C, 0, 0), T, B, 1);
    const int n = B * C;
    size_t nin = t.li->in[0].numel;
    float *x = malloc(nin * sizeof(float));
    spk_test_fill(x, nin, -2.0f, 2.0f, (unsigned)(T * 13 + C));
    if (m == MAX) {
        for (int i = 0; i < n; i += 7)
            x[(size_t)(i % T) * n + i] = NAN;
        for (int i = 3; i < n; i += 11)
            x[(size_t)(T - 1) * n + i] = x[i]; /* a tie between t = 0 and t = T-1 */
        x[5] = NAN;                            /* item 5 starts with a NaN */
    }
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float *y = lc_fetch(&t, &t.li->out);
    float *R = random_R(&t, 13);
    lc_backward_with(&t, R);
    float *g = lc_fetch(&t, &t.li->grad_in[0]);
    int bad = 0, badg = 0;
    for (int i = 0; i < n; i++) {
        float want;
        int arg = T - 1;
        if (m == LAST) {
            want = x[(size_t)(T - 1) * n + i];
        } else if (m == MAX) {
            want = x[i];
            float best = x[i];
            arg = 0;
            for (int tt = 1; tt < T; tt++) {
                const float v = x[(size_t)tt * n + i];
                want = fmaxf(want, v);
                if (v > best)
                    best = v, arg = tt;
            }
        } else {
            want = 0.0f;
            for (int tt = 0; tt < T; tt++)
                want += x[(size_t)tt * n + i];
            want /= (float)T;
        }
        bad += !same_bits(y[i], want);
        for (int tt = 0; tt < T; tt++) {
            float wg = m == MEAN ? R[i] / (float)T : tt == arg ? R[i] : 0.0f;
            badg += !same_bits(g[(size_t)tt * n + i], wg);
        }
    }
    cr_expect_eq(bad, 0, "%s T%d B%d C%d: %d outputs differ", mode, T, B, C, bad);
    cr_expect_eq(badg, 0, "%s T%d B%d C%d: %d gradients differ", mode, T, B, C, badg);
    free(x), free(y), free(R), free(g);
    lc_free(&t);
}

Test(membrane, lanes_bit_exact)
{
    check_membrane_exact("mean", MEAN, 9, 3, 103);
    check_membrane_exact("max", MAX, 9, 3, 103);
    check_membrane_exact("last", LAST, 9, 3, 103);
    check_membrane_exact("mean", MEAN, 3, 5, 1000);
    check_membrane_exact("max", MAX, 4, 5, 1000);
    check_membrane_exact("max", MAX, 1, 2, 131);
}
