/* neuron.hybrid: forward against a naive double-precision model that keeps the Hebbian trace P
 * (out x in per sample) explicitly, as the equations write it, and backward against central
 * finite differences in smooth mode: of the plugin itself (reset on the graph), and of the
 * double model with frozen resets (detach_reset: true). */
#include "layer_check.h"

#include <stdio.h>

typedef struct ref_cfg {
    int T, B, nin, nout, const_in;
    double k, tau_w, dt, vth, slope;
    int smooth, out_mem;
} ref_cfg;

typedef struct ref_w {
    double *x, *W, *bias, alpha, *eta, *beta; /* bias NULL without one */
} ref_w;

static double sigm(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/* The model step by step with P materialised. Writes u (and out, when given) as [T, B, out];
 * returns sum(out * R) when R is given. With `frozen` non-NULL the reset factors use the spikes
 * stored there (the function a detached reset differentiates); `save_s` stores them. */
static double ref_run(const ref_cfg *c, const ref_w *w, const float *R, double *u_out,
                      double *y_out, const double *frozen, double *save_s)
{
    const int T = c->T, B = c->B, NI = c->nin, NO = c->nout;
    const double d = exp(-c->dt / c->tau_w);
    double *P = malloc((size_t)NO * NI * sizeof(double));
    double *u = malloc((size_t)NO * sizeof(double)), *s = malloc((size_t)NO * sizeof(double));
    double L = 0.0;
    for (int b = 0; b < B; b++) {
        memset(P, 0, (size_t)NO * NI * sizeof(double));
        for (int o = 0; o < NO; o++)
            u[o] = 0.0, s[o] = 0.0;
        for (int t = 0; t < T; t++) {
            const double *xt = w->x + (c->const_in ? 0 : (size_t)t * B * NI) + (size_t)b * NI;
            for (int o = 0; o < NO; o++) {
                double a = w->bias ? w->bias[o] : 0.0, hp = 0.0;
                for (int i = 0; i < NI; i++) {
                    a += w->W[o * NI + i] * xt[i];
                    hp += P[o * NI + i] * xt[i];
                }
                const size_t j = ((size_t)t * B + b) * NO + o;
                const double sp = frozen ? (t ? frozen[j - (size_t)B * NO] : 0.0) : s[o];
                u[o] = (1.0 - sp) * (1.0 - c->k) * u[o] +
                       c->k * (fmax(a, 0.0) * exp(-t * c->dt / c->tau_w) + w->alpha * hp);
                const double x = u[o] - c->vth;
                s[o] = c->smooth ? sigm(c->slope * x) : (x > 0.0 ? 1.0 : 0.0);
                if (save_s)
                    save_s[j] = s[o];
                if (u_out)
                    u_out[j] = u[o];
                const double y = c->out_mem ? u[o] : s[o];
                if (y_out)
                    y_out[j] = y;
                if (R)
                    L += R[j] * y;
            }
            /* the trace after step t, from the new membranes */
            for (int o = 0; o < NO; o++)
                for (int i = 0; i < NI; i++)
                    P[o * NI + i] =
                        P[o * NI + i] * d + w->eta[o] * (sigm(u[o]) + w->beta[o]) * xt[i];
        }
    }
    free(P), free(u), free(s);
    return L;
}

static double *to_double(const float *v, size_t n)
{
    double *o = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++)
        o[i] = v[i];
    return o;
}

static double *fetch_d(lc *t, const spk_tensor *x)
{
    float *v = lc_fetch(t, x);
    double *o = to_double(v, x->numel);
    free(v);
    return o;
}

static int has_weight(lc *t, const char *name)
{
    spk_layer *l = &t->li->layer;
    for (int i = 0; i < l->n_weights; i++)
        if (strcmp(l->weights[i].name, name) == 0)
            return 1;
    return 0;
}

/* The layer's current values as the model's weights. */
static ref_w ref_weights(lc *t)
{
    ref_w w;
    w.x = fetch_d(t, &t->li->in[0]);
    w.W = fetch_d(t, &lc_weight(t, "weight")->value);
    w.bias = has_weight(t, "bias") ? fetch_d(t, &lc_weight(t, "bias")->value) : NULL;
    double *a = fetch_d(t, &lc_weight(t, "alpha")->value);
    w.alpha = a[0];
    free(a);
    w.eta = fetch_d(t, &lc_weight(t, "eta")->value);
    w.beta = fetch_d(t, &lc_weight(t, "beta")->value);
    return w;
}

static void ref_free(ref_w *w)
{
    free(w->x), free(w->W), free(w->bias), free(w->eta), free(w->beta);
}

static ref_cfg make_cfg(int T, int B, int nin, int nout, int const_in, double tau_u, double tau_w,
                        double dt, double vth, double slope, int out_mem)
{
    ref_cfg c = {T, B, nin, nout, const_in, dt / tau_u, tau_w, dt, vth, slope, 0, out_mem};
    return c;
}

static void new_layer(lc *t, const char *yaml, const ref_cfg *c, unsigned seed)
{
    spk_shape in = lc_shape(c->const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, c->nin, 0, 0);
    lc_new(t, "neuron.hybrid", yaml, in, c->T, c->B, seed);
    cr_assert_eq(t->li->layer.out.time, SPK_TIME_STEPS);
    cr_assert_eq(spk_shape_size(&t->li->layer.out), c->nout);
}

/* ---- forward ---- */

static void check_forward(const char *yaml, ref_cfg c, float lo, float hi)
{
    lc t;
    new_layer(&t, yaml, &c, 5);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(c.T * 71 + c.nin));
    lc_fwd(&t);
    ref_w w = ref_weights(&t);
    const size_t total = (size_t)c.T * c.B * c.nout;
    double *u = malloc(total * sizeof(double)), *y = malloc(total * sizeof(double));
    ref_run(&c, &w, NULL, u, y, NULL, NULL);
    float *gu = lc_fetch(&t, lc_state(&t, "mem")), *gy = lc_fetch(&t, &t.li->out);
    /* float32 sums of <= 20 terms against double: ~1e-6 relative; a spike could only flip
     * where a membrane lies within that of V_th (checked below not to happen) */
    double maxe = 0.0, scale = 1e-3, near = INFINITY;
    int spikes = 0, flips = 0;
    for (size_t i = 0; i < total; i++) {
        maxe = fmax(maxe, fabs(gu[i] - u[i]));
        scale = fmax(scale, fabs(u[i]));
        near = fmin(near, fabs(u[i] - c.vth));
        spikes += y[i] > 0.5;
        flips += fabs(gy[i] - y[i]) > (c.out_mem ? 1e-4 * scale : 0.5);
    }
    cr_expect_leq(maxe / scale, 2e-5, "%s: membranes differ by %g (scale %g)", yaml, maxe, scale);
    cr_expect_eq(flips, 0, "%s: %d outputs differ (closest membrane %g from V_th)", yaml, flips,
                 near);
    if (!c.out_mem && total > 40)
        cr_expect(spikes > 0 && (size_t)spikes < total, "%s: %d spikes of %zu", yaml, spikes,
                  total);
    /* the Hebbian term must matter in these cases, or the check above proves little */
    if (c.T > 1 && w.alpha != 0.0) {
        ref_w w0 = w;
        w0.alpha = 0.0;
        double *u0 = malloc(total * sizeof(double));
        ref_run(&c, &w0, NULL, u0, NULL, NULL, NULL);
        double diff = 0.0;
        for (size_t i = 0; i < total; i++)
            diff = fmax(diff, fabs(u0[i] - u[i]));
        cr_expect_gt(diff / scale, 1e-2, "%s: the Hebbian term changes u by only %g", yaml, diff);
        free(u0);
    }
    ref_free(&w);
    free(u), free(y), free(gu), free(gy);
    lc_free(&t);
}

#define META "alpha: 0.7, eta: {uniform: [0.2, 0.6]}, beta: {uniform: [-0.3, 0.3]}"

Test(hybrid, forward_steps)
{
    check_forward("{out: 7, " META "}", make_cfg(3, 3, 5, 7, 0, 5, 1, 1, 0.2, 5, 0), -0.5f, 2.0f);
    check_forward("{out: 13, tau_u: 2, tau_w: 3, dt: 0.5, threshold: 0.3, " META "}",
                  make_cfg(6, 4, 11, 13, 0, 2, 3, 0.5, 0.3, 5, 0), -0.5f, 2.0f);
    check_forward("{out: 1, bias: false, " META "}", make_cfg(1, 1, 1, 1, 0, 5, 1, 1, 0.2, 5, 0),
                  0.0f, 3.0f);
}

Test(hybrid, forward_const_and_membrane)
{
    check_forward("{out: 9, tau_u: 2, " META "}", make_cfg(3, 5, 17, 9, 1, 2, 1, 1, 0.2, 5, 0),
                  -0.5f, 1.5f);
    check_forward("{out: 6, output: membrane, tau_w: 2, " META "}",
                  make_cfg(4, 2, 7, 6, 1, 5, 2, 1, 0.2, 5, 1), -0.5f, 1.5f);
}

/* The seed's defaults: T = 3, tau_u = 5, tau_w = 1, dt = 1, V_th = 0.2, meta-parameters in
 * [0, 0.01), and the shapes of the parameters. */
Test(hybrid, defaults_and_shapes)
{
    lc t;
    ref_cfg c = make_cfg(3, 2, 10, 4, 1, 5, 1, 1, 0.2, 5, 0);
    new_layer(&t, "{out: 4}", &c, 3);
    cr_expect_eq(lc_weight(&t, "weight")->value.numel, 40);
    cr_expect_eq(lc_weight(&t, "bias")->value.numel, 4);
    cr_expect_eq(lc_weight(&t, "alpha")->value.numel, 1);
    cr_expect_eq(lc_weight(&t, "eta")->value.numel, 4);
    cr_expect_eq(lc_weight(&t, "beta")->value.numel, 4);
    const char *meta[3] = {"alpha", "eta", "beta"};
    for (int m = 0; m < 3; m++) {
        spk_weight *w = lc_weight(&t, meta[m]);
        cr_expect(!w->frozen && !w->decay, "%s", meta[m]);
        float *v = lc_fetch(&t, &w->value);
        for (size_t i = 0; i < w->value.numel; i++)
            cr_expect(v[i] >= 0.0f && v[i] < 0.01f, "%s = %g", meta[m], v[i]);
        free(v);
    }
    float *W = lc_fetch(&t, &lc_weight(&t, "weight")->value);
    for (int i = 0; i < 40; i++)
        cr_expect(fabsf(W[i]) <= 1.0f / sqrtf(10.0f), "W = %g", W[i]);
    free(W);
    lc_fill(&t, &t.li->in[0], 0.0f, 1.0f, 9);
    lc_fwd(&t);
    ref_w w = ref_weights(&t);
    double u[24];
    ref_run(&c, &w, NULL, u, NULL, NULL, NULL);
    float gu[24];
    lc_get(&t, lc_state(&t, "mem"), gu);
    for (int i = 0; i < 24; i++)
        cr_expect(fabs(gu[i] - u[i]) <= 1e-6, "u[%d] = %g, expected %g", i, gu[i], u[i]);
    ref_free(&w);
    lc_free(&t);
}

/* One neuron, one input, by hand: T = 3, W = 1, no bias, k = 0.2, d = e^-1, x = 2 at every
 * step, alpha = 0.5, eta = 1, beta = 0:
 *   t=0: u0 = 0.2 * relu(2) = 0.4 > 0.2: s0 = 1; P0 = sigmoid(0.4) * 2
 *   t=1: reset: u1 = 0.2 * (2 e^-1 + 0.5 * P0 * 2) = 0.4 e^-1 + 0.4 sigmoid(0.4)
 *   t=2: u2 = (1 - s1) 0.8 u1 + 0.2 (2 e^-2 + 0.5 (P0 e^-1 + 2 sigmoid(u1)) 2) */
Test(hybrid, hand_computed)
{
    lc t;
    ref_cfg c = make_cfg(3, 1, 1, 1, 0, 5, 1, 1, 0.2, 5, 0);
    new_layer(&t, "{out: 1, bias: false, alpha: 0.5, eta: 1, beta: 0}", &c, 1);
    const float one = 1.0f, x[3] = {2.0f, 2.0f, 2.0f};
    lc_set(&t, &lc_weight(&t, "weight")->value, &one);
    lc_set(&t, &t.li->in[0], x);
    lc_fwd(&t);
    float u[3], s[3];
    lc_get(&t, lc_state(&t, "mem"), u);
    lc_get(&t, &t.li->out, s);
    const double e1 = exp(-1.0), p0 = sigm(0.4) * 2.0;
    const double u1 = 0.4 * e1 + 0.4 * sigm(0.4);
    const double s1 = u1 > 0.2 ? 1.0 : 0.0;
    const double u2 =
        (1 - s1) * 0.8 * u1 + 0.2 * (2 * exp(-2.0) + 0.5 * (p0 * e1 + 2 * sigm(u1)) * 2);
    const double want_u[3] = {0.4, u1, u2};
    const double want_s[3] = {1.0, s1, u2 > 0.2 ? 1.0 : 0.0};
    for (int i = 0; i < 3; i++) {
        cr_expect(fabs(u[i] - want_u[i]) <= 1e-6, "u at t=%d is %g, expected %g", i, u[i],
                  want_u[i]);
        cr_expect_eq(s[i], (float)want_s[i], "s at t=%d", i);
    }
    lc_free(&t);
}

/* ---- backward ---- */

static float *random_R(lc *t, unsigned seed)
{
    float *R = malloc(t->li->out.numel * sizeof(float));
    spk_test_fill(R, t->li->out.numel, -1.0f, 1.0f, seed);
    return R;
}

/* Smooth-mode backward through the plugin's own float32 forward (reset on the graph).
 * Tolerance: eps = 1e-3 and bounded third derivatives (sigmoids of slope 5, ReLU away from
 * its kink) give truncation ~1e-5 relative; float32 rounding of an objective of <= 100 terms
 * ~1e-5 / (2 eps) ~ 5e-3 absolute on gradients of order 1. A pre-activation within eps of 0
 * puts the ReLU kink inside one difference, worth up to ~k/2 on that value: 2e-2 tolerates
 * that while a missing path (the Gram terms, the reset, a factor d^t) is O(1). */
static void check_fd(const char *yaml, ref_cfg c, float lo, float hi)
{
    lc t;
    new_layer(&t, yaml, &c, 17);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(c.nin * 13 + c.T));
    float *R = random_R(&t, 7);
    t.li->x.smooth = 1;
    lc_fwd(&t);
    lc_backward_with(&t, R);
    if (getenv("SPK_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", yaml);
    const double tol = 2e-2;
    float *gin = lc_fetch(&t, &t.li->grad_in[0]);
    double e = lc_fd_error(&t, &t.li->in[0], R, gin, 1e-3f);
    cr_expect_leq(e, tol, "%s: grad_in error %g", yaml, e);
    free(gin);
    const char *names[5] = {"weight", "bias", "alpha", "eta", "beta"};
    for (int n = 0; n < 5; n++) {
        if (!has_weight(&t, names[n]))
            continue;
        spk_weight *w = lc_weight(&t, names[n]);
        cr_assert(!w->frozen);
        float *g = lc_fetch(&t, &w->grad);
        if (n >= 2 && c.T == 1) {
            /* one step has no earlier step: the local (Hebbian) parameters act from t = 1 on,
             * so the output does not depend on them and their gradient must be exactly zero */
            for (size_t i = 0; i < w->grad.numel; i++)
                cr_expect_eq(g[i], 0.0f, "%s: grad %s[%zu] = %g at T = 1", yaml, names[n], i, g[i]);
            free(g);
            continue;
        }
        e = lc_fd_error(&t, &w->value, R, g, 1e-3f);
        cr_expect_leq(e, tol, "%s: grad %s error %g", yaml, names[n], e);
        free(g);
    }
    free(R);
    lc_free(&t);
}

Test(hybrid, backward_fd_steps)
{
    check_fd("{out: 7, " META "}", make_cfg(3, 3, 5, 7, 0, 5, 1, 1, 0.2, 5, 0), -0.5f, 1.5f);
    check_fd("{out: 5, tau_u: 2, tau_w: 3, dt: 0.7, slope: 3, " META "}",
             make_cfg(5, 2, 9, 5, 0, 2, 3, 0.7, 0.2, 3, 0), -0.5f, 1.5f);
}

Test(hybrid, backward_fd_const_membrane)
{
    check_fd("{out: 6, tau_u: 2, " META "}", make_cfg(3, 3, 11, 6, 1, 2, 1, 1, 0.2, 5, 0), -0.5f,
             1.5f);
    check_fd("{out: 4, output: membrane, bias: false, tau_w: 2, " META "}",
             make_cfg(4, 2, 3, 4, 1, 5, 2, 1, 0.2, 5, 1), -0.5f, 1.5f);
    check_fd("{out: 3, " META "}", make_cfg(1, 2, 4, 3, 0, 5, 1, 1, 0.2, 5, 0), -0.5f, 1.5f);
}

/* detach_reset: the gradient of the model whose reset factors (1 - s_{t-1}) are constants,
 * checked on the double model with the resets frozen at the unperturbed values (eps = 1e-5 in
 * double: truncation ~1e-10, no visible rounding; 2e-3 is float32 forward/backward against
 * double over a few steps with a wide margin, while a reset path left in is O(1)). */
static void check_detached(const char *yaml, ref_cfg c)
{
    lc t;
    new_layer(&t, yaml, &c, 23);
    lc_fill(&t, &t.li->in[0], -0.5f, 1.5f, (unsigned)(c.nin * 3 + c.T));
    float *R = random_R(&t, 11);
    t.li->x.smooth = 1;
    c.smooth = 1;
    lc_fwd(&t);
    lc_backward_with(&t, R);
    ref_w w = ref_weights(&t);
    const size_t total = (size_t)c.T * c.B * c.nout;
    double *s = malloc(total * sizeof(double));
    const double L0 = ref_run(&c, &w, R, NULL, NULL, NULL, s);
    float *y = lc_fetch(&t, &t.li->out);
    double Lp = 0.0;
    for (size_t i = 0; i < total; i++)
        Lp += (double)y[i] * R[i];
    cr_expect(fabs(L0 - Lp) <= 1e-4 * fmax(1.0, fabs(L0)), "%s: model %g, plugin %g", yaml, L0, Lp);
    const double eps = 1e-5, tol = 2e-3;
    struct {
        const char *name;
        double *v;
        size_t n;
    } ps[6] = {{"input", w.x, t.li->in[0].numel},
               {"weight", w.W, (size_t)c.nout * c.nin},
               {"bias", w.bias, w.bias ? (size_t)c.nout : 0},
               {"alpha", &w.alpha, 1},
               {"eta", w.eta, (size_t)c.nout},
               {"beta", w.beta, (size_t)c.nout}};
    for (int p = 0; p < 6; p++) {
        if (!ps[p].n)
            continue;
        float *g = lc_fetch(&t, p == 0 ? &t.li->grad_in[0] : &lc_weight(&t, ps[p].name)->grad);
        double maxerr = 0.0, scale = 1e-12;
        for (size_t i = 0; i < ps[p].n; i++) {
            const double keep = ps[p].v[i];
            ps[p].v[i] = keep + eps;
            const double fp = ref_run(&c, &w, R, NULL, NULL, s, NULL);
            ps[p].v[i] = keep - eps;
            const double fm = ref_run(&c, &w, R, NULL, NULL, s, NULL);
            ps[p].v[i] = keep;
            const double fd = (fp - fm) / (2 * eps);
            maxerr = fmax(maxerr, fabs(fd - g[i]));
            scale = fmax(scale, fmax(fabs(fd), fabs((double)g[i])));
        }
        cr_expect_leq(maxerr / scale, tol, "%s: detached grad %s error %g (scale %g)", yaml,
                      ps[p].name, maxerr / scale, scale);
        free(g);
    }
    ref_free(&w);
    free(s), free(y), free(R);
    lc_free(&t);
}

Test(hybrid, backward_detached_reset)
{
    check_detached("{out: 7, detach_reset: true, " META "}",
                   make_cfg(3, 3, 5, 7, 0, 5, 1, 1, 0.2, 5, 0));
    check_detached("{out: 5, detach_reset: true, tau_u: 2, " META "}",
                   make_cfg(4, 2, 6, 5, 1, 2, 1, 1, 0.2, 5, 0));
}

/* Frozen meta-parameters get no gradient; grad_in stays untouched when not asked for. */
Test(hybrid, frozen_and_no_grad_in)
{
    lc t;
    ref_cfg c = make_cfg(3, 2, 4, 3, 0, 5, 1, 1, 0.2, 5, 0);
    new_layer(&t, "{out: 3, learn_alpha: false, learn_eta: false, learn_beta: false, " META "}", &c,
              1);
    cr_expect(lc_weight(&t, "alpha")->frozen && lc_weight(&t, "eta")->frozen &&
              lc_weight(&t, "beta")->frozen);
    lc_fill(&t, &t.li->in[0], -0.5f, 1.5f, 3);
    float *R = random_R(&t, 3);
    t.li->x.smooth = 1;
    lc_fwd(&t);
    float sentinel[24];
    for (int i = 0; i < 24; i++)
        sentinel[i] = 12345.0f;
    lc_set(&t, &t.li->grad_in[0], sentinel);
    spk_tensor *keep = t.li->x.grad_in[0];
    t.li->x.grad_in[0] = NULL;
    lc_backward_with(&t, R);
    t.li->x.grad_in[0] = keep;
    float got[24];
    lc_get(&t, &t.li->grad_in[0], got);
    for (int i = 0; i < 24; i++)
        cr_expect_eq(got[i], 12345.0f);
    float ga, ge[3], gb[3];
    lc_get(&t, &lc_weight(&t, "alpha")->grad, &ga);
    lc_get(&t, &lc_weight(&t, "eta")->grad, ge);
    lc_get(&t, &lc_weight(&t, "beta")->grad, gb);
    cr_expect(ga == 0.0f);
    for (int i = 0; i < 3; i++)
        cr_expect(ge[i] == 0.0f && gb[i] == 0.0f);
    float *gw = lc_fetch(&t, &lc_weight(&t, "weight")->grad);
    double nz = 0;
    for (int i = 0; i < 12; i++)
        nz += fabsf(gw[i]);
    cr_expect_gt(nz, 1e-4, "the weights still get a gradient");
    free(gw), free(R);
    lc_free(&t);
}

Test(hybrid, init_errors)
{
    lc t;
    int rc = lc_try(&t, "neuron.hybrid", "{out: 3}", lc_shape(SPK_TIME_NONE, 1, 10, 0, 0), 3, 2);
    cr_expect_eq(rc, SPK_ERR_SHAPE, "rc %d: %s", rc, t.err.msg);
    lc_free(&t);
    rc = lc_try(&t, "neuron.hybrid", "{out: 3, tau_u: 0.5}", lc_shape(SPK_TIME_STEPS, 1, 10, 0, 0),
                3, 2);
    cr_expect_eq(rc, SPK_ERR_INVALID, "rc %d: %s", rc, t.err.msg);
    lc_free(&t);
    rc = lc_try(&t, "neuron.hybrid", "{tau_u: 5}", lc_shape(SPK_TIME_STEPS, 1, 10, 0, 0), 3, 2);
    cr_expect_neq(rc, SPK_OK, "out is required");
    lc_free(&t);
}
