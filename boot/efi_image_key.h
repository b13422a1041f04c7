/*
 * The image key's firmware half: entropy, and the key's UEFI variable read
 * and rotated before ExitBootServices (docs/security.md, The key).
 */
#ifndef BOOT_EFI_IMAGE_KEY_H
#define BOOT_EFI_IMAGE_KEY_H

#include <efi.h>

#include "boot/handoff.h" // struct boot_image_keys

/* Fills *keys: the source of entropy, the record the variable held (the
 * resume key) and the fresh one set in its place (the write key). Boot
 * services must still be up. Leaves no secret on the stack. */
void efi_image_key_setup(EFI_SYSTEM_TABLE *system, struct boot_image_keys *keys);

#endif
