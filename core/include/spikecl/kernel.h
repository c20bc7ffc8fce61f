/* spikecl — the single-source kernel convention.
 *
 * A plugin writes its kernels once, in the common subset of C99 and OpenCL C, in a .cl file:
 *
 *   SPK_KERNEL void scale(SPK_GLOBAL float *y, SPK_GLOBAL const float *x, const int n,
 *                         const float a)
 *   {
 *       SPK_FOR_ITEMS(i, n) {
 *           y[i] = a * x[i];
 *       } SPK_END_ITEMS
 *   }
 *   SPK_CPU_ENTRY(scale, B, B, I, F)
 *
 * The OpenCL backend builds the file's text as a program (one work item per i, guarded by n).
 * The CPU backend compiles the same file as C, included from the plugin's .c file after this
 * header: SPK_FOR_ITEMS becomes an OpenMP loop over i, and SPK_CPU_ENTRY generates a function that
 * unpacks an argument array (B = buffer, I = int, F = float, in order) and calls the kernel.
 * Inside SPK_FOR_ITEMS do not `return`; the body is a loop on the CPU. SPK_FOR_TASKS(i, n) ...
 * SPK_END_TASKS is the same for few, heavy items: the CPU spreads any count over its threads.
 *
 * Lane blocks, for items that each carry a state through a sequential loop (a neuron over T):
 *
 *   SPK_FOR_LANES(i0, n) {
 *       SPK_LANE_VAR(float, m);                      per-item state: m[l]
 *       SPK_EACH_LANE(l) { m[l] = 0.0f; }
 *       for (int t = 0; t < T; t++)
 *           SPK_EACH_LANE(l) { const int i = i0 + l; m[l] = a * m[l] + x[t * n + i]; ... }
 *   } SPK_END_LANES
 *
 * OpenCL runs one work item per i (i0 = i, one lane). The CPU gives each iteration of its
 * OpenMP loop a block of up to SPK_LANES neighbouring items and makes SPK_EACH_LANE an
 * `omp simd` loop over them, so SIMD lanes carry neighbouring items (contiguous in a [T, B*N]
 * layout) while t stays sequential. Keep a lane's body free of calls (expf, ...) and of
 * branches the compiler cannot turn into selects on the fast path, or it stays scalar; a
 * uniform branch around the SPK_EACH_LANE loops is free. Each lane's arithmetic is unchanged,
 * so results are bit-identical to the one-item form.
 * Math: use the float functions of C99 (expf, fabsf, ...); OpenCL maps them to its built-ins. */
#ifndef SPIKECL_KERNEL_H
#define SPIKECL_KERNEL_H

#include <math.h>
#include <stdint.h>

#include "spikecl/kernel_types.h"
#include "spikecl/philox.h"
#include "spikecl/surrogate.h"

/* SPK_KERNEL_CLONES (the portable build's built-in plugins): GCC compiles each kernel, its
 * OpenMP body included, for AVX2 and for the baseline, and picks one at load time (ifunc). */
#if defined(SPK_KERNEL_CLONES) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SPK_KERNEL static __attribute__((target_clones("avx2", "default")))
#else
#define SPK_KERNEL static
#endif
#define SPK_GLOBAL
/* Small loops stay on one thread: waking the OpenMP team costs more than they do. Items are
 * independent (as OpenCL's work items are), so the loop is also `simd`: at -O2 GCC otherwise
 * leaves a loop whose pointers may alias scalar (encoder.direct's forward in fmnist_lif_mlp's
 * bench: 0.06-0.11 -> 0.02-0.03 ms); each item's arithmetic is unchanged. */
#define SPK_FOR_ITEMS(i, n)                                                                        \
    {                                                                                              \
        const int spk__n = (n);                                                                    \
        _Pragma("omp parallel for simd schedule(static) if (spk__n > 4096)") for (int i = 0;       \
                                                                                  i < spk__n; i++) \
        {
#define SPK_END_ITEMS                                                                              \
    }                                                                                              \
    }
/* Tasks: items that each do much work (a tile of a layer, an image), too few for the rule
 * above. Every count of two or more goes to the team, handed out one at a time (tasks may be
 * uneven: a partial last tile). OpenCL: the same as SPK_FOR_ITEMS. */
#define SPK_FOR_TASKS(i, n)                                                                        \
    {                                                                                              \
        const int spk__n = (n);                                                                    \
        _Pragma("omp parallel for schedule(dynamic, 1) if (spk__n > 1)") for (int i = 0;           \
                                                                              i < spk__n; i++)     \
        {
#define SPK_END_TASKS SPK_END_ITEMS

#if defined(__GNUC__)
#define SPK__ASSUME(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_unreachable();                                                               \
    } while (0)
#else
#define SPK__ASSUME(c) ((void)0)
#endif
/* Lane blocks (see the top of this file). SPK_LANES: items per block, a few SIMD vectors wide. */
#ifndef SPK_LANES
#define SPK_LANES 128
#endif
/* Wider blocks for kernels that stream [T, B*N] tensors one step at a time (the neurons): more
 * contiguous bytes per step. fmnist_lif_mlp on a Zen 4 core, 512 over 128: lif1 forward
 * 0.84-1.03 -> 0.58-0.75 ms, backward 0.81-0.92 -> 0.72-0.85 ms; the Poisson encoder wants 128
 * (its fast path needs a block within two rows of 196 groups).
 * A CPU source widens its own kernels by redefining SPK_LANES as this before its .cl. */
#define SPK_LANES_WIDE 512
#define SPK_FOR_LANES(i0, n)                                                                       \
    {                                                                                              \
        const int spk__n = (n);                                                                    \
        const int spk__nb = (spk__n + SPK_LANES - 1) / SPK_LANES;                                  \
        _Pragma("omp parallel for schedule(static) if (spk__n > 4096)") for (int spk__b = 0;       \
                                                                             spk__b < spk__nb;     \
                                                                             spk__b++)             \
        {                                                                                          \
            const int i0 = spk__b * SPK_LANES;                                                     \
            const int spk__w = spk__n - i0 < SPK_LANES ? spk__n - i0 : SPK_LANES;                  \
            SPK__ASSUME(spk__w > 0); /* every lane loop runs: its lane variables get set */
#define SPK_END_LANES                                                                              \
    }                                                                                              \
    }
#define SPK_LANE_VAR(type, name) type name[SPK_LANES]
/* A helper called in a lane loop: always inlined on the CPU, or the call keeps the loop scalar. */
#if defined(__GNUC__)
#define SPK_INLINE static inline __attribute__((always_inline))
#else
#define SPK_INLINE static inline
#endif
#define SPK_EACH_LANE(l) _Pragma("omp simd") for (int l = 0; l < spk__w; l++)
/* The same, OR-ing an int over the lanes into acc (a flag raised by any lane): a scalar loop
 * over a lane array just stored as vectors stalls on store forwarding. */
#define SPK__PRAGMA(x) _Pragma(#x)
#define SPK_EACH_LANE_OR(l, acc)                                                                   \
    SPK__PRAGMA(omp simd reduction(| : acc)) for (int l = 0; l < spk__w; l++)

/* The argument unpacking behind SPK_CPU_ENTRY (up to 24 arguments). */
#define SPK__ARG_B(k) (a[k].v.p)
#define SPK__ARG_I(k) (a[k].v.i)
#define SPK__ARG_F(k) (a[k].v.f)
#define SPK__A(t, k)  SPK__ARG_##t(k)
#define SPK__NARGS(...)                                                                            \
    SPK__NARGS_(__VA_ARGS__, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7,  \
                6, 5, 4, 3, 2, 1, 0)
#define SPK__NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17,    \
                    _18, _19, _20, _21, _22, _23, _24, N, ...)                                     \
    N
#define SPK__CAT(a, b)  SPK__CAT_(a, b)
#define SPK__CAT_(a, b) a##b
#define SPK__MAP(...)   SPK__CAT(SPK__MAPN_, SPK__NARGS(__VA_ARGS__))(__VA_ARGS__)
/* SPK__MAPN_k(t1..tk) expands to SPK__A(t1,0), ..., SPK__A(tk,k-1). */
#define SPK__MAPN_1(t1)                         SPK__A(t1, 0)
#define SPK__MAPN_2(t1, t2)                     SPK__MAPN_1(t1), SPK__A(t2, 1)
#define SPK__MAPN_3(t1, t2, t3)                 SPK__MAPN_2(t1, t2), SPK__A(t3, 2)
#define SPK__MAPN_4(t1, t2, t3, t4)             SPK__MAPN_3(t1, t2, t3), SPK__A(t4, 3)
#define SPK__MAPN_5(t1, t2, t3, t4, t5)         SPK__MAPN_4(t1, t2, t3, t4), SPK__A(t5, 4)
#define SPK__MAPN_6(t1, t2, t3, t4, t5, t6)     SPK__MAPN_5(t1, t2, t3, t4, t5), SPK__A(t6, 5)
#define SPK__MAPN_7(t1, t2, t3, t4, t5, t6, t7) SPK__MAPN_6(t1, t2, t3, t4, t5, t6), SPK__A(t7, 6)
#define SPK__MAPN_8(t1, t2, t3, t4, t5, t6, t7, t8)                                                \
    SPK__MAPN_7(t1, t2, t3, t4, t5, t6, t7), SPK__A(t8, 7)
#define SPK__MAPN_9(t1, t2, t3, t4, t5, t6, t7, t8, t9)                                            \
    SPK__MAPN_8(t1, t2, t3, t4, t5, t6, t7, t8), SPK__A(t9, 8)
#define SPK__MAPN_10(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10)                                      \
    SPK__MAPN_9(t1, t2, t3, t4, t5, t6, t7, t8, t9), SPK__A(t10, 9)
#define SPK__MAPN_11(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11)                                 \
    SPK__MAPN_10(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10), SPK__A(t11, 10)
#define SPK__MAPN_12(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12)                            \
    SPK__MAPN_11(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11), SPK__A(t12, 11)
#define SPK__MAPN_13(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13)                       \
    SPK__MAPN_12(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12), SPK__A(t13, 12)
#define SPK__MAPN_14(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14)                  \
    SPK__MAPN_13(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13), SPK__A(t14, 13)
#define SPK__MAPN_15(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15)             \
    SPK__MAPN_14(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14), SPK__A(t15, 14)
#define SPK__MAPN_16(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16)        \
    SPK__MAPN_15(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15), SPK__A(t16, 15)
#define SPK__MAPN_17(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17)   \
    SPK__MAPN_16(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16),           \
        SPK__A(t17, 16)
#define SPK__MAPN_18(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17,   \
                     t18)                                                                          \
    SPK__MAPN_17(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17),      \
        SPK__A(t18, 17)
#define SPK__MAPN_19(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17,   \
                     t18, t19)                                                                     \
    SPK__MAPN_18(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18), \
        SPK__A(t19, 18)
#define SPK__MAPN_20(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17,   \
                     t18, t19, t20)                                                                \
    SPK__MAPN_19(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18,  \
                 t19),                                                                             \
        SPK__A(t20, 19)

#define SPK__MAPN_21(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17,   \
                     t18, t19, t20, t21)                                                           \
    SPK__MAPN_20(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18,  \
                 t19, t20),                                                                        \
        SPK__A(t21, 20)
#define SPK__MAPN_22(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17,   \
                     t18, t19, t20, t21, t22)                                                      \
    SPK__MAPN_21(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18,  \
                 t19, t20, t21),                                                                   \
        SPK__A(t22, 21)
#define SPK__MAPN_23(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17,   \
                     t18, t19, t20, t21, t22, t23)                                                 \
    SPK__MAPN_22(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18,  \
                 t19, t20, t21, t22),                                                              \
        SPK__A(t23, 22)
#define SPK__MAPN_24(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17,   \
                     t18, t19, t20, t21, t22, t23, t24)                                            \
    SPK__MAPN_23(t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18,  \
                 t19, t20, t21, t22, t23),                                                         \
        SPK__A(t24, 23)

#define SPK_CPU_ENTRY(name, ...)                                                                   \
    static const char name##__spk_sig[] = #__VA_ARGS__;                                            \
    static void name##__spk_entry(const spk_karg *a)                                               \
    {                                                                                              \
        name(SPK__MAP(__VA_ARGS__));                                                               \
    }

/* An entry of a plugin's CPU kernel table; end the table with {0}. */
#define SPK_CPU_KERNEL(name)                                                                       \
    {                                                                                              \
#name, name##__spk_sig, name##__spk_entry                                                  \
    }

#endif
