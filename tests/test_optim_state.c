/* Optimizer-state files (spk_session_load_state): the step count and finished epochs are checked
 * before use. Found by tests/fuzz/fuzz_safetensors.c: a step of 8e20 was converted to long with
 * undefined behaviour (kept as tests/fuzz/regressions/safetensors/step-8e20). */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/backend.h"
#include "spikecl/safetensors.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

static const char model_yaml[] = "input: {shape: [4]}\n"
                                 "time_steps: 2\n"
                                 "layers:\n"
                                 "  - {name: enc, type: encoder.direct}\n"
                                 "  - {name: fc1, type: synapse.linear, out: 3}\n"
                                 "  - {name: lif1, type: neuron.lif}\n"
                                 "readout: {type: readout.spike_count}\n"
                                 "loss: {type: loss.mse_count}\n"
                                 "train: {batch: 2, epochs: 3, optimizer: {type: adam}}\n";

/* Rewrites the state file `good` to `bad` with tensor `name` replaced by n values of v. */
static void write_with(const char *good, const char *bad, const char *name, int n, float v)
{
    spk_st_file *f = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_read(good, &f, &err), SPK_OK, "%s", err.msg);
    float vals[2] = {v, v};
    spk_st_tensor *t = NULL;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            t = &f->tensors[i];
    cr_assert_not_null(t, "no %s", name);
    float *keep = t->data;
    t->data = vals;
    t->ndim = 1;
    t->shape[0] = n;
    int rc = spk_safetensors_write(bad, f->n, f->tensors, 0, NULL, NULL, &err);
    t->data = keep;
    spk_st_file_free(f);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
}

/* A CPU session of model_yaml for batches of 2. */
static void open_session(spk_backend **be, spk_model **m, spk_session **s)
{
    spk_error err = {0};
    cr_assert_eq(spk_backend_cpu_new(1, be, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_model_load_string(model_yaml, "state.yaml", m, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_new(*m, *be, 2, s, &err), SPK_OK, "%s", err.msg);
}

Test(optim_state, rejects_bad_counts)
{
    spk_error err = {0};
    spk_backend *be = NULL;
    spk_model *m = NULL;
    spk_session *s = NULL;
    open_session(&be, &m, &s);
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.safetensors", spk_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.safetensors", spk_test_tmpdir());
    cr_assert_eq(spk_session_save_state(s, good, 2, &err), SPK_OK, "%s", err.msg);
    int epochs = -1;
    cr_assert_eq(spk_session_load_state(s, good, &epochs, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(epochs, 2);

    const struct {
        const char *name;
        int n;
        float v;
        const char *says;
    } cases[] = {
        {"step", 1, 8.03323e20f, "whole number"}, /* the fuzzer's input */
        {"step", 1, NAN, "whole number"},         {"step", 1, -1.0f, "whole number"},
        {"epochs_done", 1, 2.5f, "whole number"}, {"epochs_done", 1, INFINITY, "whole number"},
        {"epochs_done", 0, 0.0f, "one value"},    {"step", 2, 1.0f, "one value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_with(good, bad, cases[i].name, cases[i].n, cases[i].v);
        spk_error_clear(&err);
        epochs = -1;
        cr_expect_eq(spk_session_load_state(s, bad, &epochs, &err), SPK_ERR_INVALID,
                     "case %zu (%s = %g x %d) was accepted", i, cases[i].name, (double)cases[i].v,
                     cases[i].n);
        cr_expect(strstr(err.msg, cases[i].name) && strstr(err.msg, cases[i].says), "case %zu: %s",
                  i, err.msg);
        cr_expect_eq(epochs, -1, "case %zu changed epochs_done", i);
    }
    spk_session_free(s);
    spk_model_free(m);
    spk_backend_free(be);
}

/* The moments are allocated by the first update (or state file), not by the session: one that
 * only evaluates or computes gradients holds none. Adam's two per weight arrive with the first
 * training step, zero: the same first update as ever. */
Test(optim_state, moments_arrive_with_the_first_update)
{
    spk_error err = {0};
    spk_backend *be = NULL;
    spk_model *m = NULL;
    spk_session *s = NULL;
    open_session(&be, &m, &s);
    size_t weights = 0; /* fc1's: lif1's beta and threshold are not learned */
    for (int i = 0; i < spk_session_weight_count(s); i++)
        if (strncmp(spk_session_weight_name(s, i), "fc1.", 4) == 0)
            weights += spk_session_weight_numel(s, i);
    cr_assert_eq(weights, 4 * 3 + 3);
    const float x[8] = {0.9f, 0.1f, 0.5f, 0.7f, 0.3f, 0.8f, 0.2f, 0.6f};
    const int32_t y[2] = {0, 2};
    spk_batch_stats st = {0};
    const uint64_t before = be->stats.bytes_allocated;
    cr_assert_eq(spk_session_forward_backward(s, x, y, 2, &st, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_eval_batch(s, x, y, 2, &st, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(be->stats.bytes_allocated, before, "gradients alone allocated %llu bytes",
                 (unsigned long long)(be->stats.bytes_allocated - before));
    cr_assert_eq(spk_session_train_batch(s, x, y, 2, &st, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(be->stats.bytes_allocated - before, 2 * weights * sizeof(float),
                 "the first update allocated %llu bytes for %zu weights",
                 (unsigned long long)(be->stats.bytes_allocated - before), weights);
    cr_assert_eq(spk_session_train_batch(s, x, y, 2, &st, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(be->stats.bytes_allocated - before, 2 * weights * sizeof(float));
    spk_session_free(s);
    spk_model_free(m);
    spk_backend_free(be);
}
