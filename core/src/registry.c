/* The registry of layer types: built-ins register at first use, plugins when loaded. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "registry.h"
#include "spikecl/spikecl.h"

typedef struct spk_registry_entry {
    const spk_layer_type *type;
    char *source;
    spk_layer_type *own;   /* the full-size copy of an older, shorter descriptor (or NULL) */
    spk_param_value *defs; /* the table's defaults, parsed once here; one per parameter */
    int n_defs;
} spk_registry_entry;

struct spk_registry {
    int n, cap;
    spk_registry_entry *e;
};

/* The built-in layers: each plugins/ file puts a pointer to its descriptor into the section
 * "spk_builtins" (SPK_BUILTIN in builtin.h); the linker brackets the section with these. */
extern const spk_layer_type *const __start_spk_builtins[];
extern const spk_layer_type *const __stop_spk_builtins[];

static int check_params(const spk_layer_type *t, spk_error *err)
{
    if (!t->params)
        return SPK_OK;
    for (int i = 0; t->params[i].name; i++) {
        const spk_param_spec *p = &t->params[i];
        if (!p->name[0])
            return spk_error_set(err, SPK_ERR_PLUGIN, "layer type '%s': parameter %d has no name",
                                 t->name, i);
        if (p->type < SPK_PARAM_FLOAT || p->type > SPK_PARAM_SURROGATE)
            return spk_error_set(err, SPK_ERR_PLUGIN,
                                 "layer type '%s': parameter '%s' has unknown type %d", t->name,
                                 p->name, p->type);
        if ((p->type == SPK_PARAM_CHOICE || p->type == SPK_PARAM_SURROGATE) &&
            (!p->choices || !p->choices[0]))
            return spk_error_set(err, SPK_ERR_PLUGIN,
                                 "layer type '%s': parameter '%s' needs a list of choices", t->name,
                                 p->name);
        for (int j = 0; j < i; j++)
            if (strcmp(t->params[j].name, p->name) == 0)
                return spk_error_set(err, SPK_ERR_PLUGIN,
                                     "layer type '%s': parameter '%s' is declared twice", t->name,
                                     p->name);
    }
    return SPK_OK;
}

int spk_registry_add(spk_registry *reg, const spk_layer_type *t, const char *source, spk_error *err)
{
    if (!reg || !t)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_registry_add: NULL argument");
    const char *src = source ? source : "built-in";
    /* the version fields open every descriptor; the rest is read only once struct_size says
     * it is there */
    if (t->abi_major == SPK_ABI_MAJOR && t->struct_size < SPK_LAYER_TYPE_SIZE_1_0)
        return spk_error_set(err, SPK_ERR_PLUGIN,
                             "%s: layer type descriptor is %u bytes, expected at least %zu (ABI "
                             "%d.0)",
                             src, (unsigned)t->struct_size, (size_t)SPK_LAYER_TYPE_SIZE_1_0,
                             SPK_ABI_MAJOR);
    if (t->abi_major != SPK_ABI_MAJOR || t->abi_minor > SPK_ABI_MINOR)
        return spk_error_set(err, SPK_ERR_PLUGIN,
                             "%s: layer type '%s' was built for plugin ABI %u.%u, but this "
                             "spikecl provides ABI %d.%d (same major, minor <= %d required)",
                             src, t->name ? t->name : "?", (unsigned)t->abi_major,
                             (unsigned)t->abi_minor, SPK_ABI_MAJOR, SPK_ABI_MINOR, SPK_ABI_MINOR);
    if (!t->name || !t->name[0] || !t->init || !t->forward)
        return spk_error_set(err, SPK_ERR_PLUGIN, "%s: layer type needs a name, init and forward",
                             src);
    if (t->kind < SPK_KIND_ENCODER || t->kind > SPK_KIND_OTHER)
        return spk_error_set(err, SPK_ERR_PLUGIN, "%s: layer type '%s' has unknown kind %d", src,
                             t->name, t->kind);
    for (int i = 0; i < reg->n; i++)
        if (strcmp(reg->e[i].type->name, t->name) == 0)
            return spk_error_set(err, SPK_ERR_PLUGIN,
                                 "%s: layer type '%s' is already registered (from %s)", src,
                                 t->name, reg->e[i].source);
    int rc = check_params(t, err);
    if (rc)
        return spk_error_prefix(err, rc, "%s", src);
    /* a bad default is the plugin's bug: refuse the type now rather than fail every model
     * that uses it later */
    spk_param_value *defs = NULL;
    int n_defs = 0;
    if ((rc = spk_params_parse_defaults(t, &defs, &n_defs, err))) {
        if (rc == SPK_ERR_NOMEM)
            return rc;
        if (err)
            err->code = SPK_ERR_PLUGIN;
        return spk_error_prefix(err, SPK_ERR_PLUGIN, "%s", src);
    }
    if (reg->n == reg->cap) {
        int cap = reg->cap ? reg->cap * 2 : 16;
        spk_registry_entry *e = realloc(reg->e, (size_t)cap * sizeof *e);
        if (!e) {
            spk_param_values_free(defs, n_defs);
            return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        }
        reg->e = e;
        reg->cap = cap;
    }
    /* An older plugin's descriptor ends early: keep a zero-filled full-size copy, so that every
     * later reader sees the fields it lacks as "not given" instead of reading past its end. */
    spk_layer_type *own = NULL;
    if (t->struct_size < sizeof(spk_layer_type)) {
        if (!(own = calloc(1, sizeof *own))) {
            spk_param_values_free(defs, n_defs);
            return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        }
        memcpy(own, t, t->struct_size);
    }
    char *s = malloc(strlen(src) + 1);
    if (!s) {
        free(own);
        spk_param_values_free(defs, n_defs);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    strcpy(s, src);
    reg->e[reg->n].type = own ? own : t;
    reg->e[reg->n].source = s;
    reg->e[reg->n].own = own;
    reg->e[reg->n].defs = defs;
    reg->e[reg->n].n_defs = n_defs;
    reg->n++;
    return SPK_OK;
}

static spk_registry default_reg;
static int default_ready;

spk_registry *spk_registry_default(void)
{
    if (!default_ready) {
        default_ready = 1;
        for (const spk_layer_type *const *t = __start_spk_builtins; t < __stop_spk_builtins; t++)
            spk_registry_add(&default_reg, *t, "built-in", NULL);
    }
    return &default_reg;
}

const spk_layer_type *spk_registry_find(const spk_registry *reg, const char *name)
{
    if (!reg || !name)
        return NULL;
    for (int i = 0; i < reg->n; i++)
        if (strcmp(reg->e[i].type->name, name) == 0)
            return reg->e[i].type;
    return NULL;
}

int spk_registry_count(const spk_registry *reg)
{
    return reg ? reg->n : 0;
}

const spk_layer_type *spk_registry_get(const spk_registry *reg, int i, const char **source)
{
    if (!reg || i < 0 || i >= reg->n)
        return NULL;
    if (source)
        *source = reg->e[i].source;
    return reg->e[i].type;
}

const char *spk_registry_source(const spk_registry *reg, const char *type_name)
{
    if (!reg || !type_name)
        return NULL;
    for (int i = 0; i < reg->n; i++)
        if (strcmp(reg->e[i].type->name, type_name) == 0)
            return reg->e[i].source;
    return NULL;
}

void spk_registry_truncate(spk_registry *reg, int n)
{
    if (!reg || n < 0)
        return;
    while (reg->n > n) {
        reg->n--;
        free(reg->e[reg->n].source);
        free(reg->e[reg->n].own);
        spk_param_values_free(reg->e[reg->n].defs, reg->e[reg->n].n_defs);
        reg->e[reg->n].defs = NULL;
        reg->e[reg->n].source = NULL;
        reg->e[reg->n].own = NULL;
        reg->e[reg->n].type = NULL;
    }
}

const spk_param_value *spk_registry_defaults(const spk_registry *reg, const spk_layer_type *type)
{
    for (int i = 0; reg && i < reg->n; i++)
        if (reg->e[i].type == type)
            return reg->e[i].defs;
    return NULL;
}

static const char *loading_source;

void spk_registry_set_loading(const char *source)
{
    loading_source = source;
}

int spk_registry_add_from_plugin(spk_registry *reg, const spk_layer_type *type, spk_error *err)
{
    return spk_registry_add(reg, type, loading_source ? loading_source : "plugin", err);
}
