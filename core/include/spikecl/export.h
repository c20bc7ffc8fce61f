/* spikecl — SPK_API marks the functions of the public API. libspikecl is built with hidden
 * visibility, so only these are exported: the library's internals cannot become ABI by
 * accident, and tests that need them link the internal object library instead. */
#ifndef SPIKECL_EXPORT_H
#define SPIKECL_EXPORT_H

#if defined(__GNUC__)
#define SPK_API __attribute__((visibility("default")))
/* printf-style checks of a function (pointer)'s format argument f and its first vararg a */
#define SPK_FORMAT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPK_API
#define SPK_FORMAT_PRINTF(f, a)
#endif

#endif
