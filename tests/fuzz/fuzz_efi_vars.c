/*
 * libFuzzer target for tools/efi_vars.c, the reader of OVMF's variable
 * store file (untrusted: a tool reads whatever file it is given).
 *
 * Input: the store's bytes. Per input: efi_vars_find for the image key's
 * variable and for another name; a variable found must lie inside the
 * input, and the key's record is decoded as `hibimg key` does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/handoff.h"
#include "tests/fuzz/fuzz_check.h"
#include "tools/efi_vars.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t vendor[16] = IMAGE_KEY_VENDOR_GUID_BYTES;
    /* a private copy of exactly `size` bytes, so ASan sees any read past it */
    uint8_t *store = malloc(size ? size : 1);
    struct efi_var var;
    struct image_key key;
    char error[64];

    memcpy(store, data, size);
    int result = efi_vars_find(store, size, IMAGE_KEY_VARIABLE_NAME, vendor, &var, error, sizeof(error));
    CHECK(result == EFI_VARS_FOUND || result == EFI_VARS_ABSENT || result == EFI_VARS_BAD);
    if (result == EFI_VARS_FOUND) {
        CHECK(var.data >= store && var.data_size <= size && var.data - store <= (ptrdiff_t)(size - var.data_size));
        if (image_key_decode(var.data, var.data_size, &key) == 0)
            CHECK(key.counter != 0);
    }
    if (result == EFI_VARS_BAD)
        CHECK(memchr(error, 0, sizeof(error)) != NULL && error[0] != 0);
    result = efi_vars_find(store, size, "Boot0000", vendor, &var, 0, 0);
    if (result == EFI_VARS_FOUND)
        CHECK(var.data >= store && var.data - store <= (ptrdiff_t)(size - var.data_size));
    free(store);
    return 0;
}
