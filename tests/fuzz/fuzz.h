/* spikecl fuzz harnesses: the libFuzzer entry point and a scratch file helper. The same harness
 * sources build two ways: with clang -fsanitize=fuzzer (scripts/fuzz.sh) and, for the ordinary
 * test suite, with replay.c as main, which runs every seed and regression input through them. */
#ifndef SPK_FUZZ_H
#define SPK_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes size bytes to <scratch dir>/<name> (the folder is made once per process, removed at
 * exit) and puts its path in path[n]; returns 0, or -1 on failure. The readers under test take
 * paths, so each input goes through a file. */
int spk_fuzz_file(const char *name, const uint8_t *data, size_t size, char *path, size_t n);

#endif
