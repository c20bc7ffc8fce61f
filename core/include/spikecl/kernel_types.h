/* spikecl — the types a kernel launch passes between the host and a backend: kernel arguments
 * and the CPU form of a kernel. Plain C declarations only, so that spikecl/backend.h can use them
 * without pulling in the kernel-writing macros of spikecl/kernel.h. */
#ifndef SPIKECL_KERNEL_TYPES_H
#define SPIKECL_KERNEL_TYPES_H

#include <stdint.h>

typedef enum spk_karg_type {
    SPK_KARG_BUF = 'B',
    SPK_KARG_INT = 'I',
    SPK_KARG_FLOAT = 'F'
} spk_karg_type;

/* One kernel argument as passed to a launch. For SPK_KARG_BUF, p is a spk_buffer * when a plugin
 * launches; the CPU backend swaps in the buffer's host pointer before it calls the entry. */
typedef struct spk_karg {
    int type;
    union {
        void *p;
        int32_t i;
        float f;
    } v;
} spk_karg;

typedef void (*spk_cpu_entry_fn)(const spk_karg *args);

/* A kernel compiled for the CPU: its name, its argument signature ("B, B, I, F") and its entry. */
typedef struct spk_cpu_kernel {
    const char *name;
    const char *signature;
    spk_cpu_entry_fn entry;
} spk_cpu_kernel;

#endif
