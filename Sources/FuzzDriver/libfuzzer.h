// libFuzzer's driver, linked in by `-sanitize=fuzzer` (compiler-rt, LLVM 11 and later). Declared only: the
// `sigillo-fuzz` executable calls it when built for fuzzing (`make fuzz`), never in a normal build.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
