/* spikecl — float32 tensors in the safetensors format (https://huggingface.co/docs/safetensors),
 * so a checkpoint opens in PyTorch with safetensors.torch.load_file. */
#ifndef SPIKECL_SAFETENSORS_H
#define SPIKECL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "spikecl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPK_ST_MAX_DIMS 8

typedef struct spk_st_tensor {
    char *name;
    int ndim;
    int64_t shape[SPK_ST_MAX_DIMS];
    float *data; /* numel floats */
} spk_st_tensor;

/* Writes n F32 tensors and optional string metadata (meta_keys/meta_vals, n_meta pairs, may be 0)
 * to path atomically: a temporary file in the same folder, fsync, rename, fsync of the folder.
 * A failure at any point leaves an existing file at path untouched. */
int spk_safetensors_write(const char *path, int n, const spk_st_tensor *tensors, int n_meta,
                          const char *const *meta_keys, const char *const *meta_vals,
                          spk_error *err);

/* Reads every F32 tensor of a safetensors file. The result owns its names and data. */
typedef struct spk_st_file {
    int n;
    spk_st_tensor *tensors;
} spk_st_file;

int spk_safetensors_read(const char *path, spk_st_file **out, spk_error *err);
void spk_st_file_free(spk_st_file *f);
const spk_st_tensor *spk_st_file_find(const spk_st_file *f, const char *name);

#ifdef __cplusplus
}
#endif
#endif
