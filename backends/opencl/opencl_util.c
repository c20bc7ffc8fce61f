/* OpenCL backend: status names, timing and per-kernel profiling. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <clblast_c.h>

#include "opencl.h"
#include "opencl_internal.h"

#define SPK_NAME(x)                                                                                \
    case x:                                                                                        \
        return #x;

const char *spk_ocl_strerror(cl_int code)
{
    switch (code) {
        SPK_NAME(CL_SUCCESS)
        SPK_NAME(CL_DEVICE_NOT_FOUND)
        SPK_NAME(CL_DEVICE_NOT_AVAILABLE)
        SPK_NAME(CL_COMPILER_NOT_AVAILABLE)
        SPK_NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        SPK_NAME(CL_OUT_OF_RESOURCES)
        SPK_NAME(CL_OUT_OF_HOST_MEMORY)
        SPK_NAME(CL_PROFILING_INFO_NOT_AVAILABLE)
        SPK_NAME(CL_MEM_COPY_OVERLAP)
        SPK_NAME(CL_IMAGE_FORMAT_MISMATCH)
        SPK_NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED)
        SPK_NAME(CL_BUILD_PROGRAM_FAILURE)
        SPK_NAME(CL_MAP_FAILURE)
        SPK_NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        SPK_NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        SPK_NAME(CL_COMPILE_PROGRAM_FAILURE)
        SPK_NAME(CL_LINKER_NOT_AVAILABLE)
        SPK_NAME(CL_LINK_PROGRAM_FAILURE)
        SPK_NAME(CL_DEVICE_PARTITION_FAILED)
        SPK_NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
        SPK_NAME(CL_INVALID_VALUE)
        SPK_NAME(CL_INVALID_DEVICE_TYPE)
        SPK_NAME(CL_INVALID_PLATFORM)
        SPK_NAME(CL_INVALID_DEVICE)
        SPK_NAME(CL_INVALID_CONTEXT)
        SPK_NAME(CL_INVALID_QUEUE_PROPERTIES)
        SPK_NAME(CL_INVALID_COMMAND_QUEUE)
        SPK_NAME(CL_INVALID_HOST_PTR)
        SPK_NAME(CL_INVALID_MEM_OBJECT)
        SPK_NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
        SPK_NAME(CL_INVALID_IMAGE_SIZE)
        SPK_NAME(CL_INVALID_SAMPLER)
        SPK_NAME(CL_INVALID_BINARY)
        SPK_NAME(CL_INVALID_BUILD_OPTIONS)
        SPK_NAME(CL_INVALID_PROGRAM)
        SPK_NAME(CL_INVALID_PROGRAM_EXECUTABLE)
        SPK_NAME(CL_INVALID_KERNEL_NAME)
        SPK_NAME(CL_INVALID_KERNEL_DEFINITION)
        SPK_NAME(CL_INVALID_KERNEL)
        SPK_NAME(CL_INVALID_ARG_INDEX)
        SPK_NAME(CL_INVALID_ARG_VALUE)
        SPK_NAME(CL_INVALID_ARG_SIZE)
        SPK_NAME(CL_INVALID_KERNEL_ARGS)
        SPK_NAME(CL_INVALID_WORK_DIMENSION)
        SPK_NAME(CL_INVALID_WORK_GROUP_SIZE)
        SPK_NAME(CL_INVALID_WORK_ITEM_SIZE)
        SPK_NAME(CL_INVALID_GLOBAL_OFFSET)
        SPK_NAME(CL_INVALID_EVENT_WAIT_LIST)
        SPK_NAME(CL_INVALID_EVENT)
        SPK_NAME(CL_INVALID_OPERATION)
        SPK_NAME(CL_INVALID_GL_OBJECT)
        SPK_NAME(CL_INVALID_BUFFER_SIZE)
        SPK_NAME(CL_INVALID_MIP_LEVEL)
        SPK_NAME(CL_INVALID_GLOBAL_WORK_SIZE)
        SPK_NAME(CL_INVALID_PROPERTY)
        SPK_NAME(CL_INVALID_IMAGE_DESCRIPTOR)
        SPK_NAME(CL_INVALID_COMPILER_OPTIONS)
        SPK_NAME(CL_INVALID_LINKER_OPTIONS)
        SPK_NAME(CL_INVALID_DEVICE_PARTITION_COUNT)
    /* OpenCL 2.x and 3.0 codes: not defined by the 1.2 headers we target. */
    case -69:
        return "CL_INVALID_PIPE_SIZE";
    case -70:
        return "CL_INVALID_DEVICE_QUEUE";
    case -71:
        return "CL_INVALID_SPEC_ID";
    case -72:
        return "CL_MAX_SIZE_RESTRICTION_EXCEEDED";
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    /* Not in any standard, but NVIDIA's driver returns it after an out-of-bounds access. */
    case -9999:
        return "NVIDIA out-of-bounds memory access";
    }
    return "unknown OpenCL error";
}

const char *spk_clblast_strerror(int code)
{
    switch ((CLBlastStatusCode)code) {
        SPK_NAME(CLBlastSuccess)
        SPK_NAME(CLBlastOpenCLCompilerNotAvailable)
        SPK_NAME(CLBlastTempBufferAllocFailure)
        SPK_NAME(CLBlastOpenCLOutOfResources)
        SPK_NAME(CLBlastOpenCLOutOfHostMemory)
        SPK_NAME(CLBlastOpenCLBuildProgramFailure)
        SPK_NAME(CLBlastInvalidValue)
        SPK_NAME(CLBlastInvalidCommandQueue)
        SPK_NAME(CLBlastInvalidMemObject)
        SPK_NAME(CLBlastInvalidBinary)
        SPK_NAME(CLBlastInvalidBuildOptions)
        SPK_NAME(CLBlastInvalidProgram)
        SPK_NAME(CLBlastInvalidProgramExecutable)
        SPK_NAME(CLBlastInvalidKernelName)
        SPK_NAME(CLBlastInvalidKernelDefinition)
        SPK_NAME(CLBlastInvalidKernel)
        SPK_NAME(CLBlastInvalidArgIndex)
        SPK_NAME(CLBlastInvalidArgValue)
        SPK_NAME(CLBlastInvalidArgSize)
        SPK_NAME(CLBlastInvalidKernelArgs)
        SPK_NAME(CLBlastInvalidLocalNumDimensions)
        SPK_NAME(CLBlastInvalidLocalThreadsTotal)
        SPK_NAME(CLBlastInvalidLocalThreadsDim)
        SPK_NAME(CLBlastInvalidGlobalOffset)
        SPK_NAME(CLBlastInvalidEventWaitList)
        SPK_NAME(CLBlastInvalidEvent)
        SPK_NAME(CLBlastInvalidOperation)
        SPK_NAME(CLBlastInvalidBufferSize)
        SPK_NAME(CLBlastInvalidGlobalWorkSize)
        SPK_NAME(CLBlastNotImplemented)
        SPK_NAME(CLBlastInvalidMatrixA)
        SPK_NAME(CLBlastInvalidMatrixB)
        SPK_NAME(CLBlastInvalidMatrixC)
        SPK_NAME(CLBlastInvalidVectorX)
        SPK_NAME(CLBlastInvalidVectorY)
        SPK_NAME(CLBlastInvalidDimension)
        SPK_NAME(CLBlastInvalidLeadDimA)
        SPK_NAME(CLBlastInvalidLeadDimB)
        SPK_NAME(CLBlastInvalidLeadDimC)
        SPK_NAME(CLBlastInvalidIncrementX)
        SPK_NAME(CLBlastInvalidIncrementY)
        SPK_NAME(CLBlastInsufficientMemoryA)
        SPK_NAME(CLBlastInsufficientMemoryB)
        SPK_NAME(CLBlastInsufficientMemoryC)
        SPK_NAME(CLBlastInsufficientMemoryX)
        SPK_NAME(CLBlastInsufficientMemoryY)
        SPK_NAME(CLBlastInsufficientMemoryTemp)
        SPK_NAME(CLBlastInvalidBatchCount)
        SPK_NAME(CLBlastInvalidOverrideKernel)
        SPK_NAME(CLBlastMissingOverrideParameter)
        SPK_NAME(CLBlastInvalidLocalMemUsage)
        SPK_NAME(CLBlastNoHalfPrecision)
        SPK_NAME(CLBlastNoDoublePrecision)
        SPK_NAME(CLBlastInvalidVectorScalar)
        SPK_NAME(CLBlastInsufficientMemoryScalar)
        SPK_NAME(CLBlastDatabaseError)
        SPK_NAME(CLBlastUnknownError)
        SPK_NAME(CLBlastUnexpectedError)
    }
    /* CLBlast passes other OpenCL errors through unchanged. */
    return spk_ocl_strerror((cl_int)code);
}

int spk_ocl_fail(spk_error *err, cl_int code, const char *fmt, ...)
{
    int status = (code == CL_OUT_OF_HOST_MEMORY || code == CL_MEM_OBJECT_ALLOCATION_FAILURE)
                     ? SPK_ERR_NOMEM
                     : SPK_ERR_BACKEND;
    if (!err)
        return status;
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return spk_error_set(err, status, "%s: %s (%d)", what, spk_ocl_strerror(code), (int)code);
}

uint64_t spk_ocl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t spk_ocl_prof_id(spk_ocl *o, const char *name)
{
    for (size_t i = 0; i < o->nprof; i++)
        if (strcmp(o->prof[i].name, name) == 0)
            return i;
    if (o->nprof == o->cap_prof) {
        size_t cap = o->cap_prof ? 2 * o->cap_prof : 16;
        spk_ocl_prof_entry *p = realloc(o->prof, cap * sizeof *p);
        if (!p)
            return (size_t)-1;
        o->prof = p;
        o->cap_prof = cap;
    }
    char *copy = malloc(strlen(name) + 1);
    if (!copy)
        return (size_t)-1;
    strcpy(copy, name);
    o->prof[o->nprof] = (spk_ocl_prof_entry){copy, 0, 0};
    return o->nprof++;
}

/* Adds the device time of a finished event to its entry and releases it. */
static void spk_ocl_prof_account(spk_ocl *o, const spk_ocl_pending *p)
{
    cl_ulong t0 = 0, t1 = 0;
    if (clGetEventProfilingInfo(p->ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) ==
            CL_SUCCESS &&
        clGetEventProfilingInfo(p->ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) ==
            CL_SUCCESS &&
        t1 >= t0 && p->prof_id < o->nprof) {
        o->prof[p->prof_id].calls++;
        o->prof[p->prof_id].ns += (uint64_t)(t1 - t0);
    }
    clReleaseEvent(p->ev);
}

void spk_ocl_prof_harvest(spk_ocl *o, int wait)
{
    size_t keep = 0;
    for (size_t i = 0; i < o->npending; i++) {
        cl_int st = CL_COMPLETE;
        if (!wait)
            clGetEventInfo(o->pending[i].ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st,
                           NULL);
        else
            clWaitForEvents(1, &o->pending[i].ev);
        /* A negative status is a failed command: drop it, it has no meaningful time. */
        if (st == CL_COMPLETE || st < 0)
            spk_ocl_prof_account(o, &o->pending[i]);
        else
            o->pending[keep++] = o->pending[i];
    }
    o->npending = keep;
}

void spk_ocl_prof_add(spk_ocl *o, size_t prof_id, cl_event ev)
{
    if (o->npending == o->cap_pending) {
        spk_ocl_prof_harvest(o, 0);
        /* Still full: the queue runs far behind; wait rather than grow without bound. */
        if (o->npending >= 4096)
            spk_ocl_prof_harvest(o, 1);
    }
    if (o->npending == o->cap_pending) {
        size_t cap = o->cap_pending ? 2 * o->cap_pending : 256;
        spk_ocl_pending *p = realloc(o->pending, cap * sizeof *p);
        if (!p) {
            clReleaseEvent(ev); /* profiling is best effort */
            return;
        }
        o->pending = p;
        o->cap_pending = cap;
    }
    o->pending[o->npending++] = (spk_ocl_pending){ev, prof_id};
}

void spk_ocl_prof_free(spk_ocl *o)
{
    for (size_t i = 0; i < o->npending; i++)
        clReleaseEvent(o->pending[i].ev);
    free(o->pending);
    for (size_t i = 0; i < o->nprof; i++)
        free(o->prof[i].name);
    free(o->prof);
    o->pending = NULL;
    o->prof = NULL;
    o->npending = o->cap_pending = o->nprof = o->cap_prof = 0;
}
