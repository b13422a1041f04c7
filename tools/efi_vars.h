/*
 * A reader of OVMF's variable store file (the pflash vars image), for the
 * host tools: the newest live copy of one variable, and the image key's
 * record in it (boot/handoff.h). The file is untrusted input: every offset
 * and length is checked against it.
 */
#ifndef TOOLS_EFI_VARS_H
#define TOOLS_EFI_VARS_H

#include <stddef.h>
#include <stdint.h>

#include "boot/handoff.h" // struct image_key

/* what efi_vars_find and efi_vars_image_key return */
enum { EFI_VARS_FOUND = 0, EFI_VARS_ABSENT = 1, EFI_VARS_BAD = -1 };

struct efi_var {
    uint32_t attributes;
    const uint8_t *data; /* inside the store passed in */
    uint64_t data_size;
};

/* Looks for the variable `name` (ASCII, stored as UCS-2) of vendor `guid`
 * (EFI_GUID's 16 bytes as in memory) in the store's bytes: the last copy in
 * the store whose State is VAR_ADDED (else one in deleted transition, as
 * edk2's own lookup does). EFI_VARS_BAD with a sentence in error when the
 * bytes are not a variable store edk2 would read. */
int efi_vars_find(const uint8_t *store, uint64_t size, const char *name, const uint8_t guid[16],
                  struct efi_var *out, char *error, size_t error_size);

/* The image key in the vars file at path (TorporImageKey, IMAGE_KEY_VENDOR_GUID):
 * EFI_VARS_FOUND with *out filled, EFI_VARS_ABSENT, or EFI_VARS_BAD with a
 * sentence in error (unreadable file, not a store, a record that is not one). */
int efi_vars_image_key(const char *path, struct image_key *out, char *error, size_t error_size);

#endif
