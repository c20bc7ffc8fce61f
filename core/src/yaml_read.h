/* spikecl internal — the typed YAML reader: libyaml documents read with positions, values read
 * by type, and messages "file:line:col: context: expected ..., got ..." with "did you mean". */
#ifndef SPK_YAML_READ_INTERNAL_H
#define SPK_YAML_READ_INTERNAL_H

#include <stddef.h> /* offsetof, for the table rows */
#include <yaml.h>

#include "spikecl/spikecl.h"

#if defined(__GNUC__)
#define SPK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SPK_PRINTF(a, b)
#endif

/* ---- "did you mean": the closest candidate by optimal string alignment distance ---- */

#define SPK_SUGG_MAXLEN 64

typedef struct spk_sugg {
    const char *word;
    int limit, best_d;
    char best[SPK_SUGG_MAXLEN + 1];
    char text[SPK_SUGG_MAXLEN + 24]; /* "; did you mean 'x'?" or "" */
} spk_sugg;

void spk_sugg_init(spk_sugg *s, const char *word);
void spk_sugg_try(spk_sugg *s, const char *cand, size_t len);
const char *spk_sugg_text(spk_sugg *s);
/* Index of word in "a|b|c", or -1; suggestion filled when sg is given. */
int spk_choice_index(const char *choices, const char *word, spk_sugg *sg);

/* ---- the reader's context and messages ---- */

typedef struct spk_ld {
    const char *file; /* name for messages; NULL: no location prefix (defaults in tables) */
    const char *dir;  /* folder for relative paths; NULL: leave them as written */
    yaml_document_t *doc;
    spk_error *err;
    char ctx[192]; /* what is being read, e.g. "layer 'lif1' (neuron.lif): " */
} spk_ld;

/* Fails at a node's position (1-based; libyaml's marks are 0-based). */
int SPK_PRINTF(4, 5) spk_ld_fail(spk_ld *ld, const yaml_node_t *at, int code, const char *fmt, ...);
int SPK_PRINTF(5, 6) spk_ld_fail_at(spk_ld *ld, int line, int col, int code, const char *fmt, ...);
int SPK_PRINTF(2, 3) spk_ld_ctx(spk_ld *ld, const char *fmt, ...);
int spk_ld_nomem(spk_ld *ld);
/* libyaml's syntax error as "file:line:col: YAML syntax error: problem (context at l:c)". */
int spk_syntax_error(const yaml_parser_t *p, const char *file, const char *text, size_t len,
                     spk_error *err);

/* ---- nodes and scalars ---- */

yaml_node_t *spk_ld_node(spk_ld *ld, int id);
const char *spk_text(const yaml_node_t *n);
int spk_is_scalar(const yaml_node_t *n);
int spk_is_plain(const yaml_node_t *n);
int spk_is_null(const yaml_node_t *n);
int spk_parse_double(const char *s, double *out);
int spk_parse_bool(const char *s, int *out);
int spk_node_num(const yaml_node_t *n, double *out);
int spk_node_ll(const yaml_node_t *n, long long *out);
int spk_node_bool(const yaml_node_t *n, int *out);
/* What was found, for "got ...": the text of a scalar, or the kind of a collection. */
const char *spk_found(const yaml_node_t *n, char *buf, size_t size);
/* " in [lo, hi]", " >= lo", " > lo", ...; bounds at or beyond +-1e30 count as none. */
const char *spk_range(double lo, int lo_open, double hi, int hi_open, char *buf, size_t size);
int spk_in_range(double v, double lo, int lo_open, double hi, int hi_open);

/* ---- mappings ---- */

/* Checks that n is a mapping of scalar keys, each given once. */
int spk_ld_map(spk_ld *ld, yaml_node_t *n, const char *expected);
yaml_node_t *spk_ld_get(spk_ld *ld, yaml_node_t *map, const char *key);
yaml_node_t *spk_ld_key_node(spk_ld *ld, yaml_node_t *map, const char *key);
int spk_in_list(const char *const *list, const char *word);
/* Refuses keys outside `allowed` (NULL-terminated), suggesting the closest one. */
int spk_ld_keys(spk_ld *ld, yaml_node_t *map, const char *const *allowed);

/* ---- typed values with the standard message ---- */

int spk_ld_int(spk_ld *ld, yaml_node_t *n, const char *key, double lo, double hi, long long *out);
int spk_ld_float(spk_ld *ld, yaml_node_t *n, const char *key, double lo, int lo_open, double hi,
                 int hi_open, double *out);
int spk_ld_bool(spk_ld *ld, yaml_node_t *n, const char *key, int *out);
/* A word from "a|b|c"; the message lists them and suggests the closest. */
int spk_ld_choice(spk_ld *ld, yaml_node_t *n, const char *key, const char *choices, int *idx);
char *spk_join_path(const char *dir, const char *path);
/* A path, joined to ld->dir when relative; replaces *out. */
int spk_ld_path(spk_ld *ld, yaml_node_t *n, const char *key, char **out);
/* A list of exactly two numbers, e.g. [lo, hi]. */
int spk_node_pair(spk_ld *ld, yaml_node_t *n, double v[2], yaml_node_t *el[2]);

/* ---- declarative sections: a table of keys, each read into a field of a struct ---- */

typedef enum spk_field_type {
    SPK_FIELD_INT,    /* int, in [lo, hi] */
    SPK_FIELD_FLOAT,  /* float, in lo..hi (lo_open, hi_open: bound excluded) */
    SPK_FIELD_FLOAT2, /* two adjacent floats from a list [a, b], each in the bounds */
    SPK_FIELD_BOOL,   /* int, 0 or 1 */
    SPK_FIELD_CHOICE, /* int: the index of the word in `choices` */
    SPK_FIELD_CUSTOM, /* read by `read` (lists, nested mappings) */
} spk_field_type;

typedef struct spk_field {
    const char *key; /* NULL ends a table */
    spk_field_type type;
    size_t offset; /* of the field in the target struct (offsetof) */
    double lo, hi; /* bounds; +-1e30 and beyond: none */
    int lo_open, hi_open;
    const char *choices; /* CHOICE: "a|b|c" */
    double def, def2;    /* defaults (CHOICE: an index; FLOAT2: both); CUSTOM: none */
    int required;        /* absent: "missing required key" at the mapping */
    /* CUSTOM: reads the value into obj; other types: an optional check once the value is set */
    int (*read)(spk_ld *ld, yaml_node_t *n, void *obj);
} spk_field;

/* Table rows, one line per key: the key, the struct and its field, then what the type needs. */
/* clang-format off */
#define SPK_F_INT(key, T, f, lo, hi, def) \
    {key, SPK_FIELD_INT, offsetof(T, f), lo, hi, 0, 0, NULL, def, 0, 0, NULL}
#define SPK_F_FLOAT(key, T, f, lo, lo_open, hi, hi_open, def) \
    {key, SPK_FIELD_FLOAT, offsetof(T, f), lo, hi, lo_open, hi_open, NULL, def, 0, 0, NULL}
#define SPK_F_FLOAT2(key, T, f, lo, lo_open, hi, hi_open, def, def2) \
    {key, SPK_FIELD_FLOAT2, offsetof(T, f), lo, hi, lo_open, hi_open, NULL, def, def2, 0, NULL}
#define SPK_F_BOOL(key, T, f, def, check) \
    {key, SPK_FIELD_BOOL, offsetof(T, f), 0, 1, 0, 0, NULL, def, 0, 0, check}
#define SPK_F_CHOICE(key, T, f, choices, def) \
    {key, SPK_FIELD_CHOICE, offsetof(T, f), 0, 0, 0, 0, choices, def, 0, 0, NULL}
#define SPK_F_CUSTOM(key, required, read) \
    {key, SPK_FIELD_CUSTOM, 0, 0, 0, 0, 0, NULL, 0, 0, required, read}
#define SPK_F_END {NULL, SPK_FIELD_CUSTOM, 0, 0, 0, 0, 0, NULL, 0, 0, 0, NULL}
/* clang-format on */

/* Writes the table's defaults into obj (CUSTOM fields are left alone). */
void spk_fields_defaults(const spk_field *fields, void *obj);
/* Refuses keys of map that the table does not list, suggesting the closest. */
int spk_ld_fields_keys(spk_ld *ld, yaml_node_t *map, const spk_field *fields);
/* Reads the keys of the table that map holds, in table order, each with the standard message. */
int spk_ld_fields_read(spk_ld *ld, yaml_node_t *map, const spk_field *fields, void *obj);
/* A whole section: map must be a mapping (else "expected <expected>"), of the table's keys. */
int spk_ld_fields(spk_ld *ld, yaml_node_t *map, const char *expected, const spk_field *fields,
                  void *obj);

#endif
