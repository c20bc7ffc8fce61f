/* Fuzz harness: the N-MNIST event reader (one recording), denoising and the frames the loader
 * makes from it. Input: 4 bytes of frame settings (time steps 1-8, window 0-1785 µs, clip,
 * denoise 0-1000 µs, downsample 1-4), then the recording's bytes (40-bit events). */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"
#include "spikecl/data.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > 1 << 20)
        return 0;
    spk_frames fr = {0};
    fr.time_steps = 1 + (data[0] & 7);
    fr.time_window = (data[1] & 0x7f) * 14;
    fr.clip = data[0] >> 7;
    fr.denoise = (data[2] & 1) ? (data[2] >> 1) * 8 : 0;
    fr.downsample = 1 + (data[3] & 3);
    char path[4352];
    if (spk_fuzz_file("rec.bin", data + 4, size - 4, path, sizeof path))
        return 0;
    const char *paths[1] = {path};
    const uint8_t label = 3;
    spk_error err = {0};
    spk_dataset *ds = NULL;
    if (spk_dataset_from_event_files(paths, &label, 1, 34, 34, &fr, &ds, &err) == SPK_OK) {
        spk_loader *ld = NULL;
        if (spk_loader_new(ds, 2, 0, 7, 0, &ld, &err) == SPK_OK) {
            size_t per = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
            float *x = malloc((size_t)fr.time_steps * 2 * (per ? per : 1) * sizeof *x);
            int32_t lab[2];
            uint32_t ids[2];
            if (x) {
                spk_loader_start_epoch(ld, 0);
                while (spk_loader_next(ld, 1.0f, x, lab, ids) > 0) {
                }
            }
            free(x);
            spk_loader_free(ld);
        }
    }
    spk_dataset_free(ds);
    return 0;
}
