/* spikecl CLI — one evaluation pass that keeps what the pictures and `eval --predictions` need:
 * every test sample's label, prediction and readout (spike counts), the confusion matrix, and
 * the activity of a bounded number of samples (the first test sample of each class) through
 * the spiking layers. */
#ifndef SPK_TOOLS_PROBE_H
#define SPK_TOOLS_PROBE_H

#include <stdio.h>

#include "spikecl/spikecl.h"

#define SPK_PROBE_NAME 64

typedef struct spk_probe_layer {
    char name[SPK_PROBE_NAME];
    int features;  /* neurons */
    float *spikes; /* [T, features] of sample 0 (the first test sample) */
    double rate;   /* mean output per neuron and step over the first batch */
} spk_probe_layer;

typedef struct spk_probe {
    int classes, T, n; /* n: samples evaluated */
    double loss_sum;
    int correct;
    long *confusion; /* [classes][classes]: rows true class, columns prediction */
    /* per sample, in loader order */
    int *index, *label, *pred;
    float *counts; /* [n][classes]: the readout */
    /* the spiking (neuron) layers, in file order; the output layer is the last */
    int n_layers;
    spk_probe_layer *layers;
    /* one recorded sample per class (the first of each class in the test set) */
    int *rec_index;      /* [classes], -1 when the class never occurs */
    int *rec_pred;       /* [classes] */
    float *rec_out;      /* [classes][T][out features]: the output layer's spikes */
    int out_features;    /* of the output layer (0 when the model has no neuron layer) */
    float *mem;          /* [T][out features] membrane of the output layer for sample 0 */
    double threshold;    /* of the output layer, NAN when it has none */
    int sample0, label0; /* index and label of sample 0 */
} spk_probe;

/* Evaluates the session on the loader and fills *p (free with spk_probe_free); T is the
 * model's time_steps. */
int spk_probe_run(spk_session *s, spk_loader *ld, int T, spk_probe *p, spk_error *err);
void spk_probe_free(spk_probe *p);
/* index,label,prediction,count_0..count_{K-1}: one line per sample. */
int spk_probe_write_csv(const spk_probe *p, FILE *f);
/* Mean output of each neuron layer over the steps and samples of the last forward (the spike
 * rate): names[i] and rates[i] for i < *n (at most cap). */
int spk_probe_rates(spk_session *s, char names[][SPK_PROBE_NAME], double *rates, int cap, int *n,
                    spk_error *err);

#endif
