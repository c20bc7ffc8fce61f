/* spikecl — image data sets (IDX format, MNIST family) and a seeded batch loader. */
#ifndef SPIKECL_DATA_H
#define SPIKECL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "spikecl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A labelled image set held in memory as raw uint8 pixels. */
typedef struct spk_dataset {
    int n;        /* number of samples */
    int channels; /* 1 for IDX files */
    int height;
    int width;
    int n_classes;   /* 1 + the largest label */
    uint8_t *pixels; /* n * channels * height * width, sample-major */
    uint8_t *labels; /* n */
} spk_dataset;

/* Reads an IDX3 image file and its IDX1 label file, raw or gzip-compressed (zlib).
 * Errors name the file and what is wrong (bad magic, truncated, count mismatch). */
SPK_API int spk_dataset_load_idx(const char *images_path, const char *labels_path,
                                 spk_dataset **out, spk_error *err);
SPK_API void spk_dataset_free(spk_dataset *ds);

/* Finds the standard MNIST-family file names in dir: train = 1 gives
 * train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz], train = 0 the t10k- pair.
 * The returned paths are malloc'ed; the caller frees them. */
SPK_API int spk_dataset_find_in_dir(const char *dir, int train, char **images_path,
                                    char **labels_path, spk_error *err);

/* Iterates a data set in batches. With shuffle, the order of each epoch is a permutation drawn
 * from Philox keyed by (seed, epoch), so a run is reproducible and resumable. limit > 0 uses only
 * the first `limit` samples of the set. The last batch of an epoch may be partial. */
typedef struct spk_loader spk_loader;

SPK_API int spk_loader_new(const spk_dataset *ds, int batch, int shuffle, uint64_t seed, int limit,
                           spk_loader **out, spk_error *err);
SPK_API void spk_loader_free(spk_loader *ld);
SPK_API int spk_loader_size(const spk_loader *ld); /* samples per epoch (after limit) */
SPK_API int
spk_loader_batches(const spk_loader *ld); /* batches per epoch, counting a partial one */
SPK_API int spk_loader_batch_size(const spk_loader *ld); /* the `batch` it was made with */
SPK_API const spk_dataset *spk_loader_dataset(const spk_loader *ld); /* the set it iterates */
SPK_API void spk_loader_start_epoch(spk_loader *ld, int epoch);
/* Fills x with up to `batch` samples (each channels*height*width floats, pixel * scale), labels
 * with their classes and sample_ids with their indices in the data set; returns the number of
 * samples written, 0 at the end of the epoch. */
SPK_API int spk_loader_next(spk_loader *ld, float scale, float *x, int32_t *labels,
                            uint32_t *sample_ids);

#ifdef __cplusplus
}
#endif
#endif
