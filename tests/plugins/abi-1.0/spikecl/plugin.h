/* spikecl — the layer plugin ABI. Built-in layers and user plugins (shared libraries) describe
 * themselves with the same versioned descriptor and reach the host only through spk_host_api. */
#ifndef SPIKECL_PLUGIN_H
#define SPIKECL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "spikecl/backend.h"
#include "spikecl/error.h"
#include "spikecl/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPK_ABI_MAJOR 1
#define SPK_ABI_MINOR 0

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

/* A learnable tensor a layer declares at init. */
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
    spk_shape out; /* set by init */
    const spk_params *params;
    int time_steps; /* T of the model */
    int n_weights;
    spk_weight weights[SPK_MAX_WEIGHTS];
    int n_state;
    spk_state state[SPK_MAX_STATE];
    void *priv;           /* the plugin's own data; freed by type->destroy */
    spk_program *program; /* the type's kernels on this backend (set by the host) */
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
    spk_backend *backend;
    spk_error *err;
    /* [B] each sample's index in its data set, as a float (exact below 2^24): per-sample RNG
     * streams (Poisson spikes) key on it, so a sample draws the same spikes whatever batch it
     * lands in, on every backend */
    const spk_tensor *sample_ids;
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
};

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
    int (*error)(spk_exec *x, int code, const char *fmt, ...);
    /* memory for a plugin's own host-side data (layer->priv); free(NULL) is a no-op */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    /* a message on stderr, prefixed with the layer's name */
    void (*log)(const spk_layer *l, const char *fmt, ...);
    /* four uniform floats in [0, 1) from Philox4x32-10: key (seed, purpose), counter (c0..c3);
     * the same numbers as spk_philox4x32_10 in kernels */
    void (*rng_uniform4)(uint32_t seed, uint32_t purpose, const uint32_t counter[4], float out[4]);
    /* registers a layer type from a plugin's spk_plugin_init */
    int (*register_type)(spk_registry *reg, const spk_layer_type *type, spk_error *err);
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

/* ---- registry ---- */

/* Registers a layer type; refuses another ABI major, a newer minor, a short struct or a name
 * already taken. `source` is "built-in" or the shared library's path. */
int spk_registry_add(spk_registry *reg, const spk_layer_type *type, const char *source,
                     spk_error *err);

/* The one symbol a plugin shared library exports. */
typedef int (*spk_plugin_init_fn)(const spk_host_api *host, spk_registry *reg, spk_error *err);
#define SPK_PLUGIN_ENTRY "spk_plugin_init"

#ifdef __cplusplus
}
#endif
#endif
