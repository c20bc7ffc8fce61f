/* spikecl internal — registration on behalf of a plugin being loaded. */
#ifndef SPK_REGISTRY_INTERNAL_H
#define SPK_REGISTRY_INTERNAL_H

#include "spikecl/plugin.h"

/* The plugin loader names the shared library it is initialising (NULL when done), so types a
 * plugin registers through the host table are listed with their source. */
void spk_registry_set_loading(const char *source);
/* spk_registry_add with the source set above ("plugin" when none). */
int spk_registry_add_from_plugin(spk_registry *reg, const spk_layer_type *type, spk_error *err);

#endif
