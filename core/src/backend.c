/* Opening backends by id: "cpu", "opencl", "opencl:P:D", "opencl:NAME". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/backend.h"
#ifdef SPIKECL_HAVE_OPENCL
#include "opencl.h"
#endif

int spk_backend_open(const char *id, spk_backend **out, spk_error *err)
{
    if (!id || !id[0])
        return spk_error_set(err, SPK_ERR_INVALID, "empty device string");
    if (strcmp(id, "cpu") == 0)
        return spk_backend_cpu_new(0, out, err);
    if (strncmp(id, "opencl", 6) == 0 && (id[6] == '\0' || id[6] == ':')) {
#ifdef SPIKECL_HAVE_OPENCL
        return spk_backend_opencl_open(id, out, err);
#else
        return spk_error_set(err, SPK_ERR_UNSUPPORTED,
                             "device '%s': this spikecl was built without OpenCL", id);
#endif
    }
    return spk_error_set(err, SPK_ERR_INVALID,
                         "bad device string '%s': expected cpu, opencl, opencl:P:D or opencl:NAME",
                         id);
}

void spk_backend_free(spk_backend *be)
{
    if (be)
        be->ops->destroy(be);
}

int spk_backend_profile_report(spk_backend *be, char *buf, size_t n)
{
    if (buf && n)
        buf[0] = '\0';
#ifdef SPIKECL_HAVE_OPENCL
    return spk_backend_opencl_profile(be, buf, n);
#else
    (void)be;
    return -1;
#endif
}

char *spk_backend_list(spk_error *err)
{
    const char *cpu = "cpu\tthe host CPU (OpenBLAS + OpenMP)\n";
    char *cl = NULL;
#ifdef SPIKECL_HAVE_OPENCL
    cl = spk_backend_opencl_list(err);
#endif
    size_t n = strlen(cpu) + (cl ? strlen(cl) : 0) + 1;
    char *s = malloc(n);
    if (!s) {
        free(cl);
        spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(s, n, "%s%s", cpu, cl ? cl : "");
    free(cl);
    return s;
}
