/* encoder.latency: spike steps against values worked out by hand from snnTorch's formula
 * (snntorch/spikegen.py, latency_code), one spike per value, and a zero input gradient. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "layer_check.h"

/* Runs the encoder on one sample of n values and returns, per value, the step of its spike
 * (-1: none); fails when a value fires more than once. */
static void steps_of(const char *yaml, int T, const float *x, int n, int *steps)
{
    lc t;
    lc_new(&t, "encoder.latency", yaml, lc_shape(SPK_TIME_NONE, 1, n, 0, 0), T, 1, 1);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_STEPS);
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float *y = lc_fetch(&t, &t.li->out);
    for (int f = 0; f < n; f++) {
        steps[f] = -1;
        for (int s = 0; s < T; s++) {
            float v = y[s * n + f];
            cr_assert(v == 0.0f || v == 1.0f, "%s: out[%d][%d] = %g", yaml, s, f, v);
            if (v == 1.0f) {
                cr_assert_eq(steps[f], -1, "%s: value %d fires twice", yaml, f);
                steps[f] = s;
            }
        }
    }
    free(y);
    lc_free(&t);
}

static void expect_steps(const char *yaml, int T, const float *x, const int *want, int n)
{
    int got[16];
    cr_assert_leq(n, 16);
    steps_of(yaml, T, x, n, got);
    for (int f = 0; f < n; f++)
        cr_expect_eq(got[f], want[f], "%s T=%d: x = %g fires at %d, expected %d", yaml, T, x[f],
                     got[f], want[f]);
}

/* snnTorch's own docstring example: spikegen.latency([0.02, 0.5, 1], num_steps=5,
 * normalize=True, linear=True) puts the spikes at steps 4, 2, 0 (tau = T - 1 = 4:
 * 4 (1 - 0.02) = 3.92 -> 4, 4 * 0.5 = 2, 0). */
Test(latency, snntorch_docstring_example)
{
    const float x[3] = {0.02f, 0.5f, 1.0f};
    const int want[3] = {4, 2, 0};
    expect_steps("{linear: true, normalize: true}", 5, x, want, 3);
}

/* The default log code, tau = 1, threshold 0.01 (t = ln(x / (x - 0.01))):
 *   x = 1      -> ln(1 / 0.99)   = 0.010 -> 0
 *   x = 0.02   -> ln 2           = 0.693 -> 1
 *   x = 0.011  -> ln 11          = 2.398 -> 2
 *   x = 0.0101 -> ln 101         = 4.615 -> 5
 *   x = 0.005 and x = 0 saturate at 0.01 + 1e-7: ln(100001) = 11.513 -> 12
 * With T = 10 the saturated ones fall past the window and do not fire; clip silences the
 * values below the threshold whatever T is. tau = 2 doubles every time: 0.02, 1.39, 4.80,
 * 9.23, 23.03 -> 0, 1, 5, 9, 23. */
Test(latency, log_code)
{
    const float x[6] = {1.0f, 0.02f, 0.011f, 0.0101f, 0.005f, 0.0f};
    const int want25[6] = {0, 1, 2, 5, 12, 12};
    expect_steps(NULL, 25, x, want25, 6);
    const int want10[6] = {0, 1, 2, 5, -1, -1};
    expect_steps(NULL, 10, x, want10, 6);
    const int clip[6] = {0, 1, 2, 5, -1, -1};
    expect_steps("{clip: true}", 25, x, clip, 6);
    const int tau2[6] = {0, 1, 5, 9, 23, 23};
    expect_steps("{tau: 2}", 25, x, tau2, 6);
}

/* normalize on the log code: times scale by (T - 1) / 11.513 (the saturated time), so with
 * T = 5: 0.010 -> 0, 0.693 * 0.3474 = 0.241 -> 0, 2.398 * 0.3474 = 0.833 -> 1,
 * 4.615 * 0.3474 = 1.603 -> 2, saturated -> 4; tau cancels out. A threshold of 0.1:
 * x = 0.5 -> ln(1.25) = 0.223, saturated ln(0.1000001 / 1e-7) = 13.816; T = 21 scales by
 * 20 / 13.816 = 1.4476: 0.323 -> 0; x = 0.15 -> ln 3 = 1.0986 -> 1.590 -> 2;
 * x = 0.11 -> ln 11 = 2.398 -> 3.471 -> 3. */
Test(latency, log_code_normalized)
{
    const float x[6] = {1.0f, 0.02f, 0.011f, 0.0101f, 0.005f, 0.0f};
    const int want[6] = {0, 0, 1, 2, 4, 4};
    expect_steps("{normalize: true}", 5, x, want, 6);
    expect_steps("{normalize: true, tau: 3.5}", 5, x, want, 6);
    const float y[4] = {0.5f, 0.15f, 0.11f, 0.05f};
    const int wy[4] = {0, 2, 3, 20};
    expect_steps("{normalize: true, threshold: 0.1}", 21, y, wy, 4);
}

/* An epsilon too small to move threshold + epsilon off the threshold in float: the saturated
 * time is infinite, and normalising made it inf / inf = NaN, cast to int as INT_MIN on x86 (no
 * spike) but 0 on NVIDIA (a spike at step 0). The saturated values land on T - 1 as with any
 * epsilon; the others (finite / inf) at step 0. The same steps on the CPU and on OpenCL. */
Test(latency, normalize_tiny_epsilon_no_nan)
{
    const float x[6] = {1.0f, 0.02f, 0.0101f, 0.01f, 0.005f, 0.0f};
    const int want[6] = {0, 0, 0, 4, 4, 4};
    const int clip[6] = {0, 0, 0, 4, -1, -1};
    const char *prev = getenv("SPK_TEST_DEVICE");
    cr_assert(!prev || !prev[0], "this test picks its devices itself");
    expect_steps("{normalize: true, epsilon: 1e-30}", 5, x, want, 6);
    expect_steps("{normalize: true, epsilon: 1e-30, clip: true}", 5, x, clip, 6);

    spk_backend *be = NULL;
    spk_error err = {0};
    int rc = spk_backend_open("opencl", &be, &err);
    spk_backend_free(be);
    if (rc == SPK_ERR_NOTFOUND) {
        const char *ci = getenv("CI");
        cr_assert(!ci || strcmp(ci, "true") != 0, "CI=true and no OpenCL device: %s", err.msg);
        return;
    }
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    setenv("SPK_TEST_DEVICE", "opencl", 1);
    expect_steps("{normalize: true, epsilon: 1e-30}", 5, x, want, 6);
    expect_steps("{normalize: true, epsilon: 1e-30, clip: true}", 5, x, clip, 6);
    unsetenv("SPK_TEST_DEVICE");
}

/* The linear code t = min(tau (1 - x), tau (1 - threshold)), tau = 10, rounded half to even
 * like torch.round: x = 0.5 -> 5, 0.25 -> 7.5 -> 8, 0.75 -> 2.5 -> 2, 0.125 -> 8.75 -> 9,
 * 0 -> min(10, 9.9) = 9.9 -> 10, 1 -> 0; above 1 (-5 here) fires at step 0. T = 8 leaves
 * the ones after step 7 out. */
Test(latency, linear_code_round_half_even)
{
    const float x[7] = {0.5f, 0.25f, 0.75f, 0.125f, 0.0f, 1.0f, 1.5f};
    const int want[7] = {5, 8, 2, 9, 10, 0, 0};
    expect_steps("{linear: true, tau: 10}", 12, x, want, 7);
    const int want8[7] = {5, -1, 2, -1, -1, 0, 0};
    expect_steps("{linear: true, tau: 10}", 8, x, want8, 7);
    const int clip[7] = {5, 8, 2, 9, -1, 0, 0};
    expect_steps("{linear: true, tau: 10, clip: true}", 12, x, clip, 7);
}

/* Shapes and batches: [T, B, F] with every sample coded on its own, and a zero gradient. */
Test(latency, batch_layout_and_zero_grad)
{
    const int T = 6, B = 3, F = 5;
    lc t;
    lc_new(&t, "encoder.latency", "{linear: true, normalize: true}",
           lc_shape(SPK_TIME_NONE, 1, F, 0, 0), T, B, 1);
    cr_assert_eq(t.li->out.numel, (size_t)T * B * F);
    float x[15];
    spk_test_fill(x, 15, 0.0f, 1.0f, 4);
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float *y = lc_fetch(&t, &t.li->out);
    for (int i = 0; i < B * F; i++) {
        /* tau = T - 1 = 5: round(5 (1 - x)) with x >= threshold here */
        const float st = fminf(5.0f * (1.0f - x[i]), 5.0f * 0.99f);
        const int want = (int)nearbyintf(st);
        for (int s = 0; s < T; s++)
            cr_expect_eq(y[s * B * F + i], s == want ? 1.0f : 0.0f, "x = %g, step %d", x[i], s);
    }
    free(y);
    float *R = malloc(t.li->out.numel * sizeof(float));
    spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 2);
    float junk[15];
    for (int i = 0; i < 15; i++)
        junk[i] = 7.0f;
    lc_set(&t, &t.li->grad_in[0], junk);
    lc_backward_with(&t, R);
    float g[15];
    lc_get(&t, &t.li->grad_in[0], g);
    for (int i = 0; i < 15; i++)
        cr_expect_eq(g[i], 0.0f);
    free(R);
    lc_free(&t);
}

Test(latency, init_errors)
{
    lc t;
    int rc = lc_try(&t, "encoder.latency", NULL, lc_shape(SPK_TIME_STEPS, 1, 4, 0, 0), 3, 2);
    cr_expect_eq(rc, SPK_ERR_SHAPE, "%s", t.err.msg);
    lc_free(&t);
    rc = lc_try(&t, "encoder.latency", "{threshold: 1.5}", lc_shape(SPK_TIME_NONE, 1, 4, 0, 0), 3,
                2);
    cr_expect_neq(rc, SPK_OK);
    lc_free(&t);
    rc = lc_try(&t, "encoder.latency", "{tau: 0}", lc_shape(SPK_TIME_NONE, 1, 4, 0, 0), 3, 2);
    cr_expect_neq(rc, SPK_OK);
    lc_free(&t);
}
