/* The struct layout of plugin ABI 1.0, measured from the 1.0 headers kept in
 * tests/plugins/abi-1.0 (this file is built with only that folder on its include path). */
#include "spikecl/plugin.h"

#include "abi_layout.h"

#if SPK_ABI_MAJOR != 1 || SPK_ABI_MINOR != 0
#error "abi10_layout.c must be built against tests/plugins/abi-1.0"
#endif

#define SIZE(s)   sizeof(s),
#define OFF(s, f) offsetof(s, f),
const size_t spk_abi10_sizes[] = {SPK_ABI_STRUCTS(SIZE)};
const size_t spk_abi10_offsets[] = {SPK_ABI10_FIELDS(OFF)};
const int spk_abi10_version[2] = {SPK_ABI_MAJOR, SPK_ABI_MINOR};
