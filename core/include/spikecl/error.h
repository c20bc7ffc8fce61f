/* spikecl — status codes and the error record every fallible call fills. */
#ifndef SPIKECL_ERROR_H
#define SPIKECL_ERROR_H

#include "spikecl/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum spk_status {
    SPK_OK = 0,
    SPK_ERR_NOMEM = 1,   /* an allocation failed */
    SPK_ERR_IO = 2,      /* a file could not be read or written */
    SPK_ERR_PARSE = 3,   /* malformed input file (YAML, IDX, safetensors) */
    SPK_ERR_INVALID = 4, /* a value is out of range or of the wrong type */
    SPK_ERR_SHAPE = 5,   /* shapes do not fit */
    SPK_ERR_BACKEND = 6, /* the backend (BLAS, OpenCL) reported a failure */
    SPK_ERR_UNSUPPORTED = 7,
    SPK_ERR_PLUGIN = 8,   /* a plugin failed to load or register */
    SPK_ERR_NOTFOUND = 9, /* a named thing (layer type, device, file) does not exist */
    SPK_ERR_NUMERIC = 10, /* training diverged: a loss, gradient or weight is NaN or infinite */
} spk_status;

/* Every fallible call takes an spk_error * (which may be NULL) and returns an spk_status.
 * On failure the record holds the code and a human-readable message. */
typedef struct spk_error {
    int code;
    char msg[1024];
} spk_error;

/* Fills err (if not NULL) with code and a printf-style message; returns code. */
SPK_API int spk_error_set(spk_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepends "prefix: " to the message already in err; returns err->code (or code if err is NULL). */
SPK_API int spk_error_prefix(spk_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

SPK_API void spk_error_clear(spk_error *err);

/* Short name of a status code, e.g. "invalid value". */
SPK_API const char *spk_status_str(int code);

#ifdef __cplusplus
}
#endif
#endif
