/* NIR export and import: round trips whose forward passes equal the original's (spikes bit for
 * bit, membranes within float rounding) for an MLP, a convolutional net and a DAG; what export
 * refuses; and the errors of bad files (not HDF5, missing datasets, wrong shapes, cycles,
 * unknown node types), made by editing a good export with libhdf5. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_internal.h" /* each node's output and a neuron's saved membranes */
#include "spikecl/nir.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

#define B 3

static const char *mlp_yaml =
    "name: nir-mlp\n"
    "input: {shape: [1, 6, 6], scale: 0.5}\n"
    "time_steps: 8\n"
    "seed: 5\n"
    "layers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: fc1, type: synapse.linear, out: 24}\n"
    "  - {name: lif1, type: neuron.lif, beta: {uniform: [0.0, 1.0]}, reset: zero,\n"
    "     threshold: 0.3}\n"
    "  - {name: fc2, type: synapse.linear, out: 10, bias: false}\n"
    "  - {name: if2, type: neuron.if, reset: zero, reset_value: 0.05, threshold: 0.4}\n"
    "  - {name: fc3, type: synapse.linear, out: 4}\n"
    "  - {name: lif3, type: neuron.lif, beta: 0.8, reset: zero, threshold: 0.2,\n"
    "     per_neuron_threshold: true}\n"
    "readout: {type: readout.spike_count}\n"
    "loss: {type: loss.ce_count}\n";

static const char *conv_yaml =
    "name: nir-conv\n"
    "input: {shape: [2, 10, 10]}\n"
    "time_steps: 6\n"
    "seed: 9\n"
    "layers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: conv1, type: synapse.conv2d, out: 4, kernel: 3, padding: 1}\n"
    "  - {name: pool1, type: pool.avg2d, kernel: 2}\n"
    "  - {name: lif1, type: neuron.lif, beta: 0.7, reset: zero, threshold: 0.1}\n"
    "  - {name: conv2, type: synapse.conv2d, out: 6, kernel: 3, stride: 2, groups: 2,\n"
    "     dilation: 1, bias: false}\n"
    "  - {name: lif2, type: neuron.lif, beta: 0.9, reset: zero, threshold: 0.1}\n"
    "  - {name: drop, type: dropout, p: 0.2}\n"
    "  - {name: fc, type: synapse.linear, out: 5}\n"
    "  - {name: lif3, type: neuron.lif, beta: 0.6, reset: zero, threshold: 0.2}\n"
    "readout: {type: readout.spike_count}\n"
    "loss: {type: loss.ce_count}\n";

/* Two branches summed: NIR sums a node's inputs, so merge.add has no node of its own and the
 * import puts one back (lif2_sum). */
static const char *dag_yaml =
    "name: nir-dag\n"
    "input: {shape: [7]}\n"
    "time_steps: 5\n"
    "seed: 2\n"
    "layers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: fc1, type: synapse.linear, out: 9}\n"
    "  - {name: lif1, type: neuron.lif, beta: 0.9, reset: zero, threshold: 0.2}\n"
    "  - {name: fca, type: synapse.linear, out: 6}\n"
    "  - {name: fcb, type: synapse.linear, out: 6, from: [lif1]}\n"
    "  - {name: sum, type: merge.add, from: [fca, fcb]}\n"
    "  - {name: lif2, type: neuron.lif, beta: 0.8, reset: zero, threshold: 0.2}\n"
    "readout: {type: readout.spike_count}\n"
    "loss: {type: loss.ce_count}\n";

typedef struct net {
    spk_model *m;
    spk_backend *be;
    spk_session *s;
} net;

static void net_open(net *n, const char *path, const char *weights)
{
    spk_error err = {0};
    cr_assert_eq(spk_model_load(path, &n->m, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_backend_cpu_new(1, &n->be, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_new(n->m, n->be, B, &n->s, &err), 0, "%s", err.msg);
    if (weights)
        cr_assert_eq(spk_session_load(n->s, weights, &err), 0, "%s", err.msg);
}

static void net_close(net *n)
{
    spk_session_free(n->s);
    spk_backend_free(n->be);
    spk_model_free(n->m);
}

static const spk_node *node_named(const spk_session *s, const char *name)
{
    for (int i = 1; i < s->n_nodes; i++)
        if (strcmp(s->nodes[i].layer.name, name) == 0)
            return &s->nodes[i];
    return NULL;
}

static float *download(spk_session *s, const spk_tensor *t)
{
    spk_error err = {0};
    float *v = malloc(t->numel * sizeof *v);
    cr_assert_not_null(v);
    cr_assert_eq(spk_tensor_download(s->be, t, v, &err), 0, "%s", err.msg);
    return v;
}

/* Exports the model (initial weights), imports it, runs both on the same random input and
 * compares every layer the import kept by name. Returns the spikes seen (so a test can check it
 * compared something). */
static long round_trip(const char *yaml, const char *tag, const spk_nir_options *opt)
{
    char name[64], nir[512], dir[512], wts[600];
    snprintf(name, sizeof name, "%s.yaml", tag);
    char *path = spk_test_write(name, yaml);
    snprintf(nir, sizeof nir, "%s/%s.nir", spk_test_tmpdir(), tag);
    snprintf(dir, sizeof dir, "%s/%s-import", spk_test_tmpdir(), tag);
    snprintf(wts, sizeof wts, "%s/model.safetensors", dir);
    spk_error err = {0};
    net a, b;
    net_open(&a, path, NULL);
    cr_assert_eq(spk_nir_export(a.s, nir, opt, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_nir_import(nir, dir, opt, &err), 0, "%s", err.msg);
    char ypath[600];
    snprintf(ypath, sizeof ypath, "%s/model.yaml", dir);
    net_open(&b, ypath, wts);
    cr_assert_eq(spk_model_time_steps(b.m), spk_model_time_steps(a.m));
    cr_assert_eq(spk_session_input_scale(b.s), spk_session_input_scale(a.s));
    int in = spk_session_input_size(a.s);
    cr_assert_eq(spk_session_input_size(b.s), in);
    float *x = malloc((size_t)in * B * sizeof *x);
    spk_test_fill(x, (size_t)in * B, 0.0f, 2.0f, 11);
    int32_t y[B] = {0, 1, 2};
    spk_batch_stats sa = {0}, sb = {0};
    cr_assert_eq(spk_session_eval_batch(a.s, x, y, B, &sa, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_eval_batch(b.s, x, y, B, &sb, &err), 0, "%s", err.msg);
    long spikes = 0;
    int compared = 0;
    for (int i = 1; i <= a.m->n_layers; i++) {
        const spk_node *na = &a.s->nodes[i];
        const char *t = na->layer.type->name;
        const spk_node *nb = node_named(b.s, na->layer.name);
        if (strcmp(t, "encoder.direct") == 0 || strcmp(t, "dropout") == 0 ||
            strcmp(t, "merge.add") == 0)
            continue; /* no NIR node of their own */
        cr_assert_not_null(nb, "%s: layer %s is missing after the import", tag, na->layer.name);
        cr_assert_str_eq(nb->layer.type->name, t, "%s: layer %s", tag, na->layer.name);
        cr_assert_eq(na->out.numel, nb->out.numel, "%s: layer %s", tag, na->layer.name);
        float *oa = download(a.s, &na->out), *ob = download(b.s, &nb->out);
        if (strncmp(t, "neuron.", 7) == 0) {
            cr_assert(memcmp(oa, ob, na->out.numel * sizeof *oa) == 0,
                      "%s: the spikes of %s differ", tag, na->layer.name);
            for (size_t k = 0; k < na->out.numel; k++)
                spikes += oa[k] != 0.0f;
            /* the membranes every step (state "mem" of lif and if) */
            for (int k = 0; k < na->layer.n_state; k++) {
                if (strcmp(na->layer.state[k].name, "mem") != 0)
                    continue;
                float *ma = download(a.s, &na->layer.state[k].t);
                float *mb = download(b.s, &nb->layer.state[k].t);
                double e = spk_test_nerr(mb, ma, na->layer.state[k].t.numel);
                cr_assert(e < 1e-6, "%s: membranes of %s differ by %g", tag, na->layer.name, e);
                free(ma);
                free(mb);
            }
        } else {
            double e = spk_test_nerr(ob, oa, na->out.numel);
            cr_assert(e < 1e-6, "%s: outputs of %s differ by %g", tag, na->layer.name, e);
        }
        free(oa);
        free(ob);
        compared++;
    }
    cr_assert_gt(compared, 2);
    cr_assert_eq(sa.correct, sb.correct);
    free(x);
    free(path);
    net_close(&a);
    net_close(&b);
    return spikes;
}

Test(nir, mlp_round_trip_is_exact)
{
    long spikes = round_trip(mlp_yaml, "mlp", NULL);
    cr_assert_gt(spikes, 10, "the input must make the neurons fire (%ld spikes)", spikes);
}

Test(nir, conv_round_trip_is_exact)
{
    long spikes = round_trip(conv_yaml, "conv", NULL);
    cr_assert_gt(spikes, 10, "the input must make the neurons fire (%ld spikes)", spikes);
}

Test(nir, dag_round_trip_keeps_the_sum)
{
    long spikes = round_trip(dag_yaml, "dag", NULL);
    cr_assert_gt(spikes, 5, "%ld spikes", spikes);
    char p[512];
    snprintf(p, sizeof p, "%s/dag-import/model.yaml", spk_test_tmpdir());
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_assert(strstr(text, "type: merge.add, from: [fca, fcb]"), "%s", text);
}

/* ---- what export refuses, naming the layer ---- */

static void expect_export_error(const char *yaml, const char *layer, const char *what,
                                int approximate)
{
    char *path = spk_test_write("refuse.yaml", yaml);
    char nir[512];
    snprintf(nir, sizeof nir, "%s/refused.nir", spk_test_tmpdir());
    net a;
    net_open(&a, path, NULL);
    spk_error err = {0};
    spk_nir_options opt = {.approximate = approximate};
    int rc = spk_nir_export(a.s, nir, &opt, &err);
    cr_assert_eq(rc, SPK_ERR_UNSUPPORTED, "%d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, layer) && strstr(err.msg, what), "%s", err.msg);
    net_close(&a);
    free(path);
}

#define HEAD                                                                                       \
    "name: r\ninput: {shape: [1, 4, 4]}\ntime_steps: 3\nlayers:\n"                                 \
    "  - {name: enc, type: encoder.direct}\n"
#define TAIL "readout: {type: readout.spike_count}\nloss: {type: loss.ce_count}\n"

Test(nir, export_refuses_what_nir_cannot_say)
{
    expect_export_error(HEAD "  - {name: mp, type: pool.max2d, kernel: 2}\n"
                             "  - {name: n, type: neuron.lif, reset: zero}\n" TAIL,
                        "'mp' (pool.max2d)", "max pooling", 0);
    expect_export_error("name: r\ninput: {shape: [4]}\ntime_steps: 3\nlayers:\n"
                        "  - {name: pois, type: encoder.poisson}\n"
                        "  - {name: fc, type: synapse.linear, out: 2}\n"
                        "  - {name: n, type: neuron.lif, reset: zero}\n" TAIL,
                        "'pois'", "encoder.direct", 0);
    expect_export_error(HEAD "  - {name: fc, type: synapse.linear, out: 2}\n"
                             "  - {name: sub, type: neuron.lif}\n" TAIL,
                        "'sub' (neuron.lif)", "--approximate", 0);
    expect_export_error(HEAD "  - {name: fc, type: synapse.linear, out: 2}\n"
                             "  - {name: none, type: neuron.lif, reset: none}\n" TAIL,
                        "'none'", "reset: none", 1);
    expect_export_error(HEAD "  - {name: fc, type: synapse.linear, out: 2}\n"
                             "  - {name: syn, type: neuron.synaptic, reset: zero}\n" TAIL,
                        "'syn'", "CubaLIF", 0);
    expect_export_error(HEAD "  - {name: fc, type: synapse.linear, out: 2}\n"
                             "  - {name: mem, type: neuron.lif, reset: zero, output: membrane}\n"
                             "readout: {type: readout.membrane}\nloss: {type: loss.ce_membrane}\n",
                        "'mem'", "output: membrane", 0);
}

/* With --approximate a subtracting LIF goes out as NIR's reset to zero: the import is the same
 * network with reset: zero, and a synaptic neuron goes through CubaLIF and back. */
Test(nir, approximate_export_of_subtract_and_synaptic)
{
    const char *yaml = HEAD "  - {name: fc, type: synapse.linear, out: 3}\n"
                            "  - {name: sub, type: neuron.lif, beta: 0.75}\n"
                            "  - {name: fc2, type: synapse.linear, out: 2}\n"
                            "  - {name: syn, type: neuron.synaptic, alpha: 0.5, beta: 0.25}\n" TAIL;
    char *path = spk_test_write("approx.yaml", yaml);
    char nir[512], dir[512], ypath[600];
    snprintf(nir, sizeof nir, "%s/approx.nir", spk_test_tmpdir());
    snprintf(dir, sizeof dir, "%s/approx-import", spk_test_tmpdir());
    snprintf(ypath, sizeof ypath, "%s/model.yaml", dir);
    net a;
    net_open(&a, path, NULL);
    spk_error err = {0};
    spk_nir_options opt = {.approximate = 1};
    cr_assert_eq(spk_nir_export(a.s, nir, &opt, &err), 0, "%s", err.msg);
    net_close(&a);
    spk_nir_options exact = {0};
    cr_assert_eq(spk_nir_import(nir, dir, &exact, &err), SPK_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "node 'syn'") && strstr(err.msg, "--approximate"), "%s", err.msg);
    cr_assert_eq(spk_nir_import(nir, dir, &opt, &err), 0, "%s", err.msg);
    spk_model *m;
    cr_assert_eq(spk_model_load(ypath, &m, &err), 0, "%s", err.msg);
    FILE *f = fopen(ypath, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_assert(strstr(text, "{name: sub, type: neuron.lif, reset: zero, beta: 0.75"), "%s", text);
    cr_assert(strstr(text, "type: neuron.synaptic, reset: zero, alpha: 0.5, beta: 0.25"), "%s",
              text);
    spk_model_free(m);
    free(path);
}

/* ---- bad files ---- */

static char *good_export(const char *tag)
{
    char *path = spk_test_write("good.yaml", mlp_yaml);
    char *nir = malloc(512);
    snprintf(nir, 512, "%s/%s.nir", spk_test_tmpdir(), tag);
    net a;
    net_open(&a, path, NULL);
    spk_error err = {0};
    cr_assert_eq(spk_nir_export(a.s, nir, NULL, &err), 0, "%s", err.msg);
    net_close(&a);
    free(path);
    return nir;
}

static void expect_import_error(const char *nir, int code, const char *a, const char *b,
                                const spk_nir_options *opt)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bad-import", spk_test_tmpdir());
    spk_error err = {0};
    int rc = spk_nir_import(nir, dir, opt, &err);
    cr_assert_eq(rc, code, "expected %d, got %d: %s", code, rc, err.msg);
    cr_assert(strstr(err.msg, nir), "the message names the file: %s", err.msg);
    cr_assert(strstr(err.msg, a) && (!b || strstr(err.msg, b)), "%s", err.msg);
}

static hid_t open_rw(const char *nir)
{
    hid_t f = H5Fopen(nir, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    return f;
}

static void put_f32(hid_t f, const char *name, int ndim, const hsize_t *dims)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    float *v = calloc(n, sizeof *v);
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(sp);
    free(v);
}

static void put_str(hid_t f, const char *name, int ndim, const hsize_t *dims, const char **v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}

Test(nir, not_hdf5_and_missing_file)
{
    char *txt = spk_test_write("text.nir", "name: this is YAML, not HDF5\n");
    expect_import_error(txt, SPK_ERR_PARSE, "not an HDF5 file", NULL, NULL);
    free(txt);
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nothing-here.nir", spk_test_tmpdir());
    expect_import_error(missing, SPK_ERR_IO, "No such file", NULL, NULL);
}

Test(nir, missing_dataset_names_the_node)
{
    char *nir = good_export("missing");
    hid_t f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/nodes/fc2/weight", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_import_error(nir, SPK_ERR_PARSE, "node 'fc2'", "no dataset 'weight'", NULL);
    f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/edges", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_import_error(nir, SPK_ERR_PARSE, "no dataset 'node/edges'", NULL, NULL);
    free(nir);
}

Test(nir, wrong_shapes_name_the_node)
{
    char *nir = good_export("shapes");
    hid_t f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/nodes/fc2/weight", H5P_DEFAULT), 0);
    const hsize_t d[2] = {10, 7};
    put_f32(f, "node/nodes/fc2/weight", 2, d);
    H5Fclose(f);
    expect_import_error(nir, SPK_ERR_SHAPE, "node 'fc2'", "[10, 7] but its input has 24", NULL);
    free(nir);
    nir = good_export("shapes2");
    f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/nodes/lif1/v_threshold", H5P_DEFAULT), 0);
    const hsize_t d3 = 3;
    put_f32(f, "node/nodes/lif1/v_threshold", 1, &d3);
    H5Fclose(f);
    expect_import_error(nir, SPK_ERR_SHAPE, "node 'lif1'", "'v_threshold' has 3 values", NULL);
    free(nir);
}

Test(nir, values_that_are_not_finite_float32)
{
    char *nir = good_export("inf");
    hid_t f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/nodes/fc3/bias", H5P_DEFAULT), 0);
    const hsize_t d = 4;
    const double big[4] = {0, 1e300, 0, 0}; /* finite as a double, not as a float */
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "node/nodes/fc3/bias", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, big), 0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    expect_import_error(nir, SPK_ERR_INVALID, "node 'fc3'", "not a finite float32", NULL);
    free(nir);
}

static void set_edges(const char *nir, int n, const char **e)
{
    hid_t f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/edges", H5P_DEFAULT), 0);
    const hsize_t d[2] = {(hsize_t)n, 2};
    put_str(f, "node/edges", 2, d, e);
    H5Fclose(f);
}

Test(nir, cycles_and_bad_edges)
{
    char *nir = good_export("cycle");
    const char *e[] = {"input", "fc1_flatten", "fc1_flatten", "fc1",    "fc1", "lif1",
                       "lif1",  "fc2",         "fc2",         "if2",    "if2", "fc3",
                       "fc3",   "lif3",        "lif3",        "output", "if2", "fc2"};
    set_edges(nir, 9, e);
    expect_import_error(nir, SPK_ERR_INVALID, "cycle", "recurrent", NULL);
    const char *e2[] = {"input", "fc1_flatten", "fc1_flatten", "ghost"};
    set_edges(nir, 2, e2);
    expect_import_error(nir, SPK_ERR_PARSE, "names no node 'ghost'", NULL, NULL);
    free(nir);
}

Test(nir, unknown_node_type_names_node_and_type)
{
    char *nir = good_export("unknown");
    hid_t f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/nodes/lif1/type", H5P_DEFAULT), 0);
    const char *t = "Threshold";
    put_str(f, "node/nodes/lif1/type", 0, NULL, &t);
    H5Fclose(f);
    expect_import_error(nir, SPK_ERR_UNSUPPORTED, "node 'lif1'", "'Threshold'", NULL);
    free(nir);
}

Test(nir, time_steps_from_the_file_or_the_options)
{
    char *nir = good_export("steps");
    hid_t f = open_rw(nir);
    cr_assert_geq(H5Ldelete(f, "node/metadata/time_steps", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_import_error(nir, SPK_ERR_INVALID, "no time_steps", "--time-steps", NULL);
    char dir[512], ypath[600];
    snprintf(dir, sizeof dir, "%s/steps-import", spk_test_tmpdir());
    snprintf(ypath, sizeof ypath, "%s/model.yaml", dir);
    spk_nir_options opt = {.time_steps = 17};
    spk_error err = {0};
    cr_assert_eq(spk_nir_import(nir, dir, &opt, &err), 0, "%s", err.msg);
    spk_model *m;
    cr_assert_eq(spk_model_load(ypath, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_model_time_steps(m), 17);
    spk_model_free(m);
    free(nir);
}

/* ---- the CLI ---- */

Test(nir, cli_export_then_import)
{
    char *path = spk_test_write("cli.yaml", mlp_yaml);
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "export %s -o %s/cli.nir", path, spk_test_tmpdir());
    int rc = spk_test_cli(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "\"nir\""), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "import %s/cli.nir -o %s/cli-import --time-steps 4",
             spk_test_tmpdir(), spk_test_tmpdir());
    rc = spk_test_cli(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "bench %s/cli-import/model.yaml --device cpu --batches 1 --batch 2",
             spk_test_tmpdir());
    rc = spk_test_cli(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "\"time_steps\": 4"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "import %s -o %s/x", path, spk_test_tmpdir()); /* YAML, not NIR */
    rc = spk_test_cli(cmd, &out);
    cr_assert_eq(rc, 2, "%s", out);
    cr_assert(strstr(out, "not an HDF5 file"), "%s", out);
    free(out);
    rc = spk_test_cli("export models/fmnist_conv.yaml -o /dev/null/x.nir", &out);
    cr_assert_eq(rc, 2, "%s", out);
    cr_assert(strstr(out, "layer 'mp1' (pool.max2d)"), "%s", out);
    free(out);
    free(path);
}
