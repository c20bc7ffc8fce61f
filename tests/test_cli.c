/* The spikecl program: exit codes, messages on bad input, and the integration run that trains
 * the default model on 6,000 Fashion-MNIST images. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int run(const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s", SPK_SOURCE_DIR, SPK_CLI, args);
    return spk_test_run(cmd, out);
}

/* the value of "key": in the last line of out */
static double json_last(const char *out, const char *key)
{
    const char *last = out, *p;
    for (p = out; *p; p++)
        if (*p == '\n' && p[1])
            last = p + 1;
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *v = strstr(last, k);
    return v ? atof(v + strlen(k)) : -1.0;
}

Test(cli, usage_errors_exit_2)
{
    char *out;
    cr_expect_eq(run("", &out), 2);
    cr_expect(strstr(out, "no command given") && strstr(out, "usage:"), "%s", out);
    free(out);
    cr_expect_eq(run("fly", &out), 2);
    cr_expect(strstr(out, "unknown command 'fly'"), "%s", out);
    free(out);
    cr_expect_eq(run("train", &out), 2);
    cr_expect(strstr(out, "'train' needs a model file"), "%s", out);
    free(out);
    cr_expect_eq(run("train models/fmnist_lif_mlp.yaml --epochs zero", &out), 2);
    cr_expect(strstr(out, "--epochs expects an integer"), "%s", out);
    free(out);
    cr_expect_eq(run("train models/fmnist_lif_mlp.yaml --wings 2", &out), 2);
    cr_expect(strstr(out, "unknown option '--wings'"), "%s", out);
    free(out);
    cr_expect_eq(run("eval models/fmnist_lif_mlp.yaml", &out), 2);
    cr_expect(strstr(out, "eval needs --weights"), "%s", out);
    free(out);
}

Test(cli, bad_input_exit_2)
{
    char *out;
    cr_expect_eq(run("train models/missing.yaml", &out), 2);
    cr_expect(strstr(out, "models/missing.yaml"), "%s", out);
    free(out);
    char *bad = spk_test_write("bad.yaml", "input: {shape: [4]}\ntime_steps: 2\nlayers:\n"
                                           "  - {name: a, type: neuron.lif, treshold: 1}\n");
    char args[1024];
    snprintf(args, sizeof args, "train %s", bad);
    cr_expect_eq(run(args, &out), 2);
    cr_expect(strstr(out, "bad.yaml:4:") && strstr(out, "did you mean 'threshold'"), "%s", out);
    free(out);
    free(bad);
    cr_expect_eq(run("train models/fmnist_lif_mlp.yaml --device warp9 --limit-train 10", &out), 2);
    cr_expect(strstr(out, "bad device string 'warp9'"), "%s", out);
    free(out);
    cr_expect_eq(run("train models/fmnist_lif_mlp.yaml --data /nonexistent", &out), 2);
    cr_expect(strstr(out, "/nonexistent"), "%s", out);
    free(out);
    char *junk = spk_test_write("junk.safetensors", "not a checkpoint");
    snprintf(args, sizeof args, "eval models/fmnist_lif_mlp.yaml --weights %s --limit-test 10",
             junk);
    cr_expect_eq(run(args, &out), 2);
    cr_expect(strstr(out, "junk.safetensors"), "%s", out);
    free(out);
    free(junk);
}

Test(cli, devices_and_plugins)
{
    char *out;
    cr_expect_eq(run("devices", &out), 0);
    cr_expect(strncmp(out, "cpu\t", 4) == 0 || strstr(out, "\ncpu\t"), "%s", out);
    free(out);
    cr_expect_eq(run("plugins", &out), 0);
    cr_expect(strstr(out, "neuron.lif (neuron, built-in)") && strstr(out, "threshold"), "%s", out);
    free(out);
}

/* The integration bar: one epoch over 6,000 training images reaches >= 70% on 1,000
 * test images (the float32 reference lands at 0.63-0.75 depending on the seed at batch 128,
 * about 0.80 at batch 32, so the test trains at batch 32 for a clear margin). Then eval of the
 * checkpoint it wrote gives the same accuracy. */
Test(cli, train_fmnist_6000, .timeout = 600)
{
    char *out;
    char args[1024];
    snprintf(args, sizeof args,
             "train models/fmnist_lif_mlp.yaml --limit-train 6000 --limit-test 1000 --batch 32 "
             "--epochs 1 --device cpu --out %s/run",
             spk_test_tmpdir());
    int rc = run(args, &out);
    cr_assert_eq(rc, 0, "%s", out);
    double acc = json_last(out, "test_accuracy");
    cr_expect_geq(acc, 0.70, "test accuracy %.4f\n%s", acc, out);
    cr_expect_gt(json_last(out, "samples_per_s"), 0.0, "%s", out);
    free(out);
    snprintf(args, sizeof args,
             "eval models/fmnist_lif_mlp.yaml --weights %s/run/model.safetensors --limit-test "
             "1000 --batch 32 --device cpu",
             spk_test_tmpdir());
    cr_assert_eq(run(args, &out), 0, "%s", out);
    cr_expect_float_eq(json_last(out, "test_accuracy"), acc, 1e-4, "%s", out);
    free(out);
}
