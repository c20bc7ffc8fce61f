/* Spike functions and surrogate derivatives for neuron kernels, in the common subset of C99 and
 * OpenCL C (like philox.h: kernel.h includes it on the CPU, the OpenCL backend prepends it to
 * every program). `kind` is an spk_surrogate_kind: 0 fast_sigmoid, 1 atan, 2 sigmoid,
 * 3 triangle; k is its slope (atan: alpha). */
#ifndef SPIKECL_SURROGATE_H
#define SPIKECL_SURROGATE_H

/* static inline in both dialects, for the reason given in philox.h */
#if !defined(__OPENCL_C_VERSION__) && !defined(__OPENCL_VERSION__)
#include <math.h>
/* Runs STEP(kind, smooth) — typically a lane loop over one time step — with the surrogate kind
 * as a literal where it is one the lane loop vectorises (fast_sigmoid, atan, triangle: no call
 * left once spk_sg_* inline), and with the run-time kind otherwise (sigmoid and smooth mode
 * call expf/atanf). A neuron writes `SPK_SG_SPECIALISE(MY_STEP, sg, smooth)` once per loop. */
#define SPK_SG_SPECIALISE(STEP, sg, smooth)                                                        \
    if (smooth)                                                                                    \
        STEP(sg, 1)                                                                                \
    else if ((sg) == 0)                                                                            \
        STEP(0, 0)                                                                                 \
    else if ((sg) == 1)                                                                            \
        STEP(1, 0)                                                                                 \
    else if ((sg) == 3)                                                                            \
        STEP(3, 0)                                                                                 \
    else                                                                                           \
        STEP(sg, 0)

#endif
#define SPK_SG_INLINE static inline

/* H(x) = x > 0, or in smooth mode (tests) the function whose derivative is the surrogate, so
 * that finite differences can check a backward pass exactly. */
SPK_SG_INLINE float spk_sg_spike(const float x, const int kind, const float k, const int smooth)
{
    if (!smooth)
        return x > 0.0f ? 1.0f : 0.0f;
    if (kind == 0)
        return x / (1.0f + k * fabsf(x)) + 0.5f;
    if (kind == 1)
        return atanf(1.57079633f * k * x) / 3.14159265f + 0.5f;
    if (kind == 2)
        return 1.0f / (1.0f + expf(-k * x));
    /* triangle: integral of k*max(0, 1 - k|x|), from 0 at -1/k to 1 at 1/k */
    const float u = k * x;
    if (u <= -1.0f)
        return 0.0f;
    if (u >= 1.0f)
        return 1.0f;
    return u < 0.0f ? 0.5f + u + 0.5f * u * u : 0.5f + u - 0.5f * u * u;
}

/* The surrogate derivative dS/dx (snnTorch's definitions: fast_sigmoid 1/(k|x|+1)^2,
 * atan (alpha/2)/(1+(pi/2 alpha x)^2), sigmoid k s(kx)(1-s(kx)), triangle k max(0, 1-k|x|)). */
SPK_SG_INLINE float spk_sg_grad(const float x, const int kind, const float k)
{
    if (kind == 0) {
        const float d = k * fabsf(x) + 1.0f;
        return 1.0f / (d * d);
    }
    if (kind == 1) {
        const float u = 1.57079633f * k * x;
        return 0.5f * k / (1.0f + u * u);
    }
    if (kind == 2) {
        const float s = 1.0f / (1.0f + expf(-k * x));
        return k * s * (1.0f - s);
    }
    /* a select rather than fmaxf: the same value (NaN gives 0 either way), and it vectorises
     * without -ffast-math */
    const float u = 1.0f - k * fabsf(x);
    return k * (u > 0.0f ? u : 0.0f);
}

/* Runs STEP(kind, smooth) — typically a lane loop over one time step — with the surrogate kind
 * as a literal where it is one the lane loop vectorises (fast_sigmoid, atan, triangle: no call
 * left once spk_sg_* inline), and with the run-time kind otherwise (sigmoid and smooth mode
 * call expf/atanf). A neuron writes `SPK_SG_SPECIALISE(MY_STEP, sg, smooth)` once per loop. */
#define SPK_SG_SPECIALISE(STEP, sg, smooth)                                                        \
    if (smooth)                                                                                    \
        STEP(sg, 1)                                                                                \
    else if ((sg) == 0)                                                                            \
        STEP(0, 0)                                                                                 \
    else if ((sg) == 1)                                                                            \
        STEP(1, 0)                                                                                 \
    else if ((sg) == 3)                                                                            \
        STEP(3, 0)                                                                                 \
    else                                                                                           \
        STEP(sg, 0)

#endif
