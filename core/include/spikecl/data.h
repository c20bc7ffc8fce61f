/* spikecl — image data sets (IDX format, MNIST family), event-camera recordings (N-MNIST) and a
 * seeded batch loader. */
#ifndef SPIKECL_DATA_H
#define SPIKECL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "spikecl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the loader turns a sample's events into frames (see README, "Event data"). */
typedef struct spk_frames {
    int time_steps;  /* T: frames per sample (the model's time_steps) */
    int time_window; /* > 0: frame t holds the events with t0 + t*w <= timestamp < t0 + (t+1)*w,
                        t0 the sample's first timestamp (as tonic's ToFrame slices), and later
                        events are dropped; 0: the T frames split the span from the first to
                        the last event into T equal parts */
    int clip;        /* counts clipped to 1 */
    int denoise;     /* > 0: drop events with no event at a 4-neighbour pixel within the
                        previous `denoise` µs (tonic's Denoise), applied when the set is read */
    int downsample;  /* >= 1: pixel (x, y) counts towards (x / d, y / d) */
} spk_frames;

/* One event, packed into 8 bytes. */
typedef struct spk_event {
    uint32_t t; /* µs */
    uint8_t x, y;
    uint8_t p; /* polarity: 0 off, 1 on (the frame's channel) */
    uint8_t pad;
} spk_event;

/* A labelled image set held in memory as raw uint8 pixels, or (when events is not NULL) a set
 * of event recordings whose frames the loader makes batch by batch. */
typedef struct spk_dataset {
    int n;        /* number of samples */
    int channels; /* 1 for IDX files */
    int height;
    int width;
    int n_classes;   /* 1 + the largest label */
    uint8_t *pixels; /* n * channels * height * width, sample-major */
    uint8_t *labels; /* n */
    /* event sets: pixels is NULL, channels is 2 (off, on), height x width the frame size
     * after downsampling; sample i's events are events[offsets[i] .. offsets[i + 1]) */
    spk_event *events;
    size_t *offsets; /* n + 1 */
    int sensor_height, sensor_width;
    spk_frames frames;
} spk_dataset;

/* Reads an IDX3 image file and its IDX1 label file, raw or gzip-compressed (zlib).
 * Errors name the file and what is wrong (bad magic, truncated, count mismatch). */
SPK_API int spk_dataset_load_idx(const char *images_path, const char *labels_path,
                                 spk_dataset **out, spk_error *err);
SPK_API void spk_dataset_free(spk_dataset *ds);

/* Reads the N-MNIST recordings of one split: every DIR/Train/<digit>/<name>.bin (train = 1) or
 * DIR/Test/<digit>/<name>.bin (train = 0), in digit then name order, as a 34x34 sensor. The
 * frame settings are kept with the set (fr->denoise is applied here). Errors (SPK_ERR_PARSE or
 * SPK_ERR_NOTFOUND) name the file: a truncated record, a coordinate outside the sensor, a
 * timestamp going backwards, or a split without any recording. */
SPK_API int spk_dataset_load_nmnist(const char *dir, int train, const spk_frames *fr,
                                    spk_dataset **out, spk_error *err);
/* Same, from the files of one split given as paths with their labels (for tests and tools). */
SPK_API int spk_dataset_from_event_files(const char *const *paths, const uint8_t *labels, int n,
                                         int sensor_height, int sensor_width, const spk_frames *fr,
                                         spk_dataset **out, spk_error *err);
/* Frames of sample idx of an event set, written for position b of a batch of `count` samples:
 * dst[((t * count + b) * 2 + p) * H * W + y * W + x] += scale per event ([T, count, 2, H, W];
 * = scale with frames.clip); the caller zeroes dst first. */
SPK_API void spk_dataset_event_frames(const spk_dataset *ds, uint32_t idx, int b, int count,
                                      float scale, float *dst);

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
/* Fills x with up to `batch` samples (each channels*height*width floats, pixel * scale; for an
 * event set, count frames [T, n, 2, H, W] times scale, n the samples returned), labels
 * with their classes and sample_ids with their indices in the data set; returns the number of
 * samples written, 0 at the end of the epoch. */
SPK_API int spk_loader_next(spk_loader *ld, float scale, float *x, int32_t *labels,
                            uint32_t *sample_ids);

#ifdef __cplusplus
}
#endif
#endif
