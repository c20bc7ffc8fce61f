/* Shared by loss.ce_rate and loss.ce_max_membrane: their kernels (ce_time.cl, one program for
 * both) and the CPU table. */
#ifndef SPK_PLUGIN_CE_TIME_H
#define SPK_PLUGIN_CE_TIME_H

#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "ce_time.cl"
#include "ce_time_cl.h"

static const spk_cpu_kernel ce_time_cpu_kernels[] = {
    SPK_CPU_KERNEL(ce_rate_nll),
    SPK_CPU_KERNEL(ce_rate_loss),
    SPK_CPU_KERNEL(ce_rate_grad),
    SPK_CPU_KERNEL(ce_maxmem_peak),
    SPK_CPU_KERNEL(ce_maxmem_loss),
    SPK_CPU_KERNEL(ce_maxmem_grad),
    {0},
};

/* Steps and the stride between them of a loss input: [T, B, C] or one [B, C]. */
static inline void ce_time_layout(const spk_layer *l, const spk_exec *x, int *steps, int *z_ts)
{
    const int over_t = l->in[0].time == SPK_TIME_STEPS;
    *steps = over_t ? x->T : 1;
    *z_ts = over_t ? x->B * spk_shape_size(&l->in[0]) : 0;
}

/* The per-sample loss is the layer's output too, when the host gave it one. */
static inline int ce_time_mirror(spk_layer *l, spk_exec *x)
{
    if (x->out && x->out->buf != x->loss->buf && x->out->numel == x->loss->numel)
        return l->host->copy(x, x->out, x->loss);
    return SPK_OK;
}

#endif
