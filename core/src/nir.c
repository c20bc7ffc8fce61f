/* NIR export and import through libhdf5. The file layout is the `nir` package's (nir.write,
 * nir.read in nir/serialization.py, version 1.0.x):
 *
 *   /version            variable-length UTF-8 string, e.g. "1.0.8"
 *   /node/type          "NIRGraph"
 *   /node/nodes/<name>/ one group per node: "type" (string) and its parameters as datasets
 *   /node/edges         [n, 2] strings, (source, target)
 *   /node/metadata/     optional: here "dt", "time_steps", "input_scale", "source"
 *
 * Strings may be variable-length (h5py's string_dtype, what nir writes) or fixed-size (older
 * files); numbers may be any integer or float type (read as double). Inputs of a node are
 * summed (NIR's edge semantics). The mapping to spikecl layers is in docs/NIR.md. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "fsutil.h"
#include "nir_limits.h"
#include "session_internal.h"
#include "spikecl/nir.h"
#include "spikecl/safetensors.h"
#include "strbuf.h"

#define NIR_DEFAULT_DT 1e-4
#define NIR_VERSION    "1.0.8" /* the nir package release whose layout this follows */
#define NIR_MAX_NODES  4096
#define NIR_MAX_NDIM   8

size_t spk_nir_max_values = (size_t)1 << 26;

/* ---- HDF5 errors: silenced, the innermost message kept for ours ---- */

typedef struct h5_quiet {
    H5E_auto2_t fn;
    void *data;
} h5_quiet;

static void h5_silence(h5_quiet *q)
{
    q->fn = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5_restore(const h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

static herr_t h5_walk_last(unsigned n, const H5E_error2_t *e, void *ctx)
{
    (void)n;
    char *out = ctx;
    if (e->desc && *e->desc && !*out)
        snprintf(out, 160, "%s", e->desc);
    return 0;
}

/* The innermost message on HDF5's error stack ("" when empty); clears the stack. */
static const char *h5_msg(char buf[160])
{
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_last, buf);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

/* ---- writing ---- */

typedef struct nir_writer {
    const char *path;
    const char *node; /* the node being written, for messages */
    spk_error *err;
} nir_writer;

static int w_fail(nir_writer *w, const char *what)
{
    char b[160];
    return spk_error_set(w->err, SPK_ERR_IO, "%s: node '%s': cannot write %s (%s)", w->path,
                         w->node ? w->node : "/", what, h5_msg(b));
}

static hid_t h5_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* A dataset of n strings in the given shape (ndim 0: a scalar). */
static int w_strings(nir_writer *w, hid_t g, const char *name, int ndim, const hsize_t *dims,
                     const char *const *v)
{
    hid_t t = h5_str_type();
    hid_t sp = t < 0 ? -1 : ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(g, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0)
        ok = H5Dclose(d) >= 0 && ok;
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    return ok ? SPK_OK : w_fail(w, name);
}

static int w_str(nir_writer *w, hid_t g, const char *name, const char *s)
{
    return w_strings(w, g, name, 0, NULL, &s);
}

/* A numeric dataset: file type ftype, memory type mtype (ndim 0: a scalar). */
static int w_num(nir_writer *w, hid_t g, const char *name, hid_t ftype, hid_t mtype, int ndim,
                 const hsize_t *dims, const void *v)
{
    hid_t sp = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0)
        ok = H5Dclose(d) >= 0 && ok;
    if (sp >= 0)
        H5Sclose(sp);
    return ok ? SPK_OK : w_fail(w, name);
}

static int w_f32(nir_writer *w, hid_t g, const char *name, int ndim, const hsize_t *dims,
                 const float *v)
{
    return w_num(w, g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims, v);
}

/* Neuron parameters are float64: beta = 1 - dt / tau then gives back the float32 beta exactly. */
static int w_f64(nir_writer *w, hid_t g, const char *name, int ndim, const hsize_t *dims,
                 const double *v)
{
    return w_num(w, g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ndim, dims, v);
}

static int w_i64(nir_writer *w, hid_t g, const char *name, int ndim, const hsize_t *dims,
                 const int64_t *v)
{
    return w_num(w, g, name, H5T_STD_I64LE, H5T_NATIVE_INT64, ndim, dims, v);
}

static int w_i64_pair(nir_writer *w, hid_t g, const char *name, int64_t v)
{
    const int64_t p[2] = {v, v};
    const hsize_t d = 2;
    return w_i64(w, g, name, 1, &d, p);
}

/* ---- export ---- */

/* The NIR names a layer's output reaches: itself, or for a layer that NIR has no node for
 * (encoder.direct, dropout, merge.add) the names that feed it. */
typedef struct nir_src {
    int n;
    char **names;
} nir_src;

static int src_add(nir_src *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return SPK_OK;
    char **nn = realloc(s->names, (size_t)(s->n + 1) * sizeof *nn);
    if (!nn)
        return SPK_ERR_NOMEM;
    s->names = nn;
    if (!(nn[s->n] = strdup(name)))
        return SPK_ERR_NOMEM;
    s->n++;
    return SPK_OK;
}

static void src_clear(nir_src *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    s->n = 0;
    s->names = NULL;
}

typedef struct nir_edges {
    int n, cap;
    char **v; /* 2n strings */
} nir_edges;

static int edges_add(nir_edges *e, const char *a, const char *b)
{
    if (e->n == e->cap) {
        int cap = e->cap ? 2 * e->cap : 16;
        char **nv = realloc(e->v, (size_t)cap * 2 * sizeof *nv);
        if (!nv)
            return SPK_ERR_NOMEM;
        e->v = nv;
        e->cap = cap;
    }
    e->v[2 * e->n] = strdup(a);
    e->v[2 * e->n + 1] = strdup(b);
    e->n++;
    return e->v[2 * e->n - 2] && e->v[2 * e->n - 1] ? SPK_OK : SPK_ERR_NOMEM;
}

static void edges_clear(nir_edges *e)
{
    for (int i = 0; i < 2 * e->n; i++)
        free(e->v[i]);
    free(e->v);
}

static const spk_param_value *pval(const spk_layer *l, const char *name)
{
    return spk_params_find(l->params, name);
}

static double pnum(const spk_layer *l, const char *name)
{
    const spk_param_value *v = pval(l, name);
    return v ? v->num : 0.0;
}

static const char *pstr(const spk_layer *l, const char *name)
{
    const spk_param_value *v = pval(l, name);
    return v && v->str ? v->str : "";
}

/* The values of a layer's weight `name`, downloaded (malloc'ed, *n of them); NULL with err set
 * when the layer has no such weight. */
static float *layer_weight(spk_session *s, const spk_layer *l, const char *name, size_t *n,
                           spk_error *err)
{
    int total = spk_session_weight_count(s);
    for (int i = 0; i < total; i++) {
        const spk_layer *owner = NULL;
        const spk_weight *w = spk_session_weight_at(s, i, &owner);
        if (owner != l || strcmp(w->name, name) != 0)
            continue;
        float *v = malloc(w->value.numel * sizeof *v);
        if (!v) {
            spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
            return NULL;
        }
        if (spk_session_weight_get(s, i, v, err)) {
            free(v);
            return NULL;
        }
        *n = w->value.numel;
        return v;
    }
    spk_error_set(err, SPK_ERR_INVALID, "layer '%s' has no weight '%s'", l->name, name);
    return NULL;
}

static void shape_dims(const spk_shape *sh, int *ndim, hsize_t *dims)
{
    *ndim = sh->ndim;
    for (int i = 0; i < sh->ndim; i++)
        dims[i] = (hsize_t)sh->dims[i];
}

/* A per-neuron parameter of the layer's output shape, from a [1] or [N] weight through f. */
static int w_neuron_param(nir_writer *w, hid_t g, const char *name, const spk_layer *l,
                          const float *v, size_t nv, double (*f)(double, void *), void *ctx)
{
    int ndim;
    hsize_t dims[SPK_MAX_DIMS];
    shape_dims(&l->out, &ndim, dims);
    size_t n = (size_t)spk_shape_size(&l->out);
    double *a = malloc(n * sizeof *a);
    if (!a)
        return spk_error_set(w->err, SPK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        double x = v ? v[nv > 1 ? i : 0] : 0.0;
        a[i] = f ? f(x, ctx) : x;
    }
    int rc = w_f64(w, g, name, ndim, dims, a);
    free(a);
    return rc;
}

static double f_tau(double beta, void *ctx) /* tau = dt / (1 - beta) */
{
    return *(const double *)ctx / (1.0 - beta);
}

static double f_r_lif(double beta, void *ctx) /* r = tau / dt: unit gain on the input */
{
    (void)ctx;
    return 1.0 / (1.0 - beta);
}

static double f_const(double x, void *ctx)
{
    (void)x;
    return *(const double *)ctx;
}

typedef struct nir_export {
    spk_session *s;
    const spk_nir_options *opt;
    double dt;
    nir_writer w;
    hid_t nodes;
    nir_edges edges;
    nir_src *src; /* per session node */
    spk_error *err;
} nir_export;

static hid_t new_node(nir_export *x, const char *name, const char *type)
{
    x->w.node = name;
    hid_t g = H5Gcreate2(x->nodes, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        w_fail(&x->w, "the node's group");
        return -1;
    }
    if (w_str(&x->w, g, "type", type)) {
        H5Gclose(g);
        return -1;
    }
    return g;
}

static int end_node(nir_export *x, hid_t g, int rc)
{
    if (g >= 0 && H5Gclose(g) < 0 && !rc)
        rc = w_fail(&x->w, "the node's group");
    return rc;
}

/* Edges into `name` from every source of the layer's inputs. */
static int connect(nir_export *x, const spk_node *nd, const char *name)
{
    for (int i = 0; i < nd->n_in; i++) {
        const nir_src *s = &x->src[nd->in_node[i]];
        for (int j = 0; j < s->n; j++)
            if (edges_add(&x->edges, s->names[j], name))
                return spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory");
    }
    return SPK_OK;
}

static int refuse(nir_export *x, const spk_layer *l, const char *why)
{
    return spk_error_set(x->err, SPK_ERR_UNSUPPORTED, "%s: layer '%s' (%s): %s", x->w.path, l->name,
                         l->type->name, why);
}

/* neuron.lif / neuron.if / neuron.synaptic: the reset they have and whether NIR says the same. */
static int check_reset(nir_export *x, const spk_layer *l, int exact_reset)
{
    if (strcmp(pstr(l, "output"), "spikes") != 0)
        return refuse(x, l, "output: membrane has no NIR equivalent (NIR neurons emit spikes)");
    const char *reset = pstr(l, "reset");
    if (strcmp(reset, "none") == 0)
        return refuse(x, l, "reset: none has no NIR equivalent");
    if (!exact_reset) /* neuron.synaptic */
        return x->opt->approximate ? SPK_OK
                                   : refuse(x, l,
                                            "its reset timing differs from NIR CubaLIF's "
                                            "(docs/NIR.md); --approximate exports it anyway");
    if (strcmp(reset, "zero") == 0 || x->opt->approximate)
        return SPK_OK;
    return refuse(x, l,
                  "reset: subtract has no NIR equivalent (NIR resets to v_reset); "
                  "--approximate exports it as a reset to zero, as snnTorch's export does");
}

static int export_linear(nir_export *x, const spk_node *nd)
{
    const spk_layer *l = &nd->layer;
    int rc = SPK_OK;
    char flat[SPK_NAME_MAX + 16];
    const char *feed = NULL;
    if (l->in[0].ndim > 1) { /* spikecl's linear flattens its input: NIR needs a Flatten node */
        snprintf(flat, sizeof flat, "%s_flatten", l->name);
        hid_t g = new_node(x, flat, "Flatten");
        if (g < 0)
            return x->err->code;
        int ndim;
        hsize_t dims[SPK_MAX_DIMS], one = 0;
        shape_dims(&l->in[0], &ndim, dims);
        int64_t in[SPK_MAX_DIMS], sd = 0, ed = -1;
        for (int i = 0; i < ndim; i++)
            in[i] = (int64_t)dims[i];
        hsize_t nd1 = (hsize_t)ndim;
        rc = w_i64(&x->w, g, "input_type", 1, &nd1, in);
        if (!rc)
            rc = w_i64(&x->w, g, "start_dim", 0, &one, &sd);
        if (!rc)
            rc = w_i64(&x->w, g, "end_dim", 0, &one, &ed);
        if ((rc = end_node(x, g, rc)))
            return rc;
        if ((rc = connect(x, nd, flat)))
            return rc;
        feed = flat;
    }
    int has_bias = pnum(l, "bias") != 0;
    hid_t g = new_node(x, l->name, has_bias ? "Affine" : "Linear");
    if (g < 0)
        return x->err->code;
    size_t n, nb = 0;
    float *wv = layer_weight(x->s, l, "weight", &n, x->err), *bv = NULL;
    if (!wv)
        return end_node(x, g, x->err->code);
    hsize_t wd[2] = {(hsize_t)l->out.dims[0], (hsize_t)(n / (size_t)l->out.dims[0])};
    rc = w_f32(&x->w, g, "weight", 2, wd, wv);
    if (!rc && has_bias) {
        if (!(bv = layer_weight(x->s, l, "bias", &nb, x->err)))
            rc = x->err->code;
        else
            rc = w_f32(&x->w, g, "bias", 1, wd, bv);
    }
    free(wv);
    free(bv);
    if ((rc = end_node(x, g, rc)))
        return rc;
    if (feed)
        return edges_add(&x->edges, feed, l->name)
                   ? spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory")
                   : SPK_OK;
    return connect(x, nd, l->name);
}

static int export_conv(nir_export *x, const spk_node *nd)
{
    const spk_layer *l = &nd->layer;
    int has_bias = pnum(l, "bias") != 0;
    hid_t g = new_node(x, l->name, "Conv2d");
    if (g < 0)
        return x->err->code;
    size_t n, nb;
    float *wv = layer_weight(x->s, l, "weight", &n, x->err), *bv = NULL;
    if (!wv)
        return end_node(x, g, x->err->code);
    /* nir 1.0.8 checks a Conv2d's input channels against weight.shape[1] whatever its groups,
     * so a grouped convolution is written as the dense one it equals: [O, C, k, k] with zeros
     * outside each group's block, groups 1 */
    const int O = l->out.dims[0], k = (int)pnum(l, "kernel"), groups = (int)pnum(l, "groups");
    const int C = l->in[0].dims[0], cg = C / groups, og = O / groups, kk = k * k;
    float *dense = calloc((size_t)O * C * kk, sizeof *dense);
    if (!dense) {
        free(wv);
        return end_node(x, g, spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory"));
    }
    for (int o = 0; o < O; o++)
        memcpy(dense + ((size_t)o * C + (size_t)(o / og) * cg) * kk, wv + (size_t)o * cg * kk,
               (size_t)cg * kk * sizeof *dense);
    hsize_t wd[4] = {(hsize_t)O, (hsize_t)C, (hsize_t)k, (hsize_t)k};
    int rc = w_f32(&x->w, g, "weight", 4, wd, dense);
    free(dense);
    /* nir.Conv2d requires a bias; without one it is zero (as snnTorch exports it) */
    if (!rc) {
        if (has_bias)
            bv = layer_weight(x->s, l, "bias", &nb, x->err);
        else
            bv = calloc((size_t)O, sizeof *bv);
        if (!bv)
            rc = has_bias ? x->err->code : spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory");
        else
            rc = w_f32(&x->w, g, "bias", 1, wd, bv);
    }
    free(wv);
    free(bv);
    const int64_t hw[2] = {l->in[0].dims[1], l->in[0].dims[2]}, gr = 1;
    const hsize_t two = 2, zero = 0;
    if (!rc)
        rc = w_i64(&x->w, g, "input_shape", 1, &two, hw);
    if (!rc)
        rc = w_i64_pair(&x->w, g, "stride", (int64_t)pnum(l, "stride"));
    if (!rc)
        rc = w_i64_pair(&x->w, g, "padding", (int64_t)pnum(l, "padding"));
    if (!rc)
        rc = w_i64_pair(&x->w, g, "dilation", (int64_t)pnum(l, "dilation"));
    if (!rc)
        rc = w_i64(&x->w, g, "groups", 0, &zero, &gr);
    if ((rc = end_node(x, g, rc)))
        return rc;
    return connect(x, nd, l->name);
}

static int export_pool(nir_export *x, const spk_node *nd)
{
    const spk_layer *l = &nd->layer;
    hid_t g = new_node(x, l->name, "AvgPool2d");
    if (g < 0)
        return x->err->code;
    int k = (int)pnum(l, "kernel"), st = (int)pnum(l, "stride");
    int rc = w_i64_pair(&x->w, g, "kernel_size", k);
    if (!rc)
        rc = w_i64_pair(&x->w, g, "stride", st > 0 ? st : k);
    if (!rc)
        rc = w_i64_pair(&x->w, g, "padding", (int64_t)pnum(l, "padding"));
    if ((rc = end_node(x, g, rc)))
        return rc;
    return connect(x, nd, l->name);
}

/* neuron.lif -> LIF: tau = dt / (1 - beta), r = tau / dt (unit input gain), v_leak = 0,
 * v_threshold = threshold, v_reset = reset_value. All of beta == 1 -> IF (r = 1). */
static int export_neuron(nir_export *x, const spk_node *nd, const char *kind)
{
    const spk_layer *l = &nd->layer;
    int synaptic = strcmp(kind, "synaptic") == 0, is_if = strcmp(kind, "if") == 0;
    int rc = check_reset(x, l, !synaptic);
    if (rc)
        return rc;
    size_t nb = 0, nt = 0, na = 0;
    float *beta = NULL, *alpha = NULL, *thr = layer_weight(x->s, l, "threshold", &nt, x->err);
    if (!thr)
        return x->err->code;
    if (!is_if && !(beta = layer_weight(x->s, l, "beta", &nb, x->err))) {
        free(thr);
        return x->err->code;
    }
    if (synaptic && !(alpha = layer_weight(x->s, l, "alpha", &na, x->err))) {
        free(thr);
        free(beta);
        return x->err->code;
    }
    int ones = 0;
    for (size_t i = 0; beta && i < nb; i++)
        ones += beta[i] == 1.0f;
    for (size_t i = 0; alpha && i < na; i++)
        ones += alpha[i] == 1.0f;
    if (beta && ones == (int)nb && !synaptic)
        is_if = 1; /* no leak at all: NIR's IF */
    else if (ones) {
        free(thr);
        free(beta);
        free(alpha);
        return refuse(x, l,
                      "a decay of exactly 1 (no leak) in some neurons only has no finite NIR "
                      "time constant");
    }
    double rv = strcmp(pstr(l, "reset"), "zero") == 0 && !synaptic
                    ? (double)(float)pnum(l, "reset_value")
                    : 0.0; /* what the kernel uses */
    double one = 1.0, zero = 0.0;
    hid_t g = new_node(x, l->name, synaptic ? "CubaLIF" : is_if ? "IF" : "LIF");
    if (g < 0)
        rc = x->err->code;
    else if (is_if) {
        rc = w_neuron_param(&x->w, g, "r", l, NULL, 0, f_const, &one);
    } else if (!synaptic) {
        rc = w_neuron_param(&x->w, g, "tau", l, beta, nb, f_tau, &x->dt);
        if (!rc)
            rc = w_neuron_param(&x->w, g, "r", l, beta, nb, f_r_lif, NULL);
        if (!rc)
            rc = w_neuron_param(&x->w, g, "v_leak", l, NULL, 0, f_const, &zero);
    } else { /* snnTorch's Synaptic export: w_in = tau_syn / dt, r = tau_mem / dt */
        rc = w_neuron_param(&x->w, g, "tau_syn", l, alpha, na, f_tau, &x->dt);
        if (!rc)
            rc = w_neuron_param(&x->w, g, "tau_mem", l, beta, nb, f_tau, &x->dt);
        if (!rc)
            rc = w_neuron_param(&x->w, g, "r", l, beta, nb, f_r_lif, NULL);
        if (!rc)
            rc = w_neuron_param(&x->w, g, "w_in", l, alpha, na, f_r_lif, NULL);
        if (!rc)
            rc = w_neuron_param(&x->w, g, "v_leak", l, NULL, 0, f_const, &zero);
    }
    if (!rc)
        rc = w_neuron_param(&x->w, g, "v_threshold", l, thr, nt, NULL, NULL);
    if (!rc)
        rc = w_neuron_param(&x->w, g, "v_reset", l, NULL, 0, f_const, &rv);
    free(thr);
    free(beta);
    free(alpha);
    if ((rc = end_node(x, g, rc)))
        return rc;
    return connect(x, nd, l->name);
}

static int export_layer(nir_export *x, int i)
{
    const spk_node *nd = &x->s->nodes[i];
    const spk_layer *l = &nd->layer;
    const char *t = l->type->name;
    nir_src *me = &x->src[i];
    if (strcmp(t, "encoder.direct") == 0 || strcmp(t, "dropout") == 0 ||
        strcmp(t, "merge.add") == 0) {
        /* no node: identity at inference (dropout), or NIR's summed inputs (merge.add) */
        if (strcmp(t, "encoder.direct") == 0 && pnum(l, "gain") != 1.0)
            return refuse(x, l, "gain other than 1 (fold it into the next layer's weights)");
        for (int k = 0; k < nd->n_in; k++) {
            const nir_src *s = &x->src[nd->in_node[k]];
            for (int j = 0; j < s->n; j++)
                if (src_add(me, s->names[j]))
                    return spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory");
        }
        return SPK_OK;
    }
    int rc;
    if (strcmp(t, "synapse.linear") == 0)
        rc = export_linear(x, nd);
    else if (strcmp(t, "synapse.conv2d") == 0)
        rc = export_conv(x, nd);
    else if (strcmp(t, "pool.avg2d") == 0)
        rc = export_pool(x, nd);
    else if (strcmp(t, "neuron.lif") == 0)
        rc = export_neuron(x, nd, "lif");
    else if (strcmp(t, "neuron.if") == 0)
        rc = export_neuron(x, nd, "if");
    else if (strcmp(t, "neuron.synaptic") == 0)
        rc = export_neuron(x, nd, "synaptic");
    else if (strcmp(t, "pool.max2d") == 0)
        return refuse(x, l, "NIR has no max pooling node (pool.avg2d exports as AvgPool2d)");
    else if (strncmp(t, "encoder.", 8) == 0)
        return refuse(x, l,
                      "NIR graphs take their input as currents: only encoder.direct "
                      "(gain 1) has an equivalent (Input)");
    else
        return refuse(x, l,
                      "no NIR node expresses this layer type (docs/NIR.md lists those "
                      "that export)");
    if (rc)
        return rc;
    return src_add(me, l->name) ? spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory") : SPK_OK;
}

static int fill_image(FILE *f, void *ctx)
{
    const spk_strbuf *b = ctx;
    return fwrite(b->s, 1, b->len, f) == b->len ? 0 : -1;
}

/* The body of the export inside an open in-memory file. */
static int export_graph(nir_export *x, hid_t file)
{
    spk_session *s = x->s;
    const spk_model *m = s->m;
    int rc = w_str(&x->w, file, "version", NIR_VERSION);
    if (rc)
        return rc;
    hid_t root = H5Gcreate2(file, "node", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (root < 0)
        return w_fail(&x->w, "the group 'node'");
    rc = w_str(&x->w, root, "type", "NIRGraph");
    x->nodes = rc ? -1 : H5Gcreate2(root, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!rc && x->nodes < 0)
        rc = w_fail(&x->w, "the group 'nodes'");
    const int last = m->n_layers; /* node index of the last layer */
    char out_name[SPK_NAME_MAX + 8] = "output", in_name[SPK_NAME_MAX + 8] = "input";
    for (int i = 1; i <= last; i++) {
        const char *ln = s->nodes[i].layer.name;
        const char *t = s->nodes[i].layer.type->name;
        if (strcmp(ln, "output") == 0)
            snprintf(out_name, sizeof out_name, "output_");
        /* a direct encoder takes the input's name; another layer called "input" renames it */
        if (strcmp(ln, "input") == 0 && strcmp(t, "encoder.direct") != 0)
            snprintf(in_name, sizeof in_name, "input_");
    }
    if (!rc) { /* Input: the model's input shape */
        hid_t g = new_node(x, in_name, "Input");
        rc = g < 0 ? x->err->code : SPK_OK;
        int64_t sh[SPK_MAX_DIMS];
        for (int i = 0; i < s->in_shape.ndim; i++)
            sh[i] = s->in_shape.dims[i];
        hsize_t n = (hsize_t)s->in_shape.ndim;
        if (!rc)
            rc = w_i64(&x->w, g, "shape", 1, &n, sh);
        rc = end_node(x, g, rc);
        if (!rc && src_add(&x->src[0], in_name))
            rc = spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory");
    }
    for (int i = 1; !rc && i <= last; i++)
        rc = export_layer(x, i);
    if (!rc) { /* Output: after the last layer */
        const spk_layer *l = &s->nodes[last].layer;
        hid_t g = new_node(x, out_name, "Output");
        rc = g < 0 ? x->err->code : SPK_OK;
        int64_t sh[SPK_MAX_DIMS];
        for (int i = 0; i < l->out.ndim; i++)
            sh[i] = l->out.dims[i];
        hsize_t n = (hsize_t)l->out.ndim;
        if (!rc)
            rc = w_i64(&x->w, g, "shape", 1, &n, sh);
        rc = end_node(x, g, rc);
        for (int j = 0; !rc && j < x->src[last].n; j++)
            if (edges_add(&x->edges, x->src[last].names[j], out_name))
                rc = spk_error_set(x->err, SPK_ERR_NOMEM, "out of memory");
    }
    x->w.node = NULL;
    if (!rc) {
        const hsize_t d[2] = {(hsize_t)x->edges.n, 2};
        rc = w_strings(&x->w, root, "edges", 2, d, (const char *const *)x->edges.v);
    }
    if (!rc) { /* metadata: what a reader needs to run it as spikecl did */
        hid_t md = H5Gcreate2(root, "metadata", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (md < 0)
            rc = w_fail(&x->w, "the group 'metadata'");
        const hsize_t z = 0;
        const int64_t T = s->T;
        const double sc = s->input_scale;
        if (!rc)
            rc = w_f64(&x->w, md, "dt", 0, &z, &x->dt);
        if (!rc)
            rc = w_i64(&x->w, md, "time_steps", 0, &z, &T);
        if (!rc)
            rc = w_f64(&x->w, md, "input_scale", 0, &z, &sc);
        if (!rc)
            rc = w_str(&x->w, md, "source", "spikecl " SPIKECL_VERSION);
        if (md >= 0 && H5Gclose(md) < 0 && !rc)
            rc = w_fail(&x->w, "the group 'metadata'");
    }
    if (x->nodes >= 0 && H5Gclose(x->nodes) < 0 && !rc)
        rc = w_fail(&x->w, "the group 'nodes'");
    if (H5Gclose(root) < 0 && !rc)
        rc = w_fail(&x->w, "the group 'node'");
    return rc;
}

int spk_nir_export(spk_session *s, const char *path, const spk_nir_options *opt, spk_error *err)
{
    if (!s || !path)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_nir_export: no session or path");
    spk_nir_options def = {0};
    spk_error local = {0};
    if (!err)
        err = &local;
    err->code = 0;
    nir_export x;
    memset(&x, 0, sizeof x);
    x.s = s;
    x.opt = opt ? opt : &def;
    x.dt = x.opt->dt > 0 ? x.opt->dt : NIR_DEFAULT_DT;
    x.w.path = path;
    x.w.err = err;
    x.err = err;
    x.nodes = -1;
    x.src = calloc((size_t)s->n_nodes, sizeof *x.src);
    if (!x.src)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    h5_quiet q;
    h5_silence(&q);
    /* the file is built in memory (HDF5's core driver), then written atomically */
    int rc = SPK_OK;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0)
        rc = w_fail(&x.w, "a file access list");
    hid_t file = rc ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (!rc && file < 0)
        rc = w_fail(&x.w, "the file");
    if (!rc)
        rc = export_graph(&x, file);
    spk_strbuf img = SPK_STRBUF_INIT;
    if (!rc && H5Fflush(file, H5F_SCOPE_GLOBAL) < 0)
        rc = w_fail(&x.w, "the file");
    if (!rc) {
        ssize_t n = H5Fget_file_image(file, NULL, 0);
        if (n <= 0)
            rc = w_fail(&x.w, "the file image");
        else if (!(img.s = malloc((size_t)n)))
            rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        else if (H5Fget_file_image(file, img.s, (size_t)n) != n)
            rc = w_fail(&x.w, "the file image");
        img.len = (size_t)(n > 0 ? n : 0);
    }
    if (file >= 0 && H5Fclose(file) < 0 && !rc)
        rc = w_fail(&x.w, "the file");
    if (fapl >= 0)
        H5Pclose(fapl);
    h5_restore(&q);
    if (!rc)
        rc = spk_fs_write_atomic(path, 0644, fill_image, &img, err);
    free(img.s);
    for (int i = 0; i < s->n_nodes; i++)
        src_clear(&x.src[i]);
    free(x.src);
    edges_clear(&x.edges);
    return rc;
}

/* ---- reading ---- */

typedef struct nir_arr {
    char *name;
    int ndim;
    hsize_t dims[NIR_MAX_NDIM];
    size_t n;
    double *v;   /* numbers (integer and float datasets) */
    char **strs; /* strings, n of them */
} nir_arr;

enum {
    NK_INPUT,
    NK_OUTPUT,
    NK_AFFINE,
    NK_LINEAR,
    NK_CONV,
    NK_AVGPOOL,
    NK_FLATTEN,
    NK_LIF,
    NK_IF,
    NK_CUBALIF,
};

typedef struct nir_node {
    char *name;
    char *type;
    int kind;
    int n_arr;
    nir_arr *arr;
    int n_in, cap_in;
    int *in;
    int n_out;
    int keep;          /* an ancestor of the Output */
    char lname[64];    /* the spikecl layer that holds its output */
    int ndim, dims[4]; /* per-sample output shape */
} nir_node;

typedef struct nir_reader {
    const char *path;
    spk_error *err;
    int n;
    nir_node *nodes;
    double dt, input_scale;
    int time_steps;
} nir_reader;

static void arr_clear(nir_arr *a)
{
    free(a->name);
    free(a->v);
    if (a->strs)
        for (size_t i = 0; i < a->n; i++)
            free(a->strs[i]);
    free(a->strs);
}

static int r_fail(nir_reader *r, int code, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int r_fail(nir_reader *r, int code, const char *node, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (node)
        return spk_error_set(r->err, code, "%s: node '%s': %s", r->path, node, msg);
    return spk_error_set(r->err, code, "%s: %s", r->path, msg);
}

/* libhdf5 allocates a global heap collection as large as the collection's header says before it
 * checks that against the end of the file, so a damaged header costs gigabytes. A contiguous
 * variable-length string dataset is therefore checked first, from the raw bytes: each element is
 * a 4-byte length, the collection's address and a 4-byte index (HDF5 file format spec, "Global
 * Heap ID" and "Global Heap Collection": "GCOL", version, 3 reserved, collection size). */
#define NIR_MAX_STRING (1u << 16)

static uint64_t le_uint(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int vlen_heaps_ok(nir_reader *r, hid_t d, size_t n, const char *node, const char *dname)
{
    if (n == 0)
        return SPK_OK;
    /* compact or chunked storage would need its own parsing to check: nir.write (h5py) stores
     * strings contiguously, and other layouts are refused */
    haddr_t off = H5Dget_offset(d);
    if (off == HADDR_UNDEF)
        return r_fail(r, SPK_ERR_UNSUPPORTED, node,
                      "dataset '%s': variable-length strings are read from contiguous storage "
                      "only (as h5py writes them)",
                      dname);
    hid_t fid = H5Iget_file_id(d);
    hid_t fcpl = fid >= 0 ? H5Fget_create_plist(fid) : -1;
    size_t sa = 0, ss = 0;
    hsize_t ub = 0;
    int ok = fcpl >= 0 && H5Pget_sizes(fcpl, &sa, &ss) >= 0 && H5Pget_userblock(fcpl, &ub) >= 0;
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (fid >= 0)
        H5Fclose(fid);
    if (!ok || sa < 2 || sa > 8 || ss < 2 || ss > 8)
        return r_fail(r, SPK_ERR_PARSE, node, "dataset '%s': unreadable file parameters", dname);
    FILE *f = fopen(r->path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        if (f)
            fclose(f);
        return spk_error_set(r->err, SPK_ERR_IO, "%s: %s", r->path, strerror(errno));
    }
    const uint64_t end = (uint64_t)st.st_size;
    const size_t el = 4 + sa + 4;
    int rc = SPK_OK;
    uint64_t last = UINT64_MAX, csize = 0;
    unsigned char *c = NULL; /* the collection at `last` */
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char e[24], h[24];
        uint64_t at = (uint64_t)ub + (uint64_t)off + (uint64_t)i * el;
        if (at + el > end || fseeko(f, (off_t)at, SEEK_SET) != 0 || fread(e, 1, el, f) != el) {
            rc =
                r_fail(r, SPK_ERR_PARSE, node, "dataset '%s' lies past the end of the file", dname);
            break;
        }
        uint64_t len = le_uint(e, 4), heap = le_uint(e + 4, (int)sa);
        uint64_t want = le_uint(e + 4 + sa, 4);
        if (len == 0)
            continue;
        if (len > NIR_MAX_STRING) {
            rc = r_fail(r, SPK_ERR_PARSE, node, "dataset '%s': a string of %llu bytes", dname,
                        (unsigned long long)len);
            break;
        }
        if (heap != last) {
            free(c);
            c = NULL;
            last = UINT64_MAX;
            uint64_t hat = (uint64_t)ub + heap;
            if (heap >= end || hat + 8 + ss > end || fseeko(f, (off_t)hat, SEEK_SET) != 0 ||
                fread(h, 1, 8 + ss, f) != 8 + ss || memcmp(h, "GCOL", 4) != 0 ||
                (csize = le_uint(h + 8, (int)ss)) > end - hat || csize > (1u << 26) ||
                csize < 8 + ss) {
                rc = r_fail(r, SPK_ERR_PARSE, node,
                            "dataset '%s': a string's heap is damaged or past the end of the file",
                            dname);
                break;
            }
            if (!(c = malloc((size_t)csize))) {
                rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
                break;
            }
            if (fseeko(f, (off_t)hat, SEEK_SET) != 0 || fread(c, 1, csize, f) != csize) {
                rc = r_fail(r, SPK_ERR_PARSE, node, "dataset '%s': cannot read a string's heap",
                            dname);
                break;
            }
            last = heap;
        }
        /* the collection's objects (index 2 bytes, references 2, reserved 4, size, data padded
         * to 8; index 0 is free space) must all lie inside it, and the string's object must be
         * one of them and as long as the string: libhdf5 copies an object as long as its size
         * says */
        int found = 0;
        for (uint64_t p = 8 + ss; p + 8 + ss <= csize;) {
            uint64_t oi = le_uint(c + p, 2), os = le_uint(c + p + 8, (int)ss);
            if (oi == 0) { /* free space: libhdf5 steps over its size, header included, and
                            * would loop for ever on a size of 0 */
                if (os < 8 + ss || os > csize - p) {
                    found = 0;
                    break;
                }
                p += os;
                continue;
            }
            if (os > csize - (p + 8 + ss)) { /* libhdf5 would take it as it stands */
                found = 0;
                break;
            }
            if (oi == want)
                found = os >= len;
            p += 8 + ss + ((os + 7) & ~(uint64_t)7);
        }
        if (!found)
            rc = r_fail(r, SPK_ERR_PARSE, node, "dataset '%s': a string's heap is damaged", dname);
    }
    free(c);
    fclose(f);
    return rc;
}

/* A variable-length string's base type must be one byte: libhdf5 sizes its conversion buffer
 * by it (a damaged one asked for 8 GB). */
static int vlen_chars(hid_t t)
{
    hid_t b = H5Tget_super(t);
    if (b < 0)
        return 0;
    size_t sz = H5Tget_size(b);
    H5Tclose(b);
    return sz == 1;
}

/* Reads a dataset whole: numbers as doubles, strings (fixed or variable length) as copies. */
static int r_dataset(nir_reader *r, hid_t loc, const char *dname, const char *node, nir_arr *a)
{
    char hb[160];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(dname)))
        return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    hid_t d = H5Dopen2(loc, dname, H5P_DEFAULT);
    if (d < 0)
        return r_fail(r, SPK_ERR_PARSE, node, "cannot open dataset '%s' (%s)", dname, h5_msg(hb));
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int rc = SPK_OK;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (t < 0 || nd < 0)
        rc = r_fail(r, SPK_ERR_PARSE, node, "dataset '%s' is unreadable (%s)", dname, h5_msg(hb));
    else if (nd > NIR_MAX_NDIM)
        rc = r_fail(r, SPK_ERR_SHAPE, node, "dataset '%s' has %d dimensions (at most %d)", dname,
                    nd, NIR_MAX_NDIM);
    if (!rc) {
        a->ndim = nd;
        if (nd && H5Sget_simple_extent_dims(sp, a->dims, NULL) < 0)
            rc = r_fail(r, SPK_ERR_PARSE, node, "dataset '%s': no dimensions (%s)", dname,
                        h5_msg(hb));
        a->n = 1;
        for (int i = 0; !rc && i < nd; i++) {
            if (a->dims[i] > spk_nir_max_values ||
                (a->n *= (size_t)a->dims[i]) > spk_nir_max_values)
                rc = r_fail(r, SPK_ERR_SHAPE, node, "dataset '%s' is too large (over %zu values)",
                            dname, spk_nir_max_values);
        }
        if (!rc && H5Sget_simple_extent_type(sp) == H5S_NULL)
            a->n = 0;
    }
    H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (!rc && (c == H5T_INTEGER || c == H5T_FLOAT)) {
        if (!(a->v = malloc((a->n ? a->n : 1) * sizeof *a->v)))
            rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
        else if (a->n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->v) < 0)
            rc = r_fail(r, SPK_ERR_PARSE, node, "cannot read dataset '%s' (%s)", dname, h5_msg(hb));
    } else if (!rc && c == H5T_STRING) {
        htri_t var = H5Tis_variable_str(t);
        size_t sz = H5Tget_size(t);
        hid_t mt = H5Tcopy(H5T_C_S1);
        if (!(a->strs = calloc(a->n ? a->n : 1, sizeof *a->strs)))
            rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
        else if (var < 0 || mt < 0 || H5Tset_size(mt, var > 0 ? H5T_VARIABLE : sz) < 0 ||
                 H5Tset_cset(mt, H5Tget_cset(t)) < 0)
            rc = r_fail(r, SPK_ERR_PARSE, node, "dataset '%s': bad string type (%s)", dname,
                        h5_msg(hb));
        else if (var > 0 && a->n) {
            char **buf = calloc(a->n, sizeof *buf);
            if (!buf)
                rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
            else if ((rc = vlen_heaps_ok(r, d, a->n, node, dname)))
                ;
            else if (!vlen_chars(t))
                rc = r_fail(r, SPK_ERR_PARSE, node,
                            "dataset '%s': a variable-length string whose characters are not "
                            "bytes",
                            dname);
            else if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
                rc = r_fail(r, SPK_ERR_PARSE, node, "cannot read dataset '%s' (%s)", dname,
                            h5_msg(hb));
            for (size_t i = 0; buf && i < a->n; i++) {
                if (!rc && !(a->strs[i] = strdup(buf[i] ? buf[i] : "")))
                    rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
                if (buf[i])
                    H5free_memory(buf[i]);
            }
            free(buf);
        } else if (a->n) {
            if (sz == 0 || sz > 1u << 20 || a->n > (spk_nir_max_values / sz))
                rc = r_fail(r, SPK_ERR_SHAPE, node, "dataset '%s': strings too large", dname);
            char *buf = rc ? NULL : malloc(a->n * sz);
            if (!rc && !buf)
                rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
            else if (!rc && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
                rc = r_fail(r, SPK_ERR_PARSE, node, "cannot read dataset '%s' (%s)", dname,
                            h5_msg(hb));
            for (size_t i = 0; !rc && i < a->n; i++)
                if (!(a->strs[i] = strndup(buf + i * sz, sz)))
                    rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
            free(buf);
        }
        if (mt >= 0)
            H5Tclose(mt);
    } else if (!rc) {
        rc =
            r_fail(r, SPK_ERR_PARSE, node,
                   "dataset '%s' holds neither numbers nor strings (HDF5 class %d)", dname, (int)c);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    H5Dclose(d);
    return rc;
}

typedef struct name_list {
    int n, cap;
    char **v;
    int oom;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *ctx)
{
    (void)g;
    (void)info;
    name_list *l = ctx;
    if (l->n >= NIR_MAX_NODES)
        return 1; /* stop: the caller reports too many */
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            l->oom = 1;
            return -1;
        }
        l->v = nv;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(name))) {
        l->oom = 1;
        return -1;
    }
    l->n++;
    return 0;
}

static void name_list_clear(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* The links of a group, in name order. */
static int r_links(nir_reader *r, hid_t g, const char *what, name_list *out)
{
    char hb[160];
    memset(out, 0, sizeof *out);
    hsize_t idx = 0;
    herr_t e = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, out);
    if (out->oom)
        return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    if (e < 0)
        return r_fail(r, SPK_ERR_PARSE, NULL, "cannot list %s (%s)", what, h5_msg(hb));
    if (e > 0)
        return r_fail(r, SPK_ERR_UNSUPPORTED, NULL, "%s: more than %d entries", what,
                      NIR_MAX_NODES);
    return SPK_OK;
}

static int is_dataset(hid_t g, const char *name)
{
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0)
        return -1;
    H5I_type_t t = H5Iget_type(o);
    H5Oclose(o);
    return t == H5I_DATASET;
}

static const struct {
    const char *type;
    int kind;
} nir_kinds[] = {
    {"Input", NK_INPUT}, {"Output", NK_OUTPUT},     {"Affine", NK_AFFINE},   {"Linear", NK_LINEAR},
    {"Conv2d", NK_CONV}, {"AvgPool2d", NK_AVGPOOL}, {"Flatten", NK_FLATTEN}, {"LIF", NK_LIF},
    {"IF", NK_IF},       {"CubaLIF", NK_CUBALIF},
};

static int r_node(nir_reader *r, hid_t nodes, const char *name, nir_node *nd)
{
    char hb[160];
    if (!(nd->name = strdup(name)))
        return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    hid_t g = H5Gopen2(nodes, name, H5P_DEFAULT);
    if (g < 0)
        return r_fail(r, SPK_ERR_PARSE, name, "not a group (%s)", h5_msg(hb));
    name_list ls;
    int rc = r_links(r, g, "a node", &ls);
    if (!rc && !(nd->arr = calloc((size_t)(ls.n ? ls.n : 1), sizeof *nd->arr)))
        rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < ls.n; i++) {
        int ds = is_dataset(g, ls.v[i]);
        if (ds < 0)
            rc = r_fail(r, SPK_ERR_PARSE, name, "cannot open '%s' (%s)", ls.v[i], h5_msg(hb));
        else if (ds) {
            rc = r_dataset(r, g, ls.v[i], name, &nd->arr[nd->n_arr]);
            nd->n_arr++;
        }
        /* groups (metadata, a sub-graph's nodes) are not read: the type decides */
    }
    name_list_clear(&ls);
    H5Gclose(g);
    if (rc)
        return rc;
    const nir_arr *t = NULL;
    for (int i = 0; i < nd->n_arr; i++)
        if (strcmp(nd->arr[i].name, "type") == 0)
            t = &nd->arr[i];
    if (!t)
        return r_fail(r, SPK_ERR_PARSE, name, "no dataset 'type'");
    if (!t->strs || t->n != 1)
        return r_fail(r, SPK_ERR_PARSE, name, "'type' is not a string");
    if (!(nd->type = strdup(t->strs[0])))
        return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < sizeof nir_kinds / sizeof nir_kinds[0]; i++)
        if (strcmp(nd->type, nir_kinds[i].type) == 0) {
            nd->kind = nir_kinds[i].kind;
            return SPK_OK;
        }
    if (strcmp(nd->type, "SumPool2d") == 0)
        return r_fail(r, SPK_ERR_UNSUPPORTED, name,
                      "type SumPool2d has no spikecl layer (pool.avg2d is AvgPool2d; a sum is "
                      "kernel^2 times the average)");
    return r_fail(r, SPK_ERR_UNSUPPORTED, name,
                  "type '%.60s' is not one spikecl imports (Input, Output, Affine, Linear, "
                  "Conv2d, AvgPool2d, Flatten, LIF, IF, CubaLIF)",
                  nd->type);
}

/* A numeric dataset of the node; NULL (with err set when required) if absent or not numbers. */
static const nir_arr *get_arr(nir_reader *r, const nir_node *nd, const char *name, int required)
{
    for (int i = 0; i < nd->n_arr; i++)
        if (strcmp(nd->arr[i].name, name) == 0) {
            if (!nd->arr[i].v) {
                r_fail(r, SPK_ERR_PARSE, nd->name, "dataset '%s' holds no numbers", name);
                return NULL;
            }
            return &nd->arr[i];
        }
    if (required)
        r_fail(r, SPK_ERR_PARSE, nd->name, "no dataset '%s' (a %s node needs it)", name, nd->type);
    return NULL;
}

/* A square 2-d parameter (scalar or a pair of equal integers) -> *v. */
static int get_pair(nir_reader *r, const nir_node *nd, const char *name, int required, int def,
                    int *v)
{
    const nir_arr *a = get_arr(r, nd, name, required);
    if (!a) {
        if (required || r->err->code)
            return r->err->code ? r->err->code : SPK_ERR_PARSE;
        *v = def;
        return SPK_OK;
    }
    if (a->n != 1 && a->n != 2)
        return r_fail(r, SPK_ERR_SHAPE, nd->name, "'%s' has %zu values, expected 1 or 2", name,
                      a->n);
    if (a->n == 2 && a->v[0] != a->v[1])
        return r_fail(r, SPK_ERR_UNSUPPORTED, nd->name,
                      "'%s' is (%g, %g): spikecl's layers take equal height and width", name,
                      a->v[0], a->v[1]);
    if (a->v[0] != floor(a->v[0]) || a->v[0] < 0 || a->v[0] > 1e6)
        return r_fail(r, SPK_ERR_INVALID, nd->name, "'%s' is %g, expected a count", name, a->v[0]);
    *v = (int)a->v[0];
    return SPK_OK;
}

static void nodes_free(nir_reader *r)
{
    for (int i = 0; i < r->n; i++) {
        nir_node *nd = &r->nodes[i];
        for (int j = 0; j < nd->n_arr; j++)
            arr_clear(&nd->arr[j]);
        free(nd->arr);
        free(nd->in);
        free(nd->name);
        free(nd->type);
    }
    free(r->nodes);
    r->nodes = NULL;
    r->n = 0;
}

static int find_node(const nir_reader *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->nodes[i].name, name) == 0)
            return i;
    return -1;
}

static double meta_num(nir_reader *r, hid_t root, const char *key, double def, int *rc)
{
    htri_t has = H5Lexists(root, "metadata", H5P_DEFAULT);
    if (has <= 0)
        return def;
    hid_t md = H5Gopen2(root, "metadata", H5P_DEFAULT);
    if (md < 0)
        return def; /* metadata that is not a group: nir.read ignores it as well */
    double v = def;
    if (H5Lexists(md, key, H5P_DEFAULT) > 0 && is_dataset(md, key) > 0) {
        nir_arr a;
        *rc = r_dataset(r, md, key, "metadata", &a);
        if (!*rc && a.v && a.n == 1)
            v = a.v[0];
        else if (!*rc)
            *rc = r_fail(r, SPK_ERR_PARSE, "metadata", "'%s' is not a number", key);
        arr_clear(&a);
    }
    H5Gclose(md);
    H5Eclear2(H5E_DEFAULT);
    return v;
}

/* Opens the file and reads every node and edge into r. */
static int r_graph(nir_reader *r)
{
    char hb[160];
    struct stat st;
    if (stat(r->path, &st) != 0)
        return spk_error_set(r->err, SPK_ERR_IO, "%s: %s", r->path, strerror(errno));
    hid_t f = H5Fopen(r->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return r_fail(r, SPK_ERR_PARSE, NULL, "not an HDF5 file, or a damaged one (%s)",
                      h5_msg(hb));
    int rc = SPK_OK;
    hid_t root = -1, nodes = -1;
    if (H5Lexists(f, "node", H5P_DEFAULT) <= 0 || (root = H5Gopen2(f, "node", H5P_DEFAULT)) < 0)
        rc = r_fail(r, SPK_ERR_PARSE, NULL, "no group 'node' (not a NIR file?)");
    if (!rc) {
        nir_arr t;
        if (H5Lexists(root, "type", H5P_DEFAULT) <= 0)
            rc = r_fail(r, SPK_ERR_PARSE, NULL, "no dataset 'node/type'");
        else if (!(rc = r_dataset(r, root, "type", "/", &t)) &&
                 (!t.strs || t.n != 1 || strcmp(t.strs[0], "NIRGraph") != 0))
            rc = r_fail(r, SPK_ERR_PARSE, NULL, "'node/type' is not \"NIRGraph\"");
        if (H5Lexists(root, "type", H5P_DEFAULT) > 0)
            arr_clear(&t);
    }
    if (!rc && (H5Lexists(root, "nodes", H5P_DEFAULT) <= 0 ||
                (nodes = H5Gopen2(root, "nodes", H5P_DEFAULT)) < 0))
        rc = r_fail(r, SPK_ERR_PARSE, NULL, "no group 'node/nodes'");
    name_list ls = {0};
    if (!rc)
        rc = r_links(r, nodes, "node/nodes", &ls);
    if (!rc && !(r->nodes = calloc((size_t)(ls.n ? ls.n : 1), sizeof *r->nodes)))
        rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < ls.n; i++) {
        r->n++;
        rc = r_node(r, nodes, ls.v[i], &r->nodes[i]);
    }
    name_list_clear(&ls);
    nir_arr e;
    memset(&e, 0, sizeof e);
    if (!rc) {
        if (H5Lexists(root, "edges", H5P_DEFAULT) <= 0)
            rc = r_fail(r, SPK_ERR_PARSE, NULL, "no dataset 'node/edges'");
        else
            rc = r_dataset(r, root, "edges", "/", &e);
    }
    if (!rc && e.n > 0 && (!e.strs || e.ndim != 2 || e.dims[1] != 2))
        rc = r_fail(r, SPK_ERR_SHAPE, NULL, "'node/edges' is not an [n, 2] array of node names");
    for (size_t i = 0; !rc && e.strs && i < e.n / 2; i++) {
        const char *a = e.strs[2 * i], *b = e.strs[2 * i + 1];
        int ia = find_node(r, a), ib = find_node(r, b);
        if (ia < 0 || ib < 0) {
            rc = r_fail(r, SPK_ERR_PARSE, NULL, "edge ('%.60s', '%.60s') names no node '%.60s'", a,
                        b, ia < 0 ? a : b);
            break;
        }
        nir_node *t = &r->nodes[ib];
        int dup = 0;
        for (int k = 0; k < t->n_in; k++)
            dup |= t->in[k] == ia;
        if (dup)
            continue; /* a repeated edge: once (snnTorch's importer does the same) */
        if (t->n_in == t->cap_in) {
            int cap = t->cap_in ? 2 * t->cap_in : 2;
            int *ni = realloc(t->in, (size_t)cap * sizeof *ni);
            if (!ni) {
                rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
                break;
            }
            t->in = ni;
            t->cap_in = cap;
        }
        t->in[t->n_in++] = ia;
        r->nodes[ia].n_out++;
    }
    arr_clear(&e);
    if (!rc) {
        r->dt = meta_num(r, root, "dt", 0.0, &rc);
        if (!rc)
            r->input_scale = meta_num(r, root, "input_scale", 0.0, &rc);
        if (!rc) {
            double T = meta_num(r, root, "time_steps", 0.0, &rc);
            r->time_steps = T >= 1 && T <= 1e6 && T == floor(T) ? (int)T : 0;
        }
    }
    if (nodes >= 0)
        H5Gclose(nodes);
    if (root >= 0)
        H5Gclose(root);
    H5Fclose(f);
    return rc;
}

/* ---- import: the graph as spikecl layers ---- */

typedef struct nir_out {
    spk_strbuf yaml;
    int n_t, cap_t;
    spk_st_tensor *t;
    const char *prev; /* the last layer written, for `from:` */
    double dt;
    int approximate;
} nir_out;

/* A tensor of model.safetensors ("layer.wname"); every value must be a finite float32. */
static int out_tensor(nir_reader *r, nir_out *o, const nir_node *nd, const char *wname, int ndim,
                      const int64_t *shape, const double *v, size_t n)
{
    const char *layer = nd->lname;
    for (size_t i = 0; i < n; i++)
        if (!isfinite((float)v[i]))
            return r_fail(r, SPK_ERR_INVALID, nd->name,
                          "%s holds %g at %zu, which is not a finite float32", wname, v[i], i);
    if (o->n_t == o->cap_t) {
        int cap = o->cap_t ? 2 * o->cap_t : 16;
        spk_st_tensor *nt = realloc(o->t, (size_t)cap * sizeof *nt);
        if (!nt)
            return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
        o->t = nt;
        o->cap_t = cap;
    }
    spk_st_tensor *t = &o->t[o->n_t];
    memset(t, 0, sizeof *t);
    size_t len = strlen(layer) + strlen(wname) + 2;
    t->name = malloc(len);
    t->data = malloc((n ? n : 1) * sizeof *t->data);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    }
    snprintf(t->name, len, "%s.%s", layer, wname);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    for (size_t i = 0; i < n; i++)
        t->data[i] = (float)v[i];
    o->n_t++;
    return SPK_OK;
}

static int shape_size(const nir_node *nd)
{
    int n = 1;
    for (int i = 0; i < nd->ndim; i++)
        n *= nd->dims[i];
    return n;
}

/* Starts a layer entry: "  - {name: N, type: T" and from: when its input is not the previous
 * layer. The caller appends its parameters and "}\n". */
static void layer_head(nir_out *o, const char *name, const char *type, int n_src,
                       const char *const *src)
{
    spk_strbuf_appendf(&o->yaml, "  - {name: %s, type: %s", name, type);
    if (n_src > 1 || (n_src == 1 && (!o->prev || strcmp(o->prev, src[0]) != 0))) {
        spk_strbuf_appendf(&o->yaml, ", from: [");
        for (int i = 0; i < n_src; i++)
            spk_strbuf_appendf(&o->yaml, "%s%s", i ? ", " : "", src[i]);
        spk_strbuf_appendf(&o->yaml, "]");
    }
    o->prev = name;
}

/* A neuron parameter: one value, or one per neuron (n) -> vals[n]. */
static int neuron_param(nir_reader *r, const nir_node *nd, const char *name, int required,
                        double def, int n, double *vals)
{
    const nir_arr *a = get_arr(r, nd, name, required);
    if (!a) {
        if (r->err->code)
            return r->err->code;
        for (int i = 0; i < n; i++)
            vals[i] = def;
        return SPK_OK;
    }
    if (a->n != 1 && a->n != (size_t)n)
        return r_fail(r, SPK_ERR_SHAPE, nd->name,
                      "'%s' has %zu values, expected 1 or one per neuron (%d)", name, a->n, n);
    for (int i = 0; i < n; i++)
        vals[i] = a->v[a->n == 1 ? 0 : i];
    return SPK_OK;
}

static int all_same(const double *v, int n)
{
    for (int i = 1; i < n; i++)
        if (v[i] != v[0])
            return 0;
    return 1;
}

/* Writes a [1] or [N] neuron weight and its YAML keys (`key: v` or per_neuron_key: true). */
static int neuron_weight(nir_reader *r, nir_out *o, const nir_node *nd, const char *key,
                         const double *v, int n)
{
    int same = all_same(v, n);
    int64_t shape = same ? 1 : n;
    if (same)
        spk_strbuf_appendf(&o->yaml, ", %s: %.9g", key, (double)(float)v[0]);
    else
        spk_strbuf_appendf(&o->yaml, ", per_neuron_%s: true", key);
    return out_tensor(r, o, nd, key, 1, &shape, v, same ? 1 : (size_t)n);
}

/* decay = 1 - dt / tau, which must lie in [0, 1] (tau >= dt; infinite tau: no leak) */
static int decay_of(nir_reader *r, const nir_node *nd, const char *name, double dt,
                    const double *tau, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        if (isnan(tau[i]) || tau[i] < dt)
            return r_fail(r, SPK_ERR_INVALID, nd->name,
                          "'%s' is %g at neuron %d, below the step dt = %g (give --dt?)", name,
                          tau[i], i, dt);
        out[i] = isinf(tau[i]) ? 1.0 : 1.0 - dt / tau[i];
    }
    return SPK_OK;
}

/* LIF, IF, CubaLIF -> neuron.lif / neuron.if / neuron.synaptic with reset: zero. NIR's input
 * gain g (r dt / tau for LIF, r for IF) has no spikecl parameter: the membrane is kept divided
 * by g instead, so threshold and reset value are divided by g (spikes are unchanged). */
static int import_neuron(nir_reader *r, nir_out *o, nir_node *nd, const char *src)
{
    const int n = shape_size(nd);
    const double dt = o->dt;
    double *buf = malloc((size_t)n * 8 * sizeof *buf);
    if (!buf)
        return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    double *tau = buf, *rr = buf + n, *leak = buf + 2 * n, *thr = buf + 3 * n, *vr = buf + 4 * n,
           *tsyn = buf + 5 * n, *win = buf + 6 * n, *g = buf + 7 * n;
    int rc = SPK_OK;
    const char *type = nd->kind == NK_LIF  ? "neuron.lif"
                       : nd->kind == NK_IF ? "neuron.if"
                                           : "neuron.synaptic";
    if (nd->kind == NK_CUBALIF && !o->approximate)
        return free(buf), r_fail(r, SPK_ERR_UNSUPPORTED, nd->name,
                                 "CubaLIF resets the membrane at the spike's step, "
                                 "neuron.synaptic at the next one (docs/NIR.md): "
                                 "--approximate imports it anyway");
    if (nd->kind == NK_LIF)
        rc = neuron_param(r, nd, "tau", 1, 0, n, tau);
    if (nd->kind == NK_CUBALIF) {
        rc = neuron_param(r, nd, "tau_mem", 1, 0, n, tau);
        if (!rc)
            rc = neuron_param(r, nd, "tau_syn", 1, 0, n, tsyn);
        if (!rc)
            rc = neuron_param(r, nd, "w_in", 0, 1.0, n, win);
    }
    if (!rc)
        rc = neuron_param(r, nd, "r", 1, 0, n, rr);
    if (!rc)
        rc = neuron_param(r, nd, "v_leak", nd->kind != NK_IF, 0.0, n, leak);
    if (!rc)
        rc = neuron_param(r, nd, "v_threshold", 1, 0, n, thr);
    if (!rc)
        rc = neuron_param(r, nd, "v_reset", 0, 0.0, n, vr);
    for (int i = 0; !rc && i < n; i++) {
        if (leak[i] != 0.0)
            rc = r_fail(r, SPK_ERR_UNSUPPORTED, nd->name,
                        "v_leak is %g at neuron %d: spikecl's neurons leak towards 0", leak[i], i);
        else if (nd->kind == NK_LIF)
            g[i] = isinf(tau[i]) ? NAN : rr[i] * dt / tau[i];
        else if (nd->kind == NK_IF)
            g[i] = rr[i];
        else
            g[i] = isinf(tau[i]) || isinf(tsyn[i])
                       ? NAN
                       : (win[i] * dt / tsyn[i]) * (rr[i] * dt / tau[i]);
        if (!rc && fabs(g[i] - 1.0) < 1e-6)
            g[i] = 1.0; /* r = tau / dt up to float32 storage (snnTorch writes float32) */
        if (!rc && !(g[i] > 0.0 && isfinite(g[i])))
            rc = r_fail(r, SPK_ERR_INVALID, nd->name,
                        "the input gain (r dt / tau, or r) is %g at neuron %d, expected a "
                        "positive number",
                        g[i], i);
        if (!rc) {
            thr[i] /= g[i];
            vr[i] /= g[i];
        }
        if (!rc && !isfinite((float)vr[i]))
            rc =
                r_fail(r, SPK_ERR_INVALID, nd->name, "v_reset / gain is %g at neuron %d", vr[i], i);
        if (!rc && nd->kind == NK_CUBALIF && vr[i] != 0.0)
            rc = r_fail(r, SPK_ERR_UNSUPPORTED, nd->name,
                        "v_reset is %g: neuron.synaptic resets to 0 only", vr[i]);
    }
    if (!rc && !all_same(vr, n))
        rc = r_fail(r, SPK_ERR_UNSUPPORTED, nd->name,
                    "v_reset / gain differs between neurons: spikecl has one reset_value");
    if (!rc) {
        layer_head(o, nd->lname, type, 1, &src);
        spk_strbuf_appendf(&o->yaml, ", reset: zero");
        if (nd->kind != NK_CUBALIF && vr[0] != 0.0)
            spk_strbuf_appendf(&o->yaml, ", reset_value: %.9g", (double)(float)vr[0]);
    }
    if (!rc && nd->kind == NK_CUBALIF) {
        double *alpha = leak; /* v_leak is all zeros, reuse it */
        rc = decay_of(r, nd, "tau_syn", dt, tsyn, n, alpha);
        if (!rc)
            rc = neuron_weight(r, o, nd, "alpha", alpha, n);
    }
    if (!rc && nd->kind != NK_IF) {
        double *beta = tsyn; /* consumed */
        rc = decay_of(r, nd, nd->kind == NK_LIF ? "tau" : "tau_mem", dt, tau, n, beta);
        if (!rc)
            rc = neuron_weight(r, o, nd, "beta", beta, n);
    }
    if (!rc)
        rc = neuron_weight(r, o, nd, "threshold", thr, n);
    if (!rc)
        spk_strbuf_appendf(&o->yaml, "}\n");
    free(buf);
    return rc;
}

/* The spikecl layer name for a NIR node: [A-Za-z0-9_-], unique, short enough for weight names. */
static void layer_name(nir_reader *r, int idx)
{
    nir_node *nd = &r->nodes[idx];
    char base[48];
    size_t k = 0;
    for (const char *p = nd->name; *p && k < sizeof base - 1; p++) {
        unsigned char c = (unsigned char)*p;
        base[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '_' || c == '-'
                        ? (char)c
                        : '_';
    }
    base[k] = 0;
    if (!k)
        snprintf(base, sizeof base, "node");
    snprintf(nd->lname, sizeof nd->lname, "%s", base);
    for (int n = 2;; n++) {
        int taken = 0;
        for (int i = 0; i < r->n && !taken; i++)
            taken = i != idx && r->nodes[i].lname[0] && strcmp(r->nodes[i].lname, nd->lname) == 0;
        /* "<name>_sum" is kept for the merge layer of a node with several inputs */
        if (!taken)
            return;
        snprintf(nd->lname, sizeof nd->lname, "%s_%d", base, n);
    }
}

static int import_node(nir_reader *r, nir_out *o, int idx)
{
    nir_node *nd = &r->nodes[idx];
    char sum[72];
    const char *src = NULL;
    int rc = SPK_OK;
    /* several inputs are summed: a merge.add layer first */
    if (nd->n_in > 1) {
        if (nd->n_in > SPK_MAX_INPUTS)
            return r_fail(r, SPK_ERR_UNSUPPORTED, nd->name, "%d inputs (at most %d are summed)",
                          nd->n_in, SPK_MAX_INPUTS);
        const char *names[SPK_MAX_INPUTS];
        const nir_node *first = &r->nodes[nd->in[0]];
        for (int i = 0; i < nd->n_in; i++) {
            const nir_node *p = &r->nodes[nd->in[i]];
            names[i] = p->lname;
            if (shape_size(p) != shape_size(first))
                return r_fail(r, SPK_ERR_SHAPE, nd->name,
                              "its inputs '%s' (%d values) and '%s' (%d values) cannot be summed",
                              first->name, shape_size(first), p->name, shape_size(p));
        }
        snprintf(sum, sizeof sum, "%s_sum", nd->lname);
        layer_head(o, sum, "merge.add", nd->n_in, names);
        spk_strbuf_appendf(&o->yaml, "}\n");
        src = sum;
    } else if (nd->n_in == 1) {
        src = r->nodes[nd->in[0]].lname;
    } else if (nd->kind != NK_INPUT) {
        return r_fail(r, SPK_ERR_INVALID, nd->name, "no input edge (only the Input has none)");
    }
    if (nd->n_in >= 1) {
        const nir_node *p = &r->nodes[nd->in[0]];
        nd->ndim = p->ndim;
        memcpy(nd->dims, p->dims, sizeof nd->dims);
    }
    const int in_n = shape_size(nd);
    switch (nd->kind) {
    case NK_INPUT: {
        const nir_arr *a = get_arr(r, nd, "shape", 1);
        if (!a)
            return r->err->code;
        if (a->n < 1 || a->n > 3)
            return r_fail(r, SPK_ERR_SHAPE, nd->name, "'shape' has %zu dimensions, expected 1 to 3",
                          a->n);
        nd->ndim = (int)a->n;
        long total = 1;
        for (size_t i = 0; i < a->n; i++) {
            if (a->v[i] < 1 || a->v[i] > 1e7 || a->v[i] != floor(a->v[i]))
                return r_fail(r, SPK_ERR_SHAPE, nd->name, "'shape' holds %g", a->v[i]);
            nd->dims[i] = (int)a->v[i];
            total *= nd->dims[i];
        }
        if (total > (1L << 26))
            return r_fail(r, SPK_ERR_SHAPE, nd->name, "the input has %ld values (too many)", total);
        layer_head(o, nd->lname, "encoder.direct", 0, NULL);
        spk_strbuf_appendf(&o->yaml, "}\n");
        return SPK_OK;
    }
    case NK_FLATTEN: {
        const nir_arr *s = get_arr(r, nd, "start_dim", 0), *e = get_arr(r, nd, "end_dim", 0);
        if (r->err->code)
            return r->err->code;
        double sd = s && s->n == 1 ? s->v[0] : 0, ed = e && e->n == 1 ? e->v[0] : -1;
        if (sd != 0 || (ed != -1 && ed != nd->ndim - 1))
            return r_fail(r, SPK_ERR_UNSUPPORTED, nd->name,
                          "Flatten of dimensions %g..%g: spikecl flattens whole samples only", sd,
                          ed);
        /* no layer: spikecl's linear flattens its input itself */
        snprintf(nd->lname, sizeof nd->lname, "%s", src);
        nd->ndim = 1;
        nd->dims[0] = in_n;
        return SPK_OK;
    }
    case NK_AFFINE:
    case NK_LINEAR: {
        const nir_arr *w = get_arr(r, nd, "weight", 1);
        const nir_arr *b = nd->kind == NK_AFFINE ? get_arr(r, nd, "bias", 1) : NULL;
        if (!w || (nd->kind == NK_AFFINE && !b))
            return r->err->code;
        if (w->ndim != 2 || w->dims[0] < 1)
            return r_fail(r, SPK_ERR_SHAPE, nd->name, "'weight' has %d dimensions, expected 2",
                          w->ndim);
        if (w->dims[1] != (hsize_t)in_n)
            return r_fail(r, SPK_ERR_SHAPE, nd->name,
                          "'weight' is [%llu, %llu] but its input has %d values",
                          (unsigned long long)w->dims[0], (unsigned long long)w->dims[1], in_n);
        if (b && (b->ndim != 1 || b->dims[0] != w->dims[0]))
            return r_fail(r, SPK_ERR_SHAPE, nd->name, "'bias' has %zu values, expected %llu", b->n,
                          (unsigned long long)w->dims[0]);
        layer_head(o, nd->lname, "synapse.linear", 1, &src);
        spk_strbuf_appendf(&o->yaml, ", out: %llu%s}\n", (unsigned long long)w->dims[0],
                           b ? "" : ", bias: false");
        int64_t ws[2] = {(int64_t)w->dims[0], (int64_t)w->dims[1]};
        rc = out_tensor(r, o, nd, "weight", 2, ws, w->v, w->n);
        if (!rc && b)
            rc = out_tensor(r, o, nd, "bias", 1, ws, b->v, b->n);
        nd->ndim = 1;
        nd->dims[0] = (int)w->dims[0];
        return rc;
    }
    case NK_CONV: {
        const nir_arr *w = get_arr(r, nd, "weight", 1);
        const nir_arr *b = w ? get_arr(r, nd, "bias", 0) : NULL;
        if (!w || r->err->code)
            return r->err->code;
        int stride, pad, dil, groups;
        if ((rc = get_pair(r, nd, "stride", 0, 1, &stride)) ||
            (rc = get_pair(r, nd, "padding", 0, 0, &pad)) ||
            (rc = get_pair(r, nd, "dilation", 0, 1, &dil)) ||
            (rc = get_pair(r, nd, "groups", 0, 1, &groups)))
            return rc;
        if (w->ndim != 4 || w->dims[2] != w->dims[3] || w->dims[2] < 1 || w->dims[0] < 1)
            return r_fail(r, SPK_ERR_SHAPE, nd->name,
                          "'weight' must be [out, in/groups, k, k] (a square kernel)");
        if (nd->ndim != 3)
            return r_fail(r, SPK_ERR_SHAPE, nd->name,
                          "its input has %d dimensions, expected [C, H, W]", nd->ndim);
        const int O = (int)w->dims[0], k = (int)w->dims[2];
        if (stride < 1 || dil < 1 || groups < 1 || nd->dims[0] != (int)w->dims[1] * groups ||
            O % groups)
            return r_fail(r, SPK_ERR_SHAPE, nd->name,
                          "'weight' [%d, %llu, %d, %d] with groups %d does not fit an input of "
                          "%d channels",
                          O, (unsigned long long)w->dims[1], k, k, groups, nd->dims[0]);
        if (b && (b->ndim != 1 || b->n != (size_t)O))
            return r_fail(r, SPK_ERR_SHAPE, nd->name, "'bias' has %zu values, expected %d", b->n,
                          O);
        const long ext = (long)dil * (k - 1) + 1;
        const long oh = ((long)nd->dims[1] + 2L * pad - ext) / stride + 1;
        const long ow = ((long)nd->dims[2] + 2L * pad - ext) / stride + 1;
        if (ext > nd->dims[1] + 2L * pad || ext > nd->dims[2] + 2L * pad)
            return r_fail(r, SPK_ERR_SHAPE, nd->name, "kernel %d is larger than the %dx%d input", k,
                          nd->dims[1], nd->dims[2]);
        const nir_arr *is = get_arr(r, nd, "input_shape", 0);
        if (r->err->code)
            return r->err->code;
        if (is && is->n == 2 && (is->v[0] != nd->dims[1] || is->v[1] != nd->dims[2]))
            return r_fail(r, SPK_ERR_SHAPE, nd->name, "'input_shape' is (%g, %g), its input %dx%d",
                          is->v[0], is->v[1], nd->dims[1], nd->dims[2]);
        layer_head(o, nd->lname, "synapse.conv2d", 1, &src);
        spk_strbuf_appendf(&o->yaml, ", out: %d, kernel: %d", O, k);
        if (stride != 1)
            spk_strbuf_appendf(&o->yaml, ", stride: %d", stride);
        if (pad)
            spk_strbuf_appendf(&o->yaml, ", padding: %d", pad);
        if (dil != 1)
            spk_strbuf_appendf(&o->yaml, ", dilation: %d", dil);
        if (groups != 1)
            spk_strbuf_appendf(&o->yaml, ", groups: %d", groups);
        spk_strbuf_appendf(&o->yaml, "%s}\n", b ? "" : ", bias: false");
        int64_t ws[4] = {O, (int64_t)w->dims[1], k, k};
        rc = out_tensor(r, o, nd, "weight", 4, ws, w->v, w->n);
        if (!rc && b)
            rc = out_tensor(r, o, nd, "bias", 1, ws, b->v, b->n);
        nd->dims[0] = O;
        nd->dims[1] = (int)oh;
        nd->dims[2] = (int)ow;
        return rc;
    }
    case NK_AVGPOOL: {
        int k, stride, pad;
        if ((rc = get_pair(r, nd, "kernel_size", 1, 0, &k)) ||
            (rc = get_pair(r, nd, "stride", 0, 0, &stride)) ||
            (rc = get_pair(r, nd, "padding", 0, 0, &pad)))
            return rc;
        if (stride == 0)
            stride = k;
        if (nd->ndim != 3)
            return r_fail(r, SPK_ERR_SHAPE, nd->name,
                          "its input has %d dimensions, expected [C, H, W]", nd->ndim);
        if (k < 1 || 2 * pad > k || k > nd->dims[1] + 2 * pad || k > nd->dims[2] + 2 * pad)
            return r_fail(r, SPK_ERR_SHAPE, nd->name,
                          "kernel %d with padding %d does not fit the %dx%d input "
                          "(padding at most half the kernel)",
                          k, pad, nd->dims[1], nd->dims[2]);
        layer_head(o, nd->lname, "pool.avg2d", 1, &src);
        spk_strbuf_appendf(&o->yaml, ", kernel: %d", k);
        if (stride != k)
            spk_strbuf_appendf(&o->yaml, ", stride: %d", stride);
        if (pad)
            spk_strbuf_appendf(&o->yaml, ", padding: %d", pad);
        spk_strbuf_appendf(&o->yaml, "}\n");
        nd->dims[1] = (nd->dims[1] + 2 * pad - k) / stride + 1;
        nd->dims[2] = (nd->dims[2] + 2 * pad - k) / stride + 1;
        return SPK_OK;
    }
    case NK_LIF:
    case NK_IF:
    case NK_CUBALIF:
        return import_neuron(r, o, nd, src);
    default: /* NK_OUTPUT */
        return SPK_OK;
    }
}

/* Marks the ancestors of node i (iteratively: the graph is known to be acyclic). */
static void mark_ancestors(nir_reader *r, int i, int *stack)
{
    int top = 0;
    stack[top++] = i;
    r->nodes[i].keep = 1;
    while (top) {
        const nir_node *nd = &r->nodes[stack[--top]];
        for (int k = 0; k < nd->n_in; k++)
            if (!r->nodes[nd->in[k]].keep) {
                r->nodes[nd->in[k]].keep = 1;
                stack[top++] = nd->in[k];
            }
    }
}

static int fill_text(FILE *f, void *ctx)
{
    const char *s = ctx;
    return fputs(s, f) < 0 ? -1 : 0;
}

static int import_graph(nir_reader *r, const char *dir, const spk_nir_options *opt)
{
    int n_input = 0, n_output = 0, in_i = -1, out_i = -1;
    for (int i = 0; i < r->n; i++) {
        const nir_node *nd = &r->nodes[i];
        if (nd->kind == NK_INPUT) {
            n_input++;
            in_i = i;
            if (nd->n_in)
                return r_fail(r, SPK_ERR_INVALID, nd->name, "an Input with input edges");
        }
        if (nd->kind == NK_OUTPUT) {
            n_output++;
            out_i = i;
        }
    }
    if (n_input != 1 || n_output != 1)
        return r_fail(r, n_input && n_output ? SPK_ERR_UNSUPPORTED : SPK_ERR_PARSE, NULL,
                      "%d Input and %d Output nodes: spikecl imports graphs with one of each",
                      n_input, n_output);
    if (r->nodes[out_i].n_in != 1)
        return r_fail(r, SPK_ERR_INVALID, r->nodes[out_i].name,
                      "the Output has %d input edges, expected 1", r->nodes[out_i].n_in);
    /* topological order (Kahn), ties in name order */
    int *order = malloc((size_t)r->n * 3 * sizeof *order);
    if (!order)
        return spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    int *indeg = order + r->n, *stack = order + 2 * r->n, n_done = 0, rc = SPK_OK;
    for (int i = 0; i < r->n; i++)
        indeg[i] = r->nodes[i].n_in;
    for (int pass = 1; pass && n_done < r->n;) {
        pass = 0;
        for (int i = 0; i < r->n; i++)
            if (indeg[i] == 0) {
                indeg[i] = -1;
                order[n_done++] = i;
                for (int j = 0; j < r->n; j++)
                    for (int k = 0; k < r->nodes[j].n_in; k++)
                        if (r->nodes[j].in[k] == i)
                            indeg[j]--;
                pass = 1;
                break;
            }
    }
    if (n_done < r->n) { /* walk back through unfinished nodes: we end on the cycle */
        int c = -1;
        for (int i = 0; i < r->n && c < 0; i++)
            if (indeg[i] > 0)
                c = i;
        for (int step = 0; step < r->n; step++) {
            const nir_node *nd = &r->nodes[c];
            for (int k = 0; k < nd->n_in; k++)
                if (indeg[nd->in[k]] > 0) {
                    c = nd->in[k];
                    break;
                }
        }
        rc = r_fail(r, SPK_ERR_INVALID, r->nodes[c].name,
                    "the graph has a cycle through this node (recurrent NIR graphs are not "
                    "supported)");
    }
    if (!rc) {
        mark_ancestors(r, out_i, stack);
        if (!r->nodes[in_i].keep)
            rc = r_fail(r, SPK_ERR_INVALID, r->nodes[out_i].name,
                        "the Output is not connected to the Input");
    }
    nir_out o;
    memset(&o, 0, sizeof o);
    o.dt = opt->dt > 0 ? opt->dt : r->dt > 0 ? r->dt : NIR_DEFAULT_DT;
    o.approximate = opt->approximate;
    int T = opt->time_steps > 0 ? opt->time_steps : r->time_steps;
    double scale = opt->input_scale > 0 ? opt->input_scale
                   : r->input_scale > 0 ? r->input_scale
                                        : 1.0;
    if (!rc && !(isfinite(o.dt) && o.dt > 0.0))
        rc = r_fail(r, SPK_ERR_INVALID, "metadata", "dt is %g, expected a positive number", o.dt);
    if (!rc && !(isfinite((float)scale) && (float)scale > 0.0f))
        rc = r_fail(r, SPK_ERR_INVALID, "metadata",
                    "input_scale is %g, expected a positive float32", scale);
    if (!rc && T < 1)
        rc = r_fail(r, SPK_ERR_INVALID, NULL,
                    "the file gives no time_steps (metadata): give --time-steps");
    for (int i = 0; !rc && i < r->n; i++)
        layer_name(r, order[i]);
    const nir_node *in = &r->nodes[in_i];
    spk_strbuf_appendf(&o.yaml,
                       "# Imported from %s by spikecl %s (dt = %.9g s per step; docs/NIR.md).\n"
                       "name: nir-import\n",
                       r->path, SPIKECL_VERSION, o.dt);
    spk_strbuf layers = SPK_STRBUF_INIT;
    /* the Input's shape goes first, but it is read with the node: write the layers aside */
    spk_strbuf head = o.yaml;
    o.yaml = layers;
    for (int i = 0; !rc && i < r->n; i++)
        if (r->nodes[order[i]].keep)
            rc = import_node(r, &o, order[i]);
    layers = o.yaml;
    o.yaml = head;
    if (!rc) {
        spk_strbuf_appendf(&o.yaml, "input: {shape: [");
        for (int i = 0; i < in->ndim; i++)
            spk_strbuf_appendf(&o.yaml, "%s%d", i ? ", " : "", in->dims[i]);
        spk_strbuf_appendf(&o.yaml, "], scale: %.9g}\ntime_steps: %d\nlayers:\n", scale, T);
        spk_strbuf_append(&o.yaml, layers.s ? layers.s : "", layers.len);
        spk_strbuf_appendf(&o.yaml, "readout: {type: readout.spike_count}\n"
                                    "loss:    {type: loss.ce_count}\n");
    }
    spk_strbuf_clear(&layers);
    char *text = spk_strbuf_finish(&o.yaml);
    if (!rc && !text)
        rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    if (!rc && spk_fs_mkdir_p(dir, 0755) != 0)
        rc = spk_error_set(r->err, SPK_ERR_IO, "%s: cannot create the folder: %s", dir,
                           strerror(errno));
    size_t dl = strlen(dir) + 32;
    char *p = rc ? NULL : malloc(dl);
    if (!rc && !p)
        rc = spk_error_set(r->err, SPK_ERR_NOMEM, "out of memory");
    if (!rc) {
        snprintf(p, dl, "%s/model.safetensors", dir);
        const char *mk[] = {"source"}, *mv[] = {"nir import"};
        rc = spk_safetensors_write(p, o.n_t, o.t, 1, mk, mv, r->err);
    }
    if (!rc) {
        snprintf(p, dl, "%s/model.yaml", dir);
        rc = spk_fs_write_atomic(p, 0644, fill_text, text, r->err);
    }
    free(p);
    free(text);
    for (int i = 0; i < o.n_t; i++) {
        free(o.t[i].name);
        free(o.t[i].data);
    }
    free(o.t);
    free(order);
    return rc;
}

int spk_nir_import(const char *path, const char *dir, const spk_nir_options *opt, spk_error *err)
{
    if (!path || !dir)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_nir_import: no path or folder");
    spk_nir_options def = {0};
    nir_reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    spk_error local = {0};
    r.err = err ? err : &local;
    r.err->code = 0;
    h5_quiet q;
    h5_silence(&q);
    int rc = r_graph(&r);
    if (!rc)
        rc = import_graph(&r, dir, opt ? opt : &def);
    nodes_free(&r);
    H5Eclear2(H5E_DEFAULT);
    h5_restore(&q);
    return rc;
}
