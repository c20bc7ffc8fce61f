/* Fuzz harness: the YAML model loader, then a session on the CPU backend and one training step
 * for every model that loads. */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"
#include "model.h"
#include "spikecl/backend.h"
#include "spikecl/spikecl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Keeps a session small enough for thousands of runs a second: bigger shapes exercise no other
 * code, only take longer and more memory. */
#define FUZZ_MAX_DIM   256
#define FUZZ_MAX_INPUT 1024
#define FUZZ_MAX_STEPS 16
#define FUZZ_BATCH     2

static int small_params(const spk_layer_def *d)
{
    if (!d->type)
        return 1;
    for (int i = 0; i < d->params.n; i++)
        if (d->params.spec[i].type == SPK_PARAM_INT && fabs(d->params.v[i].num) > FUZZ_MAX_DIM)
            return 0;
    return 1;
}

static int small_model(const spk_model *m)
{
    long in = 1;
    for (int i = 0; i < m->in_ndim; i++) {
        in *= m->in_dims[i] > 0 ? m->in_dims[i] : 1;
        if (in > FUZZ_MAX_INPUT)
            return 0;
    }
    if (m->time_steps > FUZZ_MAX_STEPS)
        return 0;
    for (int i = 0; i < m->n_layers; i++)
        if (!small_params(&m->layers[i]))
            return 0;
    return small_params(&m->readout) && small_params(&m->loss);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static spk_backend *be;
    spk_error err = {0};
    if (!be && spk_backend_cpu_new(1, &be, &err))
        abort(); /* the harness itself cannot run */
    if (size > 1 << 16)
        return 0;
    char *yaml = malloc(size + 1);
    if (!yaml)
        return 0;
    memcpy(yaml, data, size);
    yaml[size] = 0;
    /* `plugins:` dlopens the paths it names; a fuzzed path to a real library would run foreign
     * code, so inputs naming a shared object are skipped (the list's parsing is still fuzzed). */
    if (strstr(yaml, ".so")) {
        free(yaml);
        return 0;
    }
    spk_model *m = NULL;
    if (spk_model_load_string(yaml, "fuzz.yaml", &m, &err) == SPK_OK && small_model(m)) {
        spk_session *s = NULL;
        if (spk_session_new(m, be, FUZZ_BATCH, &s, &err) == SPK_OK) {
            int in = spk_session_input_size(s);
            float *x = calloc((size_t)FUZZ_BATCH * (size_t)in, sizeof *x);
            int32_t labels[FUZZ_BATCH] = {0, 1};
            int classes = spk_session_classes(s);
            for (int b = 0; b < FUZZ_BATCH; b++)
                labels[b] = classes > 0 ? b % classes : 0;
            for (int i = 0; x && i < FUZZ_BATCH * in; i++)
                x[i] = (float)(i % 7) / 7.0f;
            spk_batch_stats st = {0};
            if (x)
                spk_session_train_batch(s, x, labels, FUZZ_BATCH, &st, &err);
            free(x);
        }
        spk_session_free(s);
    }
    spk_model_free(m);
    free(yaml);
    return 0;
}
