/* Plugins as shared libraries: dlopen, find spk_plugin_init, let it register its layer types.
 * Libraries are never closed: every registered type and its kernels point into one. */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plugin_load.h"
#include "registry.h"
#include "spikecl/spikecl.h"

typedef struct spk_loaded_plugin {
    dev_t dev; /* the file's identity: a second path to it (symlink, "..") is the same plugin */
    ino_t ino;
    char *path;   /* canonical, as the registry lists it */
    void *handle; /* kept open for the life of the process */
} spk_loaded_plugin;

static spk_loaded_plugin *spk_loaded;
static int spk_n_loaded, spk_cap_loaded;

static int spk_plugin_known(const struct stat *st)
{
    for (int i = 0; i < spk_n_loaded; i++)
        if (spk_loaded[i].dev == st->st_dev && spk_loaded[i].ino == st->st_ino)
            return 1;
    return 0;
}

/* dlerror() usually starts with the path we already print; keep only what follows. */
static const char *spk_dl_reason(const char *path, const char *canon)
{
    const char *e = dlerror();
    if (!e)
        return "unknown dlopen error";
    const char *names[2] = {canon, path};
    for (int i = 0; i < 2; i++) {
        size_t n = names[i] ? strlen(names[i]) : 0;
        if (n && strncmp(e, names[i], n) == 0 && e[n] == ':' && e[n + 1] == ' ')
            return e + n + 2;
    }
    return e;
}

#if UINTPTR_MAX > 0xffffffffu
#define SPK_ELF_CLASS ELFCLASS64
typedef Elf64_Ehdr spk_ehdr;
typedef Elf64_Phdr spk_phdr;
#else
#define SPK_ELF_CLASS ELFCLASS32
typedef Elf32_Ehdr spk_ehdr;
typedef Elf32_Phdr spk_phdr;
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SPK_ELF_DATA ELFDATA2MSB
#else
#define SPK_ELF_DATA ELFDATA2LSB
#endif

/* dlopen maps every loadable segment; a page of one past the end of a truncated file raises
 * SIGBUS when the loader touches it. So before dlopen: an ELF shared object of this machine's
 * class and byte order, whose program headers and PT_LOAD segments lie inside the file. */
static int spk_elf_check(const char *path, spk_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return spk_error_set(err, SPK_ERR_PLUGIN, "%s: cannot open: %s", path, strerror(errno));
    int rc = SPK_OK;
    struct stat st;
    spk_ehdr eh;
    const char *why = NULL;
    uint64_t size = 0;
    if (fstat(fileno(f), &st) != 0) {
        rc = spk_error_set(err, SPK_ERR_PLUGIN, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    size = (uint64_t)st.st_size;
    if (size < sizeof eh || fread(&eh, sizeof eh, 1, f) != 1)
        why = "shorter than an ELF header (empty or truncated)";
    else if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        why = "no ELF magic number";
    else if (eh.e_ident[EI_CLASS] != SPK_ELF_CLASS)
        why = "built for another word size (32/64-bit)";
    else if (eh.e_ident[EI_DATA] != SPK_ELF_DATA)
        why = "built for another byte order";
    else if (eh.e_type != ET_DYN)
        why = "not a shared library (ELF type is not ET_DYN)";
    else if (eh.e_phentsize != sizeof(spk_phdr) || eh.e_phnum == 0 || (uint64_t)eh.e_phoff > size ||
             (uint64_t)eh.e_phnum * sizeof(spk_phdr) > size - (uint64_t)eh.e_phoff)
        why = "its program headers lie outside the file (truncated?)";
    if (why)
        goto out;
    if (fseeko(f, (off_t)eh.e_phoff, SEEK_SET) != 0) {
        why = "cannot seek to its program headers";
        goto out;
    }
    for (int i = 0; i < eh.e_phnum; i++) {
        spk_phdr ph;
        if (fread(&ph, sizeof ph, 1, f) != 1) {
            why = "cannot read its program headers";
            break;
        }
        if (ph.p_type == PT_LOAD && ((uint64_t)ph.p_offset > size ||
                                     (uint64_t)ph.p_filesz > size - (uint64_t)ph.p_offset)) {
            rc = spk_error_set(err, SPK_ERR_PLUGIN,
                               "%s: not a loadable library: segment %d (PT_LOAD) ends at byte "
                               "%llu but the file has %llu bytes (truncated?)",
                               path, i,
                               (unsigned long long)((uint64_t)ph.p_offset + (uint64_t)ph.p_filesz),
                               (unsigned long long)size);
            break;
        }
    }
out:
    if (why)
        rc = spk_error_set(err, SPK_ERR_PLUGIN, "%s: not a loadable library: %s", path, why);
    fclose(f);
    return rc;
}

int spk_plugin_load(const char *path, spk_error *err)
{
    if (!path || !*path)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_plugin_load: no path given");
    struct stat st;
    if (stat(path, &st) != 0)
        return spk_error_set(err, errno == ENOENT ? SPK_ERR_NOTFOUND : SPK_ERR_PLUGIN,
                             "%s: cannot load plugin: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return spk_error_set(err, SPK_ERR_PLUGIN,
                             "%s: is a folder, not a plugin library; name the .so file, or list "
                             "the folder in SPIKECL_PLUGIN_PATH",
                             path);
    if (spk_plugin_known(&st))
        return SPK_OK;
    /* room for the record first, so nothing can fail after the plugin's init succeeded */
    if (spk_n_loaded == spk_cap_loaded) {
        int cap = spk_cap_loaded ? spk_cap_loaded * 2 : 8;
        spk_loaded_plugin *p = realloc(spk_loaded, (size_t)cap * sizeof *p);
        if (!p)
            return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", path);
        spk_loaded = p;
        spk_cap_loaded = cap;
    }
    char *canon = realpath(path, NULL);
    if (!canon)
        return spk_error_set(err, errno == ENOMEM ? SPK_ERR_NOMEM : SPK_ERR_PLUGIN,
                             "%s: cannot resolve the path: %s", path, strerror(errno));

    int erc = spk_elf_check(canon, err);
    if (erc) {
        free(canon);
        return erc;
    }
    dlerror();
    void *h = dlopen(canon, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        int rc = spk_error_set(err, SPK_ERR_PLUGIN, "%s: not a loadable library: %s", canon,
                               spk_dl_reason(path, canon));
        free(canon);
        return rc;
    }
    dlerror();
    void *sym = dlsym(h, SPK_PLUGIN_ENTRY);
    if (!sym) {
        int rc = spk_error_set(err, SPK_ERR_PLUGIN,
                               "%s: no symbol %s; is it a spikecl plugin? (it must export "
                               "int %s(const spk_host_api *, spk_registry *, spk_error *))",
                               canon, SPK_PLUGIN_ENTRY, SPK_PLUGIN_ENTRY);
        /* nothing of it ran yet: closing is safe */
        dlclose(h);
        free(canon);
        return rc;
    }
    /* ISO C has no cast from an object pointer to a function pointer; POSIX guarantees the
     * representation, so copy the bits */
    spk_plugin_init_fn init;
    memcpy(&init, &sym, sizeof init);

    spk_registry *reg = spk_registry_default();
    int n0 = spk_registry_count(reg);
    spk_error ierr;
    spk_error_clear(&ierr);
    spk_registry_set_loading(canon);
    int rc = init(spk_host_api_get(), reg, &ierr);
    spk_registry_set_loading(NULL);
    if (rc != SPK_OK) {
        /* Take back what it registered; keep the library mapped anyway, since its init ran and
         * may have left pointers into it behind (atexit handlers, threads). */
        spk_registry_truncate(reg, n0);
        int code = rc == SPK_ERR_NOMEM ? SPK_ERR_NOMEM : SPK_ERR_PLUGIN;
        size_t cl = strlen(canon);
        if (!ierr.msg[0])
            spk_error_set(err, code, "%s: %s failed with status %d (%s) and no message", canon,
                          SPK_PLUGIN_ENTRY, rc, spk_status_str(rc));
        else if (strncmp(ierr.msg, canon, cl) == 0) /* the registry's messages name it already */
            spk_error_set(err, code, "%s", ierr.msg);
        else
            spk_error_set(err, code, "%s: %s failed: %s", canon, SPK_PLUGIN_ENTRY, ierr.msg);
        free(canon);
        return code;
    }
    spk_loaded[spk_n_loaded].dev = st.st_dev;
    spk_loaded[spk_n_loaded].ino = st.st_ino;
    spk_loaded[spk_n_loaded].path = canon;
    spk_loaded[spk_n_loaded].handle = h;
    spk_n_loaded++;
    return SPK_OK;
}

/* ---- SPIKECL_PLUGIN_PATH ---- */

typedef struct spk_env_load {
    spk_error first; /* the first failure, reported at the end */
    int failures;
} spk_env_load;

static void spk_env_note(spk_env_load *s, int rc, const spk_error *e)
{
    if (rc == SPK_OK)
        return;
    if (s->failures++ == 0)
        s->first = *e;
}

static int spk_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int spk_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Loads the folder's *.so files in name order, so that a clash between two plugins always
 * resolves the same way. */
static void spk_env_load_dir(spk_env_load *s, const char *dir)
{
    spk_error e;
    DIR *d = opendir(dir);
    if (!d) {
        spk_env_note(s,
                     spk_error_set(&e, SPK_ERR_PLUGIN, "%s: cannot read the folder: %s", dir,
                                   strerror(errno)),
                     &e);
        return;
    }
    char **names = NULL;
    int n = 0, cap = 0, rc = SPK_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!spk_ends_with(de->d_name, ".so"))
            continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            char **p = realloc(names, (size_t)nc * sizeof *p);
            if (!p) {
                rc = SPK_ERR_NOMEM;
                break;
            }
            names = p;
            cap = nc;
        }
        size_t len = strlen(dir) + 1 + strlen(de->d_name) + 1;
        if (!(names[n] = malloc(len))) {
            rc = SPK_ERR_NOMEM;
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    if (rc)
        spk_env_note(s, spk_error_set(&e, rc, "%s: out of memory", dir), &e);
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, spk_cmp_names);
    for (int i = 0; i < n; i++) {
        struct stat st;
        /* a folder or a fifo named x.so is not ours to complain about */
        if (!rc && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            spk_env_note(s, spk_plugin_load(names[i], &e), &e);
        free(names[i]);
    }
    free(names);
}

int spk_plugin_load_path_env(spk_error *err)
{
    const char *env = getenv("SPIKECL_PLUGIN_PATH");
    if (!env || !*env)
        return SPK_OK;
    char *list = malloc(strlen(env) + 1);
    if (!list)
        return spk_error_set(err, SPK_ERR_NOMEM, "SPIKECL_PLUGIN_PATH: out of memory");
    strcpy(list, env);
    spk_env_load s;
    memset(&s, 0, sizeof s);
    char *p = list;
    for (;;) {
        char *colon = strchr(p, ':');
        if (colon)
            *colon = '\0';
        if (*p) { /* "a::b" and a trailing ':' name nothing */
            struct stat st;
            spk_error e;
            if (stat(p, &st) != 0) {
                int code = errno == ENOENT ? SPK_ERR_NOTFOUND : SPK_ERR_PLUGIN;
                spk_env_note(
                    &s,
                    spk_error_set(&e, code, "%s: %s", p,
                                  errno == ENOENT ? "no such file or folder" : strerror(errno)),
                    &e);
            } else if (S_ISDIR(st.st_mode)) {
                spk_env_load_dir(&s, p);
            } else {
                spk_env_note(&s, spk_plugin_load(p, &e), &e);
            }
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    free(list);
    if (!s.failures)
        return SPK_OK;
    if (s.failures > 1)
        return spk_error_set(err, s.first.code,
                             "SPIKECL_PLUGIN_PATH: %s (and %d more failing "
                             "plugin%s)",
                             s.first.msg, s.failures - 1, s.failures > 2 ? "s" : "");
    return spk_error_set(err, s.first.code, "SPIKECL_PLUGIN_PATH: %s", s.first.msg);
}

static int spk_env_done;
static spk_error spk_env_result;

int spk_plugin_load_path_env_once(spk_error *err)
{
    if (!spk_env_done) {
        spk_env_done = 1;
        spk_error_clear(&spk_env_result);
        spk_plugin_load_path_env(&spk_env_result);
    }
    if (spk_env_result.code == SPK_OK)
        return SPK_OK;
    if (err)
        *err = spk_env_result;
    return spk_env_result.code;
}
