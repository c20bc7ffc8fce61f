/* Every op on every backend, in the manner of ggml's test-backend-ops: each registered layer type,
 * in several configurations and on several shapes (most not multiples of 64), is built with the
 * single-layer harness on the CPU backend and on an OpenCL device from the same seed (weights come
 * from Philox on the host, so they start identical), fed the same inputs, run forward and
 * backward, and every output, input gradient, weight, weight gradient and saved state is compared.
 * Each tensor carries a guard pad (spk_tensor_guard_floats) that is checked after every pass on
 * both backends, so a kernel writing past its tensor fails here even where it corrupts nothing.
 *
 * The device: $SPIKECL_TEST_DEVICE, else the first OpenCL GPU, else opencl:0:0. Without one the
 * tests skip with a message, except under CI=true, where a missing device is a failure.
 * SPK_TEST_VERBOSE=1 prints every comparison's error. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "model.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

/* Tolerances on the normalised error max|a - b| / max(1, max|b|) (spk_test_nerr).
 * TOL_SUM: GEMM outputs and gradients are float32 sums of up to ~300 products here (in = 300,
 * rows = T*B <= 119), which OpenBLAS and CLBlast add in different orders; the rounding error of
 * such a sum is bounded by ~n u sum|terms| (u = 6e-8) and is typically sqrt(n) u |sum|, i.e.
 * ~1e-6 of the magnitudes involved. 1e-5 leaves a margin of ~10x over that, while a wrong index, a
 * missing term or a wrong scale is off by 1e-2 or more. Measured on PoCL: synapse.linear 4.3e-7,
 * neuron.hybrid 1.5e-6 (its meta-parameter gradients sum over B, out and T^2), the losses < 1e-7.
 * TOL_ELEM: the plugins' own kernels are one source compiled twice, with FP_CONTRACT OFF in OpenCL
 * and ISO C (no contraction) on the CPU, and they sum in the same order on both; they differ only
 * where a math built-in (expf, atanf, logf) is not correctly rounded (OpenCL allows a few ulp).
 * 1e-6 is ~10 ulp of values near 1. Measured on PoCL: bit-identical, except the sigmoid
 * surrogate's expf in neuron.lif and neuron.plif backward (1.5e-7). */
#define TOL_SUM  1e-5
#define TOL_ELEM 1e-6
/* Membranes kept at least this far from the threshold (see choose_clear_inputs): 10x TOL_SUM
 * and ~100x the rounding differences the backends can have in a membrane (the elementwise
 * neurons compute them bit-identically; neuron.hybrid's go through a GEMM, ~1e-6), so no
 * neuron can spike on one backend and not on the other. */
#define LIF_MARGIN   1e-4f
#define GUARD_FLOATS 17

/* ---- the device under test ---- */

static spk_backend *open_test_device(void)
{
    return spk_test_opencl_device(NULL, 0);
}

/* ---- the cases ---- */

enum { VAL_UNIFORM, VAL_SPIKES, VAL_COUNTS };

typedef struct op_case {
    const char *type;
    const char *yaml; /* the layer's parameters */
    int n_in;
    int time[SPK_MAX_INPUTS]; /* spk_time of each input */
    int values;               /* VAL_*: what the inputs hold */
    float lo, hi;             /* VAL_UNIFORM range */
    double tol;               /* TOL_ELEM or TOL_SUM */
    int repair;               /* REPAIR_*: keep membranes clear of the threshold */
    int exact_out;            /* EXACT_*: the output must be bit-identical */
} op_case;

/* Spiking layers: how choose_clear_inputs moves inputs away from the threshold. NUDGE: neuron
 * n of sample b reads input n of sample b (elementwise neurons); RESAMPLE: any input of a sample
 * can move any of its membranes (neurons with their own weights), so the sample is redrawn. */
enum { REPAIR_NONE, REPAIR_NUDGE, REPAIR_RESAMPLE };
/* EXACT_SPIKES: bit-identical, and both 0 and 1 must occur (a real spike train) */
enum { EXACT_NO, EXACT_YES, EXACT_SPIKES };

#define STEPS SPK_TIME_STEPS
#define CONST SPK_TIME_CONST
#define NONE  SPK_TIME_NONE

/* clang-format off */
static const op_case cases[] = {
    /* encoders: the network input has no time axis. Poisson inputs go below 0 and above 1/gain
     * to cover the clamped rates; its spikes must agree bit for bit. */
    {"encoder.direct", "{}", 1, {NONE}, VAL_UNIFORM, 0.0f, 1.0f, TOL_ELEM, 0, EXACT_YES},
    {"encoder.direct", "{gain: 0.37}", 1, {NONE}, VAL_UNIFORM, -1.0f, 2.0f, TOL_ELEM, 0,
     EXACT_YES},
    {"encoder.poisson", "{}", 1, {NONE}, VAL_UNIFORM, -0.2f, 1.2f, TOL_ELEM, 0, EXACT_SPIKES},
    {"encoder.poisson", "{gain: 0.7}", 1, {NONE}, VAL_UNIFORM, 0.0f, 1.6f, TOL_ELEM, 0,
     EXACT_SPIKES},
    /* latency codes: spike times from logf or a line, rounded to steps; times are compared as
     * spikes, bit for bit (a value whose time lies within an ulp of a half step could round
     * differently; the random inputs here have none) */
    {"encoder.latency", "{tau: 5}", 1, {NONE}, VAL_UNIFORM, -0.1f, 1.1f, TOL_ELEM, 0,
     EXACT_SPIKES},
    {"encoder.latency", "{linear: true, normalize: true}", 1, {NONE}, VAL_UNIFORM, -0.1f, 1.1f,
     TOL_ELEM, 0, EXACT_SPIKES},
    {"encoder.latency", "{normalize: true, clip: true, threshold: 0.2}", 1, {NONE}, VAL_UNIFORM,
     0.0f, 1.0f, TOL_ELEM, 0, EXACT_SPIKES},
    /* synapses: over time (T*B rows) and constant (B rows, the direct-encoding path) */
    {"synapse.linear", "{out: 29}", 1, {STEPS}, VAL_UNIFORM, -1.0f, 1.0f, TOL_SUM, 0, 0},
    {"synapse.linear", "{out: 29, bias: false}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0},
    {"synapse.linear", "{out: 70}", 1, {CONST}, VAL_UNIFORM, 0.0f, 1.0f, TOL_SUM, 0, 0},
    /* the list path (over each row's nonzero inputs, in blocks of outputs) */
    {"synapse.linear", "{out: 13, sparse: always}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0},
    {"synapse.linear", "{out: 5, bias: false, sparse: always}", 1, {CONST}, VAL_UNIFORM, -1.0f,
     1.0f, TOL_SUM, 0, 0},
    /* the table path (binary input): where the scratch holds the tables (T*B = 119 rows of 130
     * inputs: 32-wide tiles), else the GEMMs; its bias gradient comes from the tables */
    {"synapse.linear", "{out: 70, sparse: bits}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0},
    {"synapse.linear", "{out: 21, bias: false, sparse: bits}", 1, {STEPS}, VAL_SPIKES, 0, 0,
     TOL_SUM, 0, 0},
    {"synapse.linear", "{out: 9, sparse: bits}", 1, {CONST}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0},
    /* out = in on one shape each: forward in place, from the tables (300 x 25 x 2 rows) and
     * from the bits per row (130 x 7 x 17 rows: no room for tables) */
    {"synapse.linear", "{out: 300, bias: false, sparse: bits}", 1, {STEPS}, VAL_SPIKES, 0, 0,
     TOL_SUM, 0, 0},
    {"synapse.linear", "{out: 130, sparse: bits}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0},
    {"synapse.linear", "{out: 1, bias: false}", 1, {CONST}, VAL_UNIFORM, -1.0f, 1.0f, TOL_SUM,
     0, 0},
    /* neurons: every reset mode and surrogate, shared and per-neuron constants, learnt or not,
     * attached resets, stepped and constant input, spikes and membrane output. The elementwise
     * neurons are one kernel source with the same summation order on both sides (the learnt
     * constants' gradients too), so they get TOL_ELEM: in practice they are bit-identical except
     * where the sigmoid surrogate calls expf (~1e-7). */
    {"neuron.lif", "{beta: 0.9}", 1, {STEPS}, VAL_UNIFORM, -0.4f, 1.2f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.lif", "{beta: 0.8, reset: zero, surrogate: atan}", 1, {STEPS}, VAL_UNIFORM, -0.4f,
     1.2f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.lif", "{beta: 0.7, reset: none, surrogate: {type: sigmoid, slope: 4}}", 1, {STEPS},
     VAL_UNIFORM, -0.6f, 1.0f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.lif",
     "{beta: {uniform: [0.2, 0.95]}, learn_beta: true, threshold: {uniform: [0.5, 1.5]}, "
     "learn_threshold: true, surrogate: triangle}",
     1, {STEPS}, VAL_UNIFORM, -0.4f, 1.4f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.lif",
     "{beta: 0.85, per_neuron_beta: true, learn_beta: true, learn_threshold: true, "
     "detach_reset: false, surrogate: {type: atan, alpha: 3}}",
     1, {CONST}, VAL_UNIFORM, -0.1f, 0.5f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.lif",
     "{beta: 0.9, output: membrane, reset: zero, detach_reset: false, learn_threshold: true, "
     "per_neuron_threshold: true}",
     1, {CONST}, VAL_UNIFORM, -0.1f, 0.4f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.lif",
     "{beta: 0.75, learn_beta: true, threshold: 0.6, surrogate: {type: fast_sigmoid, slope: 10}}",
     1, {STEPS}, VAL_UNIFORM, -0.3f, 0.9f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.if", "{}", 1, {STEPS}, VAL_UNIFORM, -0.4f, 0.8f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.if", "{reset: zero, reset_value: 0.1, surrogate: atan, learn_threshold: true}", 1,
     {STEPS}, VAL_UNIFORM, -0.4f, 0.8f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.if",
     "{threshold: {uniform: [0.5, 1.5]}, learn_threshold: true, reset: none, surrogate: "
     "triangle, detach_reset: false}",
     1, {CONST}, VAL_UNIFORM, -0.1f, 0.3f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.if", "{output: membrane, per_neuron_threshold: true, surrogate: {type: sigmoid, "
     "slope: 4}}", 1, {CONST}, VAL_UNIFORM, -0.1f, 0.4f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.plif", "{}", 1, {STEPS}, VAL_UNIFORM, -0.5f, 2.5f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.plif",
     "{reset: soft, decay_input: false, per_neuron_tau: true, init_tau: 3.0, surrogate: "
     "fast_sigmoid}",
     1, {STEPS}, VAL_UNIFORM, -0.3f, 0.9f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.plif",
     "{learn_tau: false, detach_reset: false, v_reset: -0.2, v_threshold: 0.8, surrogate: "
     "{type: sigmoid, slope: 4}}",
     1, {CONST}, VAL_UNIFORM, 0.0f, 1.2f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.plif", "{output: membrane, reset: soft}", 1, {CONST}, VAL_UNIFORM, 0.0f, 1.5f,
     TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.synaptic", "{}", 1, {STEPS}, VAL_UNIFORM, -0.2f, 0.4f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.synaptic",
     "{alpha: {uniform: [0.3, 0.9]}, learn_alpha: true, learn_beta: true, learn_threshold: true, "
     "reset: zero, surrogate: atan}",
     1, {STEPS}, VAL_UNIFORM, -0.2f, 0.5f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.synaptic",
     "{alpha: 0.5, beta: 0.7, per_neuron_alpha: true, per_neuron_beta: true, learn_alpha: true, "
     "reset: none, detach_reset: false, surrogate: triangle}",
     1, {CONST}, VAL_UNIFORM, -0.1f, 0.3f, TOL_ELEM, REPAIR_NUDGE, 0},
    {"neuron.synaptic", "{output: membrane, per_neuron_threshold: true, learn_threshold: true}",
     1, {CONST}, VAL_UNIFORM, -0.05f, 0.15f, TOL_ELEM, REPAIR_NUDGE, 0},
    /* the hybrid neuron has its own weights: out != in, a GEMM inside, T-term Gram sums */
    {"neuron.hybrid", "{out: 23}", 1, {STEPS}, VAL_UNIFORM, 0.0f, 6.0f, TOL_SUM,
     REPAIR_RESAMPLE, 0},
    {"neuron.hybrid", "{out: 23, bias: false, learn_alpha: false, detach_reset: true, output: "
     "membrane}", 1, {CONST}, VAL_UNIFORM, 0.0f, 6.0f, TOL_SUM, REPAIR_RESAMPLE, 0},
    {"neuron.hybrid", "{out: 40, tau_u: 3, tau_w: 2, threshold: 0.3, slope: 3}", 1, {CONST},
     VAL_UNIFORM, 0.0f, 5.0f, TOL_SUM, REPAIR_RESAMPLE, 0},
    /* readouts: spike trains, a constant input (counted T times), membranes in every mode */
    {"readout.spike_count", "{}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_ELEM, 0, 0},
    {"readout.spike_count", "{}", 1, {CONST}, VAL_UNIFORM, 0.0f, 1.0f, TOL_ELEM, 0, 0},
    {"readout.membrane", "{mode: mean}", 1, {STEPS}, VAL_UNIFORM, -2.0f, 2.0f, TOL_ELEM, 0, 0},
    {"readout.membrane", "{mode: max}", 1, {STEPS}, VAL_UNIFORM, -2.0f, 2.0f, TOL_ELEM, 0, 0},
    {"readout.membrane", "{mode: last}", 1, {STEPS}, VAL_UNIFORM, -2.0f, 2.0f, TOL_ELEM, 0, 0},
    {"readout.membrane", "{mode: max}", 1, {CONST}, VAL_UNIFORM, -2.0f, 2.0f, TOL_ELEM, 0, 0},
    {"readout.identity", "{}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_ELEM, 0, EXACT_YES},
    {"readout.identity", "{}", 1, {CONST}, VAL_UNIFORM, -1.0f, 1.0f, TOL_ELEM, 0, EXACT_YES},
    /* losses, on [B, C] readouts (or [T, B, C] traces) with labels; the sums over C (and T)
     * inside a sample, through expf and logf, make them TOL_SUM */
    {"loss.mse_count", "{}", 1, {NONE}, VAL_COUNTS, 0, 0, TOL_SUM, 0, 0},
    {"loss.mse_count", "{correct_rate: 1.0, incorrect_rate: 0.1}", 1, {NONE}, VAL_COUNTS, 0, 0,
     TOL_SUM, 0, 0},
    {"loss.ce_count", "{}", 1, {NONE}, VAL_COUNTS, 0, 0, TOL_SUM, 0, 0},
    {"loss.ce_membrane", "{}", 1, {NONE}, VAL_UNIFORM, -4.0f, 4.0f, TOL_SUM, 0, 0},
    {"loss.ce_rate", "{}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0},
    {"loss.ce_rate", "{}", 1, {CONST}, VAL_UNIFORM, 0.0f, 3.0f, TOL_SUM, 0, 0},
    {"loss.ce_max_membrane", "{}", 1, {STEPS}, VAL_UNIFORM, -3.0f, 3.0f, TOL_SUM, 0, 0},
    {"loss.ce_max_membrane", "{}", 1, {NONE}, VAL_UNIFORM, -3.0f, 3.0f, TOL_SUM, 0, 0},
    /* merges: stepped + stepped, constants broadcast over the steps, constants only, three */
    {"merge.add", "{}", 2, {STEPS, STEPS}, VAL_UNIFORM, -1.0f, 1.0f, TOL_ELEM, 0, 0},
    {"merge.add", "{}", 2, {CONST, STEPS}, VAL_UNIFORM, -1.0f, 1.0f, TOL_SUM, 0, 0},
    {"merge.add", "{}", 2, {CONST, CONST}, VAL_UNIFORM, -1.0f, 1.0f, TOL_ELEM, 0, 0},
    {"merge.add", "{}", 3, {STEPS, CONST, STEPS}, VAL_UNIFORM, -1.0f, 1.0f, TOL_SUM, 0, 0},
    /* dropout: Philox masks keyed on the ids and epoch the harness sets, so every value must
     * agree bit for bit; a shared mask on steps, a mask per step on a constant input */
    {"dropout", "{p: 0.3}", 1, {STEPS}, VAL_UNIFORM, -1.0f, 1.0f, TOL_ELEM, 0, EXACT_YES},
    {"dropout", "{p: 0.5, same_mask: false}", 1, {CONST}, VAL_UNIFORM, -1.0f, 1.0f, TOL_ELEM, 0,
     EXACT_YES},
    /* batch norm over [C] (BatchNorm1d); per-channel sums of up to T*B*HW values in one
     * kernel source: TOL_SUM for the normalised values (1/sqrtf may differ by an ulp) */
    {"norm.batch2d", "{}", 1, {STEPS}, VAL_UNIFORM, -1.0f, 2.0f, TOL_SUM, 0, 0},
};
/* Layers of images: the input is [C, H, W] (the shapes below give B and T only). Odd sizes,
 * padding, stride, dilation, groups; spikes and constant images (the direct-encoding path). */
typedef struct img_case {
    op_case c;
    int chw[3];
} img_case;
static const img_case img_cases[] = {
    /* convolutions: the seed's first layer on a constant image, everything at once on spikes */
    {{"synapse.conv2d", "{out: 5, kernel: 3, padding: 1}", 1, {STEPS}, VAL_UNIFORM, -1.0f, 1.0f,
      TOL_SUM, 0, 0}, {3, 7, 9}},
    {{"synapse.conv2d", "{out: 4, kernel: 3, stride: 2, dilation: 2, padding: 2, groups: 2, "
      "bias: false}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0}, {6, 11, 8}},
    {{"synapse.conv2d", "{out: 12, kernel: 5}", 1, {CONST}, VAL_UNIFORM, 0.0f, 1.0f, TOL_SUM, 0,
      0}, {1, 28, 28}},
    {{"synapse.conv2d", "{out: 6, kernel: 2, stride: 3, padding: 1, groups: 6}", 1, {CONST},
      VAL_UNIFORM, -1.0f, 1.0f, TOL_SUM, 0, 0}, {6, 5, 7}},
    /* the sparse path (it follows the nonzero inputs) on spikes and on a dense constant image */
    {{"synapse.conv2d", "{out: 7, kernel: 3, padding: 1, sparse: always}", 1, {STEPS},
      VAL_SPIKES, 0, 0, TOL_SUM, 0, 0}, {5, 9, 8}},
    {{"synapse.conv2d", "{out: 5, kernel: 2, stride: 2, dilation: 2, padding: 1, sparse: always}",
      1, {CONST}, VAL_UNIFORM, -1.0f, 1.0f, TOL_SUM, 0, 0}, {3, 7, 10}},
    /* pooling: the seed's MP2 on spikes (ties everywhere: max must pick the same cell), odd
     * sizes that drop the last row, overlapping padded windows, constant images; the kernels
     * are elementwise gathers, so max is exact and avg within rounding of the same sum */
    {{"pool.max2d", "{kernel: 2}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_ELEM, 0, EXACT_YES},
     {12, 24, 24}},
    {{"pool.max2d", "{kernel: 3, stride: 2, padding: 1}", 1, {STEPS}, VAL_UNIFORM, -1.0f, 1.0f,
      TOL_ELEM, 0, EXACT_YES}, {3, 9, 8}},
    {{"pool.max2d", "{kernel: 2, stride: 3}", 1, {CONST}, VAL_UNIFORM, -2.0f, -1.0f, TOL_ELEM, 0,
      EXACT_YES}, {2, 7, 11}},
    {{"pool.avg2d", "{kernel: 2}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_ELEM, 0, 0}, {5, 9, 7}},
    {{"pool.avg2d", "{kernel: 3, stride: 1, padding: 1}", 1, {CONST}, VAL_UNIFORM, -1.0f, 1.0f,
      TOL_ELEM, 0, 0}, {2, 6, 5}},
    /* batch norm over T*B*H*W per channel: spikes, and a constant image (B*H*W) */
    {{"norm.batch2d", "{momentum: 0.3}", 1, {STEPS}, VAL_SPIKES, 0, 0, TOL_SUM, 0, 0}, {4, 7, 5}},
    {{"norm.batch2d", "{eps: 0.001}", 1, {CONST}, VAL_UNIFORM, 0.0f, 1.0f, TOL_SUM, 0, 0},
     {3, 6, 9}},
};
/* clang-format on */
#define N_CASES     ((int)(sizeof cases / sizeof cases[0]))
#define N_IMG_CASES ((int)(sizeof img_cases / sizeof img_cases[0]))

/* B, N (features per sample: inputs of synapses and neurons, classes of readouts and losses), T.
 * Odd sizes catch tails of vectorised or grouped loops; 1x1x1 the degenerate case; 300 x 25 the
 * size of the models' hidden layer. */
typedef struct op_shape {
    int B, N, T;
} op_shape;
static const op_shape shapes[] = {{3, 37, 5}, {17, 130, 7}, {1, 1, 1}, {2, 300, 25}};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* ---- one case on both backends ---- */

typedef struct side {
    spk_backend *be;
    spk_layer_inst *li;
} side;

static float *fetch(side *s, const spk_tensor *t)
{
    float *v = malloc((t->numel ? t->numel : 1) * sizeof(float));
    cr_assert_not_null(v);
    spk_error err = {0};
    cr_assert_eq(spk_tensor_download(s->be, t, v, &err), SPK_OK, "%s", err.msg);
    return v;
}

static void put(side *s, spk_tensor *t, const float *v)
{
    spk_error err = {0};
    cr_assert_eq(spk_tensor_upload(s->be, t, v, &err), SPK_OK, "%s", err.msg);
}

static void fill_value(side *s, spk_tensor *t, float value)
{
    spk_error err = {0};
    cr_assert_eq(s->be->ops->fill(s->be, t->buf, 0, t->numel, value, &err), SPK_OK, "%s", err.msg);
}

static int verbose(void)
{
    const char *v = getenv("SPK_TEST_VERBOSE");
    return v && v[0] && strcmp(v, "0") != 0;
}

/* Compares a tensor between the backends: bit for bit, or by normalised error. */
static void compare_tensor(side *ocl, side *cpu, const spk_tensor *to, const spk_tensor *tc,
                           const char *ctx, const char *what, double tol, int exact)
{
    cr_assert_eq(to->numel, tc->numel, "%s: %s sizes differ", ctx, what);
    float *a = fetch(ocl, to), *b = fetch(cpu, tc);
    const size_t n = tc->numel;
    double e = spk_test_nerr(a, b, n);
    size_t worst = 0, diff = 0;
    double wd = -1.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d))
            d = INFINITY;
        diff += a[i] != b[i] || isnan(a[i]) != isnan(b[i]);
        if (d > wd)
            wd = d, worst = i;
    }
    if (verbose())
        fprintf(stderr, "  %-60s %-28s err %.3g (%zu of %zu differ)\n", ctx, what, e, diff, n);
    if (exact)
        cr_expect_eq(diff, 0,
                     "%s: %s: %zu of %zu values differ between %s and cpu; e.g. [%zu] "
                     "%.9g vs %.9g",
                     ctx, what, diff, n, ocl->be->ops->name, worst, a[worst], b[worst]);
    else
        cr_expect(e <= tol, "%s: %s: normalised error %.3g > %.1g; worst [%zu] %s %.9g, cpu %.9g",
                  ctx, what, e, tol, worst, ocl->be->ops->name, a[worst], b[worst]);
    free(a);
    free(b);
}

/* No NaN left from the prefill: the pass wrote every value of the tensor. */
static void expect_written(side *s, const spk_tensor *t, const char *ctx, const char *what)
{
    float *v = fetch(s, t);
    size_t nan = 0;
    for (size_t i = 0; i < t->numel; i++)
        nan += isnan(v[i]) != 0;
    cr_expect_eq(nan, 0, "%s: %s on %s: %zu of %zu values not written (or NaN)", ctx, what,
                 s->be->ops->name, nan, t->numel);
    free(v);
}

static void guard_one(side *s, const spk_tensor *t, const char *ctx, const char *phase,
                      const char *what)
{
    spk_error err = {0};
    cr_expect_eq(spk_tensor_guard_check(s->be, t, &err), SPK_OK, "%s: after %s on %s: %s: %s", ctx,
                 phase, s->be->ops->name, what, err.msg);
}

/* Every tensor of the instance: inputs and their gradients, output and its gradient, labels,
 * loss, weights and their gradients, state. */
static void guard_all(side *s, const char *ctx, const char *phase)
{
    spk_layer_inst *li = s->li;
    char what[128];
    for (int i = 0; i < li->layer.n_in; i++) {
        snprintf(what, sizeof what, "input %d", i);
        guard_one(s, &li->in[i], ctx, phase, what);
        snprintf(what, sizeof what, "grad_in %d", i);
        guard_one(s, &li->grad_in[i], ctx, phase, what);
    }
    guard_one(s, &li->out, ctx, phase, "output");
    guard_one(s, &li->grad_out, ctx, phase, "grad_out");
    guard_one(s, &li->labels, ctx, phase, "labels");
    guard_one(s, &li->loss, ctx, phase, "loss");
    for (int i = 0; i < li->layer.n_weights; i++) {
        snprintf(what, sizeof what, "weight %s", li->layer.weights[i].name);
        guard_one(s, &li->layer.weights[i].value, ctx, phase, what);
        snprintf(what, sizeof what, "grad of weight %s", li->layer.weights[i].name);
        guard_one(s, &li->layer.weights[i].grad, ctx, phase, what);
    }
    for (int i = 0; i < li->layer.n_state; i++) {
        snprintf(what, sizeof what, "state %s", li->layer.state[i].name);
        guard_one(s, &li->layer.state[i].t, ctx, phase, what);
    }
}

/* States are what a layer keeps from forward for backward, and must agree; a state whose name
 * starts with "scratch" is working memory that a layer may use in blocks of a size of its
 * choosing per backend (synapse.conv2d's input-gradient columns: a few images at a time on one
 * CPU thread), so only the outputs and gradients computed from it are compared. */
/* neuron.lif on the CPU keeps no membranes in a training pass over a constant input (up to 32
 * steps: its backward recomputes them, lif.c); its "mem" is compared after an inference pass. */
static int cpu_recomputes(const side *cpu)
{
    const spk_layer *l = &cpu->li->layer;
    return strcmp(l->type->name, "neuron.lif") == 0 && l->in[0].time != SPK_TIME_STEPS &&
           cpu->li->T <= 32 && !getenv("SPIKECL_LIF_TRACE");
}

static void compare_state(side *ocl, side *cpu, const char *ctx, double tol, const char *phase)
{
    spk_layer *lo = &ocl->li->layer, *lc = &cpu->li->layer;
    cr_assert_eq(lo->n_state, lc->n_state);
    const int training = strcmp(phase, "inference forward") != 0;
    for (int i = 0; i < lc->n_state; i++) {
        if (strncmp(lc->state[i].name, "scratch", 7) == 0 ||
            (training && cpu_recomputes(cpu) && strcmp(lc->state[i].name, "mem") == 0))
            continue;
        char what[128];
        snprintf(what, sizeof what, "state %s after %s", lc->state[i].name, phase);
        compare_tensor(ocl, cpu, &lo->state[i].t, &lc->state[i].t, ctx, what, tol, 0);
    }
}

static const spk_tensor *find_state(spk_layer *l, const char *name)
{
    for (int i = 0; i < l->n_state; i++)
        if (strcmp(l->state[i].name, name) == 0)
            return &l->state[i].t;
    return NULL;
}

static const spk_weight *find_weight(spk_layer *l, const char *name)
{
    for (int i = 0; i < l->n_weights; i++)
        if (strcmp(l->weights[i].name, name) == 0)
            return &l->weights[i];
    return NULL;
}

/* A spiking layer's threshold per neuron (n_out values): its "threshold" weight ([1] or [N]),
 * else its "threshold" or "v_threshold" parameter. */
static float *thresholds(side *s, const spk_params *params, int n_out, const char *ctx)
{
    float *th = malloc((size_t)n_out * sizeof(float));
    cr_assert_not_null(th);
    const spk_weight *w = find_weight(&s->li->layer, "threshold");
    if (w) {
        float *v = fetch(s, &w->value);
        for (int n = 0; n < n_out; n++)
            th[n] = v[w->value.numel > 1 ? n : 0];
        free(v);
        return th;
    }
    const spk_param_value *pv = spk_params_find(params, "threshold");
    if (!pv)
        pv = spk_params_find(params, "v_threshold");
    cr_assert(pv,
              "%s: a spiking case needs a 'threshold' weight or a 'threshold' / "
              "'v_threshold' parameter",
              ctx);
    for (int n = 0; n < n_out; n++)
        th[n] = (float)pv->num;
    return th;
}

/* Spiking layers: moves inputs until no CPU membrane (the "mem" state, compared with the
 * threshold) lies within LIF_MARGIN of its threshold, so that spikes, resets and everything
 * after them must agree between the backends. NUDGE pushes the input that feeds a membrane found
 * too close (the input of that step, or the constant input) by 5 margins: away from the
 * threshold for stepped inputs, always upwards for constant ones (a constant input sets every
 * step, and pushing it back and forth could cycle). RESAMPLE redraws the whole sample. Either
 * shifts later steps too, so it repeats until the window is clear. */
static void choose_clear_inputs(side *cpu, const op_case *c, const spk_params *params, float *in,
                                const char *ctx)
{
    spk_layer_inst *li = cpu->li;
    spk_layer *l = &li->layer;
    const spk_tensor *mem = find_state(l, "mem");
    cr_assert(mem, "%s: a spiking case needs a 'mem' state", ctx);
    const int N = spk_shape_size(&l->in[0]), NO = spk_shape_size(&l->out);
    const int steps = l->in[0].time == SPK_TIME_STEPS;
    const size_t bno = (size_t)li->B * NO;
    cr_assert_eq(mem->numel, (size_t)li->T * bno, "%s: 'mem' is not [T, B, out]", ctx);
    cr_assert(c->repair != REPAIR_NUDGE || N == NO, "%s: NUDGE needs out == in", ctx);
    float *th = thresholds(cpu, params, NO, ctx);
    char *redraw = malloc((size_t)li->B);
    int moved = 0, round;
    for (round = 0; round < 100; round++) {
        put(cpu, &li->in[0], in);
        spk_error err = {0};
        /* inference: a training pass may keep no membranes (cpu_recomputes) */
        cr_assert_eq(spk_layer_inst_forward(li, 0, &err), SPK_OK, "%s: %s", ctx, err.msg);
        float *m = fetch(cpu, mem);
        int near = 0;
        memset(redraw, 0, (size_t)li->B);
        for (size_t i = 0; i < mem->numel; i++) {
            const int n = (int)(i % (size_t)NO);
            const float d = m[i] - th[n];
            if (!(fabsf(d) < LIF_MARGIN))
                continue;
            near++;
            if (c->repair == REPAIR_RESAMPLE) {
                redraw[(i % bno) / (size_t)NO] = 1;
            } else if (steps) { /* i = (t * B + b) * N + n, the same index as the input */
                in[i] += d >= 0.0f ? 5 * LIF_MARGIN : -5 * LIF_MARGIN;
            } else {
                in[i % bno] += 5 * LIF_MARGIN;
            }
        }
        free(m);
        moved += near;
        if (!near)
            break;
        for (int b = 0; c->repair == REPAIR_RESAMPLE && b < li->B; b++) {
            if (!redraw[b])
                continue;
            float *row = malloc((size_t)N * sizeof(float));
            for (int t = 0; t < (steps ? li->T : 1); t++) {
                spk_test_fill(row, (size_t)N, c->lo, c->hi, (unsigned)(7919 * round + 31 * b + t));
                memcpy(in + ((size_t)t * li->B + b) * N, row, (size_t)N * sizeof(float));
            }
            free(row);
        }
    }
    free(th);
    free(redraw);
    cr_assert_lt(round, 100,
                 "%s: could not choose inputs whose membranes stay clear of the "
                 "threshold",
                 ctx);
    if (verbose() && moved)
        fprintf(stderr,
                "  %s: %d membranes were within %g of the threshold; inputs moved in %d "
                "rounds\n",
                ctx, moved, (double)LIF_MARGIN, round);
}

/* Inputs of one case, the same on both sides. */
static float *make_input(const op_case *c, const spk_tensor *t, int T, unsigned seed)
{
    float *v = malloc((t->numel ? t->numel : 1) * sizeof(float));
    cr_assert_not_null(v);
    switch (c->values) {
    case VAL_SPIKES:
        spk_test_fill(v, t->numel, 0.0f, 1.0f, seed);
        for (size_t i = 0; i < t->numel; i++)
            v[i] = v[i] < 0.3f ? 1.0f : 0.0f;
        break;
    case VAL_COUNTS: /* spike counts over T steps */
        spk_test_fill(v, t->numel, 0.0f, (float)(T + 1), seed);
        for (size_t i = 0; i < t->numel; i++)
            v[i] = floorf(v[i]);
        break;
    default:
        spk_test_fill(v, t->numel, c->lo, c->hi, seed);
    }
    return v;
}

static int is_loss(const spk_layer_type *ty)
{
    return ty->kind == SPK_KIND_LOSS;
}

/* Runs one case on one shape on both backends and compares everything. chw: the [C, H, W] of an
 * image case (NULL: the input is [N]). */
/* The layer's SPK_MEM_* promises, on one backend, after the checked backward: poison what it
 * promises not to read (inputs, output: NaN), hand it grad_out in grad_in's buffer when it
 * promises to work in place, run backward again and expect the same bytes. */
static void check_memory_promises(side *s, const float *gout, const float *in0, const char *ctx)
{
    spk_layer_inst *li = s->li;
    const unsigned mem = li->layer.memory;
    if (!mem || !li->layer.type->backward)
        return;
    spk_error err = {0};
    float *ref[SPK_MAX_INPUTS + SPK_MAX_WEIGHTS] = {0};
    const spk_tensor *grads[SPK_MAX_INPUTS + SPK_MAX_WEIGHTS];
    int n = 0;
    for (int i = 0; i < li->layer.n_in; i++)
        grads[n++] = &li->grad_in[i];
    for (int i = 0; i < li->layer.n_weights; i++)
        grads[n++] = &li->layer.weights[i].grad;
    for (int i = 0; i < n; i++)
        ref[i] = fetch(s, grads[i]);
    if (mem & SPK_MEM_BACKWARD_NO_INPUT)
        for (int i = 0; i < li->layer.n_in; i++)
            fill_value(s, &li->in[i], NAN);
    if (mem & SPK_MEM_OUT_FORWARD_ONLY)
        fill_value(s, &li->out, NAN);
    const int in_place = (mem & SPK_MEM_GRAD_IN_PLACE) && li->layer.n_in == 1 &&
                         li->grad_in[0].numel == li->grad_out.numel;
    for (int i = 0; i < li->layer.n_in; i++)
        fill_value(s, &li->grad_in[i], NAN);
    if (in_place) {
        put(s, &li->grad_in[0], gout);
        li->x.grad_out = &li->grad_in[0];
    }
    cr_assert_eq(spk_layer_inst_backward(li, &err), SPK_OK, "%s on %s: backward: %s", ctx,
                 s->be->ops->name, err.msg);
    li->x.grad_out = &li->grad_out;
    for (int i = 0; i < n; i++) {
        float *v = fetch(s, grads[i]);
        size_t bad = 0;
        for (size_t k = 0; k < grads[i]->numel; k++)
            bad += memcmp(&v[k], &ref[i][k], sizeof(float)) != 0;
        cr_expect_eq(bad, 0,
                     "%s on %s: memory promise 0x%x broken: %zu of %zu values of %s %d differ "
                     "when backward runs on poisoned inputs/output%s",
                     ctx, s->be->ops->name, mem, bad, grads[i]->numel,
                     i < li->layer.n_in ? "grad_in" : "weight grad",
                     i < li->layer.n_in ? i : i - li->layer.n_in, in_place ? ", in place" : "");
        free(v);
        free(ref[i]);
    }
    /* forward in place: the input handed over in the output's buffer */
    if ((mem & SPK_MEM_OUT_IN_PLACE) && li->layer.n_in == 1 && li->in[0].numel == li->out.numel) {
        put(s, &li->in[0], in0); /* the reference: forward again on the unpoisoned input */
        cr_assert_eq(spk_layer_inst_forward(li, 1, &err), SPK_OK, "%s on %s: forward: %s", ctx,
                     s->be->ops->name, err.msg);
        float *out_ref = fetch(s, &li->out);
        float *st_ref[SPK_MAX_STATE];
        for (int k = 0; k < li->layer.n_state; k++)
            st_ref[k] = fetch(s, &li->layer.state[k].t);
        put(s, &li->out, in0);
        li->x.in[0] = &li->out;
        cr_assert_eq(spk_layer_inst_forward(li, 1, &err), SPK_OK, "%s on %s: forward: %s", ctx,
                     s->be->ops->name, err.msg);
        li->x.in[0] = &li->in[0];
        float *v = fetch(s, &li->out);
        cr_expect_eq(memcmp(v, out_ref, li->out.numel * sizeof(float)), 0,
                     "%s on %s: memory promise 0x%x broken: the output differs when forward "
                     "writes it over its input",
                     ctx, s->be->ops->name, mem);
        free(v);
        free(out_ref);
        for (int k = 0; k < li->layer.n_state; k++) {
            v = fetch(s, &li->layer.state[k].t);
            cr_expect_eq(memcmp(v, st_ref[k], li->layer.state[k].t.numel * sizeof(float)), 0,
                         "%s on %s: state %s differs when forward runs in place", ctx,
                         s->be->ops->name, li->layer.state[k].name);
            free(v);
            free(st_ref[k]);
        }
    }
}

static void run_case(const op_case *c, const int *chw, const op_shape *sh, spk_backend *cpu_be,
                     spk_backend *ocl_be)
{
    const spk_layer_type *ty = spk_registry_find(spk_registry_default(), c->type);
    cr_assert_not_null(ty, "layer type %s is not registered", c->type);
    char ctx[256];
    if (chw)
        snprintf(ctx, sizeof ctx, "%s %s B=%d in=[%d, %d, %d] T=%d", c->type, c->yaml, sh->B,
                 chw[0], chw[1], chw[2], sh->T);
    else
        snprintf(ctx, sizeof ctx, "%s %s B=%d N=%d T=%d", c->type, c->yaml, sh->B, sh->N, sh->T);
    spk_error err = {0};
    spk_params params;
    cr_assert_eq(spk_params_from_yaml(ty, c->yaml, &params, &err), SPK_OK, "%s: %s", ctx, err.msg);
    spk_shape in[SPK_MAX_INPUTS];
    for (int i = 0; i < c->n_in; i++) {
        memset(&in[i], 0, sizeof in[i]);
        in[i].ndim = chw ? 3 : 1;
        for (int d = 0; d < in[i].ndim; d++)
            in[i].dims[d] = chw ? chw[d] : sh->N;
        in[i].time = c->time[i];
    }
    const uint32_t seed = 11;
    side cpu = {.be = cpu_be}, ocl = {.be = ocl_be};
    cr_assert_eq(
        spk_layer_inst_new(ty, &params, c->n_in, in, sh->T, sh->B, cpu.be, seed, &cpu.li, &err),
        SPK_OK, "%s on cpu: %s", ctx, err.msg);
    cr_assert_eq(
        spk_layer_inst_new(ty, &params, c->n_in, in, sh->T, sh->B, ocl.be, seed, &ocl.li, &err),
        SPK_OK, "%s on %s: %s", ctx, ocl.be->description, err.msg);
    spk_layer *lc = &cpu.li->layer, *lo = &ocl.li->layer;
    cr_assert_eq(lc->n_weights, lo->n_weights);
    /* the RNG-keyed layers draw from (seed, epoch, sample id): use values other than the
     * defaults, with ids as large as a data set's */
    cpu.li->x.epoch = ocl.li->x.epoch = 3;
    {
        float *ids = malloc((size_t)sh->B * sizeof *ids);
        cr_assert_not_null(ids);
        for (int b = 0; b < sh->B; b++)
            ids[b] = (float)(59999 - 7 * b);
        cr_assert_eq(spk_tensor_upload(cpu.be, &cpu.li->ids, ids, &err), SPK_OK, "%s", err.msg);
        cr_assert_eq(spk_tensor_upload(ocl.be, &ocl.li->ids, ids, &err), SPK_OK, "%s", err.msg);
        free(ids);
    }

    /* the same inputs and labels on both sides */
    float *inputs[SPK_MAX_INPUTS] = {0};
    for (int i = 0; i < c->n_in; i++) {
        inputs[i] = make_input(c, &cpu.li->in[i], sh->T, (unsigned)(1000 * i + sh->N + 7 * sh->B));
        put(&cpu, &cpu.li->in[i], inputs[i]);
    }
    if (c->repair)
        choose_clear_inputs(&cpu, c, &params, inputs[0], ctx);
    for (int i = 0; i < c->n_in; i++) {
        put(&cpu, &cpu.li->in[i], inputs[i]);
        put(&ocl, &ocl.li->in[i], inputs[i]);
    }
    if (is_loss(ty)) {
        float *lab = malloc((size_t)sh->B * sizeof(float));
        spk_test_fill(lab, (size_t)sh->B, 0.0f, (float)sh->N, 99);
        for (int b = 0; b < sh->B; b++)
            lab[b] = floorf(lab[b]);
        put(&cpu, &cpu.li->labels, lab);
        put(&ocl, &ocl.li->labels, lab);
        free(lab);
    }

    /* identical starting weights: Philox on the host */
    for (int i = 0; i < lc->n_weights; i++) {
        char what[128];
        snprintf(what, sizeof what, "initial weight %s", lc->weights[i].name);
        compare_tensor(&ocl, &cpu, &lo->weights[i].value, &lc->weights[i].value, ctx, what, 0, 1);
    }

    side *both[2] = {&cpu, &ocl};
    if (cpu_recomputes(&cpu)) {
        for (int s = 0; s < 2; s++)
            cr_assert_eq(spk_layer_inst_forward(both[s]->li, 0, &err), SPK_OK,
                         "%s on %s: inference forward: %s", ctx, both[s]->be->ops->name, err.msg);
        compare_state(&ocl, &cpu, ctx, c->tol, "inference forward");
    }
    /* forward; NaN in the outputs first, so a value the pass skips shows */
    for (int s = 0; s < 2; s++) {
        fill_value(both[s], &both[s]->li->out, NAN);
        fill_value(both[s], &both[s]->li->loss, NAN);
        cr_assert_eq(spk_layer_inst_forward(both[s]->li, 1, &err), SPK_OK, "%s on %s: forward: %s",
                     ctx, both[s]->be->ops->name, err.msg);
        expect_written(both[s], &both[s]->li->out, ctx, "forward output");
        if (is_loss(ty))
            expect_written(both[s], &both[s]->li->loss, ctx, "per-sample loss");
        guard_all(both[s], ctx, "forward");
    }
    compare_tensor(&ocl, &cpu, &ocl.li->out, &cpu.li->out, ctx, "output", c->tol, c->exact_out);
    if (is_loss(ty))
        compare_tensor(&ocl, &cpu, &ocl.li->loss, &cpu.li->loss, ctx, "loss", c->tol, 0);
    compare_state(&ocl, &cpu, ctx, c->tol, "forward");
    if (c->exact_out == EXACT_SPIKES) { /* identical trains must also be real spike trains */
        float *o = fetch(&cpu, &cpu.li->out);
        size_t zeros = 0;
        for (size_t i = 0; i < cpu.li->out.numel; i++)
            zeros += o[i] == 0.0f;
        if (cpu.li->out.numel >= 100)
            cr_expect(zeros > 0 && zeros < cpu.li->out.numel, "%s: %zu of %zu outputs are 0", ctx,
                      zeros, cpu.li->out.numel);
        free(o);
    }
    if (c->repair && cpu.li->out.numel >= 100 && !strstr(c->yaml, "membrane")) {
        float *o = fetch(&cpu, &cpu.li->out);
        size_t spikes = 0;
        for (size_t i = 0; i < cpu.li->out.numel; i++)
            spikes += o[i] > 0.5f;
        if (verbose())
            fprintf(stderr, "  %s: %zu spikes of %zu\n", ctx, spikes, cpu.li->out.numel);
        cr_expect(spikes >= cpu.li->out.numel / 100 && spikes <= cpu.li->out.numel * 9 / 10,
                  "%s: %zu spikes of %zu: the case must exercise spikes and resets", ctx, spikes,
                  cpu.li->out.numel);
        free(o);
    }

    /* backward with the same random grad_out; NaN in grad_in first (backward overwrites it) */
    float *gout = malloc(cpu.li->grad_out.numel * sizeof(float));
    spk_test_fill(gout, cpu.li->grad_out.numel, -1.0f, 1.0f, 4242u + (unsigned)sh->N);
    for (int s = 0; s < 2; s++) {
        put(both[s], &both[s]->li->grad_out, gout);
        for (int i = 0; i < c->n_in; i++)
            fill_value(both[s], &both[s]->li->grad_in[i], NAN);
        cr_assert_eq(spk_layer_inst_backward(both[s]->li, &err), SPK_OK, "%s on %s: backward: %s",
                     ctx, both[s]->be->ops->name, err.msg);
        for (int i = 0; i < c->n_in; i++)
            expect_written(both[s], &both[s]->li->grad_in[i], ctx, "grad_in");
        guard_all(both[s], ctx, "backward");
    }
    for (int i = 0; i < c->n_in; i++) {
        char what[64];
        snprintf(what, sizeof what, "grad_in %d", i);
        compare_tensor(&ocl, &cpu, &ocl.li->grad_in[i], &cpu.li->grad_in[i], ctx, what, c->tol, 0);
    }
    for (int i = 0; i < lc->n_weights; i++) {
        char what[128];
        snprintf(what, sizeof what, "grad of weight %s", lc->weights[i].name);
        compare_tensor(&ocl, &cpu, &lo->weights[i].grad, &lc->weights[i].grad, ctx, what, c->tol,
                       0);
        snprintf(what, sizeof what, "weight %s after backward", lc->weights[i].name);
        compare_tensor(&ocl, &cpu, &lo->weights[i].value, &lc->weights[i].value, ctx, what, 0, 1);
    }
    compare_state(&ocl, &cpu, ctx, c->tol, "backward");
    /* the output is the forward's still: backward must not touch it */
    compare_tensor(&ocl, &cpu, &ocl.li->out, &cpu.li->out, ctx, "output after backward", c->tol,
                   c->exact_out);
    for (int s = 0; s < 2; s++)
        check_memory_promises(both[s], gout, inputs[0], ctx);

    free(gout);
    for (int i = 0; i < c->n_in; i++)
        free(inputs[i]);
    spk_layer_inst_free(cpu.li);
    spk_layer_inst_free(ocl.li);
    spk_params_clear(&params);
}

static int case_count(const char *type)
{
    int n = 0;
    for (int i = 0; i < N_CASES; i++)
        n += strcmp(cases[i].type, type) == 0;
    for (int i = 0; i < N_IMG_CASES; i++)
        n += strcmp(img_cases[i].c.type, type) == 0;
    return n;
}

/* Runs every case of every registered type that `pick` accepts, on every shape. */
static void run_types(int (*pick)(const char *type))
{
    spk_tensor_guard_floats = GUARD_FLOATS; /* before anything is allocated */
    spk_backend *ocl = open_test_device();
    spk_backend *cpu = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_backend_cpu_new(0, &cpu, &err), SPK_OK, "%s", err.msg);
    if (verbose())
        fprintf(stderr, "device: %s\n", ocl->description);
    spk_registry *reg = spk_registry_default();
    int ran = 0;
    for (int t = 0; t < spk_registry_count(reg); t++) {
        const char *src;
        const spk_layer_type *ty = spk_registry_get(reg, t, &src);
        if (strcmp(src, "built-in") != 0 || !pick(ty->name))
            continue;
        cr_expect_gt(case_count(ty->name), 0,
                     "layer type '%s' has no configuration in tests/test_backend_ops.c: add its "
                     "cases to the table there",
                     ty->name);
        for (int i = 0; i < N_CASES; i++) {
            if (strcmp(cases[i].type, ty->name) != 0)
                continue;
            for (int s = 0; s < N_SHAPES; s++)
                run_case(&cases[i], NULL, &shapes[s], cpu, ocl);
            ran++;
        }
        for (int i = 0; i < N_IMG_CASES; i++) {
            if (strcmp(img_cases[i].c.type, ty->name) != 0)
                continue;
            for (int s = 0; s < N_SHAPES; s++)
                run_case(&img_cases[i].c, img_cases[i].chw, &shapes[s], cpu, ocl);
            ran++;
        }
    }
    cr_assert_gt(ran, 0, "no registered type matched: the registry lost its built-ins?");
    spk_backend_free(cpu);
    spk_backend_free(ocl);
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int pick_encoders(const char *t)
{
    return starts(t, "encoder.");
}
static int pick_synapses(const char *t)
{
    return starts(t, "synapse.");
}
static int pick_neurons(const char *t)
{
    return starts(t, "neuron.");
}
static int pick_readouts(const char *t)
{
    return starts(t, "readout.");
}
static int pick_losses(const char *t)
{
    return starts(t, "loss.");
}
/* merges and whatever family appears next */
static int pick_others(const char *t)
{
    return !pick_encoders(t) && !pick_synapses(t) && !pick_neurons(t) && !pick_readouts(t) &&
           !pick_losses(t);
}

/* Needs no device: every built-in type has cases here, and every case names a registered type
 * and parses. A new layer type fails this test until someone adds its configurations. */
Test(backend_ops, every_builtin_type_has_cases)
{
    spk_registry *reg = spk_registry_default();
    int builtins = 0;
    for (int t = 0; t < spk_registry_count(reg); t++) {
        const char *src;
        const spk_layer_type *ty = spk_registry_get(reg, t, &src);
        if (strcmp(src, "built-in") != 0)
            continue;
        builtins++;
        cr_expect_gt(case_count(ty->name), 0,
                     "layer type '%s' has no configuration in tests/test_backend_ops.c: add its "
                     "cases to the table there",
                     ty->name);
    }
    cr_expect_geq(builtins, 12);
    for (int i = 0; i < N_CASES + N_IMG_CASES; i++) {
        const op_case *c = i < N_CASES ? &cases[i] : &img_cases[i - N_CASES].c;
        const spk_layer_type *ty = spk_registry_find(reg, c->type);
        cr_expect_not_null(ty, "case %d names an unknown type %s", i, c->type);
        if (!ty)
            continue;
        spk_params p;
        spk_error err = {0};
        cr_expect_eq(spk_params_from_yaml(ty, c->yaml, &p, &err), SPK_OK, "%s %s: %s", c->type,
                     c->yaml, err.msg);
        spk_params_clear(&p);
    }
}

/* The guard knob itself: a pad written by hand is reported with its count. */
Test(backend_ops, guard_detects_overrun)
{
    spk_tensor_guard_floats = 8;
    spk_backend *be;
    spk_error err = {0};
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK);
    spk_tensor t;
    spk_shape s = {.ndim = 1, .dims = {5}, .time = SPK_TIME_STEPS};
    cr_assert_eq(spk_tensor_alloc(be, &t, &s, 2, 3, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(t.numel, 30);
    cr_expect_eq(spk_tensor_guard_check(be, &t, &err), SPK_OK, "%s", err.msg);
    const float junk[3] = {0, 0, 0};
    cr_assert_eq(be->ops->upload(be, t.buf, 31 * sizeof(float), junk, sizeof junk, &err), SPK_OK);
    cr_expect_eq(spk_tensor_guard_check(be, &t, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "3 of the 8 guard floats") && strstr(err.msg, "+1"), "%s", err.msg);
    spk_tensor_release(be, &t);
    spk_backend_free(be);
}

Test(backend_ops, encoders, .timeout = 300)
{
    run_types(pick_encoders);
}
Test(backend_ops, synapses, .timeout = 300)
{
    run_types(pick_synapses);
}
Test(backend_ops, neurons, .timeout = 300)
{
    run_types(pick_neurons);
}
Test(backend_ops, readouts, .timeout = 300)
{
    run_types(pick_readouts);
}
Test(backend_ops, losses, .timeout = 300)
{
    run_types(pick_losses);
}
Test(backend_ops, merges_and_others, .timeout = 300)
{
    run_types(pick_others);
}
