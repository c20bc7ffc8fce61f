/* spikecl — the layer plugin ABI. Built-in layers and user plugins (shared libraries) describe
 * themselves with the same versioned descriptor and reach the host only through spk_host_api. */
#ifndef SPIKECL_PLUGIN_H
#define SPIKECL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* snprintf, in SPK_PLUGIN_DEFINE */

#include "spikecl/backend.h"
#include "spikecl/error.h"
#include "spikecl/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The plugin ABI's version. The rule: the public structs a plugin shares with the host (the
 * descriptor, the host table, spk_layer, spk_exec and what they contain) only grow at the end,
 * and each release that appends a field bumps the minor; anything else (a removed, reordered or
 * retyped field) bumps the major. A host loads a plugin of its major and a minor <= its own.
 * tests/test_abi.c holds each version's struct sizes and fails when they change unannounced.
 *   1.0  the first release
 *   1.1  host: reduce_grad, set_error, set_weight, set_priv, set_output; exec: core;
 *        descriptor: version. exec.backend keeps its place (1.0 plugins still find the backend
 *        there) but is typed void * since 1.1: the backend is the host's business
 *   1.2  descriptor: memory (SPK_MEM_* promises that let the host reuse activation memory)
 *   1.3  layer: memory; host: set_memory (a layer's own promises, set by its init); later
 *        the flags SPK_MEM_COUNT_OUT, SPK_MEM_STATE_OVER_INPUT and SPK_MEM_SUM_OVER_STEPS (no
 *        struct changed: a host without them ignores them) */
#define SPK_ABI_MAJOR 1
#define SPK_ABI_MINOR 3

#define SPK_MAX_DIMS    4
#define SPK_MAX_INPUTS  4
#define SPK_MAX_WEIGHTS 8
#define SPK_MAX_STATE   8
#define SPK_NAME_MAX    64

typedef enum spk_kind {
    SPK_KIND_ENCODER,
    SPK_KIND_SYNAPSE,
    SPK_KIND_NEURON,
    SPK_KIND_READOUT,
    SPK_KIND_LOSS,
    SPK_KIND_OTHER
} spk_kind;

/* How a tensor relates to time. Activations are [T, B, dims...]; a tensor that is the same at
 * every step (direct encoding, and a linear layer fed by it) is stored once as [B, dims...] and
 * consumers broadcast it over T; readouts produce [B, dims...] with no time axis. */
typedef enum spk_time {
    SPK_TIME_NONE = 0,  /* [B, dims...], not a function of time (readout output) */
    SPK_TIME_STEPS = 1, /* [T, B, dims...] */
    SPK_TIME_CONST = 2, /* [B, dims...], the same value at every step */
} spk_time;

/* Per-sample shape: dims exclude T and B. */
typedef struct spk_shape {
    int ndim;
    int dims[SPK_MAX_DIMS];
    int time; /* spk_time */
} spk_shape;

/* A tensor on a backend: one buffer, float32, contiguous. */
typedef struct spk_tensor {
    spk_buffer *buf;
    size_t numel;
    spk_shape shape;
} spk_tensor;

/* ---- parameters (validated by the YAML loader against the table) ---- */

typedef enum spk_param_type {
    SPK_PARAM_FLOAT,     /* a number; min/max bound it */
    SPK_PARAM_INT,       /* an integer; min/max bound it */
    SPK_PARAM_BOOL,      /* true/false */
    SPK_PARAM_CHOICE,    /* one word of `choices`, "a|b|c" */
    SPK_PARAM_STRING,    /* any scalar text */
    SPK_PARAM_INIT,      /* a number, or {uniform: [lo, hi]} / {normal: [mean, std]} /
                            {constant: v}: how a learnable per-neuron value starts */
    SPK_PARAM_SURROGATE, /* a name, or {type: name, slope: x} / {type: atan, alpha: x} */
} spk_param_type;

typedef struct spk_param_spec {
    const char *name;
    int type;            /* spk_param_type */
    const char *def;     /* default as YAML text; NULL means the key is required */
    double min, max;     /* inclusive range for numbers (min > max: unbounded) */
    const char *choices; /* for SPK_PARAM_CHOICE / SPK_PARAM_SURROGATE: "a|b|c" */
    const char *help;
} spk_param_spec;

typedef enum spk_init_kind {
    SPK_INIT_CONSTANT,
    SPK_INIT_UNIFORM,
    SPK_INIT_NORMAL,
} spk_init_kind;

typedef struct spk_init {
    int kind;   /* spk_init_kind */
    float a, b; /* constant: a; uniform: [a, b); normal: mean a, std b */
} spk_init;

typedef enum spk_surrogate_kind {
    SPK_SG_FAST_SIGMOID = 0, /* d/dx = 1 / (slope*|x| + 1)^2 (snnTorch, Zenke & Ganguli 2018) */
    SPK_SG_ATAN = 1,         /* d/dx = 1 / (pi (1 + (pi/2 alpha x)^2)) * alpha/2 * pi ... */
    SPK_SG_SIGMOID = 2,      /* d/dx = slope * s(slope x) (1 - s(slope x)) */
    SPK_SG_TRIANGLE = 3,     /* d/dx = max(0, 1 - |x|) * slope-scaled */
} spk_surrogate_kind;

typedef struct spk_surrogate {
    int kind;    /* spk_surrogate_kind */
    float slope; /* fast_sigmoid/sigmoid slope, atan alpha, triangle width scale */
} spk_surrogate;

typedef struct spk_param_value {
    int is_set;       /* 1 when the YAML gave it, 0 when the default was used */
    double num;       /* FLOAT, INT, BOOL (0/1), CHOICE (index into choices) */
    char *str;        /* STRING, CHOICE (the word) */
    spk_init init;    /* INIT */
    spk_surrogate sg; /* SURROGATE */
    int line, col;    /* where it was written (1-based), 0 for defaults */
} spk_param_value;

typedef struct spk_params {
    const spk_param_spec *spec; /* the type's table */
    int n;
    spk_param_value *v; /* n values, in table order */
} spk_params;

/* ---- layers ---- */

typedef struct spk_layer_type spk_layer_type;
typedef struct spk_host_api spk_host_api;
typedef struct spk_registry spk_registry;
typedef struct spk_layer spk_layer;
typedef struct spk_exec spk_exec;

/* Settings of a weight, for host->set_weight (since 1.1). */
#define SPK_WEIGHT_FROZEN 1u /* not trained (a constant kept in the checkpoint) */
#define SPK_WEIGHT_DECAY  2u /* weight decay applies (weights, not biases or neuron constants) */
#define SPK_WEIGHT_CLAMP  4u /* the optimizer clamps values to [lo, hi] after each step */

/* A learnable tensor a layer declares at init. Plugins read it; since 1.1 they change its
 * settings only through host->set_weight. */
typedef struct spk_weight {
    char name[SPK_NAME_MAX];
    spk_shape shape; /* dims only */
    spk_init init;
    int clamp; /* 1: the optimizer clamps values to [lo, hi] after each step */
    float lo, hi;
    int decay;        /* 1: weight decay applies (weights, not biases or neuron constants) */
    int frozen;       /* 1: not trained (a constant kept in the checkpoint) */
    spk_tensor value; /* allocated by the host */
    spk_tensor grad;  /* same shape; backward accumulates into it (+=) */
} spk_weight;

/* A buffer a layer keeps from forward for backward (membranes, spikes). */
typedef struct spk_state {
    char name[SPK_NAME_MAX];
    int per_sample; /* floats per sample and step */
    int time;       /* SPK_TIME_STEPS: [T, B, per_sample]; SPK_TIME_NONE: [B, per_sample] */
    spk_tensor t;   /* allocated by the host */
} spk_state;

struct spk_layer {
    const spk_layer_type *type;
    const spk_host_api *host;
    char name[SPK_NAME_MAX];
    int index;        /* position in the graph */
    const char *file; /* model file, for messages */
    int line, col;    /* where the layer is written */
    int n_in;
    spk_shape in[SPK_MAX_INPUTS];
    spk_shape out; /* set by init through host->set_output */
    const spk_params *params;
    int time_steps; /* T of the model */
    int n_weights;
    spk_weight weights[SPK_MAX_WEIGHTS];
    int n_state;
    spk_state state[SPK_MAX_STATE];
    void *priv;           /* the plugin's own data (host->set_priv); freed by type->destroy */
    spk_program *program; /* the type's kernels on this backend (set by the host) */
    /* ---- since 1.3 ---- */
    /* the SPK_MEM_* promises the session plans this layer's tensors with: the type's, unless
     * init changed them through host->set_memory (read-only for plugins) */
    unsigned memory;
};

/* What a forward or backward call sees. Activations: SPK_TIME_STEPS tensors are [T, B, n],
 * SPK_TIME_CONST and SPK_TIME_NONE tensors [B, n]. Backward overwrites grad_in[i] (NULL when the
 * input needs no gradient) and accumulates into the weights' grad tensors. */
struct spk_exec {
    int T, B;
    int training;
    int smooth; /* test mode: neurons replace the spike step by the smooth function whose
                   derivative is the surrogate, so finite differences can check backward */
    uint32_t seed;
    uint32_t epoch;
    uint32_t batch; /* batch counter within the epoch: with the seed, keys per-batch RNG */
    int n_in;
    const spk_tensor *in[SPK_MAX_INPUTS];
    spk_tensor *out;
    const spk_tensor *grad_out;
    spk_tensor *grad_in[SPK_MAX_INPUTS];
    const spk_tensor *labels; /* [B] class indices stored as floats (losses read them) */
    spk_tensor *loss;         /* [B] per-sample loss, written by the loss layer's forward */
    void *backend; /* host-private since 1.1: plugins reach the backend through host calls */
    spk_error *err;
    /* [B] each sample's index in its data set, as a float (exact below 2^24): per-sample RNG
     * streams (Poisson spikes) key on it, so a sample draws the same spikes whatever batch it
     * lands in, on every backend */
    const spk_tensor *sample_ids;
    void *core; /* since 1.1, host-private: the host's own kernels, behind reduce_grad */
};

struct spk_layer_type {
    uint16_t abi_major, abi_minor; /* SPK_ABI_MAJOR/MINOR as built */
    uint32_t struct_size;          /* sizeof(spk_layer_type) as built; the table grows at the end */
    const char *name;              /* "neuron.lif" */
    int kind;                      /* spk_kind */
    const char *summary;           /* one line for `spikecl plugins` */
    const spk_param_spec *params;  /* ends with {NULL} */
    /* Reads params, checks layer->in, sets layer->out, declares weights and state. Errors should
     * name what was expected; the host adds the layer name and its file:line:col. */
    int (*init)(spk_layer *layer, spk_error *err);
    int (*forward)(spk_layer *layer, spk_exec *x);
    int (*backward)(spk_layer *layer, spk_exec *x);
    void (*destroy)(spk_layer *layer); /* frees layer->priv; may be NULL */
    spk_kernel_set kernels;
    /* ---- since 1.1 (the host reads what follows only when struct_size covers it) ---- */
    const char *version; /* the plugin's own version ("2.3.0"), listed by spikecl plugins */
    /* ---- since 1.2 ---- */
    unsigned memory; /* SPK_MEM_* promises; 0 (an older plugin): the host keeps every tensor */
};

/* Promises a layer type makes about its tensors, so that a training session can give one
 * buffer to tensors that are never needed at the same time (core/src/memplan.c). A wrong
 * promise corrupts gradients silently: tests/test_backend_ops.c checks each built-in's by
 * poisoning what it promises not to read. */
/* forward writes every element of its output, and backward never reads it: once the
 * consumers are done with it, the output's memory may hold gradients */
#define SPK_MEM_OUT_FORWARD_ONLY 1u
/* backward reads none of its inputs (x->in), only grad_out, its state and weights */
#define SPK_MEM_BACKWARD_NO_INPUT 2u
/* one input, and backward is right when grad_in[0] and grad_out are one buffer of the same
 * size: each element of grad_out is read before that element of grad_in is written, and no
 * element of grad_out is read after it has been overwritten */
#define SPK_MEM_GRAD_IN_PLACE 4u
/* one input, and forward is right when its output and in[0] are one buffer of the same size:
 * each element of the input is read before that element of the output is written, and none
 * after (the input is then gone: its producer's output cannot be inspected) */
#define SPK_MEM_OUT_IN_PLACE 8u
/* a neuron whose one consumer is a SPK_MEM_SUM_OVER_STEPS readout may write that readout's
 * output: forward gets x->out of shape [B, n] without a time axis (shape.time SPK_TIME_NONE)
 * and writes there the sum over t = 0, 1, ... of what it would output at each step, added in
 * that order from 0.0f; backward then gets x->grad_out [B, n], the gradient of the output at
 * every step. A session made with SPK_SESSION_FUSE_READOUT does it, so the [T, B, n] output
 * never exists. */
#define SPK_MEM_COUNT_OUT 16u
/* one input over the steps, and the layer's first SPK_TIME_STEPS state has its size: when its
 * output is fused as above, that state may be in[0]'s buffer. Forward reads each element of
 * in[0] before it writes that element of the state and no element after; backward is right
 * when grad_in[0] is that buffer too: it reads each element of the state for the last time
 * before it writes that element of grad_in[0]. */
#define SPK_MEM_STATE_OVER_INPUT 32u
/* a readout whose output is its one input ([T, B, n]) summed over t = 0, 1, ... from 0.0f, and
 * whose backward writes grad_out into grad_in[0] at every step (readout.spike_count): its
 * input's neuron may do both (SPK_MEM_COUNT_OUT) */
#define SPK_MEM_SUM_OVER_STEPS 64u

/* The size of a 1.0 descriptor: the smallest the host accepts. */
#define SPK_LAYER_TYPE_SIZE_1_0 (offsetof(spk_layer_type, kernels) + sizeof(spk_kernel_set))

/* The host's functions a plugin may call; passed at registration and in every layer. */
struct spk_host_api {
    uint16_t abi_major, abi_minor;
    uint32_t struct_size;
    /* parameters by name (the name must be in the type's table) */
    double (*param_num)(const spk_layer *l, const char *name);
    const char *(*param_str)(const spk_layer *l, const char *name);
    spk_init (*param_init)(const spk_layer *l, const char *name);
    spk_surrogate (*param_surrogate)(const spk_layer *l, const char *name);
    int (*param_is_set)(const spk_layer *l, const char *name);
    /* declarations, during init; return the index or a negative status */
    int (*add_weight)(spk_layer *l, const char *name, spk_shape shape, spk_init init,
                      spk_error *err);
    int (*add_state)(spk_layer *l, const char *name, int per_sample, int time, spk_error *err);
    /* execution, during forward/backward */
    int (*launch)(spk_layer *l, spk_exec *x, const char *kernel, size_t items, int nargs,
                  const spk_karg *args);
    int (*gemm)(spk_exec *x, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                const spk_tensor *a, size_t lda, const spk_tensor *b, size_t ldb, float beta,
                spk_tensor *c, size_t ldc);
    int (*fill)(spk_exec *x, spk_tensor *t, float value);
    int (*copy)(spk_exec *x, spk_tensor *dst, const spk_tensor *src);
    int (*error)(spk_exec *x, int code, const char *fmt, ...) SPK_FORMAT_PRINTF(3, 4);
    /* memory for a plugin's own host-side data (layer->priv); free(NULL) is a no-op */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    /* a message on stderr, prefixed with the layer's name */
    void (*log)(const spk_layer *l, const char *fmt, ...) SPK_FORMAT_PRINTF(2, 3);
    /* four uniform floats in [0, 1) from Philox4x32-10: key (seed, purpose), counter (c0..c3);
     * the same numbers as spk_philox4x32_10 in kernels */
    void (*rng_uniform4)(uint32_t seed, uint32_t purpose, const uint32_t counter[4], float out[4]);
    /* registers a layer type from a plugin's spk_plugin_init */
    int (*register_type)(spk_registry *reg, const spk_layer_type *type, spk_error *err);
    /* grad += the sum over rows of part [rows, cols]: per column when grad has cols values
     * (per-neuron parameters), in total when it has one (a value shared by the layer; part's
     * first row is overwritten then). The usual last step of a neuron's backward, where each
     * work item wrote its own partial sum (no atomics). */
    int (*reduce_grad)(spk_exec *x, spk_tensor *grad, spk_tensor *part, int rows, int cols);
    /* ---- since 1.1 ---- */
    /* fills err (may be NULL) and returns code: for init, which has no spk_exec */
    int (*set_error)(spk_error *err, int code, const char *fmt, ...) SPK_FORMAT_PRINTF(3, 4);
    /* a weight's settings, during init: SPK_WEIGHT_* flags, the clamp range when CLAMP is set */
    int (*set_weight)(spk_layer *l, int weight, unsigned flags, float lo, float hi, spk_error *err);
    /* the plugin's own data (read back as layer->priv; type->destroy frees it) */
    void (*set_priv)(spk_layer *l, void *priv);
    /* the output's per-sample shape, during init */
    void (*set_output)(spk_layer *l, spk_shape out);
    /* ---- since 1.3 ---- */
    /* this layer's SPK_MEM_* promises, during init, where its settings make more (or fewer)
     * than its type's (synapse.linear with sparse: bits reads only its input's bits in
     * backward) */
    void (*set_memory)(spk_layer *l, unsigned flags);
};

/* Convenience for kernel arguments. */
#define SPK_ARG_BUF(t)   ((spk_karg){.type = SPK_KARG_BUF, .v.p = (void *)(t)->buf})
#define SPK_ARG_INT(x)   ((spk_karg){.type = SPK_KARG_INT, .v.i = (int32_t)(x)})
#define SPK_ARG_FLOAT(x) ((spk_karg){.type = SPK_KARG_FLOAT, .v.f = (float)(x)})
#define SPK_LAUNCH(layer, x, kernel, items, ...)                                                   \
    ((layer)->host->launch((layer), (x), (kernel), (items),                                        \
                           (int)(sizeof((spk_karg[]){__VA_ARGS__}) / sizeof(spk_karg)),            \
                           (spk_karg[]){__VA_ARGS__}))

/* Number of floats per sample of a shape (product of dims). */
static inline int spk_shape_size(const spk_shape *s)
{
    int n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

/* A shape with another time mode, and a one-dimensional shape: for host->set_output. */
static inline spk_shape spk_shape_timed(spk_shape s, int time)
{
    s.time = time;
    return s;
}

static inline spk_shape spk_shape_1d(int n, int time)
{
    spk_shape s = {.ndim = 1, .dims = {n}, .time = time};
    return s;
}

/* ---- registry ---- */

/* Registers a layer type; refuses another ABI major, a newer minor, a short struct or a name
 * already taken. `source` is "built-in" or the shared library's path. */
SPK_API int spk_registry_add(spk_registry *reg, const spk_layer_type *type, const char *source,
                             spk_error *err);

/* The one symbol a plugin shared library exports. */
typedef int (*spk_plugin_init_fn)(const spk_host_api *host, spk_registry *reg, spk_error *err);
#define SPK_PLUGIN_ENTRY "spk_plugin_init"

/* Writes a plugin's entry point: SPK_PLUGIN_DEFINE(&type_a, &type_b, ...) after the
 * descriptors. It checks the host before calling anything in its table (another major means
 * another layout; an older minor may lack functions this plugin calls), then registers each
 * type. A plugin that registers nothing else needs no code of its own here. */
#define SPK_PLUGIN_DEFINE(...)                                                                     \
    __attribute__((visibility("default"))) int spk_plugin_init(const spk_host_api *host,           \
                                                               spk_registry *reg, spk_error *err); \
    __attribute__((visibility("default"))) int spk_plugin_init(const spk_host_api *host,           \
                                                               spk_registry *reg, spk_error *err)  \
    {                                                                                              \
        static const spk_layer_type *const spk_types_[] = {__VA_ARGS__};                           \
        if (host->abi_major != SPK_ABI_MAJOR || host->abi_minor < SPK_ABI_MINOR) {                 \
            if (err) {                                                                             \
                snprintf(err->msg, sizeof err->msg,                                                \
                         "%s was built for spikecl plugin ABI %d.%d, the host has %u.%u (same "    \
                         "major, minor >= %d required)",                                           \
                         spk_types_[0]->name, SPK_ABI_MAJOR, SPK_ABI_MINOR,                        \
                         (unsigned)host->abi_major, (unsigned)host->abi_minor, SPK_ABI_MINOR);     \
                err->code = SPK_ERR_PLUGIN;                                                        \
            }                                                                                      \
            return SPK_ERR_PLUGIN;                                                                 \
        }                                                                                          \
        for (size_t i_ = 0; i_ < sizeof spk_types_ / sizeof spk_types_[0]; i_++) {                 \
            int rc_ = host->register_type(reg, spk_types_[i_], err);                               \
            if (rc_)                                                                               \
                return rc_;                                                                        \
        }                                                                                          \
        return SPK_OK;                                                                             \
    }

/* The descriptor's version fields, for a plugin's spk_layer_type initialiser. */
#define SPK_LAYER_TYPE_HEADER                                                                      \
    .abi_major = SPK_ABI_MAJOR, .abi_minor = SPK_ABI_MINOR, .struct_size = sizeof(spk_layer_type)

#ifdef __cplusplus
}
#endif
#endif
