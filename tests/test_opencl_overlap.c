/* Uploads that overlap compute (spk_session_stage_batch; the OpenCL backend's upload_async):
 * training on an OpenCL device gives bit for bit the weights, losses and accuracy of blocking
 * uploads (SPIKECL_CL_OVERLAP=0), both with the copy on the compute queue (PoCL's default) and
 * with a second copy queue ordered by events (a GPU's default, forced here with
 * SPIKECL_CL_COPY_QUEUE=1). Many small batches make many swaps of the two input slots and
 * many round trips through the ring of pinned staging buffers; a batch staged into a slot that a
 * step still reads, or read before its copy landed, would change the results.
 *
 * The device: as in test_opencl_train ($SPIKECL_TEST_DEVICE, else the first OpenCL GPU, else
 * opencl:0:0; skips without one, fails under CI=true). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/data.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

/* Poisson spikes are keyed by the sample ids, so ids that went with the wrong batch would show;
 * the batch of 3 does not divide the 301 samples, so the last batch is partial. */
static const char *model_yaml = "name: overlap\n"
                                "input: {shape: [24], scale: 0.00392157}\n"
                                "time_steps: 5\n"
                                "seed: 11\n"
                                "layers:\n"
                                "  - {name: enc, type: encoder.poisson}\n"
                                "  - {name: fc1, type: synapse.linear, out: 16}\n"
                                "  - {name: lif1, type: neuron.lif, beta: 0.9}\n"
                                "  - {name: fc2, type: synapse.linear, out: 4}\n"
                                "  - {name: lif2, type: neuron.lif, beta: 0.9}\n"
                                "readout: {type: readout.spike_count}\n"
                                "loss: {type: loss.mse_count}\n"
                                "train: {batch: 3, optimizer: {type: adam, lr: 5.0e-3, "
                                "schedule: cosine}}\n";

enum { N_SAMPLES = 301, DIM = 24, BATCH = 3 };

static spk_dataset *make_data(void)
{
    spk_dataset *ds = calloc(1, sizeof *ds);
    cr_assert_not_null(ds);
    ds->n = N_SAMPLES;
    ds->channels = 1;
    ds->height = 1;
    ds->width = DIM;
    ds->n_classes = 4;
    ds->pixels = malloc((size_t)N_SAMPLES * DIM);
    ds->labels = malloc(N_SAMPLES);
    cr_assert(ds->pixels && ds->labels);
    unsigned r = 12345u;
    for (int i = 0; i < N_SAMPLES; i++) {
        ds->labels[i] = (uint8_t)(i % 4);
        for (int d = 0; d < DIM; d++) {
            r = r * 1103515245u + 12345u;
            /* the label's quarter of the pixels is brighter: something to learn */
            int bright = d / (DIM / 4) == i % 4;
            ds->pixels[(size_t)i * DIM + d] = (uint8_t)((r >> 16) % (bright ? 200 : 80));
        }
    }
    return ds;
}

typedef struct run_result {
    spk_batch_stats st[2]; /* per epoch */
    float *w;              /* every weight, concatenated */
    size_t nw;
} run_result;

/* Opens the device with `env` set (NULL: none), trains two epochs with spk_train_epoch. */
static void train_run(const char *id, const char *env, const char *val, run_result *out)
{
    memset(out, 0, sizeof *out);
    if (env)
        setenv(env, val, 1);
    spk_error err = {0};
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_open(id, &be, &err), SPK_OK, "%s: %s", id, err.msg);
    if (env)
        unsetenv(env);
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(model_yaml, "overlap.yaml", &m, &err), SPK_OK, "%s",
                 err.msg);
    spk_session *s = NULL;
    cr_assert_eq(spk_session_new(m, be, BATCH, &s, &err), SPK_OK, "%s", err.msg);
    spk_dataset *ds = make_data();
    spk_loader *ld = NULL;
    cr_assert_eq(spk_loader_new(ds, BATCH, 1, 11, 0, &ld, &err), SPK_OK, "%s", err.msg);
    for (int e = 0; e < 2; e++)
        cr_assert_eq(spk_train_epoch(s, ld, e, 2, NULL, NULL, &out->st[e], &err), SPK_OK,
                     "%s=%s, epoch %d: %s", env ? env : "-", env ? val : "", e, err.msg);
    for (int i = 0; i < spk_session_weight_count(s); i++)
        out->nw += spk_session_weight_numel(s, i);
    out->w = malloc(out->nw * sizeof(float));
    cr_assert_not_null(out->w);
    size_t off = 0;
    for (int i = 0; i < spk_session_weight_count(s); i++) {
        cr_assert_eq(spk_session_weight_get(s, i, out->w + off, &err), SPK_OK, "%s", err.msg);
        off += spk_session_weight_numel(s, i);
    }
    spk_loader_free(ld);
    spk_dataset_free(ds);
    spk_session_free(s);
    spk_model_free(m);
    spk_backend_free(be);
}

static void expect_same(const run_result *a, const run_result *b, const char *what)
{
    for (int e = 0; e < 2; e++) {
        cr_expect_eq(a->st[e].n, b->st[e].n, "%s, epoch %d: samples", what, e);
        cr_expect_eq(a->st[e].correct, b->st[e].correct, "%s, epoch %d: %d correct, blocking %d",
                     what, e, a->st[e].correct, b->st[e].correct);
        cr_expect(a->st[e].loss_sum == b->st[e].loss_sum,
                  "%s, epoch %d: loss sum %.9g, blocking %.9g", what, e, a->st[e].loss_sum,
                  b->st[e].loss_sum);
    }
    cr_assert_eq(a->nw, b->nw);
    size_t diff = 0;
    for (size_t i = 0; i < a->nw; i++)
        diff += memcmp(&a->w[i], &b->w[i], sizeof(float)) != 0;
    cr_expect_eq(diff, 0, "%s: %zu of %zu weights differ from the blocking path's", what, diff,
                 a->nw);
}

Test(opencl_overlap, pipeline_matches_blocking_uploads, .timeout = 600)
{
    char id[64];
    spk_backend *probe = spk_test_opencl_device(id, sizeof id); /* skips without a device */
    spk_backend_free(probe);
    run_result blocking, same_queue, copy_queue;
    train_run(id, "SPIKECL_CL_OVERLAP", "0", &blocking);
    train_run(id, "SPIKECL_CL_COPY_QUEUE", "0", &same_queue);
    train_run(id, "SPIKECL_CL_COPY_QUEUE", "1", &copy_queue);
    /* 2 epochs of 101 batches: the runs must have trained, or equality proves little */
    cr_assert_eq(blocking.st[1].n, N_SAMPLES);
    cr_expect_gt(blocking.st[1].correct, blocking.st[0].correct / 2,
                 "training collapsed (%d then %d correct)", blocking.st[0].correct,
                 blocking.st[1].correct);
    expect_same(&same_queue, &blocking, "copies on the compute queue");
    expect_same(&copy_queue, &blocking, "copies on a second queue");
    free(blocking.w);
    free(same_queue.w);
    free(copy_queue.w);
}

/* Staging again before a submit replaces the staged batch, through the ring of staging buffers
 * (8 entries, 3 per batch) many times over; the step then trains on the last one staged, as a
 * plain submit of that batch does. Two sessions on two backends opened with the copy queue. */
Test(opencl_overlap, restaging_uses_the_last_batch, .timeout = 300)
{
    char id[64];
    spk_backend *probe = spk_test_opencl_device(id, sizeof id);
    spk_backend_free(probe);
    setenv("SPIKECL_CL_COPY_QUEUE", "1", 1);
    spk_error err = {0};
    spk_backend *be[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++)
        cr_assert_eq(spk_backend_open(id, &be[k], &err), SPK_OK, "%s", err.msg);
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(model_yaml, "overlap.yaml", &m, &err), SPK_OK, "%s",
                 err.msg);
    spk_session *s[2];
    for (int k = 0; k < 2; k++)
        cr_assert_eq(spk_session_new(m, be[k], BATCH, &s[k], &err), SPK_OK, "%s", err.msg);
    float x[BATCH * DIM];
    int32_t y[BATCH];
    spk_batch_stats st[2];
    memset(st, 0, sizeof st);
    for (int step = 0; step < 6; step++) {
        for (int rep = 0; rep < 7; rep++) { /* 7 stages of different batches, the last wins */
            spk_test_fill(x, BATCH * DIM, 0.0f, 1.0f, (unsigned)(100 * step + rep));
            for (int b = 0; b < BATCH; b++)
                y[b] = (step + rep + b) % 4;
            cr_assert_eq(spk_session_stage_batch(s[0], x, y, BATCH, &err), SPK_OK, "%s", err.msg);
        }
        cr_assert_eq(spk_session_train_submit_staged(s[0], &err), SPK_OK, "%s", err.msg);
        cr_assert_eq(spk_session_train_submit_staged(s[0], &err), SPK_ERR_INVALID,
                     "a second submit while the step is unfinished must be refused");
        cr_assert_eq(spk_session_train_finish(s[0], &st[0], &err), SPK_OK, "%s", err.msg);
        cr_assert_eq(spk_session_train_batch(s[1], x, y, BATCH, &st[1], &err), SPK_OK, "%s",
                     err.msg);
    }
    cr_expect(st[0].loss_sum == st[1].loss_sum && st[0].correct == st[1].correct,
              "staged: loss %.9g, %d correct; submitted: loss %.9g, %d correct", st[0].loss_sum,
              st[0].correct, st[1].loss_sum, st[1].correct);
    cr_assert_eq(spk_session_train_submit_staged(s[0], &err), SPK_ERR_INVALID,
                 "nothing is staged after a submit");
    for (int k = 0; k < 2; k++) {
        spk_session_free(s[k]);
        spk_backend_free(be[k]);
    }
    spk_model_free(m);
}
