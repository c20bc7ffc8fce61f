/* The YAML model loader: valid files load with the expected values, broken ones fail with a
 * message that names file:line:col, the context, what was expected and what was found.
 * The layer types here are fakes registered by the test, so the loader is tested on its own. */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"

#ifndef SPK_SOURCE_DIR
#define SPK_SOURCE_DIR "."
#endif
#define FIXTURES SPK_SOURCE_DIR "/tests/data/models/"

/* ---- fake layer types: one of each kind, and a table with every parameter type ---- */

static int fake_init(spk_layer *l, spk_error *e)
{
    (void)l;
    (void)e;
    return 0;
}

static int fake_run(spk_layer *l, spk_exec *x)
{
    (void)l;
    (void)x;
    return 0;
}

static const spk_param_spec neuron_params[] = {
    {"beta", SPK_PARAM_FLOAT, "0.9", 0, 1, NULL, "membrane decay per step"},
    {"threshold", SPK_PARAM_FLOAT, "1.0", 1e-6, 1e30, NULL, "firing threshold"},
    {"reset", SPK_PARAM_CHOICE, "subtract", 0, -1, "subtract|zero|none", "reset mechanism"},
    {"learn_beta", SPK_PARAM_BOOL, "false", 0, -1, NULL, "learn beta"},
    {"init_beta", SPK_PARAM_INIT, "{uniform: [0, 1]}", 0, 1, NULL, "initial per-neuron beta"},
    {"surrogate", SPK_PARAM_SURROGATE, "{type: fast_sigmoid, slope: 10}", 0, -1,
     "fast_sigmoid|atan|sigmoid|triangle", "spike surrogate"},
    {"tag", SPK_PARAM_STRING, "none", 0, -1, NULL, "free text"},
    {"window", SPK_PARAM_INT, "3", 1, 100, NULL, "an int with a range"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const spk_param_spec synapse_params[] = {
    {"out", SPK_PARAM_INT, NULL, 1, INT_MAX, NULL, "output features (required)"},
    {"bias", SPK_PARAM_BOOL, "true", 0, -1, NULL, "add a bias"},
    {"weight_init", SPK_PARAM_INIT, "{normal: [0, 0.05]}", 0, -1, NULL, "weights"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const spk_param_spec encoder_params[] = {
    {"mode", SPK_PARAM_CHOICE, "direct", 0, -1, "direct|poisson", "coding"},
    {"offset", SPK_PARAM_INT, "-3", 0, -1, NULL, "an int without a range"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const spk_param_spec readout_params[] = {{NULL, 0, NULL, 0, 0, NULL, NULL}};

static const spk_param_spec loss_params[] = {
    {"correct_rate", SPK_PARAM_FLOAT, "0.8", 0, 1, NULL, "target rate of the true class"},
    {"incorrect_rate", SPK_PARAM_FLOAT, "0.2", 0, 1, NULL, "target rate of the others"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

#define FAKE_TYPE(var, nm, k, table)                                                               \
    static const spk_layer_type var = {                                                            \
        .abi_major = SPK_ABI_MAJOR,                                                                \
        .abi_minor = SPK_ABI_MINOR,                                                                \
        .struct_size = sizeof(spk_layer_type),                                                     \
        .name = nm,                                                                                \
        .kind = k,                                                                                 \
        .summary = "test type",                                                                    \
        .params = table,                                                                           \
        .init = fake_init,                                                                         \
        .forward = fake_run,                                                                       \
        .backward = fake_run,                                                                      \
    }

FAKE_TYPE(t_encoder, "test.encoder", SPK_KIND_ENCODER, encoder_params);
FAKE_TYPE(t_synapse, "test.synapse", SPK_KIND_SYNAPSE, synapse_params);
FAKE_TYPE(t_neuron, "test.neuron", SPK_KIND_NEURON, neuron_params);
FAKE_TYPE(t_readout, "test.readout", SPK_KIND_READOUT, readout_params);
FAKE_TYPE(t_loss, "test.loss", SPK_KIND_LOSS, loss_params);

/* Idempotent: Criterion may run every test's init in one process (--no-fork, valgrind). */
static void register_fakes(void)
{
    const spk_layer_type *all[] = {&t_encoder, &t_synapse, &t_neuron, &t_readout, &t_loss};
    spk_registry *reg = spk_registry_default();
    cr_assert_not_null(reg);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (spk_registry_find(reg, all[i]->name))
            continue;
        spk_error err = {0};
        int rc = spk_registry_add(reg, all[i], "test", &err);
        cr_assert_eq(rc, SPK_OK, "registering %s: %s", all[i]->name, err.msg);
    }
}

TestSuite(model_load, .init = register_fakes);

/* ---- helpers ---- */

static spk_model *load_ok(const char *file)
{
    spk_model *m = NULL;
    spk_error err = {0};
    int rc = spk_model_load(file, &m, &err);
    cr_assert_eq(rc, SPK_OK, "%s: rc %d: %s", file, rc, err.msg);
    cr_assert_not_null(m);
    return m;
}

/* Loads a broken fixture; the status and the message substring must match exactly. */
static void expect_fail(const char *fixture, int code, const char *msg)
{
    char path[1024];
    snprintf(path, sizeof path, FIXTURES "%s", fixture);
    spk_model *m = (spk_model *)1;
    spk_error err = {0};
    int rc = spk_model_load(path, &m, &err);
    cr_expect_null(m, "%s: out must be NULL on failure", fixture);
    cr_expect_eq(rc, code, "%s: rc %d (%s), expected %d: %s", fixture, rc, spk_status_str(rc), code,
                 err.msg);
    cr_expect_eq(err.code, rc, "%s: err.code %d != rc %d", fixture, err.code, rc);
    cr_expect_not_null(strstr(err.msg, msg), "%s:\n  got      \"%s\"\n  expected \"...%s...\"",
                       fixture, err.msg, msg);
    /* every file error starts with the path as given */
    cr_expect_eq(strncmp(err.msg, path, strlen(path)), 0,
                 "%s: message does not start with the path: %s", fixture, err.msg);
}

static void expect_string_fail(const char *yaml, int code, const char *msg)
{
    spk_model *m = NULL;
    spk_error err = {0};
    int rc = spk_model_load_string(yaml, "inline.yaml", &m, &err);
    cr_expect_null(m);
    cr_expect_eq(rc, code, "rc %d, expected %d: %s", rc, code, err.msg);
    cr_expect_not_null(strstr(err.msg, msg), "\n  got      \"%s\"\n  expected \"...%s...\"",
                       err.msg, msg);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

static const spk_layer_def *layer(const spk_model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name))
            return &m->layers[i];
    cr_assert_fail("no layer '%s'", name);
    return NULL;
}

static const spk_param_value *param(const spk_layer_def *d, const char *name)
{
    const spk_param_value *v = spk_params_find(&d->params, name);
    cr_assert_not_null(v, "layer %s has no param %s", d->name, name);
    return v;
}

/* ---- valid files ---- */

Test(model_load, full_model)
{
    spk_model *m = load_ok(FIXTURES "full.yaml");

    cr_expect_str_eq(spk_model_name(m), "full-test");
    cr_expect_eq(spk_model_time_steps(m), 25);
    cr_expect_eq(spk_model_seed(m), 42);
    spk_model_set_seed(m, 7);
    cr_expect_eq(spk_model_seed(m), 7);
    cr_expect_eq(m->in_ndim, 3);
    cr_expect_eq(m->in_dims[0], 1);
    cr_expect_eq(m->in_dims[1], 28);
    cr_expect_eq(m->in_dims[2], 28);
    cr_expect_float_eq(m->input_scale, 0.00392157f, 1e-9);
    cr_expect_str_eq(m->path, FIXTURES "full.yaml");
    cr_expect(ends_with(m->dir, "tests/data/models"), "dir %s", m->dir);

    cr_assert_eq(m->n_layers, 7);
    const char *names[] = {"enc", "fc1", "lif1", "fc2", "lif2", "skip", "lif3"};
    for (int i = 0; i < 7; i++)
        cr_expect_str_eq(m->layers[i].name, names[i]);
    cr_expect_eq(m->layers[0].type, spk_registry_find(spk_registry_default(), "test.encoder"));
    cr_expect_str_eq(m->layers[2].type->name, "test.neuron");
    /* line/col of the layer mappings (1-based) */
    cr_expect_eq(m->layers[0].line, 7);
    cr_expect_eq(m->layers[0].col, 5);
    cr_expect_eq(m->layers[2].line, 9);
    cr_expect_eq(m->layers[2].col, 5);

    /* encoder: a choice */
    const spk_param_value *v = param(&m->layers[0], "mode");
    cr_expect_eq(v->num, 1);
    cr_expect_str_eq(v->str, "poisson");
    cr_expect_eq(v->is_set, 1);
    cr_expect_eq(v->line, 7);
    cr_expect_eq(v->col, 43);

    /* synapse: required int, defaults */
    const spk_layer_def *fc1 = layer(m, "fc1");
    cr_expect_eq(param(fc1, "out")->num, 300);
    cr_expect_eq(param(fc1, "out")->line, 8);
    cr_expect_eq(param(fc1, "out")->col, 42);
    cr_expect_eq(param(fc1, "bias")->num, 1);
    cr_expect_eq(param(fc1, "bias")->is_set, 0);
    cr_expect_eq(param(fc1, "bias")->line, 0);
    cr_expect_eq(param(fc1, "weight_init")->init.kind, SPK_INIT_NORMAL);
    cr_expect_float_eq(param(fc1, "weight_init")->init.b, 0.05f, 1e-7);
    cr_expect_eq(fc1->n_from, 0);

    /* neuron with every parameter given, block style */
    const spk_layer_def *lif1 = layer(m, "lif1");
    cr_expect_float_eq(param(lif1, "beta")->num, 0.5, 1e-12);
    cr_expect_eq(param(lif1, "beta")->line, 11);
    cr_expect_eq(param(lif1, "beta")->col, 11);
    cr_expect_float_eq(param(lif1, "threshold")->num, 1.5, 1e-12);
    cr_expect_eq(param(lif1, "reset")->num, 1);
    cr_expect_str_eq(param(lif1, "reset")->str, "zero");
    cr_expect_eq(param(lif1, "learn_beta")->num, 1);
    cr_expect_eq(param(lif1, "init_beta")->init.kind, SPK_INIT_UNIFORM);
    cr_expect_float_eq(param(lif1, "init_beta")->init.a, 0.1f, 1e-7);
    cr_expect_float_eq(param(lif1, "init_beta")->init.b, 0.9f, 1e-7);
    cr_expect_eq(param(lif1, "surrogate")->sg.kind, SPK_SG_ATAN);
    cr_expect_float_eq(param(lif1, "surrogate")->sg.slope, 3.0f, 1e-7);
    cr_expect_str_eq(param(lif1, "tag")->str, "first");
    cr_expect_eq(param(lif1, "window")->num, 7);

    const spk_layer_def *fc2 = layer(m, "fc2");
    cr_expect_eq(param(fc2, "bias")->num, 0);
    cr_expect_eq(param(fc2, "bias")->is_set, 1);
    cr_expect_eq(param(fc2, "weight_init")->init.kind, SPK_INIT_NORMAL);
    cr_expect_float_eq(param(fc2, "weight_init")->init.b, 0.1f, 1e-7);

    /* defaults on a neuron; a bare surrogate name of the default's kind takes its slope */
    const spk_layer_def *lif2 = layer(m, "lif2");
    cr_expect_float_eq(param(lif2, "beta")->num, 0.9, 1e-12);
    cr_expect_eq(param(lif2, "beta")->is_set, 0);
    cr_expect_eq(param(lif2, "reset")->num, 0);
    cr_expect_str_eq(param(lif2, "reset")->str, "subtract");
    cr_expect_eq(param(lif2, "learn_beta")->num, 0);
    cr_expect_str_eq(param(lif2, "tag")->str, "none");
    cr_expect_eq(param(lif2, "window")->num, 3);
    cr_expect_eq(param(lif2, "surrogate")->sg.kind, SPK_SG_FAST_SIGMOID);
    cr_expect_float_eq(param(lif2, "surrogate")->sg.slope, 10.0f, 1e-7);
    cr_expect_eq(param(lif2, "init_beta")->init.kind, SPK_INIT_CONSTANT);
    cr_expect_float_eq(param(lif2, "init_beta")->init.a, 0.25f, 1e-7);

    /* from: a list and a single name */
    const spk_layer_def *skip = layer(m, "skip");
    cr_assert_eq(skip->n_from, 2);
    cr_expect_str_eq(m->layers[skip->from[0]].name, "lif1");
    cr_expect_str_eq(m->layers[skip->from[1]].name, "lif2");
    const spk_layer_def *lif3 = layer(m, "lif3");
    cr_assert_eq(lif3->n_from, 1);
    cr_expect_str_eq(m->layers[lif3->from[0]].name, "skip");
    /* another kind than the default's: that kind's own slope */
    cr_expect_eq(param(lif3, "surrogate")->sg.kind, SPK_SG_SIGMOID);
    cr_expect_float_eq(param(lif3, "surrogate")->sg.slope, 5.0f, 1e-7);

    /* readout and loss */
    cr_expect_str_eq(m->readout.name, "readout");
    cr_expect_str_eq(m->readout.type->name, "test.readout");
    cr_expect_eq(m->readout.line, 23);
    cr_expect_eq(m->readout.col, 10);
    cr_expect_str_eq(m->loss.name, "crit");
    cr_expect_str_eq(m->loss.type->name, "test.loss");
    cr_expect_float_eq(spk_params_find(&m->loss.params, "correct_rate")->num, 0.9, 1e-12);
    cr_expect_float_eq(spk_params_find(&m->loss.params, "incorrect_rate")->num, 0.2, 1e-12);
    cr_expect_null(spk_params_find(&m->loss.params, "nope"));

    /* train: paths resolved against the file's folder, absolute ones kept */
    spk_train_config *tc = spk_model_train_config(m);
    cr_expect(ends_with(tc->train_images, "tests/data/models/data/train-images.gz"), "%s",
              tc->train_images);
    cr_expect_str_eq(tc->train_labels, "/abs/train-labels.gz");
    cr_expect(ends_with(tc->test_images, "tests/data/models/data/t10k-images"), "%s",
              tc->test_images);
    cr_expect(ends_with(tc->test_labels, "tests/data/models/data/t10k-labels"), "%s",
              tc->test_labels);
    cr_expect_eq(tc->batch, 64);
    cr_expect_eq(tc->epochs, 3);
    cr_expect_eq(tc->optim.kind, SPK_OPTIM_SGD);
    cr_expect_float_eq(tc->optim.lr, 0.05f, 1e-9);
    cr_expect_float_eq(tc->optim.momentum, 0.9f, 1e-9);
    cr_expect_eq(tc->optim.nesterov, 1);
    cr_expect_float_eq(tc->optim.weight_decay, 1e-4f, 1e-12);
    cr_expect_float_eq(tc->optim.clip_norm, 5.0f, 1e-9);

    /* `plugins:` entries are loaded while parsing: see err_plugin_missing and
     * tests/test_plugin_abi.c */
    cr_expect_eq(m->n_plugins, 0);
    spk_model_free(m);
}

Test(model_load, minimal_defaults)
{
    spk_model *m = load_ok(FIXTURES "minimal.yaml");
    cr_expect_str_eq(spk_model_name(m), "minimal"); /* the file's base name */
    cr_expect_eq(spk_model_seed(m), 1);
    cr_expect_eq(m->in_ndim, 1);
    cr_expect_eq(m->in_dims[0], 784);
    cr_expect_float_eq(m->input_scale, 1.0f, 0);
    cr_expect_eq(m->n_layers, 1);
    cr_expect_null(m->readout.type);
    cr_expect_null(m->loss.type);
    cr_expect_eq(m->n_plugins, 0);
    spk_train_config *tc = spk_model_train_config(m);
    cr_expect_null(tc->train_images);
    cr_expect_null(tc->test_labels);
    cr_expect_eq(tc->batch, 128);
    cr_expect_eq(tc->epochs, 1);
    cr_expect_eq(tc->optim.kind, SPK_OPTIM_ADAM);
    cr_expect_float_eq(tc->optim.lr, 1e-3f, 1e-12);
    cr_expect_float_eq(tc->optim.beta1, 0.9f, 1e-9);
    cr_expect_float_eq(tc->optim.beta2, 0.999f, 1e-9);
    cr_expect_float_eq(tc->optim.eps, 1e-8f, 1e-15);
    cr_expect_float_eq(tc->optim.weight_decay, 0.0f, 0);
    cr_expect_float_eq(tc->optim.clip_norm, 0.0f, 0);
    spk_model_free(m);
}

Test(model_load, from_string)
{
    const char *yaml = "input: {shape: [2, 3]}\n"
                       "time_steps: 4\n"
                       "seed: 18446744073709551615\n"
                       "layers:\n"
                       "  - {name: a, type: test.neuron, surrogate: {type: triangle}}\n"
                       "train:\n"
                       "  data: {images: rel/img, labels: rel/lab}\n"
                       "  optimizer: {type: adamw, betas: [0.8, 0.99], eps: 1e-6}\n";
    spk_model *m = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_model_load_string(yaml, "models/inline.yaml", &m, &err), SPK_OK, "%s",
                 err.msg);
    cr_expect_str_eq(spk_model_name(m), "inline");
    cr_expect_eq(spk_model_seed(m), UINT64_MAX);
    cr_expect_eq(m->in_ndim, 2);
    /* relative paths stay relative to the working directory */
    cr_expect_str_eq(m->train.train_images, "rel/img");
    cr_expect_eq(m->train.optim.kind, SPK_OPTIM_ADAMW);
    cr_expect_float_eq(m->train.optim.weight_decay, 0.01f, 1e-9); /* adamw's default */
    cr_expect_float_eq(m->train.optim.beta1, 0.8f, 1e-9);
    cr_expect_float_eq(m->train.optim.beta2, 0.99f, 1e-9);
    cr_expect_float_eq(m->train.optim.eps, 1e-6f, 1e-12);
    const spk_param_value *sg = param(&m->layers[0], "surrogate");
    cr_expect_eq(sg->sg.kind, SPK_SG_TRIANGLE);
    cr_expect_float_eq(sg->sg.slope, 1.0f, 0);
    spk_model_free(m);
    /* a plugin path in a string model stays relative to the working directory */
    m = (spk_model *)1;
    cr_expect_eq(spk_model_load_string("input: {shape: [2]}\ntime_steps: 1\nplugins: [libx.so]\n"
                                       "layers: [{name: a, type: test.neuron}]\n",
                                       "models/inline.yaml", &m, &err),
                 SPK_ERR_NOTFOUND);
    cr_expect_null(m);
    cr_expect_not_null(strstr(err.msg, "models/inline.yaml:3:11: plugins: libx.so: cannot load "
                                       "plugin"),
                       "%s", err.msg);
}

Test(model_load, relative_path_written_by_test)
{
    /* a file in a fresh folder: paths resolve against that folder */
    char *path = spk_test_write("rel.yaml", "input: {shape: [4]}\n"
                                            "time_steps: 2\n"
                                            "layers: [{name: a, type: test.neuron}]\n"
                                            "train: {data: {images: i.gz, labels: ../l.gz}}\n");
    cr_assert_not_null(path);
    spk_model *m = load_ok(path);
    char want[1024];
    snprintf(want, sizeof want, "%s/i.gz", spk_test_tmpdir());
    cr_expect_str_eq(m->train.train_images, want);
    snprintf(want, sizeof want, "%s/../l.gz", spk_test_tmpdir());
    cr_expect_str_eq(m->train.train_labels, want);
    cr_expect_str_eq(spk_model_name(m), "rel");
    spk_model_free(m);
    free(path);
}

Test(model_load, free_null_and_accessors)
{
    spk_model_free(NULL);
    cr_expect_null(spk_model_name(NULL));
    cr_expect_eq(spk_model_time_steps(NULL), 0);
    cr_expect_null(spk_model_train_config(NULL));
    spk_layer_def d;
    memset(&d, 0, sizeof d);
    spk_layer_def_clear(&d);
    spk_params p;
    memset(&p, 0, sizeof p);
    spk_params_clear(&p);
}

/* ---- spk_params_* ---- */

Test(model_load, params_from_yaml)
{
    spk_params p;
    spk_error err = {0};
    cr_assert_eq(spk_params_from_yaml(&t_neuron, "{beta: 0.5}", &p, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(p.n, 8);
    cr_expect_eq(p.spec, neuron_params);
    const spk_param_value *b = spk_params_find(&p, "beta");
    cr_assert_not_null(b);
    cr_expect_float_eq(b->num, 0.5, 1e-12);
    cr_expect_eq(b->is_set, 1);
    cr_expect_eq(b->line, 1);
    cr_expect_eq(b->col, 8);
    cr_expect_float_eq(spk_params_find(&p, "threshold")->num, 1.0, 0);
    cr_expect_eq(spk_params_find(&p, "threshold")->is_set, 0);
    cr_expect_eq(spk_params_find(&p, "surrogate")->sg.kind, SPK_SG_FAST_SIGMOID);
    cr_expect_float_eq(spk_params_find(&p, "surrogate")->sg.slope, 10.0f, 0);
    cr_expect_eq(spk_params_find(&p, "init_beta")->init.kind, SPK_INIT_UNIFORM);
    cr_expect_null(spk_params_find(&p, "gamma"));
    spk_params_clear(&p);
    cr_expect_null(p.v);

    /* NULL and "" mean all defaults */
    cr_assert_eq(spk_params_from_yaml(&t_neuron, NULL, &p, &err), SPK_OK, "%s", err.msg);
    cr_expect_float_eq(spk_params_find(&p, "beta")->num, 0.9, 1e-12);
    spk_params_clear(&p);
    cr_assert_eq(spk_params_from_yaml(&t_neuron, "", &p, &err), SPK_OK, "%s", err.msg);
    spk_params_clear(&p);

    /* errors read like the loader's */
    cr_expect_eq(spk_params_from_yaml(&t_neuron, "{beta: 0.5, betaa: 1}", &p, &err),
                 SPK_ERR_INVALID);
    cr_expect_str_eq(err.msg,
                     "params:1:13: test.neuron: unknown key 'betaa'; did you mean 'beta'?");
    cr_expect_null(p.v);
    cr_expect_eq(spk_params_from_yaml(&t_neuron, "{beta: [1, 2]}", &p, &err), SPK_ERR_INVALID);
    cr_expect_str_eq(
        err.msg,
        "params:1:8: test.neuron: 'beta' must be a number in [0, 1], got a list of 2 items");
    cr_expect_eq(spk_params_from_yaml(&t_neuron, "{beta: 0.5", &p, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "params:"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "YAML syntax error"), "%s", err.msg);
    /* a required key */
    cr_expect_eq(spk_params_from_yaml(&t_synapse, "{}", &p, &err), SPK_ERR_INVALID);
    cr_expect_str_eq(err.msg, "params:1:1: test.synapse: missing required key 'out'");
    cr_expect_eq(spk_params_defaults(&t_synapse, &p, &err), SPK_ERR_INVALID);
    cr_expect_str_eq(err.msg, "test.synapse: missing required key 'out'");
    cr_assert_eq(spk_params_from_yaml(&t_synapse, "{out: 5}", &p, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_params_find(&p, "out")->num, 5);
    spk_params_clear(&p);

    /* an int without a range: no bounds in the message */
    cr_assert_eq(spk_params_from_yaml(&t_encoder, "{offset: -7}", &p, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_params_find(&p, "offset")->num, -7);
    spk_params_clear(&p);
    cr_expect_eq(spk_params_from_yaml(&t_encoder, "{offset: x}", &p, &err), SPK_ERR_INVALID);
    cr_expect_str_eq(err.msg, "params:1:10: test.encoder: 'offset' must be an integer, got 'x'");
}

Test(model_load, params_value_forms)
{
    spk_params p;
    spk_error err = {0};
    struct {
        const char *yaml;
        const char *msg; /* NULL: must load */
    } cases[] = {
        {"{init_beta: {constant: 0.3}}", NULL},
        {"{init_beta: {normal: [0.5, 0.1]}}", NULL},
        {"{init_beta: {constant: 2}}", "'init_beta': constant must be a number in [0, 1], got '2'"},
        {"{init_beta: {uniform: [0.5, 2]}}",
         "1:29: test.neuron: 'init_beta': uniform bounds must be numbers in [0, 1], got '2'"},
        {"{init_beta: {uniform: [0.6, 0.5]}}", "uniform [lo, hi] needs lo <= hi, got [0.6, 0.5]"},
        {"{init_beta: {normal: [0, -1]}}", "'init_beta': the std of normal must be >= 0, got '-1'"},
        {"{init_beta: {uniform: [0, 1], normal: [0, 1]}}",
         "'init_beta' must be a mapping with one key (uniform, normal or constant), got 2 keys"},
        {"{init_beta: abc}",
         "'init_beta' must be a number in [0, 1] or a mapping {uniform: [lo, hi]}"},
        {"{surrogate: {type: sigmoid, slope: 4}}", NULL},
        {"{surrogate: {type: fast_sigmoid, alpha: 4}}",
         "'surrogate': surrogate 'fast_sigmoid' takes 'slope', not 'alpha'"},
        {"{surrogate: {type: atan, alpha: 0}}",
         "'surrogate': 'alpha' of surrogate 'atan' must be a number > 0, got '0'"},
        {"{surrogate: {slope: 4}}", "1:13: test.neuron: 'surrogate': missing required key 'type'"},
        {"{surrogate: {type: atan, slop: 4}}", "unknown key 'slop'; did you mean 'slope'?"},
        {"{window: 101}", "'window' must be an integer in [1, 100], got '101'"},
        {"{window: 2.5}", "'window' must be an integer in [1, 100], got '2.5'"},
        {"{window: '5'}", "got '5' (quoted, so a string)"},
        {"{threshold: 0}", "'threshold' must be a number >= 1e-06, got '0'"},
        {"{threshold: .nan}", "'threshold' must be a number >= 1e-06, got '.nan'"},
        {"{beta: inf}", "'beta' must be a number in [0, 1], got 'inf'"},
        {"{learn_beta: 1}", "'learn_beta' must be true or false, got '1'"},
        {"{learn_beta: NO}", NULL},
        {"{reset: [zero]}", "'reset' must be one of subtract|zero|none, got a list of 1 item"},
        {"{reset: xyz}", "'reset' must be one of subtract|zero|none, got 'xyz'"},
        {"{tag: {a: 1}}", "'tag' must be a string, got a mapping"},
        {"{tag: ''}", NULL},
        {"{Beta: 0.5}", "unknown key 'Beta'; did you mean 'beta'?"},
        {"{zzzzzz: 1}", "unknown key 'zzzzzz'"},
        {"[1, 2]",
         "params:1:1: test.neuron: expected a mapping of parameters, got a list of 2 items"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        int rc = spk_params_from_yaml(&t_neuron, cases[i].yaml, &p, &err);
        if (!cases[i].msg) {
            cr_expect_eq(rc, SPK_OK, "%s: %s", cases[i].yaml, err.msg);
            spk_params_clear(&p);
            continue;
        }
        cr_expect_eq(rc, SPK_ERR_INVALID, "%s: rc %d", cases[i].yaml, rc);
        cr_expect_not_null(strstr(err.msg, cases[i].msg),
                           "%s:\n  got      \"%s\"\n  expected \"...%s...\"", cases[i].yaml,
                           err.msg, cases[i].msg);
    }
    /* no suggestion when nothing is close */
    spk_params_from_yaml(&t_neuron, "{zzzzzz: 1}", &p, &err);
    cr_expect_null(strstr(err.msg, "did you mean"), "%s", err.msg);
    spk_params_from_yaml(&t_neuron, "{reset: xyz}", &p, &err);
    cr_expect_null(strstr(err.msg, "did you mean"), "%s", err.msg);
}

Test(model_load, bad_default_in_table)
{
    static const spk_param_spec bad[] = {
        {"x", SPK_PARAM_FLOAT, "abc", 0, 1, NULL, NULL},
        {NULL, 0, NULL, 0, 0, NULL, NULL},
    };
    FAKE_TYPE(t_bad, "test.bad_default", SPK_KIND_NEURON, bad);
    spk_params p;
    spk_error err = {0};
    cr_expect_eq(spk_params_defaults(&t_bad, &p, &err), SPK_ERR_INVALID);
    cr_expect_str_eq(err.msg, "layer type 'test.bad_default': bad default: 'x' must be a number in "
                              "[0, 1], got 'abc'");
}

/* ---- broken files: each message must name the place, the context, and what was wrong ---- */

Test(model_load, err_syntax)
{
    expect_fail("bad_syntax.yaml", SPK_ERR_PARSE,
                "bad_syntax.yaml:5:5: YAML syntax error: did not find expected ',' or '}' "
                "(while parsing a flow mapping at 4:5)");
}

Test(model_load, err_unknown_top_key)
{
    expect_fail("bad_top_key.yaml", SPK_ERR_INVALID,
                "bad_top_key.yaml:2:1: unknown key 'tme_steps'; did you mean 'time_steps'?");
}

Test(model_load, err_missing_time_steps)
{
    expect_fail("missing_time_steps.yaml", SPK_ERR_INVALID,
                "missing_time_steps.yaml:3:1: missing required key 'time_steps'");
}

Test(model_load, err_time_steps_zero)
{
    expect_fail("time_steps_zero.yaml", SPK_ERR_INVALID,
                "time_steps_zero.yaml:2:13: 'time_steps' must be an integer >= 1, got '0'");
}

Test(model_load, err_plugin_missing)
{
    /* plugins load before the layers are checked; the path resolves against the model's folder */
    expect_fail("plugin_missing.yaml", SPK_ERR_NOTFOUND,
                "plugin_missing.yaml:4:11: plugins: " SPK_SOURCE_DIR
                "/tests/data/models/plugins/libmine.so: cannot load plugin: No such file");
}

Test(model_load, err_unknown_type)
{
    expect_fail("unknown_type.yaml", SPK_ERR_NOTFOUND,
                "unknown_type.yaml:6:11: layer 'n1': unknown layer type 'test.nuron'; did you mean "
                "'test.neuron'?");
}

Test(model_load, err_unknown_param)
{
    expect_fail("unknown_param.yaml", SPK_ERR_INVALID,
                "unknown_param.yaml:7:5: layer 'n1' (test.neuron): unknown key 'treshold'; did you "
                "mean 'threshold'?");
}

Test(model_load, err_int_wrong_type)
{
    expect_fail(
        "int_wrong_type.yaml", SPK_ERR_INVALID,
        "int_wrong_type.yaml:4:42: layer 'fc1' (test.synapse): 'out' must be an integer >= 1, "
        "got 'abc'");
}

Test(model_load, err_float_range)
{
    expect_fail(
        "float_range.yaml", SPK_ERR_INVALID,
        "float_range.yaml:4:41: layer 'n1' (test.neuron): 'beta' must be a number in [0, 1], "
        "got '1.5'");
}

Test(model_load, err_bad_choice)
{
    expect_fail("bad_choice.yaml", SPK_ERR_INVALID,
                "bad_choice.yaml:4:42: layer 'n1' (test.neuron): 'reset' must be one of "
                "subtract|zero|none, got 'zeroo'; did you mean 'zero'?");
}

Test(model_load, err_dup_layer_name)
{
    expect_fail(
        "dup_layer_name.yaml", SPK_ERR_INVALID,
        "dup_layer_name.yaml:6:12: layer #3: duplicate layer name 'fc1' (first used at 4:5)");
}

Test(model_load, err_from_later)
{
    expect_fail(
        "from_later.yaml", SPK_ERR_INVALID,
        "from_later.yaml:5:47: layer 'n1' (test.neuron): 'from' names 'n2', which comes later "
        "(layer #3)");
}

Test(model_load, err_from_unknown)
{
    expect_fail(
        "from_unknown.yaml", SPK_ERR_INVALID,
        "from_unknown.yaml:5:41: layer 'n1' (test.neuron): 'from' names unknown layer 'fc2'; "
        "did you mean 'fc1'?");
}

Test(model_load, err_readout_kind)
{
    expect_fail("readout_kind.yaml", SPK_ERR_INVALID,
                "readout_kind.yaml:5:17: readout: type 'test.neuron' is a neuron type, expected a "
                "readout type");
}

Test(model_load, err_loss_in_layers)
{
    expect_fail("loss_in_layers.yaml", SPK_ERR_INVALID,
                "loss_in_layers.yaml:5:21: layer 'l': type 'test.loss' is a loss type; it belongs "
                "under 'loss:', not in 'layers'");
}

Test(model_load, err_bad_surrogate)
{
    expect_fail("bad_surrogate.yaml", SPK_ERR_INVALID,
                "bad_surrogate.yaml:4:46: layer 'n1' (test.neuron): 'surrogate' must be one of "
                "fast_sigmoid|atan|sigmoid|triangle or {type: name, slope: x}, got 'fast_sigmod'; "
                "did you mean 'fast_sigmoid'?");
}

Test(model_load, err_surrogate_key)
{
    expect_fail("surrogate_key.yaml", SPK_ERR_INVALID,
                "surrogate_key.yaml:4:59: layer 'n1' (test.neuron): 'surrogate': surrogate 'atan' "
                "takes 'alpha', not 'slope'");
}

Test(model_load, err_bad_init)
{
    expect_fail("bad_init.yaml", SPK_ERR_INVALID,
                "bad_init.yaml:6:26: layer 'n1' (test.neuron): 'init_beta': uniform must be a list "
                "[lo, hi] of two numbers, got a list of 1 item");
}

Test(model_load, err_bad_init_kind)
{
    expect_fail("bad_init_kind.yaml", SPK_ERR_INVALID,
                "bad_init_kind.yaml:4:47: layer 'n1' (test.neuron): 'init_beta': unknown init "
                "'unifrom'; expected uniform, normal or constant; did you mean 'uniform'?");
}

Test(model_load, err_layers_not_seq)
{
    expect_fail(
        "layers_not_seq.yaml", SPK_ERR_INVALID,
        "layers_not_seq.yaml:3:9: 'layers' must be a non-empty list of layer mappings, got a "
        "mapping");
}

Test(model_load, err_bad_optimizer)
{
    expect_fail(
        "bad_optimizer.yaml", SPK_ERR_INVALID,
        "bad_optimizer.yaml:6:21: train.optimizer: 'type' must be one of sgd|adam|adamw, got "
        "'adamm'; did you mean 'adam'?");
}

Test(model_load, err_bad_betas)
{
    expect_fail(
        "bad_betas.yaml", SPK_ERR_INVALID,
        "bad_betas.yaml:8:12: train.optimizer: 'betas' must be a list of two numbers in [0, "
        "1), e.g. [0.9, 0.999], got a list of 1 item");
}

Test(model_load, err_momentum_adam)
{
    expect_fail(
        "momentum_adam.yaml", SPK_ERR_INVALID,
        "momentum_adam.yaml:6:27: train.optimizer: 'momentum' applies to sgd, not to type adam");
}

Test(model_load, err_dup_key)
{
    expect_fail("dup_key.yaml", SPK_ERR_INVALID,
                "dup_key.yaml:7:5: layer #1: duplicate key 'beta' (first given at 6:5)");
}

Test(model_load, err_empty_file)
{
    expect_fail(
        "empty.yaml", SPK_ERR_INVALID,
        "empty.yaml:1:1: the file is empty; expected a mapping with 'input', 'time_steps' and "
        "'layers'");
}

Test(model_load, err_missing_param)
{
    expect_fail("missing_param.yaml", SPK_ERR_INVALID,
                "missing_param.yaml:4:5: layer 'fc1' (test.synapse): missing required key 'out'");
}

Test(model_load, err_bad_data_key)
{
    expect_fail("bad_data_key.yaml", SPK_ERR_INVALID,
                "bad_data_key.yaml:6:23: train.data: unknown key 'imags'; did you mean 'images'?");
}

Test(model_load, err_two_documents)
{
    expect_fail("two_docs.yaml", SPK_ERR_PARSE,
                "two_docs.yaml:5:1: expected one YAML document, found a second one");
}

Test(model_load, err_bad_shape)
{
    expect_fail("bad_shape.yaml", SPK_ERR_INVALID,
                "bad_shape.yaml:1:20: input: 'shape' entries must be integers >= 1, got '0'");
}

Test(model_load, err_bad_bool)
{
    expect_fail("bad_bool.yaml", SPK_ERR_INVALID,
                "bad_bool.yaml:4:47: layer 'n1' (test.neuron): 'learn_beta' must be true or false, "
                "got 'maybe'");
}

Test(model_load, err_quoted_int)
{
    expect_fail("quoted_int.yaml", SPK_ERR_INVALID,
                "quoted_int.yaml:2:13: 'time_steps' must be an integer >= 1, got '5' (quoted, so a "
                "string)");
}

Test(model_load, err_bad_name)
{
    expect_fail(
        "bad_name.yaml", SPK_ERR_INVALID,
        "bad_name.yaml:4:12: layer #1: 'name' must be a word of letters, digits, '_' and '-' "
        "(at most 63 characters), got 'fc.1'");
}

Test(model_load, err_bad_input_key)
{
    expect_fail("bad_input_key.yaml", SPK_ERR_INVALID,
                "bad_input_key.yaml:1:21: input: unknown key 'scael'; did you mean 'scale'?");
}

Test(model_load, err_io)
{
    spk_model *m = NULL;
    spk_error err = {0};
    cr_expect_eq(spk_model_load(FIXTURES "does_not_exist.yaml", &m, &err), SPK_ERR_IO);
    cr_expect_null(m);
    cr_expect_not_null(strstr(err.msg, "does_not_exist.yaml: cannot open: No such file"), "%s",
                       err.msg);
    /* a folder opens but does not read */
    cr_expect_eq(spk_model_load(FIXTURES, &m, &err), SPK_ERR_IO, "%s", err.msg);
    cr_expect_null(m);
    cr_expect_eq(spk_model_load(NULL, &m, &err), SPK_ERR_INVALID);
    cr_expect_eq(spk_model_load_string(NULL, "x", &m, &err), SPK_ERR_INVALID);
}

Test(model_load, err_inline_cases)
{
    static const char *head = "input: {shape: [4]}\ntime_steps: 5\n";
    struct {
        const char *tail;
        int code;
        const char *msg;
    } cases[] = {
        {"layers: []\n", SPK_ERR_INVALID,
         "inline.yaml:3:9: 'layers' must be a non-empty list of layer mappings, got a list of 0 "
         "items"},
        {"layers: [foo]\n", SPK_ERR_INVALID,
         "inline.yaml:3:10: layer #1: expected a layer mapping {name: ..., type: ..., ...}, got "
         "'foo'"},
        {"layers: [{type: test.neuron}]\n", SPK_ERR_INVALID,
         "inline.yaml:3:10: layer #1: missing required key 'name'"},
        {"layers: [{name: a}]\n", SPK_ERR_INVALID,
         "inline.yaml:3:10: layer 'a': missing required key 'type'"},
        {"layers: [{name: a, type: test.neuron, from: a}]\n", SPK_ERR_INVALID,
         "inline.yaml:3:45: layer 'a' (test.neuron): 'from' names the layer itself"},
        {"layers: [{name: a, type: test.neuron}, {name: b, type: test.neuron, from: [a, a, a, a, "
         "a]}]\n",
         SPK_ERR_INVALID,
         "'from' must be a layer name or a list of 1 to 4 names, got a list of 5 items"},
        {"layers: [{name: readout, type: test.neuron}]\nreadout: {type: test.readout}\n",
         SPK_ERR_INVALID,
         "inline.yaml:4:10: readout: the default name 'readout' is already used at 3:10"},
        {"layers: [{name: a, type: test.neuron}]\nloss: {type: test.readout}\n", SPK_ERR_INVALID,
         "inline.yaml:4:14: loss: type 'test.readout' is a readout type, expected a loss type"},
        {"layers: [{name: a, type: test.neuron}]\nloss: {type: test.loss, correct_rat: 1}\n",
         SPK_ERR_INVALID,
         "inline.yaml:4:25: loss (test.loss): unknown key 'correct_rat'; did you mean "
         "'correct_rate'?"},
        {"layers: [{name: a, type: test.neuron}]\nseed: -1\n", SPK_ERR_INVALID,
         "inline.yaml:4:7: 'seed' must be an integer >= 0 (64-bit), got '-1'"},
        {"layers: [{name: a, type: test.neuron}]\ntrain: {batch: 0}\n", SPK_ERR_INVALID,
         "inline.yaml:4:16: train: 'batch' must be an integer >= 1, got '0'"},
        {"layers: [{name: a, type: test.neuron}]\ntrain: {optimizer: {lr: 0}}\n", SPK_ERR_INVALID,
         "train.optimizer: 'lr' must be a number > 0, got '0'"},
        {"layers: [{name: a, type: test.neuron}]\ntrain: {optimizer: {betas: [0.9, 1.0]}}\n",
         SPK_ERR_INVALID, "'betas' must be a list of two numbers in [0, 1)"},
        {"layers: [{name: a, type: test.neuron}]\ntrain: {optimizer: {type: sgd, nesterov: "
         "true}}\n",
         SPK_ERR_INVALID, "'nesterov' needs a 'momentum' > 0"},
        {"layers: [{name: a, type: test.neuron}]\ntrain: {data: {format: csv, images: a, labels: "
         "b}}\n",
         SPK_ERR_INVALID, "train.data: 'format' must be one of idx|nmnist, got 'csv'"},
        {"layers: [{name: a, type: test.neuron}]\ntrain: {data: {images: a}}\n", SPK_ERR_INVALID,
         "inline.yaml:4:15: train.data: missing required key 'labels'"},
        {"layers: [{name: a, type: test.neuron}]\ntrain: {data: {images: '', labels: b}}\n",
         SPK_ERR_INVALID, "train.data: 'images' must be a path, got ''"},
        {"layers: [{name: a, type: test.neuron}]\nplugins: lib.so\n", SPK_ERR_INVALID,
         "inline.yaml:4:10: 'plugins' must be a list of paths, got 'lib.so'"},
        {"layers: [{name: a, type: test.neuron}]\nplugins: [[x]]\n", SPK_ERR_INVALID,
         "'plugins' must be a path, got a list of 1 item"},
        {"layers: [{name: a, type: test.neuron}]\n[a]: 1\n", SPK_ERR_INVALID,
         "inline.yaml:4:1: keys must be words, got a list of 1 item"},
        {"layers: &x [{name: a, type: test.neuron}]\nlayerz: *x\n", SPK_ERR_INVALID,
         "unknown key 'layerz'; did you mean 'layers'?"},
        {"layers: [{name: a, type: test.neuron}]\nfoo: *undefined\n", SPK_ERR_PARSE,
         "inline.yaml:4:6: YAML syntax error: found undefined alias"},
        {"layers:\n\t- {name: a, type: test.neuron}\n", SPK_ERR_PARSE,
         "inline.yaml:4:1: YAML syntax error: found character that cannot start any token"},
        {"layers: [{name: a, type: test.neuron, beta: \"\xff\"}]\n", SPK_ERR_PARSE,
         "inline.yaml:3:46: YAML syntax error: invalid leading UTF-8 octet (byte 0xFF)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "%s%s", head, cases[i].tail);
        expect_string_fail(yaml, cases[i].code, cases[i].msg);
    }
    /* input errors need their own head */
    expect_string_fail("input: {shape: [1, 2, 3, 4, 5]}\ntime_steps: 1\nlayers: [{name: a, type: "
                       "test.neuron}]\n",
                       SPK_ERR_INVALID,
                       "inline.yaml:1:16: input: 'shape' must be a list of 1 to 4 integers >= 1");
    expect_string_fail("input: {scale: 2}\ntime_steps: 1\nlayers: [{name: a, type: test.neuron}]\n",
                       SPK_ERR_INVALID, "inline.yaml:1:8: input: missing required key 'shape'");
    expect_string_fail("input: {shape: [3], scale: 0}\ntime_steps: 1\nlayers: [{name: a, type: "
                       "test.neuron}]\n",
                       SPK_ERR_INVALID, "input: 'scale' must be a number > 0, got '0'");
    expect_string_fail("- a\n- b\n", SPK_ERR_INVALID,
                       "inline.yaml:1:1: expected a mapping of model keys");
    expect_string_fail("# only a comment\n", SPK_ERR_INVALID, "inline.yaml:1:1: the file is empty");
}

/* input, train and optimizer are read from tables: with several mistakes in one section the
 * first reported is the one the table reads first, whatever the order in the file */
Test(model_load, section_tables_keep_their_order)
{
    const char *head =
        "input: {shape: [4]}\ntime_steps: 1\nlayers: [{name: a, type: test.neuron}]\n";
    static const struct {
        const char *tail, *msg;
    } cases[] = {
        {"train: {data: {imags: x}, epochs: 0, batch: 0}\n",
         "inline.yaml:4:45: train: 'batch' must be an integer >= 1, got '0'"},
        {"train: {optimizer: {min_lr: -1, lr: 0}}\n",
         "inline.yaml:4:37: train.optimizer: 'lr' must be a number > 0, got '0'"},
        {"train: {optimizer: {lr: 0, type: sgdd}}\n",
         "inline.yaml:4:34: train.optimizer: 'type' must be one of sgd|adam|adamw, got 'sgdd'; "
         "did you mean 'sgd'?"},
        {"train: {optimizer: {type: sgd, momentum: 0.5, nesterov: yes, betas: [0.9, 2]}}\n",
         "inline.yaml:4:62: train.optimizer: 'betas' applies to adam and adamw, not to type sgd"},
        {"train: {optimizer: {betas: 0.9}}\n",
         "inline.yaml:4:28: train.optimizer: 'betas' must be a list of two numbers in [0, 1), e.g. "
         "[0.9, 0.999], got '0.9'"},
        {"train: {optimizer: {schedule: cosin}}\n",
         "train.optimizer: 'schedule' must be one of constant|cosine, got 'cosin'; did you mean "
         "'cosine'?"},
        {"train: {test: {images: a}, data: {images: b}}\n",
         "inline.yaml:4:34: train.data: missing required key 'labels'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "%s%s", head, cases[i].tail);
        expect_string_fail(yaml, SPK_ERR_INVALID, cases[i].msg);
    }
    /* shape is read before scale */
    expect_string_fail("input: {scale: 0, shape: [0]}\ntime_steps: 1\nlayers: [{name: a, type: "
                       "test.neuron}]\n",
                       SPK_ERR_INVALID,
                       "inline.yaml:1:27: input: 'shape' entries must be integers");
}
