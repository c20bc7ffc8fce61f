/* Whole sessions on the CPU and on an OpenCL device from the same seed: one training step
 * (forward, backward, Adam) gives the same weights, ten steps stay close, a Poisson model sees the
 * same spikes and so the same loss, and the command line trains Fashion-MNIST to the same test
 * accuracy on both. Device errors on the command line exit 2 with the backend's message.
 *
 * The device: $SPIKECL_TEST_DEVICE, else the first OpenCL GPU, else opencl:0:0. Without one the
 * tests skip with a message, except under CI=true, where a missing device is a failure.
 * SPK_TEST_VERBOSE=1 prints the measured differences. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/spikecl.h"
#include "testutil.h"

/* ---- the device under test ---- */

static spk_backend *open_test_device(char *id, size_t n)
{
    return spk_test_opencl_device(id, n);
}

static int verbose(void)
{
    const char *v = getenv("SPK_TEST_VERBOSE");
    return v && v[0] && strcmp(v, "0") != 0;
}

/* ---- two sessions of one model ---- */

typedef struct pair {
    spk_model *m;
    spk_backend *be[2]; /* 0: cpu, 1: the device */
    spk_session *s[2];
    int batch, in_size, classes;
} pair;

static void pair_new(pair *p, const char *yaml, int batch)
{
    memset(p, 0, sizeof *p);
    spk_error err = {0};
    char id[64];
    p->be[1] = open_test_device(id, sizeof id);
    cr_assert_eq(spk_backend_cpu_new(0, &p->be[0], &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_model_load_string(yaml, "test-model.yaml", &p->m, &err), SPK_OK, "%s",
                 err.msg);
    for (int k = 0; k < 2; k++)
        cr_assert_eq(spk_session_new(p->m, p->be[k], batch, &p->s[k], &err), SPK_OK, "%s: %s",
                     p->be[k]->description, err.msg);
    p->batch = batch;
    p->in_size = spk_session_input_size(p->s[0]);
    p->classes = spk_session_classes(p->s[0]);
}

static void pair_free(pair *p)
{
    for (int k = 0; k < 2; k++) {
        spk_session_free(p->s[k]);
        spk_backend_free(p->be[k]);
    }
    spk_model_free(p->m);
}

/* A batch of inputs in [lo, hi) and labels, the same for both sessions. */
static void make_batch(const pair *p, float *x, int32_t *y, float lo, float hi, unsigned seed)
{
    spk_test_fill(x, (size_t)p->batch * p->in_size, lo, hi, seed);
    for (int b = 0; b < p->batch; b++)
        y[b] = (int32_t)((seed * 7u + (unsigned)b * 3u) % (unsigned)p->classes);
}

static float *weight_of(pair *p, int k, int i, int grad)
{
    size_t n = spk_session_weight_numel(p->s[k], i);
    float *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    spk_error err = {0};
    int rc = grad ? spk_session_grad_get(p->s[k], i, v, &err)
                  : spk_session_weight_get(p->s[k], i, v, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    return v;
}

/* The largest normalised difference over every weight (or gradient) of the model; names the
 * worst tensor in `worst`. */
static double weights_nerr(pair *p, int grad, char *worst, size_t n)
{
    double e = 0.0;
    for (int i = 0; i < spk_session_weight_count(p->s[0]); i++) {
        cr_assert_str_eq(spk_session_weight_name(p->s[0], i), spk_session_weight_name(p->s[1], i));
        float *a = weight_of(p, 1, i, grad), *b = weight_of(p, 0, i, grad);
        double ei = spk_test_nerr(a, b, spk_session_weight_numel(p->s[0], i));
        if (verbose())
            fprintf(stderr, "  %-16s %s err %.3g\n", spk_session_weight_name(p->s[0], i),
                    grad ? "grad  " : "weight", ei);
        if (ei > e || isnan(ei)) {
            e = isnan(ei) ? INFINITY : ei;
            snprintf(worst, n, "%s", spk_session_weight_name(p->s[0], i));
        }
        free(a);
        free(b);
    }
    return e;
}

static const char *tiny_yaml = "name: tiny\n"
                               "input: {shape: [20]}\n"
                               "time_steps: 6\n"
                               "seed: 5\n"
                               "layers:\n"
                               "  - {name: enc, type: encoder.direct}\n"
                               "  - {name: fc1, type: synapse.linear, out: 13}\n"
                               "  - {name: lif1, type: neuron.lif, beta: 0.9}\n"
                               "  - {name: fc2, type: synapse.linear, out: 4}\n"
                               "  - {name: lif2, type: neuron.lif, beta: 0.9}\n"
                               "readout: {type: readout.spike_count}\n"
                               "loss: {type: loss.mse_count}\n"
                               "train: {batch: 5, optimizer: {type: adam, lr: 2.0e-3}}\n";

/* One step, as the training loop runs it, on both; the readouts (spike counts) of the forward
 * must agree exactly, or a membrane landed within rounding of the threshold and the inputs
 * need another seed. */
static void step_both(pair *p, const float *x, const int32_t *y, spk_batch_stats st[2],
                      const char *what)
{
    spk_error err = {0};
    float *r[2];
    for (int k = 0; k < 2; k++) {
        memset(&st[k], 0, sizeof st[k]);
        cr_assert_eq(spk_session_train_batch(p->s[k], x, y, p->batch, &st[k], &err), SPK_OK,
                     "%s on %s: %s", what, p->be[k]->description, err.msg);
        r[k] = malloc((size_t)p->batch * p->classes * sizeof(float));
        cr_assert_eq(spk_session_readout(p->s[k], r[k], p->batch, &err), SPK_OK, "%s", err.msg);
    }
    int diff = 0;
    for (int i = 0; i < p->batch * p->classes; i++)
        diff += r[0][i] != r[1][i];
    cr_expect_eq(diff, 0,
                 "%s: %d spike counts differ between cpu and %s (a spike flipped at the "
                 "threshold)",
                 what, diff, p->be[1]->description);
    free(r[0]);
    free(r[1]);
}

/* (a) One full training step from the same seed gives the same weights.
 *
 * The gradients are float32 sums (GEMMs over up to 20 inputs and 5 rows, BPTT over 6 steps)
 * that the backends add in different orders: they agree to ~1e-6 relative (TOL 1e-5, as in
 * test_backend_ops). Adam's first step is lr * g / (|g| + eps) after bias correction, i.e.
 * ~lr * sign(g): a relative gradient error d moves a weight by ~lr * d * eps / |g|, far below
 * 1e-5 unless |g| is near eps (1e-8), where a gradient that is zero on one backend and
 * rounding noise on the other would move it by up to lr = 2e-3. So the weights after the step
 * get 1e-5 absolute (nerr: weights are < 1), and the gradients themselves 1e-5 relative. */
Test(opencl_train, one_step_same_weights, .timeout = 300)
{
    pair p;
    pair_new(&p, tiny_yaml, 5);
    char worst[128] = "";
    cr_assert_eq(weights_nerr(&p, 0, worst, sizeof worst), 0.0,
                 "initial weights differ (%s): Philox on the host should make them identical",
                 worst);
    float x[5 * 20];
    int32_t y[5];
    make_batch(&p, x, y, 0.0f, 1.5f, 3);
    spk_batch_stats st[2];
    step_both(&p, x, y, st, "step 1");
    cr_expect_float_eq(st[1].loss_sum, st[0].loss_sum, 1e-5 * fmax(1.0, fabs(st[0].loss_sum)),
                       "losses %.9g (device) and %.9g (cpu)", st[1].loss_sum, st[0].loss_sum);
    double eg = weights_nerr(&p, 1, worst, sizeof worst);
    cr_expect_leq(eg, 1e-5, "gradients differ by %.3g (worst: %s)", eg, worst);
    double ew = weights_nerr(&p, 0, worst, sizeof worst);
    cr_expect_leq(ew, 1e-5, "weights after one step differ by %.3g (worst: %s)", ew, worst);
    /* the step must have moved the weights (Adam's first step is ~lr = 2e-3 per weight), or
     * the comparison proves nothing */
    spk_session *fresh;
    spk_error err = {0};
    cr_assert_eq(spk_session_new(p.m, p.be[0], 5, &fresh, &err), SPK_OK, "%s", err.msg);
    float *w0 = malloc(spk_session_weight_numel(fresh, 0) * sizeof(float));
    float *w1 = weight_of(&p, 0, 0, 0);
    spk_session_weight_get(fresh, 0, w0, &err);
    double moved = spk_test_nerr(w1, w0, spk_session_weight_numel(fresh, 0));
    cr_expect_gt(moved, 1e-3, "fc1.weight moved by only %.3g in one step", moved);
    if (verbose())
        fprintf(stderr, "one step: gradients %.3g, weights %.3g (the step moved them %.3g)\n", eg,
                ew, moved);
    free(w0);
    free(w1);
    spk_session_free(fresh);
    pair_free(&p);
}

/* (b) Ten steps on ten batches. Each step adds the rounding differences of (a), and Adam's
 * normalisation g / (sqrt(v) + eps) can amplify the relative error of a gradient that is itself
 * tiny; a spike flipping at the threshold would add or drop a whole surrogate term (step_both
 * reports that separately, by the spike counts). Measured on PoCL (SPK_TEST_VERBOSE=1): the
 * largest weight difference grows from 1.5e-8 after step 1 to 3.0e-8 after step 10, and no
 * spike count differs. The bound, TEN_STEP_BOUND = 1e-5, leaves ~300x for devices whose GEMMs
 * round differently and is still 200x below one Adam step (lr = 2e-3): a backend computing a
 * wrong gradient, or one spike that flips and changes a weight's update, fails it at once. */
#define TEN_STEP_BOUND 1e-5
Test(opencl_train, ten_steps_stay_close, .timeout = 300)
{
    pair p;
    pair_new(&p, tiny_yaml, 5);
    float x[5 * 20];
    int32_t y[5];
    double worst_e = 0;
    char worst[128] = "";
    for (int i = 0; i < 10; i++) {
        make_batch(&p, x, y, 0.0f, 1.5f, 100u + (unsigned)i);
        spk_batch_stats st[2];
        char what[32];
        snprintf(what, sizeof what, "step %d", i + 1);
        step_both(&p, x, y, st, what);
        double e = weights_nerr(&p, 0, worst, sizeof worst);
        if (verbose())
            fprintf(stderr, "step %d: weights differ by %.3g (%s), losses %.9g / %.9g\n", i + 1, e,
                    worst, st[1].loss_sum, st[0].loss_sum);
        worst_e = fmax(worst_e, e);
        cr_expect_leq(e, TEN_STEP_BOUND, "after %d steps the weights differ by %.3g (worst: %s)",
                      i + 1, e, worst);
    }
    if (verbose())
        fprintf(stderr, "ten steps: largest weight difference %.3g\n", worst_e);
    pair_free(&p);
}

static const char *poisson_yaml = "name: tiny-poisson\n"
                                  "input: {shape: [30]}\n"
                                  "time_steps: 8\n"
                                  "seed: 9\n"
                                  "layers:\n"
                                  "  - {name: enc, type: encoder.poisson}\n"
                                  "  - {name: fc1, type: synapse.linear, out: 17}\n"
                                  "  - {name: lif1, type: neuron.lif, beta: 0.8, threshold: 0.5}\n"
                                  "  - {name: fc2, type: synapse.linear, out: 5}\n"
                                  "  - {name: lif2, type: neuron.lif, beta: 0.8, threshold: 0.5}\n"
                                  "readout: {type: readout.spike_count}\n"
                                  "loss: {type: loss.mse_count}\n"
                                  "train: {batch: 6, optimizer: {type: adam, lr: 2.0e-3}}\n";

/* (c) Poisson encoding draws from Philox keyed by (seed, epoch, batch): both backends see the
 * same spike trains (test_backend_ops checks them bit for bit), so the first step's losses agree
 * to float32 rounding of the sums behind them (1e-5 relative), in training and in evaluation. */
Test(opencl_train, poisson_same_first_loss, .timeout = 300)
{
    pair p;
    pair_new(&p, poisson_yaml, 6);
    float x[6 * 30];
    int32_t y[6];
    make_batch(&p, x, y, 0.0f, 1.0f, 21);
    spk_batch_stats st[2];
    spk_error err = {0};
    for (int k = 0; k < 2; k++) {
        memset(&st[k], 0, sizeof st[k]);
        spk_session_set_epoch(p.s[k], 2);
        cr_assert_eq(spk_session_eval_batch(p.s[k], x, y, 6, &st[k], &err), SPK_OK, "%s", err.msg);
    }
    cr_expect_float_eq(st[1].loss_sum, st[0].loss_sum, 1e-5 * fmax(1.0, fabs(st[0].loss_sum)),
                       "evaluation losses %.9g (device) and %.9g (cpu)", st[1].loss_sum,
                       st[0].loss_sum);
    cr_expect_gt(st[0].loss_sum, 0.0);
    for (int k = 0; k < 2; k++)
        spk_session_set_epoch(p.s[k], 2);
    step_both(&p, x, y, st, "poisson step 1");
    cr_expect_float_eq(st[1].loss_sum, st[0].loss_sum, 1e-5 * fmax(1.0, fabs(st[0].loss_sum)),
                       "first training losses %.9g (device) and %.9g (cpu)", st[1].loss_sum,
                       st[0].loss_sum);
    if (verbose())
        fprintf(stderr, "poisson: losses %.9g / %.9g\n", st[1].loss_sum, st[0].loss_sum);
    pair_free(&p);
}

/* ---- the command line ---- */

/* (d) The integration bar, in two parts.
 *
 * Same weights, same answers: a checkpoint trained on the CPU (one epoch over 6,000
 * Fashion-MNIST images) evaluated on the device gives the CPU's test accuracy on 1,000 images to
 * within one image. This is deterministic and tight: the forward pass agrees to ~1e-6, so only a
 * membrane sitting within rounding of its threshold can flip a spike.
 *
 * Training: the device's run over the same 6,000 images reaches the CPU's accuracy within 0.04.
 * Both runs start from the same weights and see the same batches, but they do not stay together:
 * in the first Adam step, gradients of ~1e-8 (near eps) differ by a few percent between the
 * backends' GEMMs, which moves those weights by up to 1.4e-4 instead of ~0; at step 2 a first
 * spike flips, and from there the trajectories part like runs of slightly different seeds
 * (SGD with momentum parts the same way: 0.725 against 0.738). After 47 steps the network is far
 * from converged (seeds 1-4 score 0.62-0.75), so the parting shows in the score. Measured here,
 * seeds 1-4, device (PoCL) minus CPU: -0.016, +0.016, +0.022, -0.001 (mean +0.005: no bias); the
 * CPU alone with --threads 1 instead of 2 moves it by up to 0.006, and another CPU model moved the
 * seed-1 CPU figure from 0.698 to 0.722. A backend that trains wrongly ends near 0.1-0.5; the
 * step-by-step agreement is tested to 1e-5 above. */
static int train_cli(const char *dev, const char *outdir, double *acc)
{
    char args[2048], *out;
    snprintf(args, sizeof args,
             "train models/fmnist_lif_mlp.yaml --device %s --limit-train 6000 --limit-test "
             "1000 --batch 128 --epochs 1 --out %s",
             dev, outdir);
    int rc = spk_test_cli(args, &out);
    cr_assert_eq(rc, 0, "spikecl %s exited %d:\n%s", args, rc, out);
    *acc = spk_test_json_number(out, "test_accuracy");
    cr_assert_gt(*acc, 0.0, "no test_accuracy in the output of spikecl %s:\n%s", args, out);
    if (verbose())
        fprintf(stderr, "%s", out);
    free(out);
    return rc;
}

Test(opencl_train, cli_fmnist_matches_cpu, .timeout = 600)
{
    char id[64];
    spk_backend_free(open_test_device(id, sizeof id));
    char dir[2][512];
    double acc[2];
    const char *dev[2] = {"cpu", id};
    for (int k = 0; k < 2; k++) {
        snprintf(dir[k], sizeof dir[k], "%s/run-%d", spk_test_tmpdir(), k);
        train_cli(dev[k], dir[k], &acc[k]);
    }
    if (verbose())
        fprintf(stderr, "cli: test accuracy %.4f on %s, %.4f on cpu\n", acc[1], id, acc[0]);
    cr_expect_geq(acc[0], 0.5, "cpu test accuracy %.4f: the run did not train", acc[0]);
    cr_expect_geq(acc[1], 0.5, "%s test accuracy %.4f: the run did not train", id, acc[1]);
    cr_expect_leq(fabs(acc[1] - acc[0]), 0.04, "test accuracy %.4f on %s, %.4f on cpu", acc[1], id,
                  acc[0]);

    /* the CPU's checkpoint evaluated on both backends */
    double eval_acc[2];
    for (int k = 0; k < 2; k++) {
        char args[1024], *out;
        snprintf(args, sizeof args,
                 "eval models/fmnist_lif_mlp.yaml --weights %s/model.safetensors --device %s "
                 "--limit-test 1000",
                 dir[0], dev[k]);
        int rc = spk_test_cli(args, &out);
        cr_assert_eq(rc, 0, "spikecl %s exited %d:\n%s", args, rc, out);
        eval_acc[k] = spk_test_json_number(out, "test_accuracy");
        free(out);
    }
    cr_expect_float_eq(eval_acc[0], acc[0], 1e-9, "eval on cpu %.4f, train reported %.4f",
                       eval_acc[0], acc[0]);
    cr_expect_leq(fabs(eval_acc[1] - eval_acc[0]), 0.0011,
                  "same weights: test accuracy %.4f on %s, %.4f on cpu", eval_acc[1], id,
                  eval_acc[0]);
}

/* (e) A device that does not exist: exit 2, and the message the backend gives for that id. */
Test(opencl_train, cli_device_errors_exit_2)
{
    const char *ids[] = {"opencl:9:9", "opencl:nosuchdevice"};
    for (int i = 0; i < 2; i++) {
        spk_backend *be = NULL;
        spk_error err = {0};
        cr_assert_neq(spk_backend_open(ids[i], &be, &err), SPK_OK, "%s opened", ids[i]);
        char args[512], *out;
        snprintf(args, sizeof args,
                 "train models/fmnist_lif_mlp.yaml --device %s --limit-train 10 --limit-test 10",
                 ids[i]);
        int rc = spk_test_cli(args, &out);
        cr_expect_eq(rc, 2, "spikecl %s exited %d:\n%s", args, rc, out);
        cr_expect(strstr(out, err.msg) != NULL, "spikecl %s:\n%s\nlacks the backend's message: %s",
                  args, out, err.msg);
        free(out);
    }
    /* with a platform present, the messages name what is wrong */
    spk_device_info *list = NULL;
    int nd = 0, have_opencl = 0;
    if (spk_device_list(&list, &nd, NULL) == SPK_OK)
        for (int i = 0; i < nd; i++)
            have_opencl |= strncmp(list[i].id, "opencl:", 7) == 0;
    spk_device_list_free(list);
    if (have_opencl) {
        spk_backend *be = NULL;
        spk_error err = {0};
        spk_backend_open("opencl:9:9", &be, &err);
        cr_expect(strstr(err.msg, "platform index 9 out of range"), "%s", err.msg);
        spk_backend_open("opencl:nosuchdevice", &be, &err);
        cr_expect(strstr(err.msg, "no OpenCL device matches 'nosuchdevice'"), "%s", err.msg);
    }
}
