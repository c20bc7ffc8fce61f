/* spikecl internal — the session's struct and the calls between the files that implement it.
 * Who calls whom (no loops; scripts/core-deps.sh checks it on the object files):
 *
 *   session.c     spk_session_new/free, the input     -> graph.c, memplan.c, optim.c
 *   graph.c       nodes, inputs, programs             -> layer.c, registry.c, core_kernels.c
 *   memplan.c     index limits, every tensor          -> layer.c
 *   exec.c        upload, forward, backward, steps    -> optim.c, metrics.c, layer.c
 *   optim.c       update rules, clipping, its state   -> layer.c
 *   metrics.c     loss and accuracy readback, times
 *   weights.c     learnable tensors by name           -> layer.c
 *   checkpoint.c  weights and optimizer state files   -> weights.c, layer.c, safetensors.c,
 *                                                        optim.c
 *   inspect.c     a node's output, state, parameters  -> params.c
 * (error.c left out: everyone calls it). train.c sits above them, on the public calls.
 */
#ifndef SPK_SESSION_INTERNAL_H
#define SPK_SESSION_INTERNAL_H

#include <stdint.h>

#include "layer.h"
#include "model.h"

/* values a clipping partial sum covers (spk_sumsq) */
#define SPK_CLIP_CHUNK 4096
/* partials summed per item at each level of the clipping norm's tree (spk_sum_groups) */
#define SPK_CLIP_GROUP 64

typedef struct spk_node {
    spk_layer layer;
    const spk_layer_def *def; /* for building only: the step reads the copies below */
    int n_in;
    int in_node[SPK_MAX_INPUTS]; /* 0 is the network input */
    spk_tensor out;
    spk_tensor grad;                         /* d loss / d out, when trainable_upstream */
    spk_tensor edge_grad[SPK_MAX_INPUTS];    /* own grad_in buffers when the producer fans out */
    spk_tensor rate_part;                    /* [B, N] per-neuron terms of rate_reg's loss */
    float rate_l1, rate_target, rate_weight; /* the definition's rate_reg (0: off) */
    int trainable_upstream;                  /* this node or one before it has trainable weights */
    int out_reused; /* memplan: out's buffer holds gradients during backward (not after it) */
    int out_over;   /* memplan: the node whose forward writes its output over this one (0: none) */
    /* SPK_SESSION_FUSE_READOUT (memplan.c): this neuron writes the readout node count_into's
     * output and reads its gradient, and that readout's forward and backward do not run */
    int count_into;
    int absorbed;   /* the readout of such a neuron */
    int state_over; /* 1 + the state kept in its input's buffer (SPK_MEM_STATE_OVER_INPUT), 0 */
    int n_consumers;
    double fwd_s, bwd_s; /* profiling */
} spk_node;

typedef struct spk_opt_slot {
    spk_weight *w;
    spk_tensor m, v; /* Adam moments, or SGD's momentum buffer in m */
    int chunk_slot;  /* first slot in the clipping partial sums */
} spk_opt_slot;

typedef struct spk_prog_entry {
    const spk_layer_type *type;
    spk_program *prog;
} spk_prog_entry;

struct spk_session {
    /* the model is borrowed for what the layers keep (names, parameters, the file name in
     * messages); what a step reads is copied here at creation */
    const spk_model *m;
    unsigned flags;         /* SPK_SESSION_* */
    spk_optim_config optim; /* the model's train.optimizer */
    uint32_t seed_key;      /* spk_seed_key of the model's seed */
    float input_scale;
    spk_shape in_shape; /* per sample, no time axis */
    spk_backend *be;
    int batch, T;
    int n_nodes; /* input + layers + readout + loss */
    spk_node *nodes;
    int readout, loss; /* node indices */
    int classes;
    int in_size;
    spk_tensor input, labels, loss_t, ids;
    /* The second input slot (inputs, labels, ids), allocated when the backend uploads
     * asynchronously: a batch is staged into it while the step on the first runs, and submit
     * swaps the two. NULL buffers: one slot, blocking uploads. */
    spk_buffer *next_buf[3];
    int staged;       /* samples of the batch staged for the next step; 0 when none */
    int slot_busy[2]; /* a submitted step reads slot 0 (the current one) or 1, unfinished */
    int n_progs;
    spk_prog_entry progs[32];
    spk_program *core;
    int n_opt;
    spk_opt_slot *opt;
    int moments;               /* the slots' m and v are allocated (spk_optim_moments) */
    spk_tensor scale, partial; /* gradient clipping: the scale factor and partial sums */
    int n_chunks;
    long step;
    int epoch;
    int smooth;
    int profile;
    int pending; /* samples of a submitted, unfinished training batch */
    int last_n;  /* samples of the last uploaded batch (the layout of every output) */
    double opt_s;
    float lr; /* current learning rate (the schedule's value) */
    uint32_t batch_counter;
    float *h_labels, *h_loss, *h_readout;
    float *h_labels_next; /* the staged batch's labels; h_labels are the current step's */
    float *h_ids;         /* sample ids of the next batch, as floats */
    int ids_set;          /* h_ids holds ids given through spk_session_set_sample_ids */
    int ro_steps;         /* T when the readout keeps the time axis (a per-step loss), else 1 */
    float *h_ro_steps;    /* [T, B, classes] staging for such a readout */
    spk_error xerr;
    /* memplan: the buffers behind every node's out and grad (several tensors may share one) */
    spk_tensor *pool;
    int n_pool;
    int grads_in_outs; /* a backward ran after the last forward: reused outputs hold gradients */
};

/* graph.c: the nodes from the model's layers, readout and loss (inputs, shapes through each
 * type's init, programs, which nodes need gradients); spk_graph_release undoes it. */
int spk_graph_build(spk_session *s, spk_error *err);
void spk_graph_release(spk_session *s);

/* memplan.c: refuses tensors past INT_MAX elements, then allocates every tensor of the graph
 * and the host staging buffers; spk_memplan_release frees them. Node outputs and gradients
 * that are never needed at the same time share buffers (the layer types' SPK_MEM_* promises),
 * unless the environment sets SPIKECL_MEMPLAN=plain. */
int spk_memplan_check(const spk_session *s, spk_error *err);
int spk_memplan_alloc(spk_session *s, spk_error *err);
void spk_memplan_release(spk_session *s);

/* optim.c: the optimizer's state for every trainable weight, and one update of all of them */
int spk_optim_alloc(spk_session *s, spk_error *err);
int spk_optim_moments(spk_session *s, spk_error *err);
void spk_optim_release(spk_session *s);
int spk_optim_step(spk_session *s, spk_error *err);

/* metrics.c: one readback per batch, accumulated into st (may be NULL) */
int spk_metrics_collect(spk_session *s, int n, spk_batch_stats *st, spk_error *err);

/* weights.c: the i-th learnable tensor in model order, and its layer */
spk_weight *spk_session_weight_at(const spk_session *s, int idx, const spk_layer **owner);

/* A kernel of the core's own program (core/kernels/core.cl). */
static inline int spk_core_launch(const spk_session *s, const char *k, size_t items, int nargs,
                                  const spk_karg *args, spk_error *err)
{
    return s->be->ops->launch(s->be, s->core, k, items, nargs, args, err);
}
#define SPK_CORE(s, k, items, err, ...)                                                            \
    spk_core_launch((s), (k), (items),                                                             \
                    (int)(sizeof((spk_karg[]){__VA_ARGS__}) / sizeof(spk_karg)),                   \
                    (spk_karg[]){__VA_ARGS__}, (err))

#endif
