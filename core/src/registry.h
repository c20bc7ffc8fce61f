/* spikecl internal — registration on behalf of a plugin being loaded. */
#ifndef SPK_REGISTRY_INTERNAL_H
#define SPK_REGISTRY_INTERNAL_H

#include "spikecl/plugin.h"

/* The plugin loader names the shared library it is initialising (NULL when done), so types a
 * plugin registers through the host table are listed with their source. */
void spk_registry_set_loading(const char *source);
/* spk_registry_add with the source set above ("plugin" when none). */
int spk_registry_add_from_plugin(spk_registry *reg, const spk_layer_type *type, spk_error *err);

/* Forgets the types registered after the first n: undoes a plugin whose init failed halfway, so
 * that a later attempt does not collide with its own leftovers. */
void spk_registry_truncate(spk_registry *reg, int n);

/* The defaults of a registered type's table, parsed when it registered (one value per
 * parameter, zeroed for a required one); NULL for a type this registry does not hold. */
const spk_param_value *spk_registry_defaults(const spk_registry *reg, const spk_layer_type *type);

#endif
