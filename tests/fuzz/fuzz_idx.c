/* Fuzz harness: the IDX reader (raw and gzip) and the batch loader over one epoch.
 * Input: a 4-byte little-endian length L, then L bytes of the image file, then the label file. */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"
#include "spikecl/data.h"

#include <stdlib.h>

#define FUZZ_BATCH 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > 1 << 20)
        return 0;
    size_t len =
        (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    data += 4;
    size -= 4;
    if (len > size)
        len = size;
    char images[4352], labels[4352];
    if (spk_fuzz_file("images", data, len, images, sizeof images) ||
        spk_fuzz_file("labels", data + len, size - len, labels, sizeof labels))
        return 0;
    spk_error err = {0};
    spk_dataset *ds = NULL;
    if (spk_dataset_load_idx(images, labels, &ds, &err) == SPK_OK) {
        spk_loader *ld = NULL;
        for (int shuffle = 0; shuffle < 2; shuffle++) {
            if (spk_loader_new(ds, FUZZ_BATCH, shuffle, 7, shuffle ? 0 : 5, &ld, &err))
                continue;
            size_t per = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
            float *x = malloc((per ? per : 1) * FUZZ_BATCH * sizeof *x);
            int32_t lab[FUZZ_BATCH];
            uint32_t ids[FUZZ_BATCH];
            if (x) {
                spk_loader_start_epoch(ld, 1);
                while (spk_loader_next(ld, 1.0f / 255, x, lab, ids) > 0) {
                }
            }
            free(x);
            spk_loader_free(ld);
            ld = NULL;
        }
    }
    spk_dataset_free(ds);
    return 0;
}
