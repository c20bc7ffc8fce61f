/* Fuzz harness: the NIR (HDF5) reader. Each input is a file for spk_nir_import; what imports is
 * loaded back as a model and its weights read. Datasets are capped at 2^20 values here so that
 * a small compressed input cannot ask for gigabytes. */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"
#include "nir_limits.h"
#include "spikecl/nir.h"
#include "spikecl/safetensors.h"
#include "spikecl/spikecl.h"

#include <stdio.h>
#include <stdlib.h>

/* Under ASan (fuzzing, and the replay in the sanitized CI build): a damaged size field makes
 * libhdf5 ask malloc for terabytes; libhdf5 checks for NULL there, but ASan's default would
 * report the request first. The environment's ASAN_OPTIONS add to this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spk_nir_max_values = 1u << 20;
    if (size > 1 << 20)
        return 0;
    char path[4352], dir[4400], sub[4480];
    if (spk_fuzz_file("t.nir", data, size, path, sizeof path))
        return 0;
    snprintf(dir, sizeof dir, "%s.out", path);
    spk_error err = {0};
    spk_nir_options opt = {.time_steps = 2, .approximate = 1};
    if (spk_nir_import(path, dir, &opt, &err) != SPK_OK)
        return 0;
    spk_model *m = NULL;
    snprintf(sub, sizeof sub, "%s/model.yaml", dir);
    if (spk_model_load(sub, &m, &err) != SPK_OK) {
        /* an import must give a model that loads */
        fprintf(stderr, "fuzz_nir: imported model does not load: %s\n", err.msg);
        abort();
    }
    spk_model_free(m);
    spk_st_file *f = NULL;
    snprintf(sub, sizeof sub, "%s/model.safetensors", dir);
    if (spk_safetensors_read(sub, &f, &err) != SPK_OK) {
        fprintf(stderr, "fuzz_nir: imported weights do not read: %s\n", err.msg);
        abort();
    }
    spk_st_file_free(f);
    return 0;
}
