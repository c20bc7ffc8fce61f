/* spikecl internal — the parsed form of a model file, shared by the YAML loader and the graph. */
#ifndef SPK_MODEL_INTERNAL_H
#define SPK_MODEL_INTERNAL_H

#include "params.h" /* spk_params_*: tests and the session reach them through here */
#include "spikecl/spikecl.h"

typedef struct spk_layer_def {
    char *name;
    const spk_layer_type *type;
    spk_params params;
    int n_from;
    int from[SPK_MAX_INPUTS]; /* indices into the model's layers, resolved by the loader;
                               * n_from = 0: the previous layer */
    int line, col;            /* of the layer's mapping */
    /* rate_reg: {l1: x} and/or {target: r, weight: w}, on neuron layers; the core adds the
     * term to the loss and its gradient to the layer's output gradient (0: off) */
    float rate_l1, rate_target, rate_weight;
} spk_layer_def;

struct spk_model {
    char *path; /* as given, for messages */
    char *dir;  /* folder of the file, for relative paths */
    char *name;
    int in_ndim;
    int in_dims[SPK_MAX_DIMS]; /* input.shape, e.g. [1, 28, 28] */
    float input_scale;         /* input.scale */
    int time_steps;
    uint64_t seed;
    int n_layers;
    spk_layer_def *layers; /* the `layers` list, in file order */
    spk_layer_def readout; /* `readout:`; type is NULL when absent */
    spk_layer_def loss;    /* `loss:`; type is NULL when absent */
    spk_train_config train;
    int n_plugins;
    char **plugins; /* `plugins:` paths, resolved against dir */
};

/* Frees what a layer definition owns (not the struct itself). */
void spk_layer_def_clear(spk_layer_def *d);

#endif
