/* The plugin ABI keeps its promise: (1) the public structs have the sizes recorded for the
 * version the headers announce, (2) the 1.0 layout is a prefix of today's, and (3) a plugin
 * built against the 1.0 headers (tests/plugins/abi10_plugin.c) loads into today's host, runs
 * like its reference and trains. */
#define _XOPEN_SOURCE 700
#include "layer_check.h"

#include <dlfcn.h>

#include "abi/abi_layout.h"

/* THE RULE. A plugin built for ABI 1.k must work in every host 1.m with m >= k. So the structs
 * a plugin shares with the host only grow, by fields appended at the end, and every release
 * that appends one bumps SPK_ABI_MINOR and adds a row here. Anything else (removing,
 * reordering or retyping a field, growing a struct that is embedded in another, like
 * spk_weight in spk_layer) is a new major. When this test fails because you changed a struct:
 * bump the minor in plugin.h and add the new row; never edit an old row.
 * Sizes are those of LP64 Linux (x86-64, aarch64). */
static const size_t abi_sizes[][SPK_ABI_N_STRUCTS] = {
    /* layer_type host_api exec layer weight state tensor shape param_spec param_value params
       init surrogate kernel_set karg cpu_kernel error */
    [0] = {96, 144, 152, 2768, 200, 112, 40, 24, 56, 56, 24, 12, 8, 24, 16, 24, 1028},
    /* 1.1: host reduce_grad, set_error, set_weight, set_priv, set_output; exec core;
     * descriptor version */
    [1] = {104, 184, 160, 2768, 200, 112, 40, 24, 56, 56, 24, 12, 8, 24, 16, 24, 1028},
    /* 1.2: descriptor memory */
    [2] = {112, 184, 160, 2768, 200, 112, 40, 24, 56, 56, 24, 12, 8, 24, 16, 24, 1028},
    /* 1.3: layer memory; host set_memory */
    [3] = {112, 192, 160, 2776, 200, 112, 40, 24, 56, 56, 24, 12, 8, 24, 16, 24, 1028},
};
#define N_MINORS ((int)(sizeof abi_sizes / sizeof abi_sizes[0]))

static const char *const struct_names[] = {
#define NAME(s) #s,
    SPK_ABI_STRUCTS(NAME)
#undef NAME
};

#if defined(__LP64__) && (defined(__x86_64__) || defined(__aarch64__))
#define LP64_LINUX 1
#else
#define LP64_LINUX 0
#endif

Test(abi, struct_sizes_match_the_announced_version)
{
    if (!LP64_LINUX)
        cr_skip_test("the size table is for LP64 Linux");
    cr_assert_eq(SPK_ABI_MAJOR, 1, "a new major starts a new table");
    cr_assert_eq(SPK_ABI_MINOR, N_MINORS - 1,
                 "plugin.h says ABI %d.%d but the table ends at 1.%d: add the row for the new "
                 "minor",
                 SPK_ABI_MAJOR, SPK_ABI_MINOR, N_MINORS - 1);
    const size_t now[] = {
#define SIZE(s) sizeof(s),
        SPK_ABI_STRUCTS(SIZE)
#undef SIZE
    };
    for (int i = 0; i < SPK_ABI_N_STRUCTS; i++)
        cr_expect_eq(now[i], abi_sizes[SPK_ABI_MINOR][i],
                     "%s is %zu bytes, ABI %d.%d recorded %zu: a changed struct needs a minor "
                     "bump (appended fields) or a major one (anything else)",
                     struct_names[i], now[i], SPK_ABI_MAJOR, SPK_ABI_MINOR,
                     abi_sizes[SPK_ABI_MINOR][i]);
    /* append only: no struct ever shrinks */
    for (int m = 1; m < N_MINORS; m++)
        for (int i = 0; i < SPK_ABI_N_STRUCTS; i++)
            cr_expect_geq(abi_sizes[m][i], abi_sizes[m - 1][i], "%s shrank in 1.%d",
                          struct_names[i], m);
}

Test(abi, the_1_0_layout_is_a_prefix_of_todays)
{
    if (!LP64_LINUX)
        cr_skip_test("the size table is for LP64 Linux");
    cr_assert_eq(spk_abi10_version[0], 1);
    cr_assert_eq(spk_abi10_version[1], 0);
    for (int i = 0; i < SPK_ABI_N_STRUCTS; i++)
        cr_expect_eq(spk_abi10_sizes[i], abi_sizes[0][i], "1.0 headers: %s is %zu bytes, not %zu",
                     struct_names[i], spk_abi10_sizes[i], abi_sizes[0][i]);
    static const char *const fields[] = {
#define FNAME(s, f) #s "." #f,
        SPK_ABI10_FIELDS(FNAME)
#undef FNAME
    };
    const size_t now[] = {
#define OFF(s, f) offsetof(s, f),
        SPK_ABI10_FIELDS(OFF)
#undef OFF
    };
    for (size_t i = 0; i < sizeof now / sizeof now[0]; i++)
        cr_expect_eq(now[i], spk_abi10_offsets[i], "%s moved from offset %zu to %zu", fields[i],
                     spk_abi10_offsets[i], now[i]);
}

/* libspikecl is built with hidden visibility: the public API is exported, internals are not */
Test(abi, libspikecl_exports_the_public_api_only)
{
    void *h = dlopen(SPK_LIBSPIKECL, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "%s", dlerror());
    static const char *const public_api[] = {
        "spk_session_new", "spk_model_load",   "spk_registry_add",    "spk_host_api_get",
        "spk_error_set",   "spk_backend_open", "spk_safetensors_read"};
    static const char *const internal[] = {"spk_layer_inst_new", "spk_params_from_yaml",
                                           "spk_registry_add_from_plugin", "spk_layer_setup"};
    for (size_t i = 0; i < sizeof public_api / sizeof *public_api; i++)
        cr_expect_not_null(dlsym(h, public_api[i]), "%s is not exported", public_api[i]);
    for (size_t i = 0; i < sizeof internal / sizeof *internal; i++)
        cr_expect_null(dlsym(h, internal[i]), "internal %s is exported", internal[i]);
    dlclose(h);
}

/* ---- the plugin built against the 1.0 headers ---- */

static void load_abi10(void)
{
    spk_error err = {0};
    cr_assert_eq(spk_plugin_load(SPK_ABI10_PLUGIN, &err), SPK_OK, "%s", err.msg);
    const spk_layer_type *t = spk_registry_find(spk_registry_default(), "neuron.abi10_gain");
    cr_assert_not_null(t);
    cr_expect_eq(t->abi_minor, 0);
    cr_expect_eq(t->struct_size, abi_sizes[0][SPK_ABI_N_STRUCT_spk_layer_type]);
    cr_expect_null(t->version); /* a 1.0 descriptor has none */
}

Test(abi, plugin_1_0_forward_and_backward_match_the_reference)
{
    load_abi10();
    const int T = 3, B = 2, N = 4;
    lc l;
    lc_new(&l, "neuron.abi10_gain", "{gain: {uniform: [0.5, 1.5]}}",
           lc_shape(SPK_TIME_STEPS, 1, N, 0, 0), T, B, 7);
    spk_weight *w = lc_weight(&l, "gain");
    /* what the plugin wrote into the host's weight record, the 1.0 way */
    cr_expect_eq(w->clamp, 1);
    cr_expect_float_eq(w->hi, 1.5f, 0);
    cr_expect_eq(w->frozen, 0);
    lc_fill(&l, &l.li->in[0], -1.0f, 1.0f, 3);
    lc_fwd(&l);
    float *x = lc_fetch(&l, &l.li->in[0]), *y = lc_fetch(&l, &l.li->out);
    float *g = lc_fetch(&l, &w->value);
    for (int i = 0; i < T * B * N; i++)
        cr_expect_float_eq(y[i], g[i % N] * x[i], 1e-6f, "y[%d]", i);
    /* backward with dL/dy = 1: dL/dx = g, dL/dg[n] = sum over t, b of x */
    float *ones = malloc(sizeof(float) * (size_t)(T * B * N));
    cr_assert_not_null(ones);
    for (int i = 0; i < T * B * N; i++)
        ones[i] = 1.0f;
    lc_backward_with(&l, ones);
    float *gin = lc_fetch(&l, &l.li->grad_in[0]), *gg = lc_fetch(&l, &w->grad);
    for (int i = 0; i < T * B * N; i++)
        cr_expect_float_eq(gin[i], g[i % N], 1e-6f, "dL/dx[%d]", i);
    for (int n = 0; n < N; n++) {
        float s = 0.0f;
        for (int r = 0; r < T * B; r++)
            s += x[r * N + n];
        cr_expect_float_eq(gg[n], s, 1e-5f, "dL/dg[%d]", n);
    }
    free(x), free(y), free(g), free(ones), free(gin), free(gg);
    lc_free(&l);
}

static const char *abi10_model = "input: {shape: [6]}\n"
                                 "time_steps: 4\n"
                                 "seed: 5\n"
                                 "layers:\n"
                                 "  - {name: enc, type: encoder.direct}\n"
                                 "  - {name: fc, type: synapse.linear, out: 3}\n"
                                 "  - {name: g, type: neuron.abi10_gain, gain: 1.4}\n"
                                 "readout: {type: readout.membrane}\n"
                                 "loss: {type: loss.ce_membrane}\n"
                                 "train:\n"
                                 "  optimizer: {type: adam, lr: 0.05}\n";

static double loss_of(spk_session *s, const float *x, const int32_t *y, int n)
{
    spk_batch_stats st = {0};
    spk_error err = {0};
    cr_assert_eq(spk_session_eval_batch(s, x, y, n, &st, &err), SPK_OK, "%s", err.msg);
    return st.loss_sum;
}

Test(abi, plugin_1_0_trains_in_todays_host)
{
    load_abi10();
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(abi10_model, "abi10.yaml", &m, &err), SPK_OK, "%s", err.msg);
    lc dev; /* the CPU, or the device SPK_TEST_DEVICE names */
    memset(&dev, 0, sizeof dev);
    lc_backend(&dev);
    spk_backend *be = dev.be;
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), SPK_OK, "%s", err.msg);
    int gi = -1;
    for (int i = 0; i < spk_session_weight_count(s); i++)
        if (strcmp(spk_session_weight_name(s, i), "g.gain") == 0)
            gi = i;
    cr_assert_geq(gi, 0, "no weight g.gain");
    float g0[3], g1[3];
    cr_assert_eq(spk_session_weight_get(s, gi, g0, &err), SPK_OK, "%s", err.msg);
    float x[24];
    spk_test_fill(x, 24, 0.0f, 1.0f, 9);
    int32_t y[4] = {0, 2, 1, 2};
    double first = loss_of(s, x, y, 4);
    for (int i = 0; i < 40; i++) {
        spk_batch_stats st = {0};
        cr_assert_eq(spk_session_train_batch(s, x, y, 4, &st, &err), SPK_OK, "%s", err.msg);
    }
    double last = loss_of(s, x, y, 4);
    cr_expect_lt(last, 0.7 * first, "loss %.4f -> %.4f", first, last);
    /* its gain trained, and the optimizer kept it in the range the plugin wrote (1.0 style):
     * this batch pushes every gain up from 1.4, to about 3 without the clamp */
    cr_assert_eq(spk_session_weight_get(s, gi, g1, &err), SPK_OK, "%s", err.msg);
    int changed = 0;
    for (int n = 0; n < 3; n++) {
        changed |= g1[n] != g0[n];
        cr_expect(g1[n] >= 0.0f && g1[n] <= 1.5f, "gain[%d] = %g outside [0, 1.5]", n, g1[n]);
    }
    cr_expect(changed, "the 1.0 plugin's gain did not train");
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}
