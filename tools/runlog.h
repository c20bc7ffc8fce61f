/* spikecl CLI — the run folder that `spikecl train --out DIR` leaves besides its checkpoints:
 *   model.yaml       the model with every default written out (spk_model_to_yaml)
 *   run.json         spikecl's version and each invocation's command line, device and limits
 *   metrics.jsonl    a JSON object per line: {"kind": "batch"} every N batches and
 *                    {"kind": "epoch"} after each epoch's evaluation; --resume appends
 *   best.safetensors the weights of the epoch with the best test accuracy so far
 *   confusion.json   the confusion matrix behind confusion.png (written with the pictures) */
#ifndef SPK_TOOLS_RUNLOG_H
#define SPK_TOOLS_RUNLOG_H

#include <stdio.h>

#include <jansson.h>

#include "probe.h"
#include "spikecl/spikecl.h"

typedef struct spk_runlog {
    char dir[4096];
    FILE *metrics;
    double t0;
    double best_acc; /* best test accuracy of the run so far, -1 before the first epoch */
    int every;       /* a batch line every this many batches, 0: none */
    int batch;       /* samples per batch, to count batches from the progress */
    int last_logged; /* batch of the last batch line */
} spk_runlog;

/* What run.json records of an invocation. */
typedef struct spk_run_info {
    int argc;
    char **argv;
    const char *device;          /* the device's id and description */
    const char *data;            /* --data, or NULL */
    int limit_train, limit_test; /* -1: none */
    int resume;
} spk_run_info;

/* Makes the model's train: data and test: paths those of --data DIR, so that model.yaml names
 * what the run read. */
int spk_runlog_take_data(spk_model *m, const char *data, spk_error *err);
/* Opens DIR/metrics.jsonl: a new file, or (resume) the existing one to append to, reading the
 * best test accuracy it holds. Writes model.yaml and run.json (appending the invocation to an
 * existing run.json when resuming). */
int spk_runlog_open(spk_runlog *rl, const char *dir, const spk_model *m, const spk_run_info *ri,
                    int every, int batch, spk_error *err);
void spk_runlog_close(spk_runlog *rl);
/* A batch line when the progress reaches a multiple of `every` batches. */
void spk_runlog_batch(spk_runlog *rl, const spk_progress *p, double lr);
/* The epoch line (figures of the epoch, spike rates of the last test batch's forward) and, when
 * the test accuracy is the best yet, DIR/best.safetensors. */
int spk_runlog_epoch(spk_runlog *rl, spk_session *s, int epoch, int epochs,
                     const spk_batch_stats *train, const spk_batch_stats *test,
                     double samples_per_s, spk_error *err);
/* DIR/confusion.json from a probe: {"weights", "samples", "accuracy", "classes",
 * "confusion": rows by true class, "per_class_accuracy"}. */
int spk_runlog_write_confusion(const char *dir, const char *weights, const spk_probe *p,
                               spk_error *err);
/* One evaluation pass on `test` (spk_probe_run), then confusion.json and the pictures (plot.h)
 * in dir; weights names the checkpoint the session holds, for confusion.json. */
int spk_runlog_pictures(const char *dir, spk_session *s, spk_loader *test, int T, const char *title,
                        const char *weights, spk_error *err);
/* s as a JSON string: jansson escapes it and takes UTF-8 only, so a byte that is not part of a
 * valid sequence (a Latin-1 folder name) becomes U+FFFD and the JSON still parses. NULL when
 * out of memory. */
json_t *spk_json_text(const char *s);
/* The confusion matrix and per-class accuracy as JSON values (eval's result line uses them). */
json_t *spk_probe_confusion_json(const spk_probe *p);
json_t *spk_probe_class_accuracy_json(const spk_probe *p);

#endif
