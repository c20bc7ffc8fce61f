/* The neuron kernels one lane wide (SPK_LANES=1 from the build): the reference of
 * test_neuron_lanes. */
#include "neuron_lanes.h"

extern const spk_cpu_kernel spk_test_lanes1_kernels[];
const spk_cpu_kernel spk_test_lanes1_kernels[] = SPK_NEURON_LANES_TABLE;
