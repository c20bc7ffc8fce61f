/* spikecl — spiking neural networks in C, on the CPU and on OpenCL devices.
 * The public API: load a YAML model, open a device, make a session, train and evaluate. */
#ifndef SPIKECL_H
#define SPIKECL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "spikecl/backend.h"
#include "spikecl/data.h"
#include "spikecl/error.h"
#include "spikecl/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPIKECL_VERSION "0.1.0"

/* ---- registry of layer types ---- */

/* The process-wide registry, holding the built-in layers (created on first use). */
SPK_API spk_registry *spk_registry_default(void);
SPK_API const spk_layer_type *spk_registry_find(const spk_registry *reg, const char *name);
SPK_API int spk_registry_count(const spk_registry *reg);
SPK_API const spk_layer_type *spk_registry_get(const spk_registry *reg, int i, const char **source);
/* The host functions handed to plugins. */
SPK_API const spk_host_api *spk_host_api_get(void);
/* Where a type came from: "built-in" or the plugin's path; NULL when the name is unknown. */
SPK_API const char *spk_registry_source(const spk_registry *reg, const char *type_name);

/* ---- plugins (shared libraries) ---- */

/* Loads a plugin shared library into the default registry: dlopen, then its spk_plugin_init
 * registers its types. Loading the same file again is a no-op; a library stays loaded for the
 * life of the process. Errors name the file: SPK_ERR_NOTFOUND when it does not exist,
 * SPK_ERR_PLUGIN when it is not a loadable library, has no spk_plugin_init, was built for
 * another ABI, registers a name already taken or a bad parameter table, or its init fails. If
 * the init fails, the types it registered before failing are removed again. Not thread-safe. */
SPK_API int spk_plugin_load(const char *path, spk_error *err);
/* Loads every *.so in each folder of $SPIKECL_PLUGIN_PATH (colon-separated; an entry may also
 * name a library file), in name order. Keeps going after a failure and reports the first one
 * ("SPIKECL_PLUGIN_PATH: ..."). Unset or empty: nothing to do. */
SPK_API int spk_plugin_load_path_env(spk_error *err);
/* spk_plugin_load_path_env once per process, which is what every model load does first: the
 * first call scans $SPIKECL_PLUGIN_PATH, later calls return its status and message again.
 * A library on the path that fails (not ELF, truncated, no entry point, ...) is skipped: the
 * model load goes on without its types, and fails only if a layer names one of them. A
 * library a model lists under `plugins:` is a hard error instead. Call it to report the
 * skipped ones (the CLI prints them as a warning for every command). */
SPK_API int spk_plugin_load_path_env_once(spk_error *err);

/* ---- models (parsed YAML) ---- */

typedef enum spk_optim_kind { SPK_OPTIM_SGD, SPK_OPTIM_ADAM, SPK_OPTIM_ADAMW } spk_optim_kind;

typedef struct spk_optim_config {
    int kind; /* spk_optim_kind */
    float lr;
    float momentum;     /* SGD */
    int nesterov;       /* SGD */
    float beta1, beta2; /* Adam/AdamW */
    float eps;
    float weight_decay; /* SGD and Adam: L2 added to the gradient; AdamW: decoupled */
    float clip_norm;    /* > 0: scale gradients so that their global L2 norm is at most this */
    int schedule;       /* spk_lr_schedule */
    float min_lr;       /* cosine: the rate at the end of the last epoch */
} spk_optim_config;

typedef enum spk_lr_schedule {
    SPK_LR_CONSTANT,
    SPK_LR_COSINE, /* lr(p) = min_lr + (lr - min_lr) (1 + cos(pi p)) / 2, p = progress in [0, 1] */
} spk_lr_schedule;

typedef struct spk_train_config {
    char *train_images, *train_labels; /* absolute or relative to the working directory */
    char *test_images, *test_labels;
    int batch;
    int epochs;
    spk_optim_config optim;
    /* data: {format: nmnist, path: DIR, <frame keys>}: train_images and test_images hold the
     * folders (the same one for both when only data: names it), labels are NULL */
    int data_format; /* spk_data_format */
    spk_frames frames;
} spk_train_config;

typedef enum spk_data_format { SPK_DATA_IDX, SPK_DATA_NMNIST } spk_data_format;

typedef struct spk_model spk_model; /* see core/src/model.h */

/* Parses and validates a model file. Errors carry "file:line:col: ..." and the layer's name. */
SPK_API int spk_model_load(const char *path, spk_model **out, spk_error *err);
/* Same, from text; `name` stands for the file name in messages and relative paths resolve
 * against the working directory. */
SPK_API int spk_model_load_string(const char *yaml, const char *name, spk_model **out,
                                  spk_error *err);
SPK_API void spk_model_free(spk_model *m);
SPK_API const char *spk_model_name(const spk_model *m);
SPK_API int spk_model_time_steps(const spk_model *m);
SPK_API spk_train_config *spk_model_train_config(spk_model *m);
SPK_API uint64_t spk_model_seed(const spk_model *m);
SPK_API void spk_model_set_seed(spk_model *m, uint64_t seed);

/* The model as YAML with every default written out (layer parameters, input, train: and its
 * optimizer), data paths absolute as loaded: a file spk_model_load reads back into the same
 * model. *out is malloc'ed. */
SPK_API int spk_model_to_yaml(const spk_model *m, char **out, spk_error *err);

/* ---- sessions: a model placed on a backend for a batch size ---- */

typedef struct spk_session spk_session;

typedef struct spk_batch_stats {
    double loss_sum; /* sum of per-sample losses */
    int correct;     /* samples whose argmax matched the label */
    int n;           /* samples */
} spk_batch_stats;

/* The session copies the settings its steps read (train.optimizer, the seed, each layer's
 * rate_reg, the input's shape and scale) when it is created: editing the model afterwards does
 * not change it. The model must still outlive it (the layers keep its parameters and path). */
SPK_API int spk_session_new(spk_model *m, spk_backend *be, int batch, spk_session **out,
                            spk_error *err);
/* Options for spk_session_new_flags. FUSE_READOUT: where the last neuron layer feeds a
 * readout.spike_count (and its type allows, SPK_MEM_COUNT_OUT), the neuron sums its spikes into
 * the readout as it goes and reads the readout's gradient, so its [T, B, n] spikes are never
 * stored (and its membrane trace may take its input's place): the same numbers in less memory,
 * for training and evaluation; spk_session_node_output then refuses that layer. */
#define SPK_SESSION_FUSE_READOUT 1u
SPK_API int spk_session_new_flags(spk_model *m, spk_backend *be, int batch, unsigned flags,
                                  spk_session **out, spk_error *err);
SPK_API void spk_session_free(spk_session *s);

/* One optimisation step on n <= batch samples (x: n * input floats, already scaled). */
SPK_API int spk_session_train_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                                    spk_batch_stats *st, spk_error *err);
/* The same step in two halves, so that the host can prepare the next batch while a device
 * computes: submit enqueues the upload, forward, backward and update; finish reads back the
 * loss and readout (waiting for the device) and accumulates the stats. */
SPK_API int spk_session_train_submit(spk_session *s, const float *x, const int32_t *labels, int n,
                                     spk_error *err);
SPK_API int spk_session_train_finish(spk_session *s, spk_batch_stats *st, spk_error *err);
/* The next batch's upload started while the submitted step still runs, for a pipeline of
 *   stage(k); submit_staged; [stage(k+1); finish; submit_staged; ...]
 * On a backend with asynchronous uploads (OpenCL) the batch is copied into pinned memory and
 * sent to a second input buffer while the device computes the step before; elsewhere it is
 * uploaded at once, after the commands already queued. Either way x and labels may be reused on
 * return. The sample ids set by spk_session_set_sample_ids go with the staged batch; without
 * them the batch is numbered as the next batch the session runs. A later stage, submit, eval or
 * train_batch replaces the staged batch. */
SPK_API int spk_session_stage_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                                    spk_error *err);
/* spk_session_train_submit for the batch staged last; SPK_ERR_INVALID when none is staged or a
 * submitted batch is unfinished. */
SPK_API int spk_session_train_submit_staged(spk_session *s, spk_error *err);
/* Forward only; accumulates loss and accuracy. */
SPK_API int spk_session_eval_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                                   spk_batch_stats *st, spk_error *err);
SPK_API void spk_session_set_epoch(spk_session *s, int epoch);
/* The index of the next batch in the epoch (set_epoch makes it 0), for resuming mid-epoch. */
SPK_API void spk_session_set_batch_index(spk_session *s, int batch);
/* The data-set indices of the samples of the next batch (train or eval), which key per-sample
 * random streams. Without them a batch's samples are numbered by position in the session's
 * sequence of batches. */
SPK_API int spk_session_set_sample_ids(spk_session *s, const uint32_t *ids, int n, spk_error *err);
/* The learning rate of the next steps (the training loop applies the schedule through it). */
SPK_API void spk_session_set_lr(spk_session *s, float lr);
/* The learning rate the last step used (the schedule's value). */
SPK_API float spk_session_lr(const spk_session *s);
/* The session's copy of the optimizer settings (lr is the configured rate, not the schedule's). */
SPK_API const spk_optim_config *spk_session_optim(const spk_session *s);

/* The readout [n, classes] of the last forward, downloaded (classes floats per sample). */
SPK_API int spk_session_readout(spk_session *s, float *out, int n, spk_error *err);
SPK_API int spk_session_classes(const spk_session *s);
SPK_API int spk_session_input_size(const spk_session *s); /* floats per sample */
SPK_API float spk_session_input_scale(const spk_session *s);
/* SPK_ERR_SHAPE (both shapes in the message) unless the data set's samples have the model's
 * input shape: [C, H, W] for a 3-d input, [H, W] with C = 1 for a 2-d one, C*H*W values for a
 * flat one. spk_train_epoch and spk_evaluate check their loader's set with it. */
SPK_API int spk_session_check_data(const spk_session *s, const spk_dataset *ds, spk_error *err);

/* Learnable tensors by name, "layer.weight" (for tests and tools). */
SPK_API int spk_session_weight_count(const spk_session *s);
SPK_API const char *spk_session_weight_name(const spk_session *s, int i);
SPK_API size_t spk_session_weight_numel(const spk_session *s, int i);
SPK_API int spk_session_weight_get(spk_session *s, int i, float *dst, spk_error *err);
SPK_API int spk_session_weight_set(spk_session *s, int i, const float *src, spk_error *err);
SPK_API int spk_session_grad_get(spk_session *s, int i, float *dst, spk_error *err);

/* Forward and backward without an optimizer step (gradients land in the weights' grad). */
SPK_API int spk_session_forward_backward(spk_session *s, const float *x, const int32_t *labels,
                                         int n, spk_batch_stats *st, spk_error *err);

/* Per-layer timing for benchmarks: with profiling on, the session synchronises the backend after
 * every layer (which costs a little) and accumulates forward and backward seconds per layer.
 * Nodes are the layers in file order, then the readout, then the loss. */
SPK_API void spk_session_set_profile(spk_session *s, int on);
SPK_API int spk_session_node_count(const spk_session *s);
SPK_API const char *spk_session_node_name(const spk_session *s, int i);
SPK_API void spk_session_node_times(const spk_session *s, int i, double *forward_s,
                                    double *backward_s);
/* Seconds spent in the optimizer update (profiling on). */
SPK_API double spk_session_optimizer_time(const spk_session *s);

/* What the session holds on its backend, in bytes, by kind (for benchmarks and tuning). */
typedef struct spk_memory_report {
    uint64_t weights;     /* every learnable tensor's values */
    uint64_t gradients;   /* their gradients */
    uint64_t optimizer;   /* the optimizer's moments: 0 until the first update */
    uint64_t activations; /* the buffers that outputs and their gradients share in turn */
    uint64_t state;       /* the layers' saved state (traces, scratch) and edge gradients */
    int buffers;          /* how many activation buffers */
    int fused;            /* the node (as spk_session_node_name counts) whose output its
                           * readout's sums replace (SPK_SESSION_FUSE_READOUT), else -1 */
} spk_memory_report;
SPK_API void spk_session_memory(const spk_session *s, spk_memory_report *r);

/* Looking inside the last forward pass (for pictures; not on the training path). Node i counts
 * as spk_session_node_name does. info: the layer's kind (spk_layer_kind), its output's steps
 * (T, or 1 when it has no time axis or is constant in time), floats per sample and step, and n,
 * the samples of the last batch; SPK_ERR_INVALID for a bad index (any pointer may be NULL). */
SPK_API int spk_session_node_info(const spk_session *s, int i, int *kind, int *steps, int *features,
                                  int *n);
/* Downloads node i's output of the last forward, [steps, n, features] as info gives them; cap
 * is dst's size in floats. After a training step some outputs' memory holds gradients (the
 * session shares buffers): those are refused (SPK_ERR_INVALID) until the next forward, eval or
 * training. */
SPK_API int spk_session_node_output(spk_session *s, int i, float *dst, size_t cap, spk_error *err);
/* The mean of node i's last output over its steps, samples and features (a neuron layer's
 * spike rate), also for a neuron that a SPK_SESSION_FUSE_READOUT session sums into its readout
 * (from those sums); the same refusals as spk_session_node_output otherwise. */
SPK_API int spk_session_node_mean(spk_session *s, int i, double *mean, spk_error *err);
/* The same for a state buffer the layer keeps, by name ("mem": a neuron layer's membrane over
 * the steps, [T, n, features]); *features gets its floats per sample and step.
 * SPK_ERR_NOTFOUND when the layer keeps no such state. */
SPK_API int spk_session_node_state(spk_session *s, int i, const char *name, float *dst, size_t cap,
                                   int *features, spk_error *err);
/* A numeric parameter of node i's layer as the model set it ("threshold"; an init value gives
 * its constant, or the middle of its range); SPK_ERR_NOTFOUND when the type has none. */
SPK_API int spk_session_node_param(const spk_session *s, int i, const char *name, double *value);

/* Test mode: neurons use the smooth function whose derivative is their surrogate instead of the
 * spike step, so finite differences can check the whole backward pass. */
SPK_API void spk_session_set_smooth(spk_session *s, int on);

/* SPK_ERR_NUMERIC naming the first layer (in file order) whose weights or gradients hold a NaN
 * or an infinity; otherwise SPK_OK with the largest |weight| and the name ("layer.weight") of
 * its tensor (either pointer may be NULL). Downloads every weight: call it between epochs. */
SPK_API int spk_session_check_weights(spk_session *s, double *max_abs, char *max_name, size_t cap,
                                      spk_error *err);

/* Checkpoints: safetensors, written atomically. spk_session_save refuses (SPK_ERR_NUMERIC) to
 * write weights that are not finite; spk_session_load refuses to read them (SPK_ERR_INVALID). */
SPK_API int spk_session_save(spk_session *s, const char *path, spk_error *err);
SPK_API int spk_session_load(spk_session *s, const char *path, spk_error *err);
/* The optimizer's state (moments, step count) and the number of finished epochs, in a file of
 * its own next to the weights: with both, a run resumes exactly where it stopped. */
SPK_API int spk_session_save_state(spk_session *s, const char *path, int epochs_done,
                                   spk_error *err);
SPK_API int spk_session_load_state(spk_session *s, const char *path, int *epochs_done,
                                   spk_error *err);
/* The same with a position inside the next epoch: batches_done batches of epoch epochs_done
 * (counting from 0) were trained, so a run stopped mid-epoch resumes with the next batch. */
SPK_API int spk_session_save_state_at(spk_session *s, const char *path, int epochs_done,
                                      int batches_done, spk_error *err);
SPK_API int spk_session_load_state_at(spk_session *s, const char *path, int *epochs_done,
                                      int *batches_done, spk_error *err);

/* ---- training loops (what the CLI runs) ---- */

typedef struct spk_progress {
    int epoch, epochs;
    int done, total; /* samples in this epoch */
    double loss;     /* running mean */
    double accuracy; /* running train accuracy */
    double samples_per_s;
    double eta_s;
} spk_progress;

typedef void (*spk_progress_fn)(const spk_progress *p, void *user);

SPK_API int spk_train_epoch(spk_session *s, spk_loader *ld, int epoch, int epochs,
                            spk_progress_fn cb, void *user, spk_batch_stats *st, spk_error *err);
/* Part of an epoch: skips its first `first_batch` batches (which a stopped run trained), and
 * when *stop becomes non-zero (a signal handler sets it) returns SPK_OK after finishing the
 * batch in progress. *batches_done (may be NULL) gets the batches of the epoch trained so far,
 * first_batch included: spk_loader_batches(ld) when the epoch is complete. stop may be NULL. */
SPK_API int spk_train_epoch_part(spk_session *s, spk_loader *ld, int epoch, int epochs,
                                 int first_batch, const volatile sig_atomic_t *stop,
                                 int *batches_done, spk_progress_fn cb, void *user,
                                 spk_batch_stats *st, spk_error *err);
SPK_API int spk_evaluate(spk_session *s, spk_loader *ld, spk_batch_stats *st, spk_error *err);

#ifdef __cplusplus
}
#endif
#endif
