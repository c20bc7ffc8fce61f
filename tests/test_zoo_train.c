/* The neuron zoo's integration bar: the Synaptic and PLIF versions of the Fashion-MNIST MLP train
 * through the spikecl program for one epoch over 6,000 images and reach >= 65% on 1,000 test
 * images. Both models train at batch 32 (set in the model files); over seven seeds they land at
 * 0.75-0.78, so 0.65 fails only when learning is broken, not on an unlucky seed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void train_model(const char *model, const char *tag)
{
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd %s && %s train %s --limit-train 6000 --limit-test 1000 --epochs 1 --device cpu "
             "--out %s/%s",
             SPK_SOURCE_DIR, SPK_CLI, model, spk_test_tmpdir(), tag);
    int rc = spk_test_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s: exit %d\n%s", model, rc, out);
    double acc = spk_test_json_number(out, "test_accuracy");
    cr_expect_geq(acc, 0.65, "%s: test accuracy %.4f\n%s", model, acc, out);
    free(out);
}

Test(zoo_train, fmnist_synaptic_6000, .timeout = 600)
{
    train_model("models/fmnist_synaptic_mlp.yaml", "synaptic");
}

Test(zoo_train, fmnist_plif_6000, .timeout = 600)
{
    train_model("models/fmnist_plif_mlp.yaml", "plif");
}
