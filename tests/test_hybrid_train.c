/* The seed's hybrid network (models/fmnist_hybrid.yaml) trains: one epoch over 6,000
 * Fashion-MNIST images reaches >= 65% on 1,000 test images, and the checkpoint evaluates to the
 * same accuracy. With the model's settings, seeds 1-6 land at 0.71-0.77 (0.745 for the model's
 * seed 1), so the bar has a margin of 0.06 over the worst of them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int run_cli(const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s", SPK_SOURCE_DIR, SPK_CLI, args);
    return spk_test_run(cmd, out);
}

/* The number after "key": in the last line of out (the JSON summary), -1 when absent. */
static double summary_value(const char *out, const char *key)
{
    const char *last = out;
    for (const char *p = out; *p; p++)
        if (*p == '\n' && p[1])
            last = p + 1;
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *v = strstr(last, k);
    return v ? atof(v + strlen(k)) : -1.0;
}

Test(hybrid_train, fmnist_6000, .timeout = 600)
{
    char *out;
    char args[1024];
    snprintf(args, sizeof args,
             "train models/fmnist_hybrid.yaml --limit-train 6000 --limit-test 1000 --device cpu "
             "--out %s/hybrid",
             spk_test_tmpdir());
    cr_assert_eq(run_cli(args, &out), 0, "%s", out);
    const double acc = summary_value(out, "test_accuracy");
    cr_expect_geq(acc, 0.65, "test accuracy %.4f\n%s", acc, out);
    free(out);
    snprintf(args, sizeof args,
             "eval models/fmnist_hybrid.yaml --weights %s/hybrid/model.safetensors "
             "--limit-test 1000 --device cpu",
             spk_test_tmpdir());
    cr_assert_eq(run_cli(args, &out), 0, "%s", out);
    cr_expect_float_eq(summary_value(out, "test_accuracy"), acc, 1e-4, "%s", out);
    free(out);
}
