/* spikecl internal — state shared by the OpenCL backend's source files. */
#ifndef SPK_OPENCL_INTERNAL_H
#define SPK_OPENCL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

#include "spikecl/backend.h"
#include "spikecl/error.h"
#include "spikecl/kernel.h"

struct spk_buffer {
    cl_mem mem;
    size_t bytes; /* as requested (the cl_mem may be larger: never zero-sized) */
};

typedef struct spk_ocl_kernel {
    cl_kernel k;
    char *name;
    cl_uint nargs;
    char *sig;      /* per argument 'B', 'I', 'F', or '?' when the device gives no arg info; for
                     * programs from the cache, the signature recorded when it was built */
    size_t local;   /* work-group size used for launches */
    size_t prof_id; /* index into spk_ocl.prof when profiling */
} spk_ocl_kernel;

struct spk_program {
    cl_program prog; /* NULL for a kernel set without OpenCL source */
    char *owner;
    spk_ocl_kernel *kernels;
    size_t nkernels;
    int from_cache; /* 1 when the binary came from the disk cache */
};

typedef struct spk_ocl_prof_entry {
    char *name;
    uint64_t calls;
    uint64_t ns;
} spk_ocl_prof_entry;

typedef struct spk_ocl_pending {
    cl_event ev;
    size_t prof_id;
} spk_ocl_pending;

/* A pinned host buffer (CL_MEM_ALLOC_HOST_PTR, kept mapped) that upload_async copies from. */
typedef struct spk_ocl_stage {
    cl_mem mem;
    void *ptr; /* the mapping, for the buffer's life */
    size_t cap;
    cl_event ev; /* the last write that reads it; NULL when none is outstanding */
} spk_ocl_stage;

/* Staging buffers in the ring: the session uploads three per batch (inputs, labels, ids) and
 * double-buffers, so eight leave every write two batches to finish before its buffer returns. */
#define SPK_OCL_NSTAGE 8

typedef struct spk_ocl {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue queue;
    unsigned pidx, didx;
    char dev_name[256], dev_vendor[256], driver[256], plat_name[256], plat_version[256];
    cl_ulong max_alloc;
    cl_device_fp_config fp_config; /* CL_DEVICE_SINGLE_FP_CONFIG */
    char build_options[512];       /* for every program; part of the cache key */
    int poison;                    /* SPIKECL_CL_POISON=1: new buffers are filled with NaN */
    size_t max_wg;
    spk_program *builtin; /* the backend's own helper kernels, built on first use */
    int profiling;
    spk_ocl_prof_entry *prof;
    size_t nprof, cap_prof;
    spk_ocl_pending *pending;
    size_t npending, cap_pending;
    /* upload_async: a second in-order queue for host-to-device copies, so that they overlap the
     * kernels on `queue`, which waits for each copy's event before its next command */
    spk_backend_ops ops;   /* this backend's table: upload_async is NULL with
                            * SPIKECL_CL_OVERLAP=0 */
    int copy_queue;        /* 1: copies go on xfer; 0: on queue, in order */
    cl_command_queue xfer; /* created on the first upload_async */
    spk_ocl_stage stage[SPK_OCL_NSTAGE];
    unsigned next_stage;
} spk_ocl;

/* The readable name of an OpenCL status ("CL_INVALID_VALUE"), "unknown OpenCL error" if none. */
const char *spk_ocl_strerror(cl_int code);
/* The name of a CLBlastStatusCode ("CLBlastInvalidLeadDimA"). */
const char *spk_clblast_strerror(int code);
/* Sets err to "<what>: CL_NAME (code)" with SPK_ERR_BACKEND (SPK_ERR_NOMEM for the allocation
 * failures) and returns that status. */
int spk_ocl_fail(spk_error *err, cl_int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

uint64_t spk_ocl_now_ns(void);

/* Program build, kernels and launches (opencl_program.c). */
int spk_ocl_program_build(spk_backend *be, const spk_kernel_set *set, spk_program **out,
                          spk_error *err);
void spk_ocl_program_free(spk_backend *be, spk_program *prog);
int spk_ocl_launch(spk_backend *be, spk_program *prog, const char *name, size_t items, int nargs,
                   const spk_karg *args, spk_error *err);

/* Profiling (opencl_util.c). */
/* Index of the entry called name, added if new; (size_t)-1 when out of memory. */
size_t spk_ocl_prof_id(spk_ocl *o, const char *name);
/* Keeps ev (taking its reference) to read its times later. */
void spk_ocl_prof_add(spk_ocl *o, size_t prof_id, cl_event ev);
/* Reads the times of completed events; wait = 1 waits for all of them first. */
void spk_ocl_prof_harvest(spk_ocl *o, int wait);
void spk_ocl_prof_free(spk_ocl *o);

#endif
