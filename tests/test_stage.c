/* spk_session_stage_batch and spk_session_train_submit_staged on the CPU backend (one input slot,
 * blocking uploads): the pipeline that spk_train_epoch and `spikecl bench` run gives the same
 * results as spk_session_train_batch, and misuse is refused with a message. The OpenCL side,
 * with two slots and asynchronous copies, is test_opencl_overlap. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/spikecl.h"
#include "testutil.h"

static const char *yaml = "name: stage\n"
                          "input: {shape: [10]}\n"
                          "time_steps: 4\n"
                          "seed: 3\n"
                          "layers:\n"
                          "  - {name: enc, type: encoder.poisson}\n"
                          "  - {name: fc1, type: synapse.linear, out: 8}\n"
                          "  - {name: lif1, type: neuron.lif, beta: 0.9}\n"
                          "  - {name: fc2, type: synapse.linear, out: 3}\n"
                          "  - {name: lif2, type: neuron.lif, beta: 0.9}\n"
                          "readout: {type: readout.spike_count}\n"
                          "loss: {type: loss.mse_count}\n"
                          "train: {batch: 4, optimizer: {type: adam, lr: 1.0e-2}}\n";

enum { B = 4, D = 10, STEPS = 12 };

static void batch_of(int k, float *x, int32_t *y, uint32_t *ids)
{
    spk_test_fill(x, B * D, 0.0f, 1.0f, (unsigned)(k + 1));
    for (int b = 0; b < B; b++) {
        y[b] = (k + b) % 3;
        ids[b] = (uint32_t)(k * B + b);
    }
}

Test(stage, pipeline_matches_train_batch)
{
    spk_error err = {0};
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK, "%s", err.msg);
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(yaml, "stage.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_session *s[2];
    for (int k = 0; k < 2; k++)
        cr_assert_eq(spk_session_new(m, be, B, &s[k], &err), SPK_OK, "%s", err.msg);
    float x[B * D];
    int32_t y[B];
    uint32_t ids[B];
    spk_batch_stats st[2];
    memset(st, 0, sizeof st);
    /* session 0: stage(k); submit; stage(k + 1) before finish(k), reusing x at once */
    batch_of(0, x, y, ids);
    cr_assert_eq(spk_session_set_sample_ids(s[0], ids, B, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_stage_batch(s[0], x, y, B, &err), SPK_OK, "%s", err.msg);
    for (int k = 0; k < STEPS; k++) {
        cr_assert_eq(spk_session_train_submit_staged(s[0], &err), SPK_OK, "%s", err.msg);
        if (k + 1 < STEPS) {
            batch_of(k + 1, x, y, ids);
            cr_assert_eq(spk_session_set_sample_ids(s[0], ids, B, &err), SPK_OK, "%s", err.msg);
            cr_assert_eq(spk_session_stage_batch(s[0], x, y, B, &err), SPK_OK, "%s", err.msg);
        }
        cr_assert_eq(spk_session_train_finish(s[0], &st[0], &err), SPK_OK, "%s", err.msg);
    }
    /* session 1: the plain step */
    for (int k = 0; k < STEPS; k++) {
        batch_of(k, x, y, ids);
        cr_assert_eq(spk_session_set_sample_ids(s[1], ids, B, &err), SPK_OK, "%s", err.msg);
        cr_assert_eq(spk_session_train_batch(s[1], x, y, B, &st[1], &err), SPK_OK, "%s", err.msg);
    }
    cr_assert_eq(st[0].n, STEPS * B);
    /* the accuracy is scored with each step's own labels although the next batch's were
     * staged before the readback */
    cr_expect_eq(st[0].correct, st[1].correct, "pipeline %d correct, train_batch %d", st[0].correct,
                 st[1].correct);
    cr_expect(st[0].loss_sum == st[1].loss_sum, "pipeline loss %.9g, train_batch %.9g",
              st[0].loss_sum, st[1].loss_sum);
    for (int i = 0; i < spk_session_weight_count(s[0]); i++) {
        size_t n = spk_session_weight_numel(s[0], i);
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        cr_assert(a && b);
        cr_assert_eq(spk_session_weight_get(s[0], i, a, &err), SPK_OK, "%s", err.msg);
        cr_assert_eq(spk_session_weight_get(s[1], i, b, &err), SPK_OK, "%s", err.msg);
        cr_expect_eq(memcmp(a, b, n * sizeof *a), 0, "weight %s differs",
                     spk_session_weight_name(s[0], i));
        free(a);
        free(b);
    }
    for (int k = 0; k < 2; k++)
        spk_session_free(s[k]);
    spk_model_free(m);
    spk_backend_free(be);
}

Test(stage, misuse_is_refused)
{
    spk_error err = {0};
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK, "%s", err.msg);
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(yaml, "stage.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_session *s = NULL;
    cr_assert_eq(spk_session_new(m, be, B, &s, &err), SPK_OK, "%s", err.msg);
    float x[B * D];
    int32_t y[B] = {0, 1, 2, 0};
    uint32_t ids[B];
    batch_of(0, x, y, ids);
    cr_expect_eq(spk_session_train_submit_staged(s, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "no staged batch"), "%s", err.msg);
    y[2] = 7;
    cr_expect_eq(spk_session_stage_batch(s, x, y, B, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "label 7 of sample 2"), "%s", err.msg);
    cr_expect_eq(spk_session_train_submit_staged(s, &err), SPK_ERR_INVALID,
                 "a refused batch is not staged");
    y[2] = 2;
    cr_expect_eq(spk_session_stage_batch(s, x, y, B + 1, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "session holds 1..4"), "%s", err.msg);
    cr_expect_eq(spk_session_stage_batch(s, NULL, y, B, &err), SPK_ERR_INVALID);
    cr_assert_eq(spk_session_stage_batch(s, x, y, B, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_train_submit_staged(s, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_stage_batch(s, x, y, B, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_session_train_submit_staged(s, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "has not been finished"), "%s", err.msg);
    cr_assert_eq(spk_session_train_finish(s, NULL, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_session_train_submit_staged(s, &err), SPK_OK,
                 "the batch staged during the unfinished step is still staged: %s", err.msg);
    cr_assert_eq(spk_session_train_finish(s, NULL, &err), SPK_OK, "%s", err.msg);
    spk_session_free(s);
    spk_model_free(m);
    spk_backend_free(be);
}
