/* Training and evaluation loops over a loader: what `spikecl train` and `eval` run. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "spikecl/spikecl.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct batch_bufs {
    float *x;
    int32_t *y;
    uint32_t *ids;
} batch_bufs;

static int bufs_new(spk_session *s, int batch, batch_bufs *b, spk_error *err)
{
    b->x = malloc((size_t)batch * (size_t)spk_session_input_size(s) * sizeof(float));
    b->y = malloc((size_t)batch * sizeof(int32_t));
    b->ids = malloc((size_t)batch * sizeof(uint32_t));
    if (!b->x || !b->y || !b->ids) {
        free(b->x);
        free(b->y);
        free(b->ids);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    return SPK_OK;
}

static void bufs_free(batch_bufs *b)
{
    free(b->x);
    free(b->y);
    free(b->ids);
}

int spk_train_epoch(spk_session *s, spk_loader *ld, int epoch, int epochs, spk_progress_fn cb,
                    void *user, spk_batch_stats *st, spk_error *err)
{
    return spk_train_epoch_part(s, ld, epoch, epochs, 0, NULL, NULL, cb, user, st, err);
}

int spk_train_epoch_part(spk_session *s, spk_loader *ld, int epoch, int epochs, int first_batch,
                         const volatile sig_atomic_t *stop, int *batches_done, spk_progress_fn cb,
                         void *user, spk_batch_stats *st, spk_error *err)
{
    if (batches_done)
        *batches_done = first_batch;
    if (first_batch < 0 || first_batch > spk_loader_batches(ld))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "cannot start epoch %d at batch %d: it has %d batches (resume with "
                             "the same --batch and --limit-train as the stopped run)",
                             epoch + 1, first_batch, spk_loader_batches(ld));
    /* a sample of another size would overrun (or half fill) the batch buffer */
    int rc = spk_session_check_data(s, spk_loader_dataset(ld), err);
    if (rc)
        return rc;
    /* two host batches: the loader fills one while the device trains on the other */
    batch_bufs b[2];
    rc = bufs_new(s, spk_loader_batch_size(ld), &b[0], err);
    if (rc)
        return rc;
    if ((rc = bufs_new(s, spk_loader_batch_size(ld), &b[1], err))) {
        bufs_free(&b[0]);
        return rc;
    }
    spk_loader_start_epoch(ld, epoch);
    spk_session_set_epoch(s, epoch);
    /* the same order, ids and batch indices as the run that stopped after first_batch */
    for (int k = 0; k < first_batch; k++)
        spk_loader_next(ld, 0.0f, NULL, NULL, NULL);
    spk_session_set_batch_index(s, first_batch);
    spk_batch_stats acc = {0};
    const spk_optim_config *oc = spk_session_optim(s);
    const float scale = spk_session_input_scale(s);
    int nb = spk_loader_batches(ld), bi = first_batch, cur = 0;
    long skipped = (long)first_batch * spk_loader_batch_size(ld);
    double t0 = now_s();
    /* a pipeline: batch k+1 is loaded and staged (its upload overlapping the step on batch k on
     * a device that uploads asynchronously) before the step's loss is read back */
    int n = spk_loader_next(ld, scale, b[cur].x, b[cur].y, b[cur].ids);
    if (n > 0 && ((rc = spk_session_set_sample_ids(s, b[cur].ids, n, err)) ||
                  (rc = spk_session_stage_batch(s, b[cur].x, b[cur].y, n, err))))
        n = 0;
    while (n > 0) {
        if (oc->schedule == SPK_LR_COSINE) {
            double p = (double)(epoch * nb + bi) / ((double)epochs * nb);
            spk_session_set_lr(s, (float)(oc->min_lr + 0.5 * (oc->lr - oc->min_lr) *
                                                           (1.0 + cos(3.14159265358979 * p))));
        }
        bi++;
        if ((rc = spk_session_train_submit_staged(s, err)))
            break;
        cur ^= 1;
        n = spk_loader_next(ld, scale, b[cur].x, b[cur].y, b[cur].ids);
        if (n > 0 && ((rc = spk_session_set_sample_ids(s, b[cur].ids, n, err)) ||
                      (rc = spk_session_stage_batch(s, b[cur].x, b[cur].y, n, err)))) {
            spk_error ignored;
            spk_session_train_finish(s, NULL, &ignored); /* the step stays unfinished otherwise */
            break;
        }
        if ((rc = spk_session_train_finish(s, &acc, err)))
            break;
        /* the step flags non-finite weights or gradients through its loss (no extra transfer) */
        if (!isfinite(acc.loss_sum)) {
            spk_error why;
            spk_error_clear(&why);
            if (spk_session_check_weights(s, NULL, NULL, 0, &why) == SPK_OK)
                spk_error_set(&why, SPK_ERR_NUMERIC,
                              "the loss or the gradient norm is not finite (weights and "
                              "gradients are)");
            rc = spk_error_set(err, SPK_ERR_NUMERIC,
                               "training diverged in epoch %d, batch %d of %d: %s; lower the "
                               "learning rate (%g) or set clip_norm",
                               epoch + 1, bi, nb, why.msg, (double)spk_session_optim(s)->lr);
            break;
        }
        if (cb) {
            double dt = now_s() - t0;
            spk_progress p = {.epoch = epoch,
                              .epochs = epochs,
                              .done = (int)(skipped + acc.n),
                              .total = spk_loader_size(ld),
                              .loss = acc.loss_sum / acc.n,
                              .accuracy = (double)acc.correct / acc.n,
                              .samples_per_s = dt > 0 ? acc.n / dt : 0};
            p.eta_s = p.samples_per_s > 0 ? (p.total - p.done) / p.samples_per_s : 0;
            cb(&p, user);
        }
        if (batches_done)
            *batches_done = bi;
        if (stop && *stop)
            break;
    }
    bufs_free(&b[0]);
    bufs_free(&b[1]);
    if (st)
        *st = acc;
    return rc;
}

int spk_evaluate(spk_session *s, spk_loader *ld, spk_batch_stats *st, spk_error *err)
{
    batch_bufs b;
    int rc = spk_session_check_data(s, spk_loader_dataset(ld), err);
    if (rc)
        return rc;
    rc = bufs_new(s, spk_loader_batch_size(ld), &b, err);
    if (rc)
        return rc;
    spk_loader_start_epoch(ld, 0);
    spk_batch_stats acc = {0};
    int n;
    while ((n = spk_loader_next(ld, spk_session_input_scale(s), b.x, b.y, b.ids)) > 0) {
        rc = spk_session_set_sample_ids(s, b.ids, n, err);
        if (!rc)
            rc = spk_session_eval_batch(s, b.x, b.y, n, &acc, err);
        if (rc)
            break;
    }
    bufs_free(&b);
    if (st)
        *st = acc;
    return rc;
}
