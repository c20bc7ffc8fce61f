#include "spikecl/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int spk_error_set(spk_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int spk_error_prefix(spk_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    strcat(prefix, ": ");
    /* shift the old message right and put the prefix in front, truncating at the end */
    size_t p = strlen(prefix), m = strlen(err->msg), cap = sizeof err->msg - 1;
    if (p > cap)
        p = cap;
    if (m > cap - p)
        m = cap - p;
    memmove(err->msg + p, err->msg, m);
    memcpy(err->msg, prefix, p);
    err->msg[p + m] = '\0';
    if (err->code == SPK_OK)
        err->code = code;
    return err->code;
}

void spk_error_clear(spk_error *err)
{
    if (err) {
        err->code = SPK_OK;
        err->msg[0] = '\0';
    }
}

const char *spk_status_str(int code)
{
    switch (code) {
    case SPK_OK:
        return "ok";
    case SPK_ERR_NOMEM:
        return "out of memory";
    case SPK_ERR_IO:
        return "i/o error";
    case SPK_ERR_PARSE:
        return "parse error";
    case SPK_ERR_INVALID:
        return "invalid value";
    case SPK_ERR_SHAPE:
        return "shape mismatch";
    case SPK_ERR_BACKEND:
        return "backend failure";
    case SPK_ERR_UNSUPPORTED:
        return "unsupported";
    case SPK_ERR_PLUGIN:
        return "plugin error";
    case SPK_ERR_NOTFOUND:
        return "not found";
    case SPK_ERR_NUMERIC:
        return "non-finite value";
    }
    return "unknown error";
}
