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
