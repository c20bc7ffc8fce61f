/* spikecl — the backend interface: a table of functions (the ggml style). Nothing above a backend
 * includes CL/cl.h or cblas.h; the graph, the executor and every plugin go through this table. */
#ifndef SPIKECL_BACKEND_H
#define SPIKECL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "spikecl/error.h"
#include "spikecl/kernel.h"

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
} spk_backend_ops;

struct spk_backend {
    const spk_backend_ops *ops;
    char description[256]; /* e.g. "cpu (OpenBLAS, 2 threads)" */
    spk_backend_stats stats;
    void *impl;
};

/* Opens a device by id: "cpu" (more backends register their prefixes, e.g. "opencl:0:0"). */
int spk_backend_open(const char *id, spk_backend **out, spk_error *err);
void spk_backend_free(spk_backend *be);

/* The CPU backend; threads <= 0 keeps OpenMP's default. */
int spk_backend_cpu_new(int threads, spk_backend **out, spk_error *err);

/* Per-kernel device times of a backend that profiles (OpenCL with SPIKECL_PROFILE=1 set before
 * it was opened): waits for the device, then writes one "owner:kernel\tcalls\tms" line per
 * kernel, longest first, into buf (truncated to n bytes). Returns the number of lines, or -1
 * when the backend keeps no profile (the CPU, or profiling off). */
int spk_backend_profile_report(spk_backend *be, char *buf, size_t n);

/* Lists the devices this build can open, one per line: "id\tdescription". Returns a malloc'ed
 * string. */
char *spk_backend_list(spk_error *err);

#ifdef __cplusplus
}
#endif
#endif
