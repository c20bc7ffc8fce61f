/* Fuzz harness: the safetensors reader, then the same file as a checkpoint and as optimizer
 * state for a small session on the CPU backend (Adam, so that the state has moments). */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"
#include "spikecl/backend.h"
#include "spikecl/safetensors.h"
#include "spikecl/spikecl.h"

#include <stdlib.h>

/* tests/fuzz/corpus/safetensors holds this model's checkpoint and optimizer state. */
static const char fuzz_st_model[] =
    "name: fuzz-st\n"
    "input: {shape: [4]}\n"
    "time_steps: 2\n"
    "layers:\n"
    "  - {name: enc, type: encoder.direct}\n"
    "  - {name: fc1, type: synapse.linear, out: 3}\n"
    "  - {name: lif1, type: neuron.lif, learn_beta: true}\n"
    "  - {name: fc2, type: synapse.linear, out: 2}\n"
    "  - {name: lif2, type: neuron.lif}\n"
    "readout: {type: readout.spike_count}\n"
    "loss: {type: loss.mse_count}\n"
    "train: {batch: 2, epochs: 3, optimizer: {type: adam, lr: 1.0e-3}}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static spk_backend *be;
    static spk_model *m;
    static spk_session *s;
    spk_error err = {0};
    if (!s && (spk_backend_cpu_new(1, &be, &err) ||
               spk_model_load_string(fuzz_st_model, "fuzz-st.yaml", &m, &err) ||
               spk_session_new(m, be, 2, &s, &err)))
        abort(); /* the harness itself cannot run */
    if (size > 1 << 20)
        return 0;
    char path[4352];
    if (spk_fuzz_file("t.safetensors", data, size, path, sizeof path))
        return 0;
    spk_st_file *f = NULL;
    if (spk_safetensors_read(path, &f, &err) == SPK_OK) {
        for (int i = 0; i < f->n; i++)
            spk_st_file_find(f, f->tensors[i].name);
        spk_st_file_find(f, "fc1.weight");
    }
    spk_st_file_free(f);
    spk_session_load(s, path, &err);
    int epochs_done = 0;
    spk_session_load_state(s, path, &epochs_done, &err);
    return 0;
}
