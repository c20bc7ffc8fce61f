/* The executor end to end: a small DAG (with a skip connection that fans out and merges)
 * checked against central finite differences of the whole loss in smooth mode, and the
 * session's error paths. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h" /* to edit a layer's rate_reg after the session exists */
#include "spikecl/spikecl.h"
#include "testutil.h"

static const char *dag_yaml =
    "name: tiny-dag\n"
    "input: {shape: [6]}\n"
    "time_steps: 4\n"
    "seed: 3\n"
    "layers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: fc1, type: synapse.linear, out: 5}\n"
    "  - {name: lif1, type: neuron.lif, beta: 0.8, threshold: 0.5, detach_reset: false,\n"
    "     learn_beta: true, learn_threshold: true}\n"
    "  - {name: fc2, type: synapse.linear, out: 5}\n"
    "  - {name: skip, type: merge.add, from: [fc2, fc1]}\n"
    "  - {name: lif2, type: neuron.lif, beta: 0.7, surrogate: atan, detach_reset: false}\n"
    "  - {name: fc3, type: synapse.linear, out: 3}\n"
    "  - {name: lif3, type: neuron.lif, beta: {uniform: [0.2, 0.9]}, learn_beta: true,\n"
    "     reset: zero, detach_reset: false, surrogate: {type: sigmoid, slope: 4}}\n"
    "readout: {type: readout.spike_count}\n"
    "loss: {type: loss.ce_count}\n"
    "train: {batch: 4, optimizer: {type: adam, lr: 0.01}}\n";

static double loss_of(spk_session *s, const float *x, const int32_t *y, int n)
{
    spk_batch_stats st = {0};
    spk_error err = {0};
    cr_assert_eq(spk_session_eval_batch(s, x, y, n, &st, &err), 0, "%s", err.msg);
    return st.loss_sum / n;
}

/* Every weight's gradient (a sample of elements per tensor) against central differences of
 * the mean loss. Smooth mode makes the network differentiable, so backward must match; the
 * neurons keep their resets attached (detach_reset: false), since finite differences see
 * the reset path that a detached reset hides from backward. */
Test(graph, dag_gradients_match_finite_differences)
{
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(dag_yaml, "tiny-dag.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), 0, "%s", err.msg);
    spk_session_set_smooth(s, 1);
    float x[4 * 6];
    spk_test_fill(x, 24, 0.0f, 1.5f, 7);
    int32_t y[4] = {0, 2, 1, 2};
    spk_batch_stats st = {0};
    cr_assert_eq(spk_session_forward_backward(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    int nw = spk_session_weight_count(s);
    cr_assert_eq(nw, 12, "fc1 w+b, lif1 beta+thr, fc2 w+b, lif2 beta+thr, fc3 w+b, lif3 beta+thr");
    int checked = 0;
    for (int i = 0; i < nw; i++) {
        size_t n = spk_session_weight_numel(s, i);
        float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
        char name[160];
        snprintf(name, sizeof name, "%s", spk_session_weight_name(s, i));
        spk_session_weight_get(s, i, w, &err);
        spk_session_grad_get(s, i, g, &err);
        for (size_t j = 0; j < n; j += 1 + n / 7) {
            const float eps = 1e-2f;
            float keep = w[j];
            w[j] = keep + eps;
            spk_session_weight_set(s, i, w, &err);
            double lp = loss_of(s, x, y, 4);
            w[j] = keep - eps;
            spk_session_weight_set(s, i, w, &err);
            double lm = loss_of(s, x, y, 4);
            w[j] = keep;
            spk_session_weight_set(s, i, w, &err);
            double fd = (lp - lm) / (2 * eps);
            /* frozen weights (lif2's beta and threshold, lif3's threshold) get no gradient */
            if (strstr(name, "lif2.") || strcmp(name, "lif3.threshold") == 0)
                continue;
            /* central differences in float32: truncation O(eps^2) and rounding ~1e-7/eps;
             * 2e-3 absolute + 3% relative covers both with a margin, while a wrong term in a
             * backward (a missing reset path, a wrong broadcast) is off by far more */
            cr_expect(fabs(fd - g[j]) <= 2e-3 + 0.03 * fabs(fd),
                      "%s[%zu]: backward %.6g, finite "
                      "differences %.6g",
                      name, j, g[j], fd);
            checked++;
        }
        free(w);
        free(g);
    }
    cr_assert_gt(checked, 20);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

/* Training steps lower the loss on a fixed batch (the optimizer is wired to the gradients). */
Test(graph, training_lowers_loss)
{
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(dag_yaml, "tiny-dag.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), 0, "%s", err.msg);
    float x[24];
    spk_test_fill(x, 24, 0.0f, 1.5f, 11);
    int32_t y[4] = {1, 0, 2, 1};
    double first = loss_of(s, x, y, 4);
    for (int i = 0; i < 60; i++) {
        spk_batch_stats st = {0};
        cr_assert_eq(spk_session_train_batch(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    }
    double last = loss_of(s, x, y, 4);
    cr_expect_lt(last, 0.7 * first, "loss %.4f -> %.4f", first, last);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

/* A checkpoint written and read back restores the weights exactly; a checkpoint of another
 * model is refused with the tensor's name. */
Test(graph, checkpoint_round_trip)
{
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(dag_yaml, "tiny-dag.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *a, *b;
    cr_assert_eq(spk_session_new(m, be, 4, &a, &err), 0, "%s", err.msg);
    spk_model_set_seed(m, 99);
    cr_assert_eq(spk_session_new(m, be, 2, &b, &err), 0, "%s", err.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/dag.safetensors", spk_test_tmpdir());
    cr_assert_eq(spk_session_save(a, path, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_load(b, path, &err), 0, "%s", err.msg);
    for (int i = 0; i < spk_session_weight_count(a); i++) {
        size_t n = spk_session_weight_numel(a, i);
        float *wa = malloc(n * 4), *wb = malloc(n * 4);
        spk_session_weight_get(a, i, wa, &err);
        spk_session_weight_get(b, i, wb, &err);
        cr_expect_eq(memcmp(wa, wb, n * 4), 0, "weight %d differs after load", i);
        free(wa);
        free(wb);
    }
    spk_session_free(a);
    spk_session_free(b);
    spk_model_free(m);

    const char *other = "input: {shape: [6]}\ntime_steps: 2\nlayers:\n"
                        "  - {name: enc, type: encoder.direct}\n"
                        "  - {name: fc1, type: synapse.linear, out: 4}\n"
                        "  - {name: out, type: neuron.lif}\n"
                        "readout: {type: readout.spike_count}\nloss: {type: loss.ce_count}\n";
    cr_assert_eq(spk_model_load_string(other, "other.yaml", &m, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_new(m, be, 2, &b, &err), 0, "%s", err.msg);
    cr_assert_neq(spk_session_load(b, path, &err), 0);
    cr_expect(strstr(err.msg, "fc1.weight") || strstr(err.msg, "out.beta"), "%s", err.msg);
    spk_session_free(b);
    spk_model_free(m);
    spk_backend_free(be);
}

/* Shape errors found while building the graph name the file, line, column and layer. */
Test(graph, shape_error_names_layer)
{
    const char *bad = "input: {shape: [6]}\ntime_steps: 2\nlayers:\n"
                      "  - {name: enc, type: encoder.direct}\n"
                      "  - {name: a, type: synapse.linear, out: 4}\n"
                      "  - {name: b, type: synapse.linear, out: 3}\n"
                      "  - {name: sum, type: merge.add, from: [a, b]}\n"
                      "readout: {type: readout.spike_count}\nloss: {type: loss.ce_count}\n";
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(bad, "bad.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s = NULL;
    cr_assert_neq(spk_session_new(m, be, 2, &s, &err), 0);
    cr_expect(strstr(err.msg, "bad.yaml:7:5: layer 'sum' (merge.add)"), "%s", err.msg);
    cr_expect(strstr(err.msg, "input 2 has 3 values per sample, input 1 has 4"), "%s", err.msg);
    spk_model_free(m);
    spk_backend_free(be);
}

/* mean loss of a forward + backward pass: it includes the rate regulariser, which the core
 * adds during backward */
static double train_loss_of(spk_session *s, const float *x, const int32_t *y, int n)
{
    spk_batch_stats st = {0};
    spk_error err = {0};
    cr_assert_eq(spk_session_forward_backward(s, x, y, n, &st, &err), 0, "%s", err.msg);
    return st.loss_sum / n;
}

/* rate_reg adds its term to the loss and its gradient reaches every weight before the layer:
 * finite differences of the regularised loss match backward. (A gentle surrogate slope keeps
 * the central differences' truncation error, which grows with slope^2, well below the
 * tolerance at eps = 1e-2.) */
Test(graph, rate_reg_gradients)
{
    const char *fmt = "input: {shape: [5]}\ntime_steps: 4\nseed: 5\nlayers:\n"
                      "  - {name: enc, type: encoder.direct}\n"
                      "  - {name: fc1, type: synapse.linear, out: 6}\n"
                      "  - {name: lif1, type: neuron.lif, threshold: 0.4, detach_reset: false,\n"
                      "     surrogate: {type: fast_sigmoid, slope: 4}%s}\n"
                      "  - {name: fc2, type: synapse.linear, out: 3}\n"
                      "  - {name: lif2, type: neuron.lif, detach_reset: false}\n"
                      "readout: {type: readout.spike_count}\nloss: {type: loss.ce_count}\n";
    char yaml[1024], plain[1024];
    snprintf(yaml, sizeof yaml, fmt, ", rate_reg: {l1: 0.01, target: 0.2, weight: 2.0}");
    snprintf(plain, sizeof plain, fmt, "");
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(yaml, "rr.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 3, &s, &err), 0, "%s", err.msg);
    spk_session_set_smooth(s, 1);
    float x[15];
    spk_test_fill(x, 15, 0.0f, 1.5f, 3);
    int32_t y[3] = {2, 0, 1};
    double base = train_loss_of(s, x, y, 3);
    size_t n = spk_session_weight_numel(s, 0); /* fc1.weight */
    float *w = malloc(n * 4), *g = malloc(n * 4);
    spk_session_weight_get(s, 0, w, &err);
    spk_session_grad_get(s, 0, g, &err);
    for (size_t j = 0; j < n; j += 3) {
        const float eps = 1e-2f;
        float keep = w[j];
        w[j] = keep + eps;
        spk_session_weight_set(s, 0, w, &err);
        double lp = train_loss_of(s, x, y, 3);
        w[j] = keep - eps;
        spk_session_weight_set(s, 0, w, &err);
        double lm = train_loss_of(s, x, y, 3);
        w[j] = keep;
        spk_session_weight_set(s, 0, w, &err);
        double fd = (lp - lm) / (2 * eps);
        cr_expect(fabs(fd - g[j]) <= 2e-3 + 0.03 * fabs(fd),
                  "fc1.weight[%zu]: backward %.6g, "
                  "finite differences %.6g",
                  j, g[j], fd);
    }
    free(w);
    free(g);
    spk_session_free(s);
    /* the same model without the regulariser has a smaller loss: the term is really added */
    spk_model *m2;
    cr_assert_eq(spk_model_load_string(plain, "plain.yaml", &m2, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_new(m2, be, 3, &s, &err), 0, "%s", err.msg);
    spk_session_set_smooth(s, 1);
    cr_expect_lt(train_loss_of(s, x, y, 3), base - 1e-3);
    spk_session_free(s);
    spk_model_free(m2);
    spk_model_free(m);
    spk_backend_free(be);
}

Test(graph, rate_reg_errors)
{
    spk_error err = {0};
    spk_model *m = NULL;
    const char *on_linear = "input: {shape: [5]}\ntime_steps: 2\nlayers:\n"
                            "  - {name: fc, type: synapse.linear, out: 2, rate_reg: {l1: 1}}\n";
    cr_assert_neq(spk_model_load_string(on_linear, "a.yaml", &m, &err), 0);
    cr_expect(strstr(err.msg, "a.yaml:4:") && strstr(err.msg, "applies to neuron layers only"),
              "%s", err.msg);
    const char *bad_key = "input: {shape: [5]}\ntime_steps: 2\nlayers:\n"
                          "  - {name: n, type: neuron.lif, rate_reg: {l2: 1}}\n";
    cr_assert_neq(spk_model_load_string(bad_key, "b.yaml", &m, &err), 0);
    cr_expect(strstr(err.msg, "b.yaml:4:") && strstr(err.msg, "'l2'"), "%s", err.msg);
    const char *weight_only = "input: {shape: [5]}\ntime_steps: 2\nlayers:\n"
                              "  - {name: n, type: neuron.lif, rate_reg: {weight: 1}}\n";
    cr_assert_neq(spk_model_load_string(weight_only, "c.yaml", &m, &err), 0);
    cr_expect(strstr(err.msg, "'weight' needs a 'target' rate"), "%s", err.msg);
}

/* A readout that keeps the time axis (readout.identity) feeds a per-step loss (loss.ce_rate):
 * the session scores accuracy on the count over steps and training lowers the loss (from
 * log 3 = 1.10 with silent outputs towards log(1 + 2/e) = 0.55, the floor for 0/1 logits). */
Test(graph, timed_readout_with_ce_rate)
{
    const char *yaml = "input: {shape: [6]}\ntime_steps: 5\nseed: 2\nlayers:\n"
                       "  - {name: enc, type: encoder.direct}\n"
                       "  - {name: fc1, type: synapse.linear, out: 8}\n"
                       "  - {name: lif1, type: neuron.lif}\n"
                       "  - {name: fc2, type: synapse.linear, out: 3}\n"
                       "  - {name: lif2, type: neuron.lif}\n"
                       "readout: {type: readout.identity}\nloss: {type: loss.ce_rate}\n"
                       "train: {optimizer: {type: adam, lr: 0.01}}\n";
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(yaml, "t.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), 0, "%s", err.msg);
    cr_expect_eq(spk_session_classes(s), 3);
    float x[24];
    spk_test_fill(x, 24, 0.0f, 2.0f, 5);
    int32_t y[4] = {0, 1, 2, 1};
    double first = loss_of(s, x, y, 4);
    float counts[12];
    spk_session_readout(s, counts, 4, &err);
    for (int i = 0; i < 12; i++)
        cr_expect(counts[i] >= 0 && counts[i] <= 5 && counts[i] == (int)counts[i],
                  "readout %d = %g is not a spike count over 5 steps", i, counts[i]);
    for (int i = 0; i < 200; i++) {
        spk_batch_stats st = {0};
        cr_assert_eq(spk_session_train_batch(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    }
    double last = loss_of(s, x, y, 4);
    cr_expect_lt(last, 0.8 * first, "loss %.4f -> %.4f", first, last);
    spk_session_free(s);
    spk_model_free(m);
    spk_backend_free(be);
}

/* Kernels index with int: a tensor past INT_MAX elements is refused when the session is made,
 * naming the layer and the tensor, before anything is allocated (lif1's spikes here would be
 * 100 steps x 256 samples x 100000 = 2.56e9 floats, 10 GiB). */
Test(graph, tensor_past_int_max_refused_at_session)
{
    static const char *big_yaml = "name: big\n"
                                  "input: {shape: [8]}\n"
                                  "time_steps: 100\n"
                                  "layers:\n"
                                  "  - {name: enc, type: encoder.direct}\n"
                                  "  - {name: fc1, type: synapse.linear, out: 100000}\n"
                                  "  - {name: lif1, type: neuron.lif}\n"
                                  "readout: {type: readout.spike_count}\n"
                                  "loss: {type: loss.ce_count}\n";
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(big_yaml, "big.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s = NULL;
    int rc = spk_session_new(m, be, 256, &s, &err);
    cr_assert_eq(rc, SPK_ERR_SHAPE, "rc %d: %s", rc, err.msg);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "big.yaml:7:") && strstr(err.msg, "layer 'lif1'") &&
                  strstr(err.msg, "output has 2560000000 elements") &&
                  strstr(err.msg, "2147483647"),
              "%s", err.msg);
    cr_assert_eq(be->stats.bytes_peak, 0, "%zu bytes allocated before the refusal",
                 (size_t)be->stats.bytes_peak);
    /* a batch that fits is fine */
    cr_assert_eq(spk_session_new(m, be, 2, &s, &err), 0, "%s", err.msg);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

/* Global-norm clipping (torch clip_grad_norm_) with more partial sums than one level of the
 * tree sums: fc1's 1000 x 300 weights are 74 chunks of 4096, so the norm goes through
 * spk_sum_groups before spk_clip_scale. One SGD step (lr 1, no momentum) must move every weight
 * by scale * grad with scale = max_norm / ||g|| from the host's own sum of squares. lif1's
 * rate_reg runs its two kernels on the way. On the CPU and on OpenCL. */
static void clip_norm_on(const char *device)
{
    static const char *clip_yaml =
        "name: clip\n"
        "input: {shape: [1000]}\n"
        "time_steps: 3\n"
        "seed: 5\n"
        "layers:\n"
        "  - {name: enc, type: encoder.direct}\n"
        "  - {name: fc1, type: synapse.linear, out: 300}\n"
        "  - {name: lif1, type: neuron.lif, beta: 0.5, threshold: 0.05,\n"
        "     rate_reg: {l1: 0.01, target: 0.2, weight: 2.0}}\n"
        "  - {name: fc2, type: synapse.linear, out: 4}\n"
        "  - {name: lif2, type: neuron.lif, beta: 0.5, threshold: 0.05}\n"
        "readout: {type: readout.spike_count}\n"
        "loss: {type: loss.ce_count}\n"
        "train: {optimizer: {type: sgd, lr: 1.0, clip_norm: 1.0e-3}}\n";
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(clip_yaml, "clip.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_open(device, &be, &err), 0, "%s: %s", device, err.msg);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), 0, "%s", err.msg);
    spk_session_set_smooth(s, 1); /* every weight gets a gradient */
    float x[4 * 1000];
    spk_test_fill(x, 4000, 0.0f, 1.0f, 9);
    int32_t y[4] = {0, 1, 2, 3};
    const int nw = spk_session_weight_count(s);
    float *before[8], *grad[8];
    double sq = 0.0;
    spk_batch_stats st = {0};
    cr_assert_leq(nw, 8);
    cr_assert_eq(spk_session_forward_backward(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    for (int i = 0; i < nw; i++) {
        const size_t n = spk_session_weight_numel(s, i);
        before[i] = malloc(n * sizeof(float));
        grad[i] = malloc(n * sizeof(float));
        cr_assert_eq(spk_session_weight_get(s, i, before[i], &err), 0, "%s", err.msg);
        cr_assert_eq(spk_session_grad_get(s, i, grad[i], &err), 0, "%s", err.msg);
        for (size_t j = 0; j < n; j++)
            sq += (double)grad[i][j] * grad[i][j];
    }
    const double scale = 1.0e-3 / (sqrt(sq) + 1e-6);
    cr_assert_lt(scale, 0.5, "the norm %g must be large enough to clip", sqrt(sq));
    cr_assert_eq(spk_session_train_batch(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    double worst = 0.0;
    for (int i = 0; i < nw; i++) {
        const size_t n = spk_session_weight_numel(s, i);
        float *after = malloc(n * sizeof(float));
        cr_assert_eq(spk_session_weight_get(s, i, after, &err), 0, "%s", err.msg);
        for (size_t j = 0; j < n; j++) {
            const double want = before[i][j] - scale * grad[i][j];
            /* float weights: the step is rounded once more than the double reference */
            const double e = fabs(after[j] - want) / (fabs(want) + 1e-6);
            if (e > worst)
                worst = e;
        }
        free(after);
        free(before[i]);
        free(grad[i]);
    }
    cr_assert_lt(worst, 1e-5, "%s: weights moved by other than the clipped step (rel. error %g)",
                 device, worst);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

Test(graph, clip_norm_through_the_partial_tree)
{
    clip_norm_on("cpu");
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
    clip_norm_on("opencl");
}

/* A session copies the settings its steps read when it is created: editing the model's optimizer
 * settings, seed or a layer's rate_reg afterwards changes nothing in a session that exists. Two
 * sessions of the same file, one of whose models is edited, train to bit-identical weights. */
Test(graph, session_copies_training_settings)
{
    const char *yaml = "input: {shape: [6]}\ntime_steps: 4\nseed: 11\nlayers:\n"
                       "  - {name: enc, type: encoder.poisson}\n"
                       "  - {name: fc1, type: synapse.linear, out: 5}\n"
                       "  - {name: lif1, type: neuron.lif, threshold: 0.3,\n"
                       "     rate_reg: {l1: 0.01, target: 0.2, weight: 2.0}}\n"
                       "  - {name: fc2, type: synapse.linear, out: 3}\n"
                       "  - {name: lif2, type: neuron.lif, threshold: 0.3}\n"
                       "readout: {type: readout.spike_count}\nloss: {type: loss.ce_count}\n"
                       "train: {optimizer: {type: sgd, lr: 0.5, momentum: 0.9,\n"
                       "        weight_decay: 1.0e-3, clip_norm: 0.5}}\n";
    spk_error err = {0};
    spk_model *edited, *kept;
    cr_assert_eq(spk_model_load_string(yaml, "copy.yaml", &edited, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_model_load_string(yaml, "copy.yaml", &kept, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *a, *b;
    cr_assert_eq(spk_session_new(edited, be, 4, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_new(kept, be, 4, &b, &err), 0, "%s", err.msg);
    spk_optim_config *oc = &spk_model_train_config(edited)->optim;
    oc->kind = SPK_OPTIM_ADAM;
    oc->lr = 100.0f;
    oc->momentum = 0.0f;
    oc->weight_decay = 0.5f;
    oc->clip_norm = 0.0f;
    spk_model_set_seed(edited, 12345); /* keys the Poisson spikes of every step */
    edited->layers[2].rate_l1 = 0.0f;
    edited->layers[2].rate_weight = 0.0f;
    cr_expect_float_eq(spk_session_optim(a)->lr, 0.5f, 0, "the session's copy keeps lr");
    cr_expect_eq(spk_session_optim(a)->kind, SPK_OPTIM_SGD);
    cr_expect_float_eq(spk_session_optim(a)->clip_norm, 0.5f, 0);
    float x[4 * 6];
    spk_test_fill(x, 24, 0.2f, 0.9f, 5);
    int32_t y[4] = {0, 1, 2, 1};
    for (int step = 0; step < 3; step++) {
        spk_batch_stats sa = {0}, sb = {0};
        cr_assert_eq(spk_session_train_batch(a, x, y, 4, &sa, &err), 0, "%s", err.msg);
        cr_assert_eq(spk_session_train_batch(b, x, y, 4, &sb, &err), 0, "%s", err.msg);
        cr_expect_eq(sa.loss_sum, sb.loss_sum, "step %d: loss %.9g, unedited %.9g", step,
                     sa.loss_sum, sb.loss_sum);
    }
    int moved = 0;
    for (int i = 0; i < spk_session_weight_count(a); i++) {
        size_t n = spk_session_weight_numel(a, i);
        float *wa = malloc(n * 4), *wb = malloc(n * 4);
        cr_assert(wa && wb);
        cr_assert_eq(spk_session_weight_get(a, i, wa, &err), 0, "%s", err.msg);
        cr_assert_eq(spk_session_weight_get(b, i, wb, &err), 0, "%s", err.msg);
        cr_expect_eq(memcmp(wa, wb, n * 4), 0, "%s differs from the unedited model's",
                     spk_session_weight_name(a, i));
        free(wa);
        free(wb);
    }
    /* the training really moved the weights, so equality above is not two idle sessions */
    spk_session *fresh;
    cr_assert_eq(spk_session_new(kept, be, 4, &fresh, &err), 0, "%s", err.msg);
    for (int i = 0; i < spk_session_weight_count(b); i++) {
        size_t n = spk_session_weight_numel(b, i);
        float *wb = malloc(n * 4), *w0 = malloc(n * 4);
        cr_assert(wb && w0);
        spk_session_weight_get(b, i, wb, &err);
        spk_session_weight_get(fresh, i, w0, &err);
        moved += memcmp(wb, w0, n * 4) != 0;
        free(wb);
        free(w0);
    }
    cr_expect_gt(moved, 0, "three steps left every weight where it started");
    spk_session_free(fresh);
    spk_session_free(a);
    spk_session_free(b);
    spk_model_free(edited);
    spk_model_free(kept);
    spk_backend_free(be);
}
