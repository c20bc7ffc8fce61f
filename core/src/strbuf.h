/* spikecl internal — the library's one growable string. An out-of-memory failure is sticky:
 * later appends do nothing and spk_strbuf_finish returns NULL, so callers check once. */
#ifndef SPK_STRBUF_H
#define SPK_STRBUF_H

#include <stddef.h>

typedef struct spk_strbuf {
    char *s; /* NUL-terminated once anything was appended */
    size_t len, cap;
    int oom;
} spk_strbuf;

#define SPK_STRBUF_INIT                                                                            \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

void spk_strbuf_append(spk_strbuf *b, const char *s, size_t n);
void spk_strbuf_appendf(spk_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The text (malloc'ed, "" when nothing was appended), or NULL when out of memory; the builder is
 * empty again afterwards. */
char *spk_strbuf_finish(spk_strbuf *b);
/* Drops the text; the builder is empty again. */
void spk_strbuf_clear(spk_strbuf *b);

#endif
