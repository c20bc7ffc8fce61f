/* Philox4x32-10 against the Random123 known-answer vectors (tests/kat_vectors of
 * github.com/DEShawResearch/random123, the three "philox4x32 10" lines: counter, key, output). */
#include <criterion/criterion.h>

#include <string.h>

#include "spikecl/philox.h"

static void spk_check_kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4])
{
    spk_philox_ctr c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    spk_philox_ctr r = spk_philox4x32_10(c, key[0], key[1]);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(r.v[i], want[i], "word %d: got 0x%08x, expected 0x%08x", i, (unsigned)r.v[i],
                     (unsigned)want[i]);
}

Test(philox, kat_zeros)
{
    const uint32_t ctr[4] = {0, 0, 0, 0}, key[2] = {0, 0};
    const uint32_t want[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    spk_check_kat(ctr, key, want);
}

Test(philox, kat_ones)
{
    const uint32_t ctr[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t key[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t want[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    spk_check_kat(ctr, key, want);
}

Test(philox, kat_pi_digits)
{
    const uint32_t ctr[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    const uint32_t key[2] = {0xa4093822u, 0x299f31d0u};
    const uint32_t want[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    spk_check_kat(ctr, key, want);
}

/* A counter-based generator is a pure function: the same inputs give the same block, and a
 * change of one counter or key bit changes it. */
Test(philox, pure_and_sensitive)
{
    spk_philox_ctr c = {{1, 2, 3, 4}};
    spk_philox_ctr a = spk_philox4x32_10(c, 5, 6);
    spk_philox_ctr b = spk_philox4x32_10(c, 5, 6);
    cr_expect_eq(memcmp(&a, &b, sizeof a), 0);
    spk_philox_ctr c2 = {{1, 2, 3, 5}};
    spk_philox_ctr d = spk_philox4x32_10(c2, 5, 6);
    cr_expect_neq(memcmp(&a, &d, sizeof a), 0);
    spk_philox_ctr e = spk_philox4x32_10(c, 5, 7);
    cr_expect_neq(memcmp(&a, &e, sizeof a), 0);
}

Test(philox, unit_range)
{
    cr_expect_eq(spk_u32_to_unit(0), 0.0f);
    float top = spk_u32_to_unit(0xffffffffu);
    cr_expect_lt(top, 1.0f, "spk_u32_to_unit(0xffffffff) = %.9g, must be < 1", (double)top);
    cr_expect_eq(top, 1.0f - 1.0f / 16777216.0f);
    cr_expect_eq(spk_u32_to_unit(0x80000000u), 0.5f);
    /* Values below 256 share the bottom bucket: only the top 24 bits matter. */
    cr_expect_eq(spk_u32_to_unit(0xffu), 0.0f);
    cr_expect_eq(spk_u32_to_unit(0x100u), 1.0f / 16777216.0f);

    /* Many draws: all in [0, 1), mean near 1/2, every tenth of the interval visited. */
    double sum = 0.0;
    int bins[10] = {0};
    const int n = 100000;
    for (int i = 0; i < n / 4; i++) {
        spk_philox_ctr c = {{(uint32_t)i, 0, 0, 0}};
        spk_philox_ctr r = spk_philox4x32_10(c, 0x12345678u, 0x9abcdef0u);
        for (int k = 0; k < 4; k++) {
            float u = spk_u32_to_unit(r.v[k]);
            cr_assert(u >= 0.0f && u < 1.0f, "draw %d out of [0,1): %.9g", i, (double)u);
            sum += u;
            bins[(int)(u * 10.0f)]++;
        }
    }
    double mean = sum / n;
    /* Standard error of the mean is 1/sqrt(12 n) ~ 0.0009; 0.005 is over 5 sigma. */
    cr_expect(mean > 0.495 && mean < 0.505, "mean of %d uniforms = %f", n, mean);
    for (int b = 0; b < 10; b++)
        cr_expect(bins[b] > n / 10 - 600 && bins[b] < n / 10 + 600, "bin %d has %d of %d", b,
                  bins[b], n);
}
