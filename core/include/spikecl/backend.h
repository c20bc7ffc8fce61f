/* spikecl — the backend interface: a table of functions (the ggml style). Nothing above a backend
 * includes CL/cl.h or cblas.h; the graph, the executor and every plugin go through this table. */
#ifndef SPIKECL_BACKEND_H
#define SPIKECL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "spikecl/error.h"
#include "spikecl/kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spk_backend spk_backend;
typedef struct spk_buffer spk_buffer;   /* backend-defined: host memory, cl_mem, ... */
typedef struct spk_program spk_program; /* backend-defined: one plugin's kernels, built */

/* A plugin's kernels in both forms: the OpenCL text and the CPU entries compiled from it. */
typedef struct spk_kernel_set {
    const char *owner;                 /* layer type or "core", for error messages */
    const char *opencl_source;         /* the .cl file's text, or NULL */
    const spk_cpu_kernel *cpu_kernels; /* ends with {0}; NULL if none */
} spk_kernel_set;

typedef struct spk_backend_stats {
    uint64_t gemm_ns; /* time inside gemm calls, measured on the host */
    uint64_t gemm_calls;
    uint64_t launch_ns; /* time inside kernel launches */
    uint64_t launches;
    uint64_t bytes_allocated, bytes_peak;
} spk_backend_stats;

/* What a backend knows about one device it can open. */
typedef struct spk_device_info {
    char id[64];    /* what spk_backend_open takes: "cpu", "opencl:0:1" */
    char name[128]; /* the device's own name */
    char vendor[128];
    char driver[128];      /* driver or library version */
    int is_gpu;            /* 1 for a GPU: "auto" prefers the first of these */
    int compute_units;     /* cores or compute units; 0 when unknown */
    uint64_t memory_bytes; /* global memory; 0 when unknown */
    size_t max_work_group; /* 0 when not applicable */
    char kind[16];         /* "GPU", "CPU", "ACCEL", "OTHER" */
} spk_device_info;

/* Device time of one kernel, summed over its launches, for a backend that profiles. */
typedef struct spk_kernel_profile {
    char name[96]; /* "owner:kernel" */
    uint64_t calls;
    double ms;
} spk_kernel_profile;

typedef struct spk_backend_ops {
    const char *name; /* "cpu", "opencl" */
    void (*destroy)(spk_backend *be);
    int (*alloc)(spk_backend *be, size_t bytes, spk_buffer **out, spk_error *err);
    void (*release)(spk_backend *be, spk_buffer *buf);
    int (*upload)(spk_backend *be, spk_buffer *dst, size_t offset, const void *src, size_t bytes,
                  spk_error *err);
    int (*download)(spk_backend *be, const spk_buffer *src, size_t offset, void *dst, size_t bytes,
                    spk_error *err);
    /* count floats from float offset `offset` set to value */
    int (*fill)(spk_backend *be, spk_buffer *buf, size_t offset, size_t count, float value,
                spk_error *err);
    int (*copy)(spk_backend *be, spk_buffer *dst, size_t dst_offset, const spk_buffer *src,
                size_t src_offset, size_t bytes, spk_error *err);
    /* Row-major C = alpha * op(A) * op(B) + beta * C with op(A) m x k, op(B) k x n; offsets and
     * leading dimensions count floats. */
    int (*gemm)(spk_backend *be, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                float alpha, const spk_buffer *a, size_t a_off, size_t lda, const spk_buffer *b,
                size_t b_off, size_t ldb, float beta, spk_buffer *c, size_t c_off, size_t ldc,
                spk_error *err);
    int (*program_build)(spk_backend *be, const spk_kernel_set *set, spk_program **out,
                         spk_error *err);
    void (*program_free)(spk_backend *be, spk_program *prog);
    /* Runs kernel `name` of prog over `items` work items; args follow the kernel's signature. */
    int (*launch)(spk_backend *be, spk_program *prog, const char *name, size_t items, int nargs,
                  const spk_karg *args, spk_error *err);
    int (*sync)(spk_backend *be, spk_error *err);
    /* optional (NULL: none): see spk_backend_profile */
    int (*profile)(spk_backend *be, spk_kernel_profile **out, int *n, spk_error *err);
    /* optional (NULL: the session uploads with `upload` into one input buffer): an upload that
     * does not wait. src is copied before the call returns (the caller may reuse it at once);
     * the copy into dst may run while commands issued earlier still execute, and every command
     * issued later sees its data. The caller must not target a buffer that commands still in
     * flight read: the session double-buffers its input for this (exec.c). Added at the end of
     * the table; tables are built in-tree (backends/registry.c), never by plugins. */
    int (*upload_async)(spk_backend *be, spk_buffer *dst, size_t offset, const void *src,
                        size_t bytes, spk_error *err);
} spk_backend_ops;

struct spk_backend {
    const spk_backend_ops *ops;
    char description[256]; /* e.g. "cpu (OpenBLAS, 2 threads)" */
    spk_backend_stats stats;
    void *impl;
};

/* Opens a device by id. Each backend registers a prefix ("cpu", "opencl", ...); "auto" (or
 * NULL or "") means $SPIKECL_DEVICE when it is set, else the first GPU any backend lists, else
 * the CPU. */
SPK_API int spk_backend_open(const char *id, spk_backend **out, spk_error *err);
SPK_API void spk_backend_free(spk_backend *be);

/* The device id "auto" (or NULL, "") stands for, as spk_backend_open resolves it; other ids are
 * copied as they are. */
SPK_API int spk_backend_resolve(const char *id, char *out, size_t n, spk_error *err);

/* The CPU backend; threads <= 0 keeps OpenMP's default. */
SPK_API int spk_backend_cpu_new(int threads, spk_backend **out, spk_error *err);

/* Every device this build can open, the CPU first, as a malloc'ed array of *n entries (free it
 * with spk_device_list_free). A backend whose platform fails to enumerate lists nothing. */
SPK_API int spk_device_list(spk_device_info **out, int *n, spk_error *err);
SPK_API void spk_device_list_free(spk_device_info *list);

/* Per-kernel device times of a backend that profiles (OpenCL with SPIKECL_PROFILE=1 set before it
 * was opened): waits for the device, then returns a malloc'ed array, longest total first (free it
 * with spk_kernel_profile_free). SPK_ERR_UNSUPPORTED when the backend keeps no profile. */
SPK_API int spk_backend_profile(spk_backend *be, spk_kernel_profile **out, int *n, spk_error *err);
SPK_API void spk_kernel_profile_free(spk_kernel_profile *p);

#ifdef __cplusplus
}
#endif
#endif
