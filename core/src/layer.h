/* spikecl internal — one layer instantiated on a backend outside a model: the harness the tests
 * use to run a plugin's forward and backward directly, and the building block of the graph. */
#ifndef SPK_LAYER_INTERNAL_H
#define SPK_LAYER_INTERNAL_H

#include "spikecl/spikecl.h"

typedef struct spk_layer_inst {
    spk_layer layer; /* type, params, shapes, weights, state */
    spk_backend *be;
    int T, B;
    spk_tensor in[SPK_MAX_INPUTS]; /* owned inputs (harness) */
    spk_tensor out;
    spk_tensor grad_out;
    spk_tensor grad_in[SPK_MAX_INPUTS];
    spk_tensor labels, loss; /* for loss layers: [B] */
    spk_program *core;       /* the host's kernels (reduce_grad) */
    spk_tensor ids;          /* [B] sample ids, 0..B-1 unless a test sets them */
    spk_exec x;              /* wired to the tensors above */
    spk_error err;
} spk_layer_inst;

/* Creates the layer: runs type->init on the given input shapes, builds the type's kernels on be,
 * allocates and initialises weights (Philox keyed by seed and layer index), state, the output,
 * the inputs and all gradients for T steps and batch B. params is borrowed (must outlive). */
int spk_layer_inst_new(const spk_layer_type *type, const spk_params *params, int n_in,
                       const spk_shape *in, int T, int B, spk_backend *be, uint32_t seed,
                       spk_layer_inst **out, spk_error *err);
void spk_layer_inst_free(spk_layer_inst *li);
int spk_layer_inst_forward(spk_layer_inst *li, int training, spk_error *err);
/* Zeroes weight grads, then runs backward with li->grad_out. */
int spk_layer_inst_backward(spk_layer_inst *li, spk_error *err);

/* Number of floats in a tensor of per-sample shape s at T, B (respects s->time). */
size_t spk_shape_numel(const spk_shape *s, int T, int B);

/* Host-side tensor helpers (upload/download whole tensors). */
int spk_tensor_alloc(spk_backend *be, spk_tensor *t, const spk_shape *s, int T, int B,
                     spk_error *err);
void spk_tensor_release(spk_backend *be, spk_tensor *t);
int spk_tensor_upload(spk_backend *be, spk_tensor *t, const float *src, spk_error *err);
int spk_tensor_download(spk_backend *be, const spk_tensor *t, float *dst, spk_error *err);

/* Test knob for out-of-bounds writes: when > 0, spk_tensor_alloc allocates this many extra
 * floats after each tensor and fills them with SPK_TENSOR_GUARD_VALUE. Set it before anything
 * is allocated and leave it unchanged while those tensors live: the check reads the pad that
 * the allocation made. 0 (the default) costs nothing. */
extern int spk_tensor_guard_floats;
#define SPK_TENSOR_GUARD_VALUE 1234.5f
/* Downloads a tensor's pad; fails (SPK_ERR_INVALID) naming how many of its floats were
 * overwritten. SPK_OK when the knob is 0 or the tensor has no buffer. */
int spk_tensor_guard_check(spk_backend *be, const spk_tensor *t, spk_error *err);

/* Shared by the graph and the harness: runs type->init (errors get "file:line:col: layer 'name'
 * (type): " in front), then allocates and initialises weights, their gradients and state. */
int spk_layer_setup(spk_layer *l, const spk_layer_type *type, const spk_params *params,
                    const char *name, int index, const char *file, int line, int col, int n_in,
                    const spk_shape *in, int T, spk_error *err);
/* skip_state: a state the caller places itself (-1: none) */
int spk_layer_alloc(spk_layer *l, spk_backend *be, int B, uint32_t seed, int skip_state,
                    spk_error *err);
/* Releases what setup and alloc made (tensors, priv through type->destroy). */
void spk_layer_release(spk_layer *l, spk_backend *be);
/* Draws a weight's initial values (Philox keyed by seed, layer index and weight index). */
void spk_weight_init_values(const spk_weight *w, int layer_index, int weight_index, uint32_t seed,
                            float *dst, size_t n);

#endif
