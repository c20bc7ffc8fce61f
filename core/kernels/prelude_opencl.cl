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
#define SPK_CPU_ENTRY(...)
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
