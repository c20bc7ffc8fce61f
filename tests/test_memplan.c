/* The session's shared buffers (core/src/memplan.c): a session whose outputs and gradients
 * share memory trains to the same bytes as one that gives every tensor its own buffer
 * (SPIKECL_MEMPLAN=plain), on the CPU and on OpenCL, for chains, a fan-out DAG, a conv net,
 * in-place neuron chains and a rate regulariser, and so does one whose last neuron sums its
 * spikes into the readout (SPK_SESSION_FUSE_READOUT); they allocate less; and an output whose
 * memory holds something else is refused, naming the layer. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/spikecl.h"
#include "testutil.h"

#define TAIL                                                                                       \
    "readout: {type: readout.spike_count}\n"                                                       \
    "loss: {type: loss.mse_count}\n"                                                               \
    "train: {batch: 8, optimizer: {type: adam, lr: 0.01}}\n"

/* Linear(N->N)+LIF with Poisson input: the Open Neuromorphic shape, small */
static const char *chain_yaml =
    "name: chain\ninput: {shape: [40]}\ntime_steps: 6\nseed: 2\n"
    "layers:\n"
    "  - {name: enc, type: encoder.poisson}\n"
    "  - {name: fc, type: synapse.linear, out: 40}\n"
    "  - {name: lif, type: neuron.lif, beta: 0.9, threshold: 0.3}\n" TAIL;

/* the chain with sparse: bits: fc packs its input's bits and reads nothing else, so it writes
 * its output over its input; 6 steps of 8 samples are rows enough for its tables, 2 are not
 * (its forward and weight gradient then go row by row over the bits) */
#define CHAIN_BITS(T)                                                                              \
    "name: chain_bits\ninput: {shape: [40]}\ntime_steps: " #T "\nseed: 2\n"                        \
    "layers:\n"                                                                                    \
    "  - {name: enc, type: encoder.poisson}\n"                                                     \
    "  - {name: fc, type: synapse.linear, out: 40, sparse: bits}\n"                                \
    "  - {name: lif, type: neuron.lif, beta: 0.9, threshold: 0.3}\n" TAIL

/* the chain with another neuron at the end: synaptic keeps two traces (the first, "mem", may
 * take fc's place), plif reads its input in backward (so its trace may not) */
#define CHAIN_TAIL(neuron)                                                                         \
    "name: chain_tail\ninput: {shape: [40]}\ntime_steps: 6\nseed: 2\n"                             \
    "layers:\n"                                                                                    \
    "  - {name: enc, type: encoder.poisson}\n"                                                     \
    "  - {name: fc, type: synapse.linear, out: 40, sparse: bits}\n"                                \
    "  - " neuron "\n" TAIL

/* direct input: fc's output is constant over the steps, so lif keeps no trace on the CPU (it
 * recomputes its membranes in backward); fused, it still sums its spikes into the readout */
static const char *direct_yaml =
    "name: direct\ninput: {shape: [30]}\ntime_steps: 7\nseed: 6\n"
    "layers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: fc, type: synapse.linear, out: 12}\n"
    "  - {name: lif, type: neuron.lif, beta: 0.8, threshold: 0.4}\n" TAIL;

/* every flagged neuron, an in-place chain (lif -> synaptic: one gradient buffer for three
 * tensors), a PLIF (reads its input in backward) and a rate regulariser (reads its output) */
static const char *zoo_yaml =
    "name: zoo\ninput: {shape: [24]}\ntime_steps: 5\nseed: 4\nlayers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: fc1, type: synapse.linear, out: 20}\n"
    "  - {name: lif1, type: neuron.lif, beta: 0.8, threshold: 0.3, learn_beta: true}\n"
    "  - {name: syn1, type: neuron.synaptic, alpha: 0.5, beta: 0.7, threshold: 0.4}\n"
    "  - {name: fc2, type: synapse.linear, out: 16}\n"
    "  - {name: plif, type: neuron.plif, v_threshold: 0.3,\n"
    "     rate_reg: {l1: 0.01, target: 0.2, weight: 0.5}}\n"
    "  - {name: fc3, type: synapse.linear, out: 6}\n"
    "  - {name: if3, type: neuron.if, threshold: 0.5}\n" TAIL;

/* a fan-out and a merge (edge gradients) */
static const char *dag_yaml = "name: dag\ninput: {shape: [12]}\ntime_steps: 4\nseed: 3\nlayers:\n"
                              "  - {name: enc, type: encoder.direct}\n"
                              "  - {name: fc1, type: synapse.linear, out: 10}\n"
                              "  - {name: lif1, type: neuron.lif, threshold: 0.3}\n"
                              "  - {name: fc2, type: synapse.linear, out: 10}\n"
                              "  - {name: skip, type: merge.add, from: [fc2, fc1]}\n"
                              "  - {name: lif2, type: neuron.lif, threshold: 0.3}\n"
                              "  - {name: fc3, type: synapse.linear, out: 4}\n"
                              "  - {name: lif3, type: neuron.lif, threshold: 0.3}\n" TAIL;

static const char *conv_yaml =
    "name: conv\ninput: {shape: [1, 10, 10]}\ntime_steps: 4\nseed: 5\nlayers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: conv1, type: synapse.conv2d, out: 4, kernel: 3}\n"
    "  - {name: lif1, type: neuron.lif, threshold: 0.3}\n"
    "  - {name: mp1, type: pool.max2d, kernel: 2}\n"
    "  - {name: conv2, type: synapse.conv2d, out: 6, kernel: 3}\n"
    "  - {name: lif2, type: neuron.lif, threshold: 0.3}\n"
    "  - {name: fc, type: synapse.linear, out: 5}\n"
    "  - {name: lif3, type: neuron.lif, threshold: 0.3}\n" TAIL;

typedef struct run {
    float *weights; /* every weight after the steps, concatenated */
    size_t n;
    double loss[3];
    uint64_t peak; /* the backend's peak bytes */
} run;

enum { SHARED, PLAIN, FUSED };

/* A session of m on be; PLAIN: with SPIKECL_MEMPLAN=plain, which the plan reads at creation;
 * FUSED: shared, and made with SPK_SESSION_FUSE_READOUT. */
static spk_session *new_session(spk_model *m, spk_backend *be, int mode)
{
    spk_error err = {0};
    spk_session *s;
    if (mode == PLAIN)
        setenv("SPIKECL_MEMPLAN", "plain", 1);
    else
        unsetenv("SPIKECL_MEMPLAN");
    const unsigned flags = mode == FUSED ? SPK_SESSION_FUSE_READOUT : 0;
    cr_assert_eq(spk_session_new_flags(m, be, 8, flags, &s, &err), SPK_OK, "%s", err.msg);
    unsetenv("SPIKECL_MEMPLAN");
    return s;
}

/* Three training steps from the model's seed on fixed data, in a session of that mode. */
static run train3(const char *yaml, spk_backend *be, int mode)
{
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(yaml, "memplan.yaml", &m, &err), SPK_OK, "%s", err.msg);
    be->stats.bytes_peak = be->stats.bytes_allocated;
    const uint64_t before = be->stats.bytes_allocated;
    spk_session *s = new_session(m, be, mode);
    const int in = spk_session_input_size(s), classes = spk_session_classes(s);
    float *x = malloc((size_t)(8 * in) * sizeof *x);
    int32_t y[8];
    run r = {0};
    for (int step = 0; step < 3; step++) {
        spk_test_fill(x, (size_t)(8 * in), 0.0f, 1.0f, 100u + (unsigned)step);
        for (int b = 0; b < 8; b++)
            y[b] = (b + step) % classes;
        spk_batch_stats st = {0};
        cr_assert_eq(spk_session_train_batch(s, x, y, 8, &st, &err), SPK_OK, "%s", err.msg);
        r.loss[step] = st.loss_sum;
    }
    for (int i = 0; i < spk_session_weight_count(s); i++)
        r.n += spk_session_weight_numel(s, i);
    r.weights = malloc(r.n * sizeof *r.weights);
    size_t at = 0;
    for (int i = 0; i < spk_session_weight_count(s); i++) {
        cr_assert_eq(spk_session_weight_get(s, i, r.weights + at, &err), SPK_OK, "%s", err.msg);
        at += spk_session_weight_numel(s, i);
    }
    r.peak = be->stats.bytes_peak - before;
    free(x);
    spk_session_free(s);
    spk_model_free(m);
    return r;
}

/* Plain and the mode (SHARED or FUSED) train to the same bytes; returns plain's peak minus
 * the mode's. */
static int64_t same_training(const char *yaml, spk_backend *be, const char *name, int mode)
{
    char what[64];
    snprintf(what, sizeof what, "%s%s", name, mode == FUSED ? " (fused)" : "");
    run a = train3(yaml, be, PLAIN), b = train3(yaml, be, mode);
    cr_assert_eq(a.n, b.n);
    for (int k = 0; k < 3; k++)
        cr_expect_eq(memcmp(&a.loss[k], &b.loss[k], sizeof(double)), 0,
                     "%s on %s: step %d loss %.9g plain, %.9g shared", what, be->ops->name, k,
                     a.loss[k], b.loss[k]);
    size_t diff = 0;
    for (size_t i = 0; i < a.n; i++)
        diff += memcmp(&a.weights[i], &b.weights[i], sizeof(float)) != 0;
    cr_expect_eq(diff, 0, "%s on %s: %zu of %zu weights differ after 3 steps", what, be->ops->name,
                 diff, a.n);
    cr_expect_leq(b.peak, a.peak, "%s on %s: shared peak %llu bytes, plain %llu", what,
                  be->ops->name, (unsigned long long)b.peak, (unsigned long long)a.peak);
    free(a.weights);
    free(b.weights);
    return (int64_t)a.peak - (int64_t)b.peak;
}

/* [T, B, N] floats of the chain's activations */
#define CHAIN_ACT ((int64_t)6 * 8 * 40 * 4)

static void all_models(spk_backend *be)
{
    /* the chain: lif writes its spikes over fc's output, whose buffer then holds the gradient
     * that lif's backward overwrites in place (fc's and lif's gradients): of the five
     * [T, B, N] tensors of enc, fc and lif, two buffers remain */
    int64_t saved = same_training(chain_yaml, be, "chain", SHARED);
    cr_expect_geq(saved, 3 * CHAIN_ACT, "chain on %s: %lld bytes saved, expected >= %lld",
                  be->ops->name, (long long)saved, (long long)(3 * CHAIN_ACT));
    /* fused, lif keeps its membranes in fc's output and writes fc's gradient over them: enc's
     * output (fc's backward reads it) and that one buffer remain of six (with lif's "mem") */
    saved = same_training(chain_yaml, be, "chain", FUSED);
    cr_expect_geq(saved, 4 * CHAIN_ACT, "chain fused on %s: %lld bytes saved, expected >= %lld",
                  be->ops->name, (long long)saved, (long long)(4 * CHAIN_ACT));
    /* with bits, enc, fc and lif write one buffer in turn, which then holds the gradients; fused,
     * lif's membranes join that buffer too */
    for (int T = 2; T <= 6; T += 4) {
        const int64_t act = (int64_t)T * 8 * 40 * 4;
        const char *yaml = T == 2 ? CHAIN_BITS(2) : CHAIN_BITS(6);
        saved = same_training(yaml, be, "chain_bits", SHARED);
        cr_expect_geq(saved, 4 * act, "chain_bits T=%d on %s: %lld bytes saved, expected >= %lld",
                      T, be->ops->name, (long long)saved, (long long)(4 * act));
        saved = same_training(yaml, be, "chain_bits", FUSED);
        cr_expect_geq(saved, 5 * act,
                      "chain_bits T=%d fused on %s: %lld bytes saved, expected >= %lld", T,
                      be->ops->name, (long long)saved, (long long)(5 * act));
    }
    /* the other neurons that fuse: if (the zoo's last), synaptic and plif */
    const int64_t act = CHAIN_ACT;
    saved = same_training(CHAIN_TAIL("{name: syn, type: neuron.synaptic, alpha: 0.5, beta: 0.7, "
                                     "threshold: 0.3}"),
                          be, "chain_synaptic", FUSED);
    cr_expect_geq(saved, 5 * act, "chain_synaptic fused on %s: %lld bytes saved, expected >= %lld",
                  be->ops->name, (long long)saved, (long long)(5 * act));
    saved = same_training(CHAIN_TAIL("{name: plif, type: neuron.plif, v_threshold: 0.3}"), be,
                          "chain_plif", FUSED);
    cr_expect_geq(saved, 4 * act, "chain_plif fused on %s: %lld bytes saved, expected >= %lld",
                  be->ops->name, (long long)saved, (long long)(4 * act));
    for (int mode = SHARED; mode <= FUSED; mode += FUSED - SHARED) {
        cr_expect_gt(same_training(zoo_yaml, be, "zoo", mode), 0, "zoo on %s: nothing shared",
                     be->ops->name);
        same_training(dag_yaml, be, "dag", mode);
        same_training(direct_yaml, be, "direct", mode);
        cr_expect_gt(same_training(conv_yaml, be, "conv", mode), 0, "conv on %s: nothing shared",
                     be->ops->name);
    }
}

Test(memplan, shared_buffers_train_like_plain_ones_on_the_cpu)
{
    spk_error err = {0};
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK, "%s", err.msg);
    all_models(be);
    spk_backend_free(be);
}

Test(memplan, shared_buffers_train_like_plain_ones_on_opencl, .timeout = 300)
{
    spk_backend *be = spk_test_opencl_device(NULL, 0); /* skips (fails under CI) without one */
    all_models(be);
    spk_backend_free(be);
}

/* A CPU session after one training step on a fixed batch of 8, with room for any output. */
typedef struct fixture {
    spk_model *m;
    spk_backend *be;
    spk_session *s;
    float *x, *o;
    size_t cap;
    int32_t y[8];
} fixture;

static void fixture_open(fixture *f, const char *yaml, int mode)
{
    spk_error err = {0};
    memset(f, 0, sizeof *f);
    cr_assert_eq(spk_model_load_string(yaml, "memplan.yaml", &f->m, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_backend_cpu_new(1, &f->be, &err), SPK_OK, "%s", err.msg);
    f->s = new_session(f->m, f->be, mode);
    const int in = spk_session_input_size(f->s);
    f->x = malloc((size_t)(8 * in) * sizeof *f->x);
    spk_test_fill(f->x, (size_t)(8 * in), 0.0f, 1.0f, 9);
    for (int b = 0; b < 8; b++)
        f->y[b] = b % spk_session_classes(f->s);
    for (int i = 0; i < spk_session_node_count(f->s); i++) {
        int steps = 0, feat = 0;
        spk_session_node_info(f->s, i, NULL, &steps, &feat, NULL);
        if ((size_t)steps * 8 * (size_t)feat > f->cap)
            f->cap = (size_t)steps * 8 * (size_t)feat;
    }
    f->o = malloc(f->cap * sizeof *f->o);
    spk_batch_stats st = {0};
    cr_assert_eq(spk_session_train_batch(f->s, f->x, f->y, 8, &st, &err), SPK_OK, "%s", err.msg);
}

static void fixture_eval(fixture *f)
{
    spk_error err = {0};
    spk_batch_stats st = {0};
    cr_assert_eq(spk_session_eval_batch(f->s, f->x, f->y, 8, &st, &err), SPK_OK, "%s", err.msg);
}

/* Reads node i's output; SPK_OK or the status, with the message in err. */
static int fixture_read(fixture *f, int i, spk_error *err)
{
    return spk_session_node_output(f->s, i, f->o, f->cap, err);
}

static void fixture_close(fixture *f)
{
    free(f->x);
    free(f->o);
    spk_session_free(f->s);
    spk_backend_free(f->be);
    spk_model_free(f->m);
}

/* lif writes its spikes over fc's output: fc's is refused after any pass, naming both layers;
 * lif's output held gradients during the step's backward: refused until a forward pass writes
 * it again. With SPIKECL_MEMPLAN=plain both stay readable. */
Test(memplan, reused_output_is_refused_until_the_next_forward)
{
    spk_error err = {0};
    fixture f;
    fixture_open(&f, chain_yaml, SHARED);
    cr_assert_str_eq(spk_session_node_name(f.s, 1), "fc");
    cr_assert_str_eq(spk_session_node_name(f.s, 2), "lif");
    cr_expect_eq(fixture_read(&f, 2, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "layer 'lif'") && strstr(err.msg, "run a forward pass"), "%s",
              err.msg);
    cr_expect_eq(fixture_read(&f, 1, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "layer 'fc'") && strstr(err.msg, "layer 'lif' writes"), "%s",
              err.msg);
    fixture_eval(&f);
    cr_expect_eq(fixture_read(&f, 2, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(fixture_read(&f, 1, &err), SPK_ERR_INVALID);
    fixture_close(&f);
    fixture_open(&f, chain_yaml, PLAIN);
    cr_expect_eq(fixture_read(&f, 1, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(fixture_read(&f, 2, &err), SPK_OK, "%s", err.msg);
    fixture_close(&f);
}

/* A neuron's spikes are kept whole even when a neuron reads them (pictures and probes read
 * spikes): in the zoo, if3 writes over fc3's output, but syn1 does not write over lif1's */
Test(memplan, spikes_read_by_a_neuron_stay_readable)
{
    spk_error err = {0};
    fixture f;
    fixture_open(&f, zoo_yaml, SHARED);
    cr_assert_str_eq(spk_session_node_name(f.s, 2), "lif1");
    cr_assert_str_eq(spk_session_node_name(f.s, 6), "fc3");
    fixture_eval(&f);
    cr_expect_eq(fixture_read(&f, 2, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(fixture_read(&f, 6, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "layer 'fc3'") && strstr(err.msg, "layer 'if3' writes"), "%s",
              err.msg);
    fixture_close(&f);
}

/* Fused, lif's spikes over the steps are never stored: its output is refused after any pass,
 * naming the layer, while the readout's counts equal a plain session's; its membranes, in
 * fc's buffer, are refused after a training step (they hold fc's gradient) and readable after
 * an eval pass, equal to the plain session's too. */
Test(memplan, fused_neuron_output_is_refused_and_its_readout_is_exact)
{
    spk_error err = {0};
    fixture f, p;
    fixture_open(&f, CHAIN_BITS(6), FUSED);
    fixture_open(&p, CHAIN_BITS(6), PLAIN);
    cr_assert_str_eq(spk_session_node_name(f.s, 2), "lif");
    cr_assert_str_eq(spk_session_node_name(f.s, 3), "readout");
    cr_expect_eq(fixture_read(&f, 2, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "layer 'lif'") && strstr(err.msg, "SPK_SESSION_FUSE_READOUT"), "%s",
              err.msg);
    int feat = 0;
    cr_expect_eq(spk_session_node_state(f.s, 2, "mem", f.o, f.cap, &feat, &err), SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "layer 'lif'") && strstr(err.msg, "'mem'"), "%s", err.msg);
    fixture_eval(&f);
    fixture_eval(&p);
    cr_expect_eq(fixture_read(&f, 2, &err), SPK_ERR_INVALID);
    cr_expect_eq(fixture_read(&f, 1, &err), SPK_ERR_INVALID); /* lif's membranes hold it */
    cr_expect(strstr(err.msg, "layer 'fc'") && strstr(err.msg, "layer 'lif' writes"), "%s",
              err.msg);
    const size_t counts = 8 * 40, mem = 6 * 8 * 40;
    cr_assert_eq(fixture_read(&f, 3, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(fixture_read(&p, 3, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(memcmp(f.o, p.o, counts * sizeof *f.o), 0, "fused readout differs");
    float sum = 0;
    for (size_t i = 0; i < counts; i++)
        sum += f.o[i];
    cr_expect_gt(sum, 0.0f, "no spikes: the comparison shows nothing");
    cr_assert_eq(spk_session_node_state(f.s, 2, "mem", f.o, f.cap, &feat, &err), SPK_OK, "%s",
                 err.msg);
    cr_assert_eq(spk_session_node_state(p.s, 2, "mem", p.o, p.cap, &feat, &err), SPK_OK, "%s",
                 err.msg);
    cr_expect_eq(memcmp(f.o, p.o, mem * sizeof *f.o), 0, "fused membranes differ");
    double rate_f = -1, rate_p = -2; /* the spike rate, from the counts and from the spikes */
    cr_assert_eq(spk_session_node_mean(f.s, 2, &rate_f, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_node_mean(p.s, 2, &rate_p, &err), SPK_OK, "%s", err.msg);
    cr_expect(rate_f == rate_p && rate_f > 0, "rate %.9g fused, %.9g plain", rate_f, rate_p);
    fixture_close(&f);
    fixture_close(&p);
}

/* spk_session_memory's report, after one training step of the bits chain: the same weights,
 * gradients and Adam moments (fc's 40 x 40 + 40, lif's two frozen values have none) either way;
 * fused, lif's trace leaves the layer state for the activation buffer that already held its
 * spikes unfused, and the report names lif. */
Test(memplan, memory_report_counts_each_kind)
{
    fixture f, p;
    fixture_open(&f, CHAIN_BITS(6), FUSED);
    fixture_open(&p, CHAIN_BITS(6), SHARED);
    spk_memory_report a, b;
    spk_session_memory(f.s, &a);
    spk_session_memory(p.s, &b);
    const uint64_t fc = (40 * 40 + 40) * sizeof(float), act = 6 * 8 * 40 * sizeof(float);
    cr_expect_eq(a.weights, fc + 2 * sizeof(float));
    cr_expect_eq(a.gradients, a.weights);
    cr_expect_eq(a.optimizer, 2 * fc);
    cr_expect(b.weights == a.weights && b.gradients == a.gradients && b.optimizer == a.optimizer);
    cr_expect_eq(b.state - a.state, act, "state %llu shared, %llu fused",
                 (unsigned long long)b.state, (unsigned long long)a.state);
    cr_expect_geq(b.activations + b.state, a.activations + a.state + act,
                  "activations and state %llu shared, %llu fused",
                  (unsigned long long)(b.activations + b.state),
                  (unsigned long long)(a.activations + a.state));
    cr_expect_eq(a.fused, 2);
    cr_expect_eq(b.fused, -1);
    cr_expect_gt(a.buffers, 0);
    fixture_close(&f);
    fixture_close(&p);
}
