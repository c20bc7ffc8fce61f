/* spikecl internal — the one place a 64-bit model seed becomes the 32-bit Philox key word that
 * every stream uses (weight initialisation, the executor's draws, the loader's shuffle); each
 * stream adds its own purpose word (SPK_RNG_*) as the second key word. Seeds below 2^32 map to
 * themselves. */
#ifndef SPK_SEED_H
#define SPK_SEED_H

#include <stdint.h>

static inline uint32_t spk_seed_key(uint64_t seed)
{
    return (uint32_t)(seed ^ (seed >> 32));
}

#endif
