/* The built-in neuron kernels (lif, if, synaptic, plif) compiled as C into one table, for
 * test_neuron_lanes: tests/neuron_lanes_ref.c builds it one lane wide (SPK_LANES=1, the
 * one-item-per-neuron form), test_neuron_lanes.c at the default lane-block width. */
#ifndef SPK_NEURON_LANES_H
#define SPK_NEURON_LANES_H

#include "spikecl/kernel.h"

#if SPK_LANES > 1 /* not the one-lane reference: the width the plugins use */
#undef SPK_LANES
#define SPK_LANES SPK_LANES_WIDE
#endif

#include "if.cl"
#include "lif.cl"
#include "plif.cl"
#include "synaptic.cl"

#define SPK_NEURON_LANES_TABLE                                                                     \
    {                                                                                              \
        SPK_CPU_KERNEL(lif_forward), SPK_CPU_KERNEL(lif_backward), SPK_CPU_KERNEL(if_forward),     \
            SPK_CPU_KERNEL(if_backward), SPK_CPU_KERNEL(syn_forward),                              \
            SPK_CPU_KERNEL(syn_backward), SPK_CPU_KERNEL(plif_forward),                            \
            SPK_CPU_KERNEL(plif_backward),                                                         \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

#endif
