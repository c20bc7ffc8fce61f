/* Philox4x32-10 counter-based RNG (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11). Written in the common subset of C99 and OpenCL C so that the CPU and every OpenCL device
 * draw the same numbers: the OpenCL backend prepends this file to every program. */
#ifndef SPIKECL_PHILOX_H
#define SPIKECL_PHILOX_H

/* Offline OpenCL compilers (clang, SPIR-V pipelines) define only __OPENCL_C_VERSION__, OpenCL 1.1
 * drivers only __OPENCL_VERSION__. The helpers are static inline in both dialects: a plain
 * `inline` has no external definition (C99), so a driver that does not inline (-cl-opt-disable)
 * would leave an undefined call. */
#if !defined(__OPENCL_C_VERSION__) && !defined(__OPENCL_VERSION__)
#include <stdint.h>
typedef uint32_t spk_u32;
typedef uint64_t spk_u64;
#else
typedef uint spk_u32;
typedef ulong spk_u64;
#endif
#define SPK_PHILOX_INLINE static inline

typedef struct spk_philox_ctr {
    spk_u32 v[4];
} spk_philox_ctr;

SPK_PHILOX_INLINE void spk_philox_mulhilo(spk_u32 a, spk_u32 b, spk_u32 *hi, spk_u32 *lo)
{
    spk_u64 p = (spk_u64)a * (spk_u64)b;
    *hi = (spk_u32)(p >> 32);
    *lo = (spk_u32)p;
}

/* Ten rounds of Philox4x32 on counter c with key (k0, k1). */
SPK_PHILOX_INLINE spk_philox_ctr spk_philox4x32_10(spk_philox_ctr c, spk_u32 k0, spk_u32 k1)
{
    for (int r = 0; r < 10; r++) {
        spk_u32 hi0, lo0, hi1, lo1;
        spk_philox_mulhilo(0xD2511F53u, c.v[0], &hi0, &lo0);
        spk_philox_mulhilo(0xCD9E8D57u, c.v[2], &hi1, &lo1);
        spk_philox_ctr n;
        n.v[0] = hi1 ^ c.v[1] ^ k0;
        n.v[1] = lo1;
        n.v[2] = hi0 ^ c.v[3] ^ k1;
        n.v[3] = lo0;
        c = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

/* A uniform float in [0, 1) from the top 24 bits of x: exact in float32 on every device. */
SPK_PHILOX_INLINE float spk_u32_to_unit(spk_u32 x)
{
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* Purposes: the third key word of a draw, so that streams for different uses never overlap. */
#define SPK_RNG_INIT    1u
#define SPK_RNG_SHUFFLE 2u
#define SPK_RNG_POISSON 3u
#define SPK_RNG_DROPOUT 4u

#endif
