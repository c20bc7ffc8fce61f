/* spikecl internal — layer parameter tables: values read by their spec, defaults, lookups. */
#ifndef SPK_PARAMS_INTERNAL_H
#define SPK_PARAMS_INTERNAL_H

#include "spikecl/spikecl.h"
#include "yaml_read.h"

/* Parameter lookup by name for the host API; NULL if the name is not in the table. */
const spk_param_value *spk_params_find(const spk_params *p, const char *name);

/* Parses a flow mapping of parameters ("{beta: 0.9, reset: zero}", or "" / NULL for all
 * defaults) against a type's table, exactly as the loader does for a layer. For tests and tools. */
int spk_params_from_yaml(const spk_layer_type *type, const char *yaml, spk_params *out,
                         spk_error *err);
/* Fills every value of `out` with the type's defaults (a required key is an error). */
int spk_params_defaults(const spk_layer_type *type, spk_params *out, spk_error *err);
void spk_params_clear(spk_params *p);

/* Parses every default of a type's table, once, when the type registers: *out holds one value
 * per parameter (zeroed for a required one), *n their count. A bad default fails with a message
 * naming the type and the parameter. */
int spk_params_parse_defaults(const spk_layer_type *type, spk_param_value **out, int *n,
                              spk_error *err);
void spk_param_values_free(spk_param_value *v, int n);

/* The parameters of one layer mapping: every key not in `extra` must be in the type's table.
 * Starts from `defaults` (the registry's, see spk_registry_defaults), or parses them when NULL. */
int spk_ld_params(spk_ld *ld, yaml_node_t *map, const spk_layer_type *type,
                  const spk_param_value *defaults, const char *const *extra, spk_params *out);

#endif
