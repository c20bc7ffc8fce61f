/* neuron.lif: forward against a naive loop, the reset timing on a hand-computed case, and
 * backward against central finite differences in smooth mode. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "layer_check.h"

#include <stdio.h>

#define PI 3.14159265358979323846

enum { SUB, ZERO, NONE };
enum { FAST, ATAN, SIGM, TRI };

/* The smooth spike function of each surrogate (the test's own copy of the definition). */
static double ref_smooth(double x, int sg, double k)
{
    switch (sg) {
    case FAST:
        return x / (1.0 + k * fabs(x)) + 0.5;
    case ATAN:
        return atan(PI / 2 * k * x) / PI + 0.5;
    case SIGM:
        return 1.0 / (1.0 + exp(-k * x));
    default: {
        double u = k * x;
        if (u <= -1)
            return 0;
        if (u >= 1)
            return 1;
        return u < 0 ? 0.5 + u + u * u / 2 : 0.5 + u - u * u / 2;
    }
    }
}

/* The model in float, step by step as written in the header of lif.c (hard spikes).
 * in: [T, B, N] (const_in: [B, N] at every step); beta/thr: per neuron (already broadcast). */
static void ref_forward_f(int T, int B, int N, const float *in, int const_in, const float *beta,
                          const float *thr, int reset, float *mem, float *spk)
{
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            float m = 0.0f;
            for (int t = 0; t < T; t++) {
                const int i = (t * B + b) * N + n;
                const float cur = in[const_in ? b * N + n : i];
                const float r = m - thr[n] > 0.0f ? 1.0f : 0.0f; /* from m_{t-1} */
                if (reset == SUB)
                    m = beta[n] * m + cur - r * thr[n];
                else if (reset == ZERO)
                    m = beta[n] * (1.0f - r) * m + cur;
                else
                    m = beta[n] * m + cur;
                mem[i] = m;
                spk[i] = m - thr[n] > 0.0f ? 1.0f : 0.0f;
            }
        }
}

/* Smooth-mode model in double; the objective sum(out * R). With `frozen` non-NULL the resets
 * are read from it instead of computed (the function whose gradient a detached reset gives);
 * with `save_r` non-NULL they are stored there. */
static double ref_objective_d(int T, int B, int N, const double *in, int const_in,
                              const double *beta, const double *thr, int reset, int sg, double k,
                              int out_mem, const float *R, const double *frozen, double *save_r)
{
    double L = 0.0;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            double m = 0.0;
            for (int t = 0; t < T; t++) {
                const int i = (t * B + b) * N + n;
                const double cur = in[const_in ? b * N + n : i];
                const double r = frozen ? frozen[i] : ref_smooth(m - thr[n], sg, k);
                if (save_r)
                    save_r[i] = r;
                if (reset == SUB)
                    m = beta[n] * m + cur - r * thr[n];
                else if (reset == ZERO)
                    m = beta[n] * (1.0 - r) * m + cur;
                else
                    m = beta[n] * m + cur;
                L += R[i] * (out_mem ? m : ref_smooth(m - thr[n], sg, k));
            }
        }
    return L;
}

/* A weight's values broadcast to N entries. */
static float *per_neuron(lc *t, const char *name, int N)
{
    spk_weight *w = lc_weight(t, name);
    float *v = lc_fetch(t, &w->value);
    float *o = malloc((size_t)N * sizeof(float));
    for (int n = 0; n < N; n++)
        o[n] = v[w->value.numel > 1 ? n : 0];
    free(v);
    return o;
}

/* ---- forward ---- */

static void check_forward(const char *yaml, int T, int B, int N, int const_in, int reset,
                          int out_mem)
{
    lc t;
    spk_shape in = lc_shape(const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, N, 0, 0);
    lc_new(&t, "neuron.lif", yaml, in, T, B, 7);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_STEPS);
    cr_assert_eq(spk_shape_size(&t.li->layer.out), N);
    lc_fill(&t, &t.li->in[0], -0.4f, 1.2f, (unsigned)(T * 131 + B * 7 + N));
    /* an inference pass: a training pass over a constant input keeps no trace on the CPU
     * (test recompute_matches_trace) */
    cr_assert_eq(spk_layer_inst_forward(t.li, 0, &t.err), SPK_OK, "%s", t.err.msg);
    float *x = lc_fetch(&t, &t.li->in[0]);
    float *beta = per_neuron(&t, "beta", N), *thr = per_neuron(&t, "threshold", N);
    size_t total = (size_t)T * B * N;
    float *mem = malloc(total * sizeof(float)), *spk = malloc(total * sizeof(float));
    ref_forward_f(T, B, N, x, const_in, beta, thr, reset, mem, spk);
    float *out = lc_fetch(&t, &t.li->out);
    float *gm = lc_fetch(&t, lc_state(&t, "mem"));
    /* Same float operations in the same order: the results agree to rounding (1e-5 allows for
     * a compiler contracting a*b+c into an FMA on one side); a spike could only differ where a
     * membrane lies within ~1e-7 of the threshold, which these inputs do not produce. */
    cr_expect_leq(spk_test_nerr(gm, mem, total), 1e-5, "%s T%d B%d N%d: membranes differ", yaml, T,
                  B, N);
    cr_expect_leq(spk_test_nerr(out, out_mem ? mem : spk, total), 1e-5,
                  "%s T%d B%d N%d: outputs differ", yaml, T, B, N);
    int spikes = 0;
    for (size_t i = 0; i < total; i++)
        spikes += spk[i] > 0.5f;
    if (!out_mem && total > 50) /* the case must exercise resets to test them */
        cr_expect(spikes > 0 && (size_t)spikes < total, "%s: %d spikes of %zu", yaml, spikes,
                  total);
    free(x), free(beta), free(thr), free(mem), free(spk), free(out), free(gm);
    lc_free(&t);
}

Test(lif, forward_subtract)
{
    check_forward("{beta: 0.8}", 1, 1, 1, 0, SUB, 0);
    check_forward("{beta: 0.8}", 7, 3, 13, 0, SUB, 0);
    check_forward("{beta: 0.9, threshold: 0.7}", 25, 5, 33, 0, SUB, 0);
}

Test(lif, forward_zero_none)
{
    check_forward("{beta: 0.8, reset: zero}", 9, 3, 11, 0, ZERO, 0);
    check_forward("{beta: 0.6, reset: none}", 9, 2, 7, 0, NONE, 0);
}

Test(lif, forward_per_neuron_and_const_input)
{
    check_forward("{beta: {uniform: [0, 1]}, threshold: {uniform: [0.5, 1.5]}}", 12, 3, 17, 0, SUB,
                  0);
    check_forward("{beta: 0.7, per_neuron_beta: true, per_neuron_threshold: true}", 5, 2, 9, 0, SUB,
                  0);
    check_forward("{beta: 0.85, reset: zero}", 15, 4, 19, 1, ZERO, 0);
    check_forward("{beta: 0.85, output: membrane}", 10, 3, 5, 1, SUB, 1);
}

Test(lif, per_neuron_weights_shapes)
{
    lc t;
    lc_new(&t, "neuron.lif", "{beta: {uniform: [0, 1]}, learn_beta: true}",
           lc_shape(SPK_TIME_STEPS, 1, 300, 0, 0), 2, 2, 3);
    spk_weight *b = lc_weight(&t, "beta"), *th = lc_weight(&t, "threshold");
    cr_expect_eq(b->value.numel, 300);
    cr_expect_eq(th->value.numel, 1);
    cr_expect(!b->frozen && th->frozen);
    cr_expect(b->clamp && b->lo == 0.0f && b->hi == 1.0f);
    float *v = lc_fetch(&t, &b->value);
    float lo = 1, hi = 0;
    for (int i = 0; i < 300; i++)
        lo = fminf(lo, v[i]), hi = fmaxf(hi, v[i]);
    cr_expect(lo >= 0.0f && hi <= 1.0f && lo < 0.1f && hi > 0.9f, "beta in [%g, %g]", lo, hi);
    free(v);
    lc_free(&t);
}

/* ---- the reset timing, by hand ---- */

/* N = 1, T = 5, beta = 0.5, thr = 1, I = 0.6 at every step; the reset at step t comes from the
 * membrane of step t-1, so the spike at t = 3 acts at t = 4:
 *
 *   t  subtract: m = 0.5 m + 0.6 - r        zero: m = 0.5 (1 - r) m + 0.6    none
 *   1  r=0  m = 0.6             s=0          m = 0.6             s=0          0.6    s=0
 *   2  r=0  m = 0.3 + 0.6 = 0.9 s=0          m = 0.9             s=0          0.9    s=0
 *   3  r=0  m = 0.45 + 0.6 = 1.05 s=1        m = 1.05            s=1          1.05   s=1
 *   4  r=1  m = 0.525 + 0.6 - 1 = 0.125 s=0  m = 0 + 0.6 = 0.6   s=0          1.125  s=1
 *   5  r=0  m = 0.0625 + 0.6 = 0.6625 s=0    m = 0.3 + 0.6 = 0.9 s=0          1.1625 s=1 */
static void check_hand(const char *yaml, const float *want_m, const float *want_s)
{
    lc t;
    lc_new(&t, "neuron.lif", yaml, lc_shape(SPK_TIME_STEPS, 1, 1, 0, 0), 5, 1, 1);
    const float in[5] = {0.6f, 0.6f, 0.6f, 0.6f, 0.6f};
    lc_set(&t, &t.li->in[0], in);
    lc_fwd(&t);
    float s[5], m[5];
    lc_get(&t, &t.li->out, s);
    lc_get(&t, lc_state(&t, "mem"), m);
    for (int i = 0; i < 5; i++) {
        cr_expect_float_eq(m[i], want_m[i], 1e-6, "%s: m at t=%d is %g, expected %g", yaml, i + 1,
                           m[i], want_m[i]);
        cr_expect_eq(s[i], want_s[i], "%s: spike at t=%d is %g, expected %g", yaml, i + 1, s[i],
                     want_s[i]);
    }
    lc_free(&t);
}

Test(lif, hand_computed_reset_timing)
{
    const float sub_m[5] = {0.6f, 0.9f, 1.05f, 0.125f, 0.6625f};
    const float sub_s[5] = {0, 0, 1, 0, 0};
    const float zero_m[5] = {0.6f, 0.9f, 1.05f, 0.6f, 0.9f};
    const float zero_s[5] = {0, 0, 1, 0, 0};
    const float none_m[5] = {0.6f, 0.9f, 1.05f, 1.125f, 1.1625f};
    const float none_s[5] = {0, 0, 1, 1, 1};
    check_hand("{beta: 0.5, threshold: 1.0, reset: subtract}", sub_m, sub_s);
    check_hand("{beta: 0.5, threshold: 1.0, reset: zero}", zero_m, zero_s);
    check_hand("{beta: 0.5, threshold: 1.0, reset: none}", none_m, none_s);
    /* reset_value 0.2: the spike at t = 2 puts the membrane at 0.2, which decays before the
     * input is added: m_3 = 0.5 * 0.2 + 0.6 = 0.7, m_4 = 0.5 * 0.7 + 0.6 = 0.95 */
    const float rv_m[5] = {0.6f, 0.9f, 1.05f, 0.7f, 0.95f};
    check_hand("{beta: 0.5, threshold: 1.0, reset: zero, reset_value: 0.2}", rv_m, zero_s);
}

/* ---- backward ---- */

typedef struct grads {
    float *gin, *gbeta, *gthr;
} grads;

/* Runs backward with grad_out = R in smooth mode and fetches the gradients. */
static grads run_backward(lc *t, const float *R)
{
    grads g = {0};
    t->li->x.smooth = 1;
    lc_fwd(t);
    lc_backward_with(t, R);
    g.gin = lc_fetch(t, &t->li->grad_in[0]);
    spk_weight *wb = lc_weight(t, "beta"), *wt = lc_weight(t, "threshold");
    if (!wb->frozen)
        g.gbeta = lc_fetch(t, &wb->grad);
    if (!wt->frozen)
        g.gthr = lc_fetch(t, &wt->grad);
    return g;
}

static float *random_R(lc *t, unsigned seed)
{
    float *R = malloc(t->li->out.numel * sizeof(float));
    spk_test_fill(R, t->li->out.numel, -1.0f, 1.0f, seed);
    return R;
}

/* Central differences through the plugin's own forward (float32), for variants whose reset is
 * part of the graph (detach_reset: false, or reset: none).
 *
 * Tolerance: the smooth functions have bounded third derivatives away from the surrogates'
 * kinks (fast sigmoid's |x| at 0, the triangle's corners), so with eps = 1e-3 the truncation
 * error is ~eps^2 |f'''| / 6 <~ 1e-4 relative even at slope 25 (|f'''| <= 6 k^2), and
 * float32 rounding of the objective contributes ~T * 6e-8 / (2 eps) ~ 1e-4. A membrane within
 * eps of a kink adds up to ~eps * k relative on that one path. 2e-2 leaves room for that while
 * any wrong term of the BPTT (a missing reset path, a factor beta, a sign) gives errors O(1). */
static void check_fd_in(const char *yaml, int T, int B, int N, int const_in, float eps, float lo,
                        float hi)
{
    lc t;
    spk_shape in = lc_shape(const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, N, 0, 0);
    lc_new(&t, "neuron.lif", yaml, in, T, B, 11);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(N * 17 + T));
    float *R = random_R(&t, 5);
    grads g = run_backward(&t, R);
    if (getenv("SPK_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", yaml);
    const double tol = 2e-2;
    double e = lc_fd_error(&t, &t.li->in[0], R, g.gin, eps);
    cr_expect_leq(e, tol, "%s: grad_in error %g", yaml, e);
    if (g.gbeta) {
        e = lc_fd_error(&t, &lc_weight(&t, "beta")->value, R, g.gbeta, eps);
        cr_expect_leq(e, tol, "%s: grad beta error %g", yaml, e);
    }
    if (g.gthr) {
        e = lc_fd_error(&t, &lc_weight(&t, "threshold")->value, R, g.gthr, eps);
        cr_expect_leq(e, tol, "%s: grad threshold error %g", yaml, e);
    }
    free(g.gin), free(g.gbeta), free(g.gthr), free(R);
    lc_free(&t);
}

static void check_fd(const char *yaml, int T, int B, int N, int const_in, float eps)
{
    check_fd_in(yaml, T, B, N, const_in, eps, -0.3f, 1.0f);
}

Test(lif, backward_fd_subtract_nodetach)
{
    /* In smooth mode a slope-25 fast sigmoid spikes ~0.5 at every step, so subtract removes
     * ~thr/2 per step and the membrane settles at (I - thr/2) / (1 - beta): inputs in
     * [0.5, 0.9] keep it around the threshold, where the surrogate is not ~0 and the gradients
     * stand well above the float32 rounding of the objective (~1e-7 / 2 eps ~ 5e-5). */
    check_fd_in("{beta: 0.8, detach_reset: false, learn_beta: true, learn_threshold: true}", 6, 3,
                5, 0, 1e-3f, 0.5f, 0.9f);
    check_fd("{beta: {uniform: [0.3, 0.95]}, detach_reset: false, learn_beta: true, "
             "learn_threshold: true, per_neuron_threshold: true, surrogate: {type: atan, "
             "alpha: 2}}",
             7, 2, 6, 0, 1e-3f);
}

Test(lif, backward_fd_zero_nodetach)
{
    check_fd("{beta: 0.8, reset: zero, detach_reset: false, learn_beta: true, learn_threshold: "
             "true, surrogate: {type: sigmoid, slope: 5}}",
             6, 3, 5, 0, 1e-3f);
    check_fd("{beta: {uniform: [0.3, 0.95]}, reset: zero, detach_reset: false, learn_beta: "
             "true, learn_threshold: true, per_neuron_threshold: true, surrogate: triangle}",
             7, 2, 6, 0, 1e-3f);
    /* a reset value away from 0 adds the (rv - m) terms to every gradient */
    check_fd("{beta: 0.8, reset: zero, reset_value: 0.3, detach_reset: false, learn_beta: true, "
             "learn_threshold: true, surrogate: {type: sigmoid, slope: 5}}",
             6, 3, 5, 0, 1e-3f);
}

Test(lif, backward_fd_none_membrane_const)
{
    check_fd("{beta: 0.7, reset: none, learn_beta: true, learn_threshold: true}", 6, 3, 5, 0,
             1e-3f);
    /* membrane output: the threshold acts only through the reset */
    check_fd("{beta: 0.8, detach_reset: false, output: membrane, learn_beta: true, "
             "learn_threshold: true}",
             6, 2, 5, 0, 1e-3f);
    /* a constant input: grad_in is the sum over t */
    check_fd("{beta: 0.8, detach_reset: false, learn_beta: true, per_neuron_beta: true, "
             "learn_threshold: true, surrogate: {type: fast_sigmoid, slope: 10}}",
             8, 3, 4, 1, 1e-3f);
}

/* With detach_reset (the default) backward is the gradient of the function in which every
 * reset r_t is a constant. Finite differences of the plugin cannot see that function, so they
 * run on a double-precision model of it (smooth mode, resets frozen at the unperturbed values);
 * the same model with live resets is first checked against the plugin's forward. eps = 1e-4 in
 * double gives truncation error ~1e-8 * |f'''| and no visible rounding: the 5e-3 tolerance is
 * what the plugin's float32 forward/backward differ from double by over T <= 8 steps (~1e-5),
 * with a wide margin, while a wrong detached term is O(1). */
static void check_detached(const char *yaml, int T, int B, int N, int const_in, int reset, int sg,
                           double k, int out_mem)
{
    lc t;
    spk_shape in = lc_shape(const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, N, 0, 0);
    lc_new(&t, "neuron.lif", yaml, in, T, B, 13);
    lc_fill(&t, &t.li->in[0], -0.3f, 1.0f, (unsigned)(N * 19 + T));
    float *R = random_R(&t, 9);
    grads g = run_backward(&t, R);
    cr_assert(g.gbeta && g.gthr);

    size_t nin = t.li->in[0].numel, total = (size_t)T * B * N;
    float *xf = lc_fetch(&t, &t.li->in[0]);
    float *bf = per_neuron(&t, "beta", N), *tf = per_neuron(&t, "threshold", N);
    double *x = malloc(nin * sizeof(double)), *beta = malloc(N * sizeof(double));
    double *thr = malloc(N * sizeof(double)), *r = malloc(total * sizeof(double));
    for (size_t i = 0; i < nin; i++)
        x[i] = xf[i];
    for (int n = 0; n < N; n++)
        beta[n] = bf[n], thr[n] = tf[n];

    /* the model agrees with the plugin's smooth forward */
    double L0 = ref_objective_d(T, B, N, x, const_in, beta, thr, reset, sg, k, out_mem, R, NULL, r);
    float *out = lc_fetch(&t, &t.li->out);
    double Lp = 0.0;
    for (size_t i = 0; i < total; i++)
        Lp += (double)out[i] * R[i];
    cr_expect(fabs(L0 - Lp) <= 1e-4 * fmax(1.0, fabs(L0)), "%s: model %g, plugin %g", yaml, L0, Lp);

    const double eps = 1e-4, tol = 5e-3;
    double maxerr = 0, scale = 1e-12;
#define FD_ENTRY(var, analytic)                                                                    \
    do {                                                                                           \
        const double keep = (var);                                                                 \
        (var) = keep + eps;                                                                        \
        double fp =                                                                                \
            ref_objective_d(T, B, N, x, const_in, beta, thr, reset, sg, k, out_mem, R, r, NULL);   \
        (var) = keep - eps;                                                                        \
        double fm =                                                                                \
            ref_objective_d(T, B, N, x, const_in, beta, thr, reset, sg, k, out_mem, R, r, NULL);   \
        (var) = keep;                                                                              \
        double fd = (fp - fm) / (2 * eps);                                                         \
        maxerr = fmax(maxerr, fabs(fd - (analytic)));                                              \
        scale = fmax(scale, fmax(fabs(fd), fabs(analytic)));                                       \
    } while (0)
    for (size_t i = 0; i < nin; i++)
        FD_ENTRY(x[i], g.gin[i]);
    cr_expect_leq(maxerr / scale, tol, "%s: detached grad_in error %g", yaml, maxerr / scale);
    /* shared beta and threshold ([1] weights): perturb every neuron's copy together */
    maxerr = 0, scale = 1e-12;
    {
        double fp, fm;
        for (int n = 0; n < N; n++)
            beta[n] += eps;
        fp = ref_objective_d(T, B, N, x, const_in, beta, thr, reset, sg, k, out_mem, R, r, NULL);
        for (int n = 0; n < N; n++)
            beta[n] -= 2 * eps;
        fm = ref_objective_d(T, B, N, x, const_in, beta, thr, reset, sg, k, out_mem, R, r, NULL);
        for (int n = 0; n < N; n++)
            beta[n] += eps;
        double fd = (fp - fm) / (2 * eps);
        cr_expect(fabs(fd - g.gbeta[0]) <= tol * fmax(fabs(fd), 1e-3), "%s: grad beta %g, fd %g",
                  yaml, g.gbeta[0], fd);
        for (int n = 0; n < N; n++)
            thr[n] += eps;
        fp = ref_objective_d(T, B, N, x, const_in, beta, thr, reset, sg, k, out_mem, R, r, NULL);
        for (int n = 0; n < N; n++)
            thr[n] -= 2 * eps;
        fm = ref_objective_d(T, B, N, x, const_in, beta, thr, reset, sg, k, out_mem, R, r, NULL);
        for (int n = 0; n < N; n++)
            thr[n] += eps;
        fd = (fp - fm) / (2 * eps);
        cr_expect(fabs(fd - g.gthr[0]) <= tol * fmax(fabs(fd), 1e-3),
                  "%s: grad threshold %g, fd %g", yaml, g.gthr[0], fd);
    }
#undef FD_ENTRY
    free(xf), free(bf), free(tf), free(x), free(beta), free(thr), free(r), free(out);
    free(g.gin), free(g.gbeta), free(g.gthr), free(R);
    lc_free(&t);
}

Test(lif, backward_detached_reset)
{
    check_detached("{beta: 0.8, learn_beta: true, learn_threshold: true}", 7, 3, 5, 0, SUB, FAST,
                   25, 0);
    check_detached("{beta: 0.8, reset: zero, learn_beta: true, learn_threshold: true, "
                   "surrogate: atan}",
                   7, 3, 5, 0, ZERO, ATAN, 2, 0);
    check_detached("{beta: 0.9, learn_beta: true, learn_threshold: true, surrogate: sigmoid}", 8, 2,
                   4, 1, SUB, SIGM, 5, 0);
    check_detached("{beta: 0.9, reset: zero, learn_beta: true, learn_threshold: true, output: "
                   "membrane, surrogate: triangle}",
                   6, 2, 4, 0, ZERO, TRI, 1, 1);
}

/* Frozen beta/threshold get no gradient, and no grad_in is written when none is asked for. */
Test(lif, backward_frozen_and_no_grad_in)
{
    lc t;
    lc_new(&t, "neuron.lif", "{beta: 0.8}", lc_shape(SPK_TIME_STEPS, 1, 6, 0, 0), 4, 2, 1);
    lc_fill(&t, &t.li->in[0], -0.3f, 1.0f, 3);
    float *R = random_R(&t, 3);
    lc_fwd(&t);
    float sentinel[48];
    for (int i = 0; i < 48; i++)
        sentinel[i] = 12345.0f;
    lc_set(&t, &t.li->grad_in[0], sentinel);
    spk_tensor *keep = t.li->x.grad_in[0];
    t.li->x.grad_in[0] = NULL;
    lc_backward_with(&t, R);
    t.li->x.grad_in[0] = keep;
    float got[48];
    lc_get(&t, &t.li->grad_in[0], got);
    for (int i = 0; i < 48; i++)
        cr_expect_eq(got[i], 12345.0f);
    float gb, gt;
    lc_get(&t, &lc_weight(&t, "beta")->grad, &gb);
    lc_get(&t, &lc_weight(&t, "threshold")->grad, &gt);
    cr_expect(gb == 0.0f && gt == 0.0f);
    free(R);
    lc_free(&t);
}

/* beta/threshold gradients accumulate into the weights' grads like every weight gradient:
 * a second backward without zeroing doubles them, for [N] and [1] weights alike. */
Test(lif, weight_grads_accumulate)
{
    lc t;
    lc_new(&t, "neuron.lif",
           "{beta: {uniform: [0.5, 0.9]}, learn_beta: true, learn_threshold: true, "
           "surrogate: {type: fast_sigmoid, slope: 5}}",
           lc_shape(SPK_TIME_STEPS, 1, 6, 0, 0), 5, 3, 1);
    lc_fill(&t, &t.li->in[0], -0.3f, 1.0f, 21);
    float *R = random_R(&t, 4);
    lc_fwd(&t);
    lc_backward_with(&t, R);
    spk_weight *wb = lc_weight(&t, "beta"), *wt = lc_weight(&t, "threshold");
    float *b1 = lc_fetch(&t, &wb->grad), *t1 = lc_fetch(&t, &wt->grad);
    spk_layer *l = &t.li->layer;
    cr_assert_eq(l->type->backward(l, &t.li->x), SPK_OK, "%s", t.li->err.msg);
    float *b2 = lc_fetch(&t, &wb->grad), *t2 = lc_fetch(&t, &wt->grad);
    double nz = 0;
    for (int n = 0; n < 6; n++) {
        cr_expect_float_eq(b2[n], 2 * b1[n], 1e-5 * fmaxf(1.0f, fabsf(b1[n])));
        nz += fabsf(b1[n]);
    }
    cr_expect_gt(nz, 1e-3);
    cr_expect_float_eq(t2[0], 2 * t1[0], 1e-5 * fmaxf(1.0f, fabsf(t1[0])));
    cr_expect_neq(t1[0], 0.0f);
    free(R), free(b1), free(t1), free(b2), free(t2);
    lc_free(&t);
}

/* On the CPU a training pass over a constant input (direct encoding) keeps no membrane trace:
 * backward recomputes it from the input (lif.cl). Outputs, grad_in and the beta/threshold
 * gradients must be the bytes of the path that keeps the trace (SPIKECL_LIF_TRACE=1), and the
 * trace past the kept input must stay unwritten. */
static void check_recompute(const char *yaml, int T, int B, int N, int smooth, int expect_skip)
{
    enum { OUT, GIN, GBETA, GTHR, NRES };
    float *res[2][NRES];
    size_t len[NRES];
    for (int k = 0; k < 2; k++) {
        if (k)
            setenv("SPIKECL_LIF_TRACE", "1", 1);
        else
            unsetenv("SPIKECL_LIF_TRACE");
        lc t;
        lc_new(&t, "neuron.lif", yaml, lc_shape(SPK_TIME_CONST, 1, N, 0, 0), T, B, 7);
        t.li->x.smooth = smooth;
        lc_fill(&t, &t.li->in[0], -0.4f, 1.2f, (unsigned)(T + 3 * N));
        spk_tensor *mem = lc_state(&t, "mem");
        float *sentinel = malloc(mem->numel * sizeof(float));
        for (size_t i = 0; i < mem->numel; i++)
            sentinel[i] = 12345.0f;
        lc_set(&t, mem, sentinel);
        float *R = random_R(&t, 17);
        lc_fwd(&t);
        float *m = lc_fetch(&t, mem);
        size_t kept = 0; /* values past the first step left alone */
        for (size_t i = (size_t)B * N; i < mem->numel; i++)
            kept += m[i] == 12345.0f;
        const size_t past = mem->numel - (size_t)B * N;
        if (k == 0 && expect_skip)
            cr_expect_eq(kept, past, "%s T%d: the trace was written (%zu of %zu untouched)", yaml,
                         T, kept, past);
        else
            cr_expect_eq(kept, 0, "%s T%d: the trace was not written", yaml, T);
        lc_backward_with(&t, R);
        res[k][OUT] = lc_fetch(&t, &t.li->out);
        res[k][GIN] = lc_fetch(&t, &t.li->grad_in[0]);
        res[k][GBETA] = lc_fetch(&t, &lc_weight(&t, "beta")->grad);
        res[k][GTHR] = lc_fetch(&t, &lc_weight(&t, "threshold")->grad);
        len[OUT] = t.li->out.numel;
        len[GIN] = t.li->grad_in[0].numel;
        len[GBETA] = lc_weight(&t, "beta")->grad.numel;
        len[GTHR] = lc_weight(&t, "threshold")->grad.numel;
        free(sentinel), free(m), free(R);
        lc_free(&t);
    }
    unsetenv("SPIKECL_LIF_TRACE");
    static const char *what[NRES] = {"output", "grad_in", "beta gradient", "threshold gradient"};
    for (int r = 0; r < NRES; r++) {
        cr_expect_eq(memcmp(res[0][r], res[1][r], len[r] * sizeof(float)), 0,
                     "%s T%d smooth %d: %s differs from the trace path", yaml, T, smooth, what[r]);
        free(res[0][r]);
        free(res[1][r]);
    }
}

Test(lif, recompute_matches_trace)
{
    check_recompute("{beta: 0.8}", 25, 4, 37, 0, 1);
    check_recompute("{beta: 0.8, reset: zero, reset_value: 0.1, learn_beta: true, "
                    "learn_threshold: true, surrogate: atan}",
                    9, 3, 19, 0, 1);
    check_recompute("{beta: {uniform: [0.5, 0.9]}, threshold: {uniform: [0.5, 1.5]}, "
                    "learn_beta: true, learn_threshold: true, detach_reset: false}",
                    32, 2, 600, 0, 1); /* more than one lane block */
    check_recompute("{beta: 0.9, reset: none, output: membrane, learn_beta: true}", 12, 2, 5, 0, 1);
    check_recompute("{beta: 0.85, learn_beta: true, learn_threshold: true, surrogate: sigmoid}", 8,
                    3, 11, 1, 1);
    /* past LIF_RECOMPUTE_MAX_T the trace is kept */
    check_recompute("{beta: 0.8, learn_threshold: true}", 33, 2, 7, 0, 0);
}

/* ---- init errors ---- */

Test(lif, init_errors)
{
    lc t;
    int rc = lc_try(&t, "neuron.lif", "{beta: 0.9}", lc_shape(SPK_TIME_NONE, 1, 10, 0, 0), 4, 2);
    cr_expect_eq(rc, SPK_ERR_SHAPE, "rc %d: %s", rc, t.err.msg);
    cr_expect(strstr(t.err.msg, "expected") != NULL, "%s", t.err.msg);
    lc_free(&t);
    rc = lc_try(&t, "neuron.lif", "{beta: 1.5}", lc_shape(SPK_TIME_STEPS, 1, 10, 0, 0), 4, 2);
    cr_expect_neq(rc, SPK_OK);
    lc_free(&t);
    rc =
        lc_try(&t, "neuron.lif", "{reset: sometimes}", lc_shape(SPK_TIME_STEPS, 1, 10, 0, 0), 4, 2);
    cr_expect_neq(rc, SPK_OK);
    lc_free(&t);
}
