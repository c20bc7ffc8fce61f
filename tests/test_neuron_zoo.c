/* neuron.if, neuron.synaptic, neuron.plif: forward against naive reference loops written here,
 * the timing of each model on a hand-computed case, and backward against central finite
 * differences in smooth mode (through the plugin where the reset is part of the graph, through a
 * double-precision model with frozen resets where it is detached). */
#include "layer_check.h"

#include <stdio.h>

#define PI 3.14159265358979323846

enum { K_IF, K_SYN, K_PLIF };
enum { SUB, ZERO, NONE };    /* IF and Synaptic resets */
enum { HARD = 0, SOFT = 1 }; /* PLIF resets */
enum { FAST, ATAN, SIGM, TRI };

static const char *const type_name[] = {"neuron.if", "neuron.synaptic", "neuron.plif"};
/* the learnable per-neuron constants of each type, in the order the models below take them */
static const char *const weight_name[3][3] = {
    {"threshold", NULL, NULL}, {"alpha", "beta", "threshold"}, {"w", NULL, NULL}};

/* What a reference model needs besides the weights (which come from the layer). */
typedef struct zcase {
    int kind;
    int T, B, N, const_in;
    int reset; /* SUB/ZERO/NONE, or HARD/SOFT for PLIF */
    int sg;
    double k; /* surrogate slope */
    int out_mem;
    double rv;      /* IF: reset_value */
    int decay;      /* PLIF: decay_input */
    double vth, vr; /* PLIF */
} zcase;

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

/* Rounds to float when the model stands in for the float32 kernel: for + - * / a double result
 * rounded to float is the float result (53 >= 2*24 + 2 bits), so the hard-mode forward follows
 * the kernel's arithmetic step for step. */
static int g_fl;
static double RND(double x)
{
    return g_fl ? (double)(float)x : x;
}

static double spk(const zcase *c, double x, int smooth)
{
    return smooth ? ref_smooth(x, c->sg, c->k) : (x > 0.0 ? 1.0 : 0.0);
}

/* The three models, step by step as written in the headers of if.c, synaptic.c and plif.c.
 * x: [T, B, N] (const_in: [B, N] at every step); p[j]: the j-th weight broadcast to N values.
 * With `frozen` non-NULL the reset spikes are read from it instead of computed (the function whose
 * gradient a detached reset gives); `save_r` receives them. out/mem/aux receive the outputs, the
 * saved membranes and (Synaptic) the currents when non-NULL. Returns sum(out * R) if R given. */
static double model(const zcase *c, const double *x, double *const *p, const float *R, int smooth,
                    const double *frozen, double *save_r, double *out, double *mem, double *aux)
{
    const int T = c->T, B = c->B, N = c->N;
    double L = 0.0;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            double m = c->kind == K_PLIF ? c->vr : 0.0, sy = 0.0;
            for (int t = 0; t < T; t++) {
                const int i = (t * B + b) * N + n;
                const double cur = x[c->const_in ? b * N + n : i];
                double o, saved;
                if (c->kind == K_PLIF) {
                    const double kk = RND(1.0 / RND(1.0 + RND(exp(-p[0][n]))));
                    const double h = c->decay ? RND(m + RND(kk * RND(cur - RND(m - c->vr))))
                                              : RND(RND(m - RND(kk * RND(m - c->vr))) + cur);
                    const double s = spk(c, RND(h - c->vth), smooth);
                    const double r = frozen ? frozen[i] : s;
                    if (save_r)
                        save_r[i] = s;
                    m = c->reset == SOFT ? RND(h - RND(r * c->vth))
                                         : RND(RND(h * RND(1.0 - r)) + RND(c->vr * r));
                    o = c->out_mem ? h : s;
                    saved = h;
                } else {
                    const double th = c->kind == K_IF ? p[0][n] : p[2][n];
                    const double r = frozen ? frozen[i] : spk(c, RND(m - th), smooth);
                    if (save_r)
                        save_r[i] = r;
                    if (c->kind == K_IF) {
                        if (c->reset == SUB)
                            m = RND(RND(m + cur) - RND(r * th));
                        else if (c->reset == ZERO)
                            m = RND(RND(RND(RND(1.0 - r) * m) + RND(r * c->rv)) + cur);
                        else
                            m = RND(m + cur);
                    } else {
                        const double al = p[0][n], be = p[1][n];
                        sy = RND(RND(al * sy) + cur);
                        if (c->reset == SUB)
                            m = RND(RND(RND(be * m) + sy) - RND(r * th));
                        else if (c->reset == ZERO)
                            m = RND(RND(1.0 - r) * RND(RND(be * m) + sy));
                        else
                            m = RND(RND(be * m) + sy);
                        if (aux)
                            aux[i] = sy;
                    }
                    o = c->out_mem ? m : spk(c, RND(m - th), smooth);
                    saved = m;
                }
                if (out)
                    out[i] = o;
                if (mem)
                    mem[i] = saved;
                if (R)
                    L += R[i] * o;
            }
        }
    return L;
}

/* A weight's values broadcast to N entries, as doubles. */
static double *per_neuron(lc *t, const char *name, int N)
{
    spk_weight *w = lc_weight(t, name);
    float *v = lc_fetch(t, &w->value);
    double *o = malloc((size_t)N * sizeof(double));
    cr_assert_not_null(o);
    for (int n = 0; n < N; n++)
        o[n] = v[w->value.numel > 1 ? n : 0];
    free(v);
    return o;
}

static int n_weights(int kind)
{
    return kind == K_SYN ? 3 : 1;
}

static spk_shape in_shape(const zcase *c)
{
    return lc_shape(c->const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, c->N, 0, 0);
}

static double *to_double(const float *v, size_t n)
{
    double *d = malloc(n * sizeof(double));
    cr_assert_not_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = v[i];
    return d;
}

/* ---- forward ---- */

static void check_forward(const char *yaml, zcase c, float lo, float hi)
{
    lc t;
    const int T = c.T, B = c.B, N = c.N;
    lc_new(&t, type_name[c.kind], yaml, in_shape(&c), T, B, 7);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_STEPS);
    cr_assert_eq(spk_shape_size(&t.li->layer.out), N);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(T * 131 + B * 7 + N));
    lc_fwd(&t);
    float *xf = lc_fetch(&t, &t.li->in[0]);
    double *x = to_double(xf, t.li->in[0].numel);
    double *p[3] = {NULL, NULL, NULL};
    for (int j = 0; j < n_weights(c.kind); j++)
        p[j] = per_neuron(&t, weight_name[c.kind][j], N);
    size_t total = (size_t)T * B * N;
    double *out = malloc(total * sizeof(double)), *mem = malloc(total * sizeof(double));
    double *syn = malloc(total * sizeof(double));
    g_fl = 1;
    model(&c, x, p, NULL, 0, NULL, NULL, out, mem, syn);
    g_fl = 0;
    float *wo = malloc(total * sizeof(float)), *wm = malloc(total * sizeof(float));
    float *ws = malloc(total * sizeof(float));
    int spikes = 0;
    for (size_t i = 0; i < total; i++) {
        wo[i] = (float)out[i], wm[i] = (float)mem[i], ws[i] = (float)syn[i];
        spikes += !c.out_mem && out[i] > 0.5;
    }
    float *go = lc_fetch(&t, &t.li->out);
    float *gm = lc_fetch(&t, lc_state(&t, "mem"));
    /* Same float operations in the same order: agreement to rounding (1e-5 leaves room for a
     * 1-ulp difference of expf in PLIF's 1/tau); a spike could only differ where a membrane
     * lies within ~1e-7 of the threshold, which these inputs do not produce. */
    cr_expect_leq(spk_test_nerr(gm, wm, total), 1e-5, "%s T%d B%d N%d: membranes differ", yaml, T,
                  B, N);
    cr_expect_leq(spk_test_nerr(go, wo, total), 1e-5, "%s T%d B%d N%d: outputs differ", yaml, T, B,
                  N);
    if (c.kind == K_SYN) {
        float *gs = lc_fetch(&t, lc_state(&t, "syn"));
        cr_expect_leq(spk_test_nerr(gs, ws, total), 1e-5, "%s: currents differ", yaml);
        free(gs);
    }
    if (!c.out_mem && total > 50) /* the case must exercise resets to test them */
        cr_expect((size_t)spikes > total / 20 && (size_t)spikes < total - total / 20,
                  "%s: %d spikes of %zu", yaml, spikes, total);
    for (int j = 0; j < 3; j++)
        free(p[j]);
    free(xf), free(x), free(out), free(mem), free(syn), free(wo), free(wm), free(ws), free(go);
    free(gm);
    lc_free(&t);
}

static zcase zc_if(int T, int B, int N, int const_in, int reset, double rv)
{
    zcase c = {.kind = K_IF,
               .T = T,
               .B = B,
               .N = N,
               .const_in = const_in,
               .reset = reset,
               .sg = FAST,
               .k = 25,
               .rv = rv};
    return c;
}

static zcase zc_syn(int T, int B, int N, int const_in, int reset)
{
    zcase c = {.kind = K_SYN,
               .T = T,
               .B = B,
               .N = N,
               .const_in = const_in,
               .reset = reset,
               .sg = FAST,
               .k = 25};
    return c;
}

static zcase zc_plif(int T, int B, int N, int const_in, int reset, int decay, double vth, double vr)
{
    zcase c = {.kind = K_PLIF,
               .T = T,
               .B = B,
               .N = N,
               .const_in = const_in,
               .reset = reset,
               .sg = ATAN,
               .k = 2,
               .decay = decay,
               .vth = vth,
               .vr = vr};
    return c;
}

Test(neuron_if, forward)
{
    check_forward("{}", zc_if(1, 1, 1, 0, SUB, 0), -0.4f, 1.2f);
    check_forward("{threshold: 0.7}", zc_if(13, 3, 17, 0, SUB, 0), -0.4f, 1.0f);
    check_forward("{reset: zero}", zc_if(9, 2, 11, 0, ZERO, 0), -0.4f, 1.0f);
    check_forward("{reset: zero, reset_value: -0.3}", zc_if(9, 3, 7, 0, ZERO, -0.3), -0.4f, 1.0f);
    check_forward("{reset: none}", zc_if(6, 2, 5, 0, NONE, 0), -0.4f, 0.6f);
    check_forward("{threshold: {uniform: [0.5, 1.5]}, reset: zero, reset_value: 0.25}",
                  zc_if(11, 4, 19, 1, ZERO, 0.25), -0.2f, 0.8f);
    zcase c = zc_if(10, 3, 5, 1, SUB, 0);
    c.out_mem = 1;
    check_forward("{output: membrane, per_neuron_threshold: true}", c, -0.4f, 1.0f);
}

Test(neuron_synaptic, forward)
{
    check_forward("{}", zc_syn(1, 1, 1, 0, SUB), -0.4f, 1.2f);
    check_forward("{alpha: 0.6, beta: 0.8}", zc_syn(13, 3, 17, 0, SUB), -0.4f, 0.8f);
    check_forward("{alpha: 0.5, beta: 0.7, reset: zero}", zc_syn(9, 2, 11, 0, ZERO), -0.4f, 1.0f);
    check_forward("{alpha: 0.5, beta: 0.5, reset: none, threshold: 1.2}", zc_syn(6, 2, 7, 0, NONE),
                  -0.4f, 1.0f);
    check_forward("{alpha: {uniform: [0, 1]}, beta: {uniform: [0.3, 0.9]}, threshold: "
                  "{uniform: [0.5, 1.5]}}",
                  zc_syn(12, 3, 23, 0, SUB), -0.3f, 0.7f);
    check_forward("{alpha: 0.4, beta: 0.6, per_neuron_alpha: true, per_neuron_beta: true, "
                  "reset: zero}",
                  zc_syn(15, 4, 9, 1, ZERO), -0.2f, 0.6f);
    zcase c = zc_syn(10, 3, 5, 1, SUB);
    c.out_mem = 1;
    check_forward("{alpha: 0.7, beta: 0.8, output: membrane}", c, -0.4f, 1.0f);
}

Test(neuron_plif, forward)
{
    check_forward("{}", zc_plif(1, 1, 1, 0, HARD, 1, 1.0, 0.0), -0.4f, 3.0f);
    check_forward("{}", zc_plif(13, 3, 17, 0, HARD, 1, 1.0, 0.0), -0.5f, 3.0f);
    check_forward("{init_tau: 3.0, reset: soft, v_threshold: 0.8}",
                  zc_plif(9, 2, 11, 0, SOFT, 1, 0.8, 0.0), -0.5f, 3.0f);
    check_forward("{init_tau: 4.0, decay_input: false, v_reset: -0.2}",
                  zc_plif(11, 3, 7, 0, HARD, 0, 1.0, -0.2), -0.3f, 0.8f);
    check_forward("{init_tau: 1.5, per_neuron_tau: true, reset: soft, decay_input: false}",
                  zc_plif(8, 4, 19, 1, SOFT, 0, 1.0, 0.0), -0.2f, 1.2f);
    zcase c = zc_plif(10, 3, 5, 1, HARD, 1, 1.0, 0.1);
    c.out_mem = 1;
    check_forward("{output: membrane, v_reset: 0.1}", c, -0.4f, 3.0f);
}

/* ---- hand-computed timing ---- */

/* Runs 5 steps of one neuron on input `in` and compares the saved membrane (IF/Synaptic: m_t;
 * PLIF: H_t), the spikes and, for Synaptic, the current. */
static void check_hand(int kind, const char *yaml, const float *in, const float *want_m,
                       const float *want_s, const float *want_syn)
{
    lc t;
    lc_new(&t, type_name[kind], yaml, lc_shape(SPK_TIME_STEPS, 1, 1, 0, 0), 5, 1, 1);
    lc_set(&t, &t.li->in[0], in);
    lc_fwd(&t);
    float s[5], m[5], sy[5];
    lc_get(&t, &t.li->out, s);
    lc_get(&t, lc_state(&t, "mem"), m);
    if (want_syn)
        lc_get(&t, lc_state(&t, "syn"), sy);
    for (int i = 0; i < 5; i++) {
        cr_expect_float_eq(m[i], want_m[i], 1e-6, "%s %s: membrane at t=%d is %g, expected %g",
                           type_name[kind], yaml, i + 1, m[i], want_m[i]);
        cr_expect_eq(s[i], want_s[i], "%s %s: spike at t=%d is %g, expected %g", type_name[kind],
                     yaml, i + 1, s[i], want_s[i]);
        if (want_syn)
            cr_expect_float_eq(sy[i], want_syn[i], 1e-6, "%s: syn at t=%d is %g, expected %g", yaml,
                               i + 1, sy[i], want_syn[i]);
    }
    lc_free(&t);
}

/* IF, thr = 1, I = 0.45 at every step; the reset at step t comes from m_{t-1}, so the spike of
 * t = 3 acts at t = 4:
 *
 *   t  subtract: m = m + 0.45 - r      zero, reset_value 0.2:            none
 *   1  m = 0.45                s=0     m = 0.45                    s=0   0.45 s=0
 *   2  m = 0.9                 s=0     m = 0.9                     s=0   0.9  s=0
 *   3  m = 1.35                s=1     m = 1.35                    s=1   1.35 s=1
 *   4  r=1  m = 1.8 - 1 = 0.8  s=0     r=1  m = 0.2 + 0.45 = 0.65  s=0   1.8  s=1
 *   5  m = 1.25                s=1     m = 1.1                     s=1   2.25 s=1 */
Test(neuron_if, hand_computed_timing)
{
    const float in[5] = {0.45f, 0.45f, 0.45f, 0.45f, 0.45f};
    const float sub_m[5] = {0.45f, 0.9f, 1.35f, 0.8f, 1.25f}, sub_s[5] = {0, 0, 1, 0, 1};
    const float zero_m[5] = {0.45f, 0.9f, 1.35f, 0.65f, 1.1f}, zero_s[5] = {0, 0, 1, 0, 1};
    const float none_m[5] = {0.45f, 0.9f, 1.35f, 1.8f, 2.25f}, none_s[5] = {0, 0, 1, 1, 1};
    check_hand(K_IF, "{threshold: 1.0, reset: subtract}", in, sub_m, sub_s, NULL);
    check_hand(K_IF, "{threshold: 1.0, reset: zero, reset_value: 0.2}", in, zero_m, zero_s, NULL);
    check_hand(K_IF, "{threshold: 1.0, reset: none}", in, none_m, none_s, NULL);
}

/* Synaptic, alpha = beta = 0.5, thr = 1, I = 0.6 at every step. The current
 * syn = 0.5 syn + 0.6 runs 0.6, 0.9, 1.05, 1.125, 1.1625 in every mode (snnTorch's zero reset
 * leaves it alone); the reset at t comes from m_{t-1}:
 *
 *   t  subtract: m = 0.5 m + syn - r         zero: m = (1 - r)(0.5 m + syn)   none
 *   1  m = 0.6                      s=0      m = 0.6                 s=0     0.6    s=0
 *   2  m = 0.3 + 0.9 = 1.2          s=1      m = 1.2                 s=1     1.2    s=1
 *   3  r=1  m = 0.6 + 1.05 - 1 = 0.65  s=0   r=1  m = 0              s=0     1.65   s=1
 *   4  m = 0.325 + 1.125 = 1.45     s=1      m = 0 + 1.125 = 1.125   s=1     1.95   s=1
 *   5  r=1  m = 0.725 + 1.1625 - 1 = 0.8875  r=1  m = 0              s=0     2.1375 s=1 */
Test(neuron_synaptic, hand_computed_timing)
{
    const float in[5] = {0.6f, 0.6f, 0.6f, 0.6f, 0.6f};
    const float syn[5] = {0.6f, 0.9f, 1.05f, 1.125f, 1.1625f};
    const float sub_m[5] = {0.6f, 1.2f, 0.65f, 1.45f, 0.8875f}, sub_s[5] = {0, 1, 0, 1, 0};
    const float zero_m[5] = {0.6f, 1.2f, 0.0f, 1.125f, 0.0f}, zero_s[5] = {0, 1, 0, 1, 0};
    const float none_m[5] = {0.6f, 1.2f, 1.65f, 1.95f, 2.1375f}, none_s[5] = {0, 1, 1, 1, 1};
    const char *base = "alpha: 0.5, beta: 0.5, threshold: 1.0";
    char y[160];
    snprintf(y, sizeof y, "{%s, reset: subtract}", base);
    check_hand(K_SYN, y, in, sub_m, sub_s, syn);
    snprintf(y, sizeof y, "{%s, reset: zero}", base);
    check_hand(K_SYN, y, in, zero_m, zero_s, syn);
    snprintf(y, sizeof y, "{%s, reset: none}", base);
    check_hand(K_SYN, y, in, none_m, none_s, syn);
}

/* PLIF, tau = 2 (w = 0, 1/tau = 0.5), v_threshold = 1. The spike resets the membrane in the
 * same step (V_t from H_t), so H_{t+1} starts from the reset value; the saved membrane is H.
 *
 *   hard, decay_input, v_reset 0, X = 1.5: H = V + 0.5 (1.5 - V)
 *     t=1 H = 0.75 s=0 V = 0.75 | t=2 H = 1.125 s=1 V = 0 | t=3 H = 0.75 s=0 | t=4 H = 1.125
 *     s=1 | t=5 H = 0.75 s=0
 *   soft, decay_input, X = 1.5: V = H - s
 *     H = 0.75, 1.125 (s=1, V = 0.125), 0.125 + 0.5 * 1.375 = 0.8125,
 *     0.8125 + 0.5 * 0.6875 = 1.15625 (s=1, V = 0.15625), 0.15625 + 0.5 * 1.34375 = 0.828125
 *   hard, decay_input false, X = 0.6: H = V - 0.5 V + 0.6
 *     H = 0.6, 0.9, 1.05 (s=1, V = 0), 0.6, 0.9
 *   hard, decay_input, v_reset -0.2, X = 1.5: H = V + 0.5 (1.5 - (V + 0.2)), V_0 = -0.2
 *     H = -0.2 + 0.75 = 0.55, 0.55 + 0.5 * 0.75 = 0.925, 0.925 + 0.5 * 0.375 = 1.1125 (s=1,
 *     V = -0.2), 0.55, 0.925 */
Test(neuron_plif, hand_computed_timing)
{
    const float x15[5] = {1.5f, 1.5f, 1.5f, 1.5f, 1.5f}, x06[5] = {0.6f, 0.6f, 0.6f, 0.6f, 0.6f};
    const float hard_m[5] = {0.75f, 1.125f, 0.75f, 1.125f, 0.75f}, hard_s[5] = {0, 1, 0, 1, 0};
    const float soft_m[5] = {0.75f, 1.125f, 0.8125f, 1.15625f, 0.828125f};
    const float soft_s[5] = {0, 1, 0, 1, 0};
    const float nd_m[5] = {0.6f, 0.9f, 1.05f, 0.6f, 0.9f}, nd_s[5] = {0, 0, 1, 0, 0};
    const float vr_m[5] = {0.55f, 0.925f, 1.1125f, 0.55f, 0.925f}, vr_s[5] = {0, 0, 1, 0, 0};
    check_hand(K_PLIF, "{init_tau: 2.0}", x15, hard_m, hard_s, NULL);
    check_hand(K_PLIF, "{init_tau: 2.0, reset: soft}", x15, soft_m, soft_s, NULL);
    check_hand(K_PLIF, "{init_tau: 2.0, decay_input: false}", x06, nd_m, nd_s, NULL);
    check_hand(K_PLIF, "{init_tau: 2.0, v_reset: -0.2}", x15, vr_m, vr_s, NULL);
}

/* w = -log(init_tau - 1): one value per layer unless per_neuron_tau; learnt by default, never
 * weight-decayed. The defaults are the paper's (atan surrogate, detached hard reset to 0). */
Test(neuron_plif, tau_parameter)
{
    lc t;
    lc_new(&t, "neuron.plif", "{init_tau: 4.0}", lc_shape(SPK_TIME_STEPS, 1, 30, 0, 0), 2, 2, 3);
    spk_weight *w = lc_weight(&t, "w");
    cr_expect_eq(w->value.numel, 1);
    cr_expect(!w->frozen && !w->decay);
    float v;
    lc_get(&t, &w->value, &v);
    cr_expect_float_eq(v, -log(3.0), 1e-6, "w = %g", v);
    lc_free(&t);
    lc_new(&t, "neuron.plif", "{per_neuron_tau: true, learn_tau: false}",
           lc_shape(SPK_TIME_STEPS, 1, 30, 0, 0), 2, 2, 3);
    w = lc_weight(&t, "w");
    cr_expect_eq(w->value.numel, 30);
    cr_expect(w->frozen);
    float *vv = lc_fetch(&t, &w->value);
    for (int i = 0; i < 30; i++)
        cr_expect_float_eq(vv[i], 0.0f, 1e-7);
    free(vv);
    lc_free(&t);
}

/* ---- backward ---- */

typedef struct grads {
    float *gin, *gw[3]; /* gw[j] NULL where the weight is frozen */
} grads;

static void grads_free(grads *g)
{
    free(g->gin);
    for (int j = 0; j < 3; j++)
        free(g->gw[j]);
}

static float *random_R(lc *t, unsigned seed)
{
    float *R = malloc(t->li->out.numel * sizeof(float));
    cr_assert_not_null(R);
    spk_test_fill(R, t->li->out.numel, -1.0f, 1.0f, seed);
    return R;
}

/* Runs backward with grad_out = R in smooth mode and fetches the gradients. */
static grads run_backward(lc *t, int kind, const float *R)
{
    grads g = {0};
    t->li->x.smooth = 1;
    lc_fwd(t);
    lc_backward_with(t, R);
    g.gin = lc_fetch(t, &t->li->grad_in[0]);
    for (int j = 0; j < n_weights(kind); j++) {
        spk_weight *w = lc_weight(t, weight_name[kind][j]);
        if (!w->frozen)
            g.gw[j] = lc_fetch(t, &w->grad);
    }
    return g;
}

/* Central differences through the plugin's own forward (float32), for variants whose reset is
 * part of the graph (detach_reset: false, or no reset). The tolerance argument of test_lif.c
 * holds here: with eps = 1e-3 truncation (~eps^2 |f'''|) and float32 rounding of the objective
 * (~T * 6e-8 / 2 eps) stay ~1e-4 relative, a membrane within eps of a surrogate's kink adds
 * ~eps * k on one path; 2e-2 covers that, while a wrong BPTT term gives errors O(1). */
static void check_fd(const char *yaml, int kind, int T, int B, int N, int const_in, float lo,
                     float hi)
{
    lc t;
    spk_shape in = lc_shape(const_in ? SPK_TIME_CONST : SPK_TIME_STEPS, 1, N, 0, 0);
    lc_new(&t, type_name[kind], yaml, in, T, B, 11);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(N * 17 + T));
    float *R = random_R(&t, 5);
    grads g = run_backward(&t, kind, R);
    if (getenv("SPK_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", yaml);
    const double tol = 2e-2;
    double e = lc_fd_error(&t, &t.li->in[0], R, g.gin, 1e-3f);
    cr_expect_leq(e, tol, "%s %s: grad_in error %g", type_name[kind], yaml, e);
    for (int j = 0; j < n_weights(kind); j++) {
        if (!g.gw[j])
            continue;
        e = lc_fd_error(&t, &lc_weight(&t, weight_name[kind][j])->value, R, g.gw[j], 1e-3f);
        cr_expect_leq(e, tol, "%s %s: grad %s error %g", type_name[kind], yaml,
                      weight_name[kind][j], e);
    }
    grads_free(&g);
    free(R);
    lc_free(&t);
}

Test(neuron_if, backward_fd)
{
    /* smooth fast sigmoid spikes ~0.5 per step, subtract removes ~thr/2: inputs around thr/2
     * keep the membrane near the threshold where the surrogate is not ~0 */
    check_fd("{detach_reset: false, learn_threshold: true}", K_IF, 6, 3, 5, 0, 0.2f, 0.8f);
    check_fd("{threshold: {uniform: [0.6, 1.4]}, detach_reset: false, learn_threshold: true, "
             "surrogate: {type: atan, alpha: 2}}",
             K_IF, 7, 2, 7, 0, -0.3f, 1.0f);
    check_fd("{reset: zero, reset_value: 0.3, detach_reset: false, learn_threshold: true, "
             "surrogate: {type: sigmoid, slope: 5}}",
             K_IF, 6, 3, 5, 0, -0.3f, 1.0f);
    check_fd("{reset: zero, detach_reset: false, learn_threshold: true, per_neuron_threshold: "
             "true, surrogate: triangle}",
             K_IF, 5, 2, 3, 1, -0.3f, 0.8f);
    check_fd("{reset: none, learn_threshold: true, threshold: 2.0}", K_IF, 6, 3, 5, 0, -0.3f, 0.9f);
    check_fd("{detach_reset: false, output: membrane, learn_threshold: true, surrogate: {type: "
             "fast_sigmoid, slope: 10}}",
             K_IF, 6, 2, 5, 1, 0.1f, 0.6f);
}

Test(neuron_synaptic, backward_fd)
{
    const char *learn = "learn_alpha: true, learn_beta: true, learn_threshold: true";
    char y[320];
    snprintf(y, sizeof y, "{alpha: 0.6, beta: 0.8, detach_reset: false, %s}", learn);
    check_fd(y, K_SYN, 6, 3, 5, 0, 0.0f, 0.5f);
    snprintf(y, sizeof y,
             "{alpha: {uniform: [0.2, 0.8]}, beta: {uniform: [0.3, 0.95]}, detach_reset: false, "
             "per_neuron_threshold: true, surrogate: {type: atan, alpha: 2}, %s}",
             learn);
    check_fd(y, K_SYN, 7, 2, 6, 0, -0.3f, 0.8f);
    snprintf(y, sizeof y,
             "{alpha: 0.5, beta: 0.7, reset: zero, detach_reset: false, surrogate: {type: "
             "sigmoid, slope: 5}, %s}",
             learn);
    check_fd(y, K_SYN, 6, 3, 5, 0, -0.3f, 0.8f);
    snprintf(y, sizeof y,
             "{alpha: 0.7, beta: 0.6, reset: zero, detach_reset: false, per_neuron_alpha: true, "
             "surrogate: triangle, %s}",
             learn);
    check_fd(y, K_SYN, 5, 2, 3, 1, -0.2f, 0.5f);
    snprintf(y, sizeof y,
             "{alpha: 0.6, beta: 0.7, reset: none, threshold: 2.0, surrogate: {type: atan, "
             "alpha: 2}, %s}",
             learn);
    check_fd(y, K_SYN, 6, 3, 5, 0, -0.3f, 0.8f);
    snprintf(y, sizeof y,
             "{alpha: 0.5, beta: 0.8, detach_reset: false, output: membrane, surrogate: {type: "
             "fast_sigmoid, slope: 10}, per_neuron_beta: true, %s}",
             learn);
    check_fd(y, K_SYN, 6, 2, 5, 1, -0.1f, 0.4f);
}

Test(neuron_plif, backward_fd)
{
    check_fd("{detach_reset: false}", K_PLIF, 6, 3, 5, 0, 0.0f, 2.5f);
    check_fd("{init_tau: 3.0, reset: soft, detach_reset: false, per_neuron_tau: true, "
             "surrogate: {type: fast_sigmoid, slope: 5}}",
             K_PLIF, 7, 2, 6, 0, -0.3f, 2.5f);
    check_fd("{init_tau: 1.7, decay_input: false, v_reset: -0.2, detach_reset: false, "
             "surrogate: {type: sigmoid, slope: 4}}",
             K_PLIF, 6, 3, 5, 0, -0.3f, 1.0f);
    check_fd("{init_tau: 2.5, reset: soft, decay_input: false, detach_reset: false, "
             "surrogate: triangle}",
             K_PLIF, 5, 2, 3, 1, 0.0f, 0.7f);
    check_fd("{detach_reset: false, output: membrane, v_reset: 0.1}", K_PLIF, 6, 2, 5, 1, 0.0f,
             2.0f);
}

/* With detach_reset (the default) backward is the gradient of the function in which every reset
 * spike is a constant. Finite differences of the plugin cannot see that function, so they run on
 * the double-precision model (smooth mode, resets frozen at the unperturbed values); the model
 * with live resets is first checked against the plugin's smooth forward. eps = 1e-4 in double
 * gives truncation ~1e-8 |f'''| and no visible rounding; 5e-3 is a wide margin over what the
 * plugin's float32 differs from double by over T <= 8 steps (~1e-5), while a wrong detached term
 * is O(1). */
static void check_detached(const char *yaml, zcase c, float lo, float hi)
{
    lc t;
    const int T = c.T, B = c.B, N = c.N;
    lc_new(&t, type_name[c.kind], yaml, in_shape(&c), T, B, 13);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(N * 19 + T));
    float *R = random_R(&t, 9);
    grads g = run_backward(&t, c.kind, R);

    size_t nin = t.li->in[0].numel, total = (size_t)T * B * N;
    float *xf = lc_fetch(&t, &t.li->in[0]);
    double *x = to_double(xf, nin);
    double *p[3] = {NULL, NULL, NULL};
    const int nw = n_weights(c.kind);
    for (int j = 0; j < nw; j++)
        p[j] = per_neuron(&t, weight_name[c.kind][j], N);
    double *r = malloc(total * sizeof(double));

    double L0 = model(&c, x, p, R, 1, NULL, r, NULL, NULL, NULL);
    float *out = lc_fetch(&t, &t.li->out);
    double Lp = 0.0;
    for (size_t i = 0; i < total; i++)
        Lp += (double)out[i] * R[i];
    cr_expect(fabs(L0 - Lp) <= 1e-4 * fmax(1.0, fabs(L0)), "%s: model %g, plugin %g", yaml, L0, Lp);

    const double eps = 1e-4, tol = 5e-3;
    double maxerr = 0, scale = 1e-12;
    for (size_t i = 0; i < nin; i++) {
        const double keep = x[i];
        x[i] = keep + eps;
        const double fp = model(&c, x, p, R, 1, r, NULL, NULL, NULL, NULL);
        x[i] = keep - eps;
        const double fm = model(&c, x, p, R, 1, r, NULL, NULL, NULL, NULL);
        x[i] = keep;
        const double fd = (fp - fm) / (2 * eps);
        maxerr = fmax(maxerr, fabs(fd - g.gin[i]));
        scale = fmax(scale, fmax(fabs(fd), fabs(g.gin[i])));
    }
    cr_expect_leq(maxerr / scale, tol, "%s %s: detached grad_in error %g", type_name[c.kind], yaml,
                  maxerr / scale);
    for (int j = 0; j < nw; j++) {
        if (!g.gw[j])
            continue;
        /* a shared ([1]) weight moves every neuron's copy together */
        const int shared = lc_weight(&t, weight_name[c.kind][j])->value.numel == 1;
        maxerr = 0, scale = 1e-12;
        for (int q = 0; q < (shared ? 1 : N); q++) {
            const int n0 = shared ? 0 : q, n1 = shared ? N : q + 1;
            for (int n = n0; n < n1; n++)
                p[j][n] += eps;
            const double fp = model(&c, x, p, R, 1, r, NULL, NULL, NULL, NULL);
            for (int n = n0; n < n1; n++)
                p[j][n] -= 2 * eps;
            const double fm = model(&c, x, p, R, 1, r, NULL, NULL, NULL, NULL);
            for (int n = n0; n < n1; n++)
                p[j][n] += eps;
            const double fd = (fp - fm) / (2 * eps);
            maxerr = fmax(maxerr, fabs(fd - g.gw[j][q]));
            scale = fmax(scale, fmax(fabs(fd), fabs(g.gw[j][q])));
        }
        cr_expect_leq(maxerr / scale, tol, "%s %s: detached grad %s error %g (scale %g)",
                      type_name[c.kind], yaml, weight_name[c.kind][j], maxerr / scale, scale);
    }
    for (int j = 0; j < 3; j++)
        free(p[j]);
    free(xf), free(x), free(r), free(out), free(R);
    grads_free(&g);
    lc_free(&t);
}

Test(neuron_if, backward_detached_reset)
{
    zcase c = zc_if(7, 3, 5, 0, SUB, 0);
    check_detached("{learn_threshold: true}", c, -0.3f, 1.0f);
    c = zc_if(7, 3, 5, 0, ZERO, 0.2);
    c.sg = ATAN, c.k = 2;
    check_detached("{reset: zero, reset_value: 0.2, learn_threshold: true, per_neuron_threshold: "
                   "true, surrogate: atan}",
                   c, -0.3f, 1.0f);
    c = zc_if(8, 2, 4, 1, SUB, 0);
    c.sg = SIGM, c.k = 5, c.out_mem = 1;
    check_detached("{learn_threshold: true, surrogate: sigmoid, output: membrane}", c, -0.3f, 1.0f);
}

Test(neuron_synaptic, backward_detached_reset)
{
    zcase c = zc_syn(7, 3, 5, 0, SUB);
    check_detached("{alpha: 0.6, beta: 0.8, learn_alpha: true, learn_beta: true, "
                   "learn_threshold: true}",
                   c, -0.3f, 0.8f);
    c = zc_syn(7, 3, 5, 0, ZERO);
    c.sg = ATAN, c.k = 2;
    check_detached("{alpha: {uniform: [0.2, 0.8]}, beta: 0.7, reset: zero, learn_alpha: true, "
                   "learn_beta: true, learn_threshold: true, surrogate: atan}",
                   c, -0.3f, 0.8f);
    c = zc_syn(6, 2, 4, 1, ZERO);
    c.sg = TRI, c.k = 1, c.out_mem = 1;
    check_detached("{alpha: 0.5, beta: 0.9, reset: zero, learn_alpha: true, learn_beta: true, "
                   "learn_threshold: true, per_neuron_beta: true, surrogate: triangle, output: "
                   "membrane}",
                   c, -0.3f, 0.8f);
}

Test(neuron_plif, backward_detached_reset)
{
    check_detached("{}", zc_plif(7, 3, 5, 0, HARD, 1, 1.0, 0.0), 0.0f, 2.5f);
    check_detached("{init_tau: 3.0, reset: soft, per_neuron_tau: true}",
                   zc_plif(7, 3, 5, 0, SOFT, 1, 1.0, 0.0), -0.3f, 2.5f);
    zcase c = zc_plif(8, 2, 4, 1, HARD, 0, 0.8, -0.1);
    c.sg = FAST, c.k = 5;
    check_detached("{init_tau: 1.8, decay_input: false, v_threshold: 0.8, v_reset: -0.1, "
                   "surrogate: {type: fast_sigmoid, slope: 5}}",
                   c, -0.3f, 0.8f);
}

/* Weight gradients accumulate (+=) like every weight gradient, for [N] and [1] weights, and
 * no grad_in is written when none is asked for. */
static void check_accumulate(const char *yaml, int kind)
{
    lc t;
    lc_new(&t, type_name[kind], yaml, lc_shape(SPK_TIME_STEPS, 1, 6, 0, 0), 5, 3, 1);
    lc_fill(&t, &t.li->in[0], -0.3f, 1.0f, 21);
    float *R = random_R(&t, 4);
    lc_fwd(&t);
    float sentinel[90];
    for (int i = 0; i < 90; i++)
        sentinel[i] = 12345.0f;
    lc_set(&t, &t.li->grad_in[0], sentinel);
    spk_tensor *keep = t.li->x.grad_in[0];
    t.li->x.grad_in[0] = NULL;
    lc_backward_with(&t, R);
    float *first[3] = {NULL, NULL, NULL};
    for (int j = 0; j < n_weights(kind); j++)
        first[j] = lc_fetch(&t, &lc_weight(&t, weight_name[kind][j])->grad);
    spk_layer *l = &t.li->layer;
    cr_assert_eq(l->type->backward(l, &t.li->x), SPK_OK, "%s", t.li->err.msg);
    t.li->x.grad_in[0] = keep;
    float got[90];
    lc_get(&t, &t.li->grad_in[0], got);
    for (int i = 0; i < 90; i++)
        cr_expect_eq(got[i], 12345.0f, "%s: grad_in written though not asked for", yaml);
    for (int j = 0; j < n_weights(kind); j++) {
        spk_weight *w = lc_weight(&t, weight_name[kind][j]);
        float *second = lc_fetch(&t, &w->grad);
        double nz = 0;
        for (size_t q = 0; q < w->grad.numel; q++) {
            cr_expect_float_eq(second[q], 2 * first[j][q], 1e-5 * fmaxf(1.0f, fabsf(first[j][q])),
                               "%s: %s grad does not accumulate", yaml, w->name);
            nz += fabsf(first[j][q]);
        }
        cr_expect_gt(nz, 1e-4, "%s: %s grad is zero", yaml, w->name);
        free(second);
        free(first[j]);
    }
    free(R);
    lc_free(&t);
}

Test(neuron_zoo, weight_grads_accumulate)
{
    check_accumulate("{threshold: {uniform: [0.5, 1.0]}, learn_threshold: true}", K_IF);
    check_accumulate("{alpha: {uniform: [0.3, 0.7]}, learn_alpha: true, learn_beta: true, "
                     "learn_threshold: true, surrogate: {type: fast_sigmoid, slope: 5}}",
                     K_SYN);
    check_accumulate("{init_tau: 1.5}", K_PLIF);
    check_accumulate("{per_neuron_tau: true, init_tau: 1.5}", K_PLIF);
}

/* ---- init errors ---- */

static void expect_init_error(const char *type, const char *yaml, int time)
{
    lc t;
    int rc = lc_try(&t, type, yaml, lc_shape(time, 1, 10, 0, 0), 4, 2);
    cr_expect_neq(rc, SPK_OK, "%s %s was accepted", type, yaml);
    if (time == SPK_TIME_NONE)
        cr_expect(rc == SPK_ERR_SHAPE && strstr(t.err.msg, "expected"), "%s: rc %d: %s", type, rc,
                  t.err.msg);
    lc_free(&t);
}

Test(neuron_zoo, init_errors)
{
    for (int k = 0; k < 3; k++)
        expect_init_error(type_name[k], "{}", SPK_TIME_NONE);
    expect_init_error("neuron.if", "{reset: sometimes}", SPK_TIME_STEPS);
    expect_init_error("neuron.if", "{reset_value: x}", SPK_TIME_STEPS);
    expect_init_error("neuron.synaptic", "{alpha: 1.5}", SPK_TIME_STEPS);
    expect_init_error("neuron.synaptic", "{beta: {uniform: [0.5, 1.5]}}", SPK_TIME_STEPS);
    expect_init_error("neuron.plif", "{init_tau: 1.0}", SPK_TIME_STEPS);
    expect_init_error("neuron.plif", "{reset: subtract}", SPK_TIME_STEPS);
}
