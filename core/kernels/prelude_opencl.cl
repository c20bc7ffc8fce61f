/* Prepended by the OpenCL backend to every program: maps the single-source macros of
 * spikecl/kernel.h onto OpenCL C. */
#define SPK_KERNEL __kernel
#define SPK_GLOBAL __global
#define SPK_FOR_ITEMS(i, n)                                                                        \
    {                                                                                              \
        const int i = (int)get_global_id(0);                                                       \
        if (i < (n)) {
#define SPK_END_ITEMS                                                                              \
    }                                                                                              \
    }
#define SPK_FOR_TASKS(i, n) SPK_FOR_ITEMS(i, n)
#define SPK_END_TASKS       SPK_END_ITEMS
/* Lane blocks: one item per work item, a block of one lane. */
#define SPK_LANES 1
#define SPK_FOR_LANES(i0, n)                                                                       \
    {                                                                                              \
        const int i0 = (int)get_global_id(0);                                                      \
        if (i0 < (n)) {
#define SPK_END_LANES                                                                              \
    }                                                                                              \
    }
#define SPK_LANE_VAR(type, name) type name[1]
#define SPK_INLINE static inline
#define SPK_EACH_LANE(l)         for (int l = 0; l < 1; l++)
#define SPK_EACH_LANE_OR(l, acc) for (int l = 0; l < 1; l++)
/* No SPK_CPU_ENTRY here: OpenCL C 1.2 has no variadic macros, so the backend blanks its uses. */
#define expf exp
#define logf log
#define fabsf fabs
#define fmaxf fmax
#define fminf fmin
#define sqrtf sqrt
#define atanf atan
#define tanhf tanh
#define powf pow
#define floorf floor
