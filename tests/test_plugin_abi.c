/* Plugins as shared libraries: loading, the no-op second load, SPIKECL_PLUGIN_PATH, a model's
 * `plugins:` list, and every refusal with its message (tests/plugins/test_plugin.c builds one
 * library per way of being wrong). Criterion runs each test in its own process, so each starts
 * with only the built-in types registered. */
#define _XOPEN_SOURCE 700
#include "layer_check.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* realpath of a test plugin: the registry lists plugins by their canonical path */
static char *canon(const char *path)
{
    char *c = realpath(path, NULL);
    cr_assert_not_null(c, "%s: %s", path, strerror(errno));
    return c;
}

static char *dir_of(const char *path)
{
    char *d = strdup(path);
    cr_assert_not_null(d);
    char *slash = strrchr(d, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    return d;
}

#define expect_has(msg, part)                                                                      \
    cr_expect(strstr((msg), (part)) != NULL, "message lacks \"%s\": %s", (part), (msg))

/* Loads a library that must be refused with `code`; returns the message (static). */
static const char *refused(const char *path, int code)
{
    static spk_error err;
    spk_error_clear(&err);
    int n = spk_registry_count(spk_registry_default());
    int rc = spk_plugin_load(path, &err);
    cr_assert_eq(rc, code, "%s: expected status %d, got %d: %s", path, code, rc, err.msg);
    cr_expect_eq(err.code, code);
    cr_expect_eq(spk_registry_count(spk_registry_default()), n, "%s left types behind", path);
    return err.msg;
}

/* ---- loading a good plugin ---- */

Test(plugin_abi, load_good_and_run_it)
{
    spk_error err = {0};
    spk_registry *reg = spk_registry_default();
    int n = spk_registry_count(reg);
    cr_assert_null(spk_registry_find(reg, "neuron.tp_scale"));
    cr_assert_eq(spk_plugin_load(SPK_TP_GOOD, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_registry_count(reg), n + 1);
    const spk_layer_type *t = spk_registry_find(reg, "neuron.tp_scale");
    cr_assert_not_null(t);
    char *c = canon(SPK_TP_GOOD);
    cr_expect_str_eq(spk_registry_source(reg, "neuron.tp_scale"), c);
    cr_expect_str_eq(spk_registry_source(reg, "neuron.lif"), "built-in");
    cr_expect_null(spk_registry_source(reg, "neuron.nothing"));

    /* the same file again, by its path and through a symlink: nothing happens */
    cr_assert_eq(spk_plugin_load(SPK_TP_GOOD, &err), SPK_OK, "%s", err.msg);
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/alias.so", spk_test_tmpdir());
    cr_assert_eq(symlink(c, link), 0, "%s", strerror(errno));
    cr_assert_eq(spk_plugin_load(link, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_registry_count(reg), n + 1);
    cr_expect_eq(spk_registry_find(reg, "neuron.tp_scale"), t);

    /* it runs: y = gain * x on the CPU backend, and backward passes gain * grad */
    lc l;
    lc_new(&l, "neuron.tp_scale", "{gain: 3}", lc_shape(SPK_TIME_STEPS, 1, 5, 0, 0), 2, 3, 1);
    lc_fill(&l, &l.li->in[0], -1.0f, 1.0f, 3);
    lc_fwd(&l);
    float *x = lc_fetch(&l, &l.li->in[0]), *y = lc_fetch(&l, &l.li->out);
    for (size_t i = 0; i < l.li->out.numel; i++)
        cr_expect_float_eq(y[i], 3.0f * x[i], 1e-6f);
    lc_backward_with(&l, x);
    float *g = lc_fetch(&l, &l.li->grad_in[0]);
    for (size_t i = 0; i < l.li->out.numel; i++)
        cr_expect_float_eq(g[i], 3.0f * x[i], 1e-6f);
    free(x), free(y), free(g), free(c);
    lc_free(&l);
}

/* ---- refusals ---- */

Test(plugin_abi, missing_file)
{
    const char *msg = refused("/nonexistent/libspk_nothing.so", SPK_ERR_NOTFOUND);
    expect_has(msg, "/nonexistent/libspk_nothing.so: cannot load plugin: No such file");
}

Test(plugin_abi, not_a_library)
{
    char *fake = spk_test_write("libfake.so", "this is text, not ELF\n");
    cr_assert_not_null(fake);
    char *c = canon(fake);
    const char *msg = refused(fake, SPK_ERR_PLUGIN);
    expect_has(msg, c);
    expect_has(msg, "not a loadable library: ");
    /* the dlerror text, without the path a second time */
    cr_expect(strstr(strstr(msg, c) + strlen(c), c) == NULL, "path twice: %s", msg);
    msg = refused(spk_test_tmpdir(), SPK_ERR_PLUGIN);
    expect_has(msg, "is a folder, not a plugin library");
    free(fake), free(c);
}

Test(plugin_abi, no_entry_point)
{
    char *c = canon(SPK_TP_NOENTRY);
    const char *msg = refused(SPK_TP_NOENTRY, SPK_ERR_PLUGIN);
    expect_has(msg, c);
    expect_has(msg, "no symbol spk_plugin_init; is it a spikecl plugin?");
    free(c);
}

Test(plugin_abi, other_major)
{
    char *c = canon(SPK_TP_MAJOR);
    const char *msg = refused(SPK_TP_MAJOR, SPK_ERR_PLUGIN);
    char want[160];
    snprintf(want, sizeof want,
             "layer type 'neuron.tp_major' was built for plugin ABI 99.%d, but this spikecl "
             "provides ABI %d.%d",
             SPK_ABI_MINOR, SPK_ABI_MAJOR, SPK_ABI_MINOR);
    expect_has(msg, c);
    expect_has(msg, want);
    cr_expect_null(spk_registry_find(spk_registry_default(), "neuron.tp_major"));
    free(c);
}

Test(plugin_abi, newer_minor)
{
    char *c = canon(SPK_TP_MINOR);
    const char *msg = refused(SPK_TP_MINOR, SPK_ERR_PLUGIN);
    char want[160];
    snprintf(want, sizeof want, "built for plugin ABI %d.%d, but this spikecl provides ABI %d.%d",
             SPK_ABI_MAJOR, SPK_ABI_MINOR + 1, SPK_ABI_MAJOR, SPK_ABI_MINOR);
    expect_has(msg, c);
    expect_has(msg, want);
    free(c);
}

Test(plugin_abi, duplicate_name)
{
    char *c = canon(SPK_TP_DUP);
    const char *msg = refused(SPK_TP_DUP, SPK_ERR_PLUGIN);
    expect_has(msg, c);
    expect_has(msg, "layer type 'neuron.lif' is already registered (from built-in)");
    /* the registry's message names the file already: not twice */
    cr_expect(strstr(msg + strlen(c), c) == NULL, "path twice: %s", msg);
    free(c);
}

Test(plugin_abi, bad_parameter_table)
{
    char *c = canon(SPK_TP_PARAMS);
    const char *msg = refused(SPK_TP_PARAMS, SPK_ERR_PLUGIN);
    char want[PATH_MAX + 96];
    snprintf(want, sizeof want,
             "%s: layer type 'neuron.tp_params': parameter 'mode' needs a list of choices", c);
    expect_has(msg, want);
    free(c);
}

/* Defaults are parsed when the type registers: a bad one refuses the plugin at load time, with
 * the plugin, the type and the parameter named, instead of failing each model that uses it. */
Test(plugin_abi, bad_default_refused_at_load)
{
    char *c = canon(SPK_TP_BADDEF);
    const char *msg = refused(SPK_TP_BADDEF, SPK_ERR_PLUGIN);
    char want[PATH_MAX + 160];
    snprintf(want, sizeof want,
             "%s: layer type 'neuron.tp_baddef': bad default: 'gain' must be a number in [0, 10], "
             "got '12.5'",
             c);
    expect_has(msg, want);
    cr_expect_null(spk_registry_find(spk_registry_default(), "neuron.tp_baddef"));
    free(c);
}

Test(plugin_abi, init_fails_and_is_undone)
{
    char *c = canon(SPK_TP_INITFAIL);
    char want[160];
    snprintf(want, sizeof want, "spk_plugin_init failed: needs spikecl ABI %d.%d or newer",
             SPK_ABI_MAJOR, SPK_ABI_MINOR + 1);
    const char *msg = refused(SPK_TP_INITFAIL, SPK_ERR_PLUGIN);
    expect_has(msg, c);
    expect_has(msg, want);
    /* it had registered neuron.tp_other before refusing: taken back, so a retry says the same
     * thing instead of "already registered" */
    cr_expect_null(spk_registry_find(spk_registry_default(), "neuron.tp_other"));
    msg = refused(SPK_TP_INITFAIL, SPK_ERR_PLUGIN);
    expect_has(msg, want);
    free(c);
}

/* ---- descriptor sizes and the version checks of SPK_PLUGIN_DEFINE ---- */

Test(plugin_abi, older_descriptor_loads_without_its_tail)
{
    spk_error err = {0};
    cr_assert_eq(spk_plugin_load(SPK_TP_OLD, &err), SPK_OK, "%s", err.msg);
    const spk_layer_type *t = spk_registry_find(spk_registry_default(), "neuron.tp_old");
    cr_assert_not_null(t);
    /* the plugin's memory past its struct_size holds a version string; a 1.0 descriptor has no
     * such field, so the host must not have read it */
    cr_expect_eq(t->struct_size, SPK_LAYER_TYPE_SIZE_1_0);
    cr_expect_null(t->version, "read past the descriptor's end: %s", t->version);
    lc l;
    lc_new(&l, "neuron.tp_old", "{gain: 2}", lc_shape(SPK_TIME_STEPS, 1, 3, 0, 0), 2, 2, 1);
    lc_fill(&l, &l.li->in[0], -1.0f, 1.0f, 5);
    lc_fwd(&l);
    float *x = lc_fetch(&l, &l.li->in[0]), *y = lc_fetch(&l, &l.li->out);
    for (size_t i = 0; i < l.li->out.numel; i++)
        cr_expect_float_eq(y[i], 2.0f * x[i], 1e-6f);
    free(x), free(y);
    lc_free(&l);

    /* today's descriptor keeps its tail */
    cr_assert_eq(spk_plugin_load(SPK_TP_GOOD, &err), SPK_OK, "%s", err.msg);
    t = spk_registry_find(spk_registry_default(), "neuron.tp_scale");
    cr_assert_not_null(t);
    cr_expect_str_eq(t->version, "0.3.1");
}

Test(plugin_abi, descriptor_shorter_than_1_0_is_refused)
{
    char want[160];
    snprintf(want, sizeof want, "layer type descriptor is %zu bytes, expected at least %zu",
             SPK_LAYER_TYPE_SIZE_1_0 - sizeof(spk_kernel_set), (size_t)SPK_LAYER_TYPE_SIZE_1_0);
    expect_has(refused(SPK_TP_SHORT, SPK_ERR_PLUGIN), want);
}

Test(plugin_abi, init_reports_through_set_error)
{
    spk_error err = {0};
    cr_assert_eq(spk_plugin_load(SPK_TP_GOOD, &err), SPK_OK, "%s", err.msg);
    lc l;
    int rc = lc_try(&l, "neuron.tp_scale", "{}", lc_shape(SPK_TIME_NONE, 1, 3, 0, 0), 2, 2);
    cr_expect_eq(rc, SPK_ERR_SHAPE);
    expect_has(l.err.msg, "(neuron.tp_scale): expected an input over time");
    lc_free(&l);
}

/* Calls the entry point that SPK_PLUGIN_DEFINE wrote with a host table claiming another
 * version; returns its status, the message in err. */
static int init_with_host(uint16_t major, uint16_t minor, spk_error *err)
{
    void *h = dlopen(SPK_TP_GOOD, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "%s", dlerror());
    void *sym = dlsym(h, SPK_PLUGIN_ENTRY);
    cr_assert_not_null(sym);
    spk_plugin_init_fn init;
    memcpy(&init, &sym, sizeof init);
    spk_host_api host = *spk_host_api_get();
    host.abi_major = major;
    host.abi_minor = minor;
    spk_error_clear(err);
    return init(&host, spk_registry_default(), err);
}

Test(plugin_abi, plugin_entry_refuses_an_older_or_other_host)
{
    spk_registry *reg = spk_registry_default();
    int n = spk_registry_count(reg);
    spk_error err;
    char want[160];
    snprintf(want, sizeof want,
             "neuron.tp_scale was built for spikecl plugin ABI %d.%d, the host has %d.%d",
             SPK_ABI_MAJOR, SPK_ABI_MINOR, SPK_ABI_MAJOR, SPK_ABI_MINOR - 1);
    cr_expect_eq(init_with_host(SPK_ABI_MAJOR, SPK_ABI_MINOR - 1, &err), SPK_ERR_PLUGIN);
    expect_has(err.msg, want);
    snprintf(want, sizeof want,
             "neuron.tp_scale was built for spikecl plugin ABI %d.%d, the host has %d.%d",
             SPK_ABI_MAJOR, SPK_ABI_MINOR, SPK_ABI_MAJOR + 1, 0);
    cr_expect_eq(init_with_host(SPK_ABI_MAJOR + 1, 0, &err), SPK_ERR_PLUGIN);
    expect_has(err.msg, want);
    cr_expect_eq(spk_registry_count(reg), n, "a refusing plugin registered something");
    /* the same host version it was built for: it registers */
    cr_expect_eq(init_with_host(SPK_ABI_MAJOR, SPK_ABI_MINOR, &err), SPK_OK, "%s", err.msg);
    cr_expect_not_null(spk_registry_find(reg, "neuron.tp_scale"));
}

/* ---- SPIKECL_PLUGIN_PATH ---- */

Test(plugin_abi, env_path_folders_and_files)
{
    spk_error err = {0};
    cr_assert_eq(unsetenv("SPIKECL_PLUGIN_PATH"), 0);
    cr_expect_eq(spk_plugin_load_path_env(&err), SPK_OK);
    setenv("SPIKECL_PLUGIN_PATH", "", 1);
    cr_expect_eq(spk_plugin_load_path_env(&err), SPK_OK);

    /* a folder, an empty entry, a file named directly (the same plugin: a no-op) */
    char *good_dir = dir_of(SPK_TP_GOOD);
    char env[3 * PATH_MAX];
    snprintf(env, sizeof env, "%s::%s:", good_dir, SPK_TP_GOOD);
    setenv("SPIKECL_PLUGIN_PATH", env, 1);
    cr_assert_eq(spk_plugin_load_path_env(&err), SPK_OK, "%s", err.msg);
    cr_expect_not_null(spk_registry_find(spk_registry_default(), "neuron.tp_scale"));
    cr_assert_eq(spk_plugin_load_path_env(&err), SPK_OK, "%s", err.msg);

    /* failures: reported (the first, and how many more), the rest still loads */
    char *dup_dir = dir_of(SPK_TP_DUP), *dup = canon(SPK_TP_DUP);
    char *params_dir = dir_of(SPK_TP_PARAMS);
    snprintf(env, sizeof env, "%s:/nonexistent/plugins:%s", dup_dir, params_dir);
    setenv("SPIKECL_PLUGIN_PATH", env, 1);
    cr_assert_eq(spk_plugin_load_path_env(&err), SPK_ERR_PLUGIN);
    expect_has(err.msg, "SPIKECL_PLUGIN_PATH: ");
    expect_has(err.msg, dup);
    expect_has(err.msg, "already registered");
    expect_has(err.msg, "(and 2 more failing plugins)");
    free(good_dir), free(dup_dir), free(dup), free(params_dir);
}

Test(plugin_abi, env_path_feeds_model_loads)
{
    char *good_dir = dir_of(SPK_TP_GOOD);
    setenv("SPIKECL_PLUGIN_PATH", good_dir, 1);
    spk_error err = {0};
    spk_model *m = NULL;
    const char *yaml = "input: {shape: [4]}\n"
                       "time_steps: 2\n"
                       "layers:\n"
                       "  - {name: enc, type: encoder.direct}\n"
                       "  - {name: s, type: neuron.tp_scale, gain: 0.5}\n";
    cr_assert_eq(spk_model_load_string(yaml, "env.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_model_free(m);
    free(good_dir);
}

/* The one rule for bad files on the search path: skipped, reported by
 * spk_plugin_load_path_env_once (the CLI warns); a model fails only if it needs their types. */
Test(plugin_abi, env_path_error_skips_the_library)
{
    char *bad_dir = dir_of(SPK_TP_NOENTRY), *bad = canon(SPK_TP_NOENTRY);
    setenv("SPIKECL_PLUGIN_PATH", bad_dir, 1);
    const char *yaml = "input: {shape: [4]}\ntime_steps: 2\nlayers:\n"
                       "  - {name: enc, type: encoder.direct}\n";
    spk_error err = {0};
    spk_model *m = NULL;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(spk_model_load_string(yaml, "env.yaml", &m, &err), SPK_OK, "%s", err.msg);
        spk_model_free(m);
        /* every call reports it, not only the one that scanned the path */
        cr_expect_eq(spk_plugin_load_path_env_once(&err), SPK_ERR_PLUGIN);
        expect_has(err.msg, "SPIKECL_PLUGIN_PATH: ");
        expect_has(err.msg, bad);
        expect_has(err.msg, "no symbol spk_plugin_init");
    }
    /* a type the model needs and did not get: the skipped library is named with it */
    const char *needs = "input: {shape: [4]}\ntime_steps: 2\nlayers:\n"
                        "  - {name: s, type: neuron.tp_scale}\n";
    cr_assert_eq(spk_model_load_string(needs, "env.yaml", &m, &err), SPK_ERR_NOTFOUND);
    expect_has(err.msg, "env.yaml:4:");
    expect_has(err.msg, "unknown layer type 'neuron.tp_scale'");
    expect_has(err.msg, "(skipped: SPIKECL_PLUGIN_PATH: ");
    expect_has(err.msg, "no symbol spk_plugin_init");
    free(bad_dir), free(bad);
}

/* A truncated library crashed dlopen with SIGBUS (its segments map past the end of the file).
 * The ELF check refuses it first: skipped on the search path by every command, a hard error
 * when a model lists it. Also an empty file, a text file and a copy cut inside the header. */
Test(plugin_abi, truncated_library_refused_before_dlopen)
{
    char dir[512], cmd[8 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/trunc", spk_test_tmpdir());
    struct stat st;
    cr_assert_eq(stat(SPK_TP_GOOD, &st), 0);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && head -c %lld '%s' > %s/half.so && : > %s/empty.so && "
             "echo text > %s/text.so && head -c 40 '%s' > %s/head.so",
             dir, (long long)st.st_size / 2, SPK_TP_GOOD, dir, dir, dir, SPK_TP_GOOD, dir);
    cr_assert_eq(spk_test_run(cmd, NULL), 0);
    const char *names[4] = {"half", "empty", "text", "head"};
    const char *why[4] = {"(PT_LOAD) ends at byte", "shorter than an ELF header",
                          "shorter than an ELF header", "shorter than an ELF header"};
    for (int i = 0; i < 4; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s.so", dir, names[i]);
        spk_error err = {0};
        cr_expect_eq(spk_plugin_load(path, &err), SPK_ERR_PLUGIN, "%s", path);
        expect_has(err.msg, "not a loadable library: ");
        expect_has(err.msg, why[i]);
    }
    /* the CLI: a model that needs no plugin runs, with a warning; plugins lists the rest */
    char *model = spk_test_write("noplug.yaml", "input: {shape: [4]}\ntime_steps: 2\nlayers:\n"
                                                "  - {name: enc, type: encoder.direct}\n"
                                                "  - {name: fc, type: synapse.linear, out: 3}\n"
                                                "  - {name: n, type: neuron.lif}\n"
                                                "readout: {type: readout.spike_count}\n"
                                                "loss: {type: loss.mse_count}\n");
    char *out = NULL;
    snprintf(cmd, sizeof cmd,
             "SPIKECL_PLUGIN_PATH='%s' '%s' bench %s --device cpu --batches 1 --batch 2", dir,
             SPK_CLI, model);
    cr_expect_eq(spk_test_run(cmd, &out), 0, "%s", out);
    expect_has(out, "warning: SPIKECL_PLUGIN_PATH: ");
    expect_has(out, "(and 3 more failing plugins); skipped");
    expect_has(out, "\"train_samples_per_s\"");
    free(out);
    snprintf(cmd, sizeof cmd, "SPIKECL_PLUGIN_PATH='%s' '%s' plugins", dir, SPK_CLI);
    cr_expect_eq(spk_test_run(cmd, &out), 0, "%s", out);
    expect_has(out, "neuron.lif (neuron, built-in)");
    expect_has(out, "; skipped");
    free(out);
    /* named by the model: a hard error at the entry */
    char yaml[PATH_MAX + 256];
    snprintf(yaml, sizeof yaml,
             "plugins: [%s/half.so]\ninput: {shape: [4]}\ntime_steps: 2\nlayers:\n"
             "  - {name: enc, type: encoder.direct}\n",
             dir);
    char *named = spk_test_write("named.yaml", yaml);
    snprintf(cmd, sizeof cmd, "'%s' bench %s --device cpu --batches 1", SPK_CLI, named);
    cr_expect_eq(spk_test_run(cmd, &out), 2, "%s", out);
    expect_has(out, "named.yaml:1:11: plugins: ");
    expect_has(out, "half.so: not a loadable library: segment");
    free(out);
    free(named);
    free(model);
}

/* ---- a model's plugins: list ---- */

Test(plugin_abi, model_plugins_list)
{
    /* relative to the model file: put the model next to a link to the plugin */
    char *c = canon(SPK_TP_GOOD);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/plug", spk_test_tmpdir());
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/plug/libgood.so", spk_test_tmpdir());
    cr_assert_eq(symlink(c, path), 0);
    char *file = spk_test_write("model.yaml", "input: {shape: [4]}\n"
                                              "time_steps: 2\n"
                                              "plugins: [plug/libgood.so]\n"
                                              "layers:\n"
                                              "  - {name: enc, type: encoder.direct}\n"
                                              "  - {name: s, type: neuron.tp_scale, gain: 4}\n");
    cr_assert_not_null(file);
    spk_error err = {0};
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load(file, &m, &err), SPK_OK, "%s", err.msg);
    spk_model_free(m);
    /* the plugin's parameter table checks the layer's keys like a built-in's */
    const char *bad_key = "input: {shape: [4]}\ntime_steps: 2\n"
                          "layers:\n"
                          "  - {name: s, type: neuron.tp_scale, gian: 4}\n";
    cr_assert_eq(spk_model_load_string(bad_key, "k.yaml", &m, &err), SPK_ERR_INVALID);
    expect_has(err.msg, "k.yaml:4:");
    expect_has(err.msg, "did you mean 'gain'?");
    free(c), free(file);
}

Test(plugin_abi, model_plugin_errors_point_at_the_entry)
{
    char *noentry = canon(SPK_TP_NOENTRY);
    char yaml[2 * PATH_MAX];
    /* the entry is on line 4, column 5 */
    snprintf(yaml, sizeof yaml,
             "input: {shape: [4]}\n"
             "time_steps: 2\n"
             "plugins:\n"
             "  - %s\n"
             "layers:\n"
             "  - {name: enc, type: encoder.direct}\n",
             noentry);
    spk_error err = {0};
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(yaml, "p.yaml", &m, &err), SPK_ERR_PLUGIN);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "p.yaml:4:5: plugins: %s: no symbol spk_plugin_init", noentry);
    expect_has(err.msg, want);

    snprintf(yaml, sizeof yaml,
             "input: {shape: [4]}\ntime_steps: 2\nplugins: [/nonexistent/libx.so]\n"
             "layers:\n  - {name: enc, type: encoder.direct}\n");
    cr_assert_eq(spk_model_load_string(yaml, "p.yaml", &m, &err), SPK_ERR_NOTFOUND);
    expect_has(err.msg, "p.yaml:3:11: plugins: /nonexistent/libx.so: cannot load plugin");

    /* plugins load before layers are checked, wherever the key is written */
    char *good = canon(SPK_TP_GOOD);
    snprintf(yaml, sizeof yaml,
             "input: {shape: [4]}\ntime_steps: 2\n"
             "layers:\n  - {name: s, type: neuron.tp_scale}\n"
             "plugins: [%s]\n",
             good);
    cr_assert_eq(spk_model_load_string(yaml, "p.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_model_free(m);
    free(noentry), free(good);
}

/* ---- kernels that do not build ---- */

static const char *badcl_model(void)
{
    static char yaml[2 * PATH_MAX];
    snprintf(yaml, sizeof yaml,
             "input: {shape: [4]}\ntime_steps: 2\nplugins: [%s]\n"
             "layers:\n"
             "  - {name: enc, type: encoder.direct}\n"
             "  - {name: fc, type: synapse.linear, out: 3}\n"
             "  - {name: bad, type: neuron.tp_badcl}\n"
             "readout: {type: readout.spike_count}\n"
             "loss: {type: loss.mse_count}\n",
             SPK_TP_BADCL);
    return yaml;
}

Test(plugin_abi, kernel_build_failure_names_the_plugin)
{
    spk_error err = {0};
    spk_model *m = NULL;
    cr_assert_eq(spk_model_load_string(badcl_model(), "cl.yaml", &m, &err), SPK_OK, "%s", err.msg);
    /* its CPU kernels are fine */
    spk_backend *cpu = NULL;
    spk_session *s = NULL;
    cr_assert_eq(spk_backend_cpu_new(1, &cpu, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_new(m, cpu, 2, &s, &err), SPK_OK, "%s", err.msg);
    spk_session_free(s);
    spk_backend_free(cpu);

    spk_backend *be = NULL;
    if (spk_backend_open("opencl", &be, &err) != SPK_OK) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0)
            cr_assert_fail("CI=true and no OpenCL device: %s", err.msg);
        spk_model_free(m);
        cr_skip_test("no OpenCL device: %s", err.msg);
    }
    char *c = canon(SPK_TP_BADCL);
    int rc = spk_session_new(m, be, 2, &s, &err);
    cr_assert_neq(rc, SPK_OK, "the broken OpenCL kernels built");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "layer 'bad' (neuron.tp_badcl, plugin %s)", c);
    expect_has(err.msg, want);
    expect_has(err.msg, "build log");
    expect_has(err.msg, "tp_no_such_variable");
    cr_expect_eq(rc, SPK_ERR_PLUGIN, "a kernel that does not build is bad input: %d", rc);
    spk_backend_free(be);
    spk_model_free(m);
    free(c);

    /* the CLI says so and exits 2 */
    char *path = spk_test_write("badcl.yaml", badcl_model());
    char cmd[3 * PATH_MAX], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s bench %s --device opencl --batches 1", SPK_CLI, path);
    int code = spk_test_run(cmd, &out);
    cr_expect_eq(code, 2, "exit code %d:\n%s", code, out);
    cr_expect(out && strstr(out, "build log"), "%s", out);
    free(out);
    free(path);
}

/* ---- spikecl plugins ---- */

Test(plugin_abi, cli_lists_plugin_types)
{
    char *good_dir = dir_of(SPK_TP_GOOD), *noentry_dir = dir_of(SPK_TP_NOENTRY);
    char *good = canon(SPK_TP_GOOD), *noentry = canon(SPK_TP_NOENTRY);
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "SPIKECL_PLUGIN_PATH='%s:%s' '%s' plugins", noentry_dir, good_dir,
             SPK_CLI);
    char *out = NULL;
    int rc = spk_test_run(cmd, &out);
    cr_assert_not_null(out);
    cr_expect_eq(rc, 0, "%s", out);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "neuron.tp_scale (neuron, %s, version 0.3.1): test plugin", good);
    expect_has(out, want);
    expect_has(out, "neuron.lif (neuron, built-in)");
    snprintf(want, sizeof want, "warning: SPIKECL_PLUGIN_PATH: %s: no symbol", noentry);
    expect_has(out, want);
    free(out), free(good_dir), free(noentry_dir), free(good), free(noentry);
}
