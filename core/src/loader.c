/* spikecl — the seeded batch loader: each epoch's order (a Philox permutation keyed by the seed
 * and the epoch), and each batch's images or, for event sets, the frames made from the events. */
#define _POSIX_C_SOURCE 200809L

#include "seed.h"
#include "spikecl/data.h"
#include "spikecl/philox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct spk_loader {
    const spk_dataset *ds; /* borrowed: must outlive the loader */
    int batch;
    int shuffle;
    uint64_t seed;
    int size;        /* samples per epoch */
    int pos;         /* next position in order */
    uint32_t *order; /* this epoch's sample indices */
};

/* Random words for the shuffle of one epoch. Stream: key = (spk_seed_key(seed), SPK_RNG_SHUFFLE);
 * the swap at Fisher-Yates position i uses counter (i, epoch, k, 0) for k = 0, 1, ... and takes the
 * four output words in order. So each epoch's permutation depends only on (seed, epoch, size), and
 * a resumed run reproduces it without replaying earlier epochs. */
typedef struct spk_shuffle_rng {
    spk_u32 k0, k1;
    spk_u32 i, epoch, k;
    int used; /* words of out already taken; 4 = draw a new block */
    spk_philox_ctr out;
} spk_shuffle_rng;

static spk_u32 spk_shuffle_word(spk_shuffle_rng *r)
{
    if (r->used == 4) {
        spk_philox_ctr c = {{r->i, r->epoch, r->k++, 0}};
        r->out = spk_philox4x32_10(c, r->k0, r->k1);
        r->used = 0;
    }
    return r->out.v[r->used++];
}

/* Unbiased integer in [0, range), range >= 1: Lemire's multiply-shift with rejection
 * ("Fast random integer generation in an interval", 2019). The rejection zone is range / 2^32
 * wide, so for data-set sizes a redraw almost never happens. */
static uint32_t spk_shuffle_bounded(spk_shuffle_rng *r, uint32_t range)
{
    uint64_t m = (uint64_t)spk_shuffle_word(r) * range;
    uint32_t lo = (uint32_t)m;
    if (lo < range) {
        uint32_t t = (uint32_t)(-range) % range; /* 2^32 mod range */
        while (lo < t) {
            m = (uint64_t)spk_shuffle_word(r) * range;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int spk_loader_new(const spk_dataset *ds, int batch, int shuffle, uint64_t seed, int limit,
                   spk_loader **out, spk_error *err)
{
    if (!out)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_loader_new: out is NULL");
    *out = NULL;
    if (!ds || ds->n <= 0 || !(ds->pixels || (ds->events && ds->offsets)) || !ds->labels)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_loader_new: empty or missing data set");
    if (batch <= 0)
        return spk_error_set(err, SPK_ERR_INVALID, "batch size must be positive, got %d", batch);
    spk_loader *ld = calloc(1, sizeof *ld);
    if (!ld)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory for a loader");
    ld->ds = ds;
    ld->batch = batch;
    ld->shuffle = shuffle != 0;
    ld->seed = seed;
    ld->size = (limit > 0 && limit < ds->n) ? limit : ds->n;
    ld->order = malloc((size_t)ld->size * sizeof *ld->order);
    if (!ld->order) {
        free(ld);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory for a loader of %d samples", ds->n);
    }
    spk_loader_start_epoch(ld, 0); /* ready to iterate epoch 0 without an explicit start */
    *out = ld;
    return SPK_OK;
}

void spk_loader_free(spk_loader *ld)
{
    if (!ld)
        return;
    free(ld->order);
    free(ld);
}

int spk_loader_size(const spk_loader *ld)
{
    return ld ? ld->size : 0;
}

int spk_loader_batches(const spk_loader *ld)
{
    return ld ? (ld->size + ld->batch - 1) / ld->batch : 0;
}

int spk_loader_batch_size(const spk_loader *ld)
{
    return ld ? ld->batch : 0;
}

const spk_dataset *spk_loader_dataset(const spk_loader *ld)
{
    return ld ? ld->ds : NULL;
}

void spk_loader_start_epoch(spk_loader *ld, int epoch)
{
    if (!ld)
        return;
    /* Start from the identity each time so the order depends on (seed, epoch) alone. */
    for (int i = 0; i < ld->size; i++)
        ld->order[i] = (uint32_t)i;
    ld->pos = 0;
    if (!ld->shuffle)
        return;
    spk_shuffle_rng r = {0};
    r.k0 = spk_seed_key(ld->seed);
    r.k1 = SPK_RNG_SHUFFLE;
    r.epoch = (spk_u32)epoch;
    for (int i = ld->size - 1; i > 0; i--) {
        r.i = (spk_u32)i;
        r.k = 0;
        r.used = 4;
        uint32_t j = spk_shuffle_bounded(&r, (uint32_t)i + 1);
        uint32_t t = ld->order[i];
        ld->order[i] = ld->order[j];
        ld->order[j] = t;
    }
}

int spk_loader_next(spk_loader *ld, float scale, float *x, int32_t *labels, uint32_t *sample_ids)
{
    if (!ld || ld->pos >= ld->size)
        return 0;
    const spk_dataset *ds = ld->ds;
    size_t dim = (size_t)ds->channels * ds->height * ds->width;
    int count = ld->size - ld->pos;
    if (count > ld->batch)
        count = ld->batch;
    /* event sets: the batch's frames, [T, count, 2, H, W], made here (in the loader's thread) */
    if (x && ds->events) {
        memset(x, 0, (size_t)ds->frames.time_steps * (size_t)count * dim * sizeof *x);
        for (int k = 0; k < count; k++)
            spk_dataset_event_frames(ds, ld->order[ld->pos + k], k, count, scale, x);
    }
    /* Any of the outputs may be NULL when the caller does not need it. */
    for (int k = 0; k < count; k++) {
        uint32_t idx = ld->order[ld->pos + k];
        if (x && !ds->events) {
            const uint8_t *src = ds->pixels + (size_t)idx * dim;
            float *dst = x + (size_t)k * dim;
            for (size_t d = 0; d < dim; d++)
                dst[d] = (float)src[d] * scale;
        }
        if (labels)
            labels[k] = ds->labels[idx];
        if (sample_ids)
            sample_ids[k] = idx;
    }
    ld->pos += count;
    return count;
}
