/* spikecl internal — the NIR reader's size cap, which the fuzz harness lowers. */
#ifndef SPK_NIR_LIMITS_H
#define SPK_NIR_LIMITS_H

#include <stddef.h>

/* A dataset with more values than this is refused (default 2^26: 512 MiB read as doubles). */
extern size_t spk_nir_max_values;

#endif
