/*
 * OVMF's variable store file, read on the host (tools/efi_vars.h). The
 * layout is edk2's (MdePkg PiFirmwareVolume.h, MdeModulePkg
 * Include/Guid/VariableFormat.h and AuthenticatedVariableFormat.h):
 * a firmware volume header (signature "_FVH" at 40, HeaderLength at 48),
 * then the variable store header (its signature GUID says whether the
 * variables carry the authenticated header, Size, Format 0x5A, State 0xFE),
 * then variables, each 4-byte aligned: StartId 0x55AA, State, ..., NameSize,
 * DataSize, VendorGuid, the UCS-2 name and the data.
 */
#include "tools/efi_vars.h"

#include <errno.h>  // errno
#include <stdarg.h> // va_list
#include <stdio.h>  // FILE, fopen, vsnprintf
#include <stdlib.h> // malloc, free
#include <string.h> // memcmp, strlen, strerror

#include "crypto/secret.h" // secret_erase

#define FV_SIGNATURE 0x4856465fu /* "_FVH" */
#define FV_HEADER_MIN 56         /* through the first block map entry's start */
#define STORE_HEADER_BYTES 28
#define STORE_FORMATTED 0x5a
#define STORE_HEALTHY 0xfe
#define VAR_START_ID 0x55aa
#define VAR_ADDED 0x3f
#define VAR_ADDED_IN_DELETED_TRANSITION (0x3f & 0xfe)
#define AUTH_HEADER_BYTES 60   /* StartId..VendorGuid with MonotonicCount, TimeStamp, PubKeyIndex */
#define PLAIN_HEADER_BYTES 32
#define EFI_VARIABLE_NV 0x1u /* UEFI 2.10, 8.2: NON_VOLATILE */
#define EFI_VARIABLE_BS 0x2u /* BOOTSERVICE_ACCESS */
#define VARS_FILE_MAX (64u << 20) /* OVMF's are 128 KiB to 4 MiB */

/* gEfiAuthenticatedVariableGuid aaf32c78-947b-439a-a180-2e144ec37792 */
static const uint8_t auth_store_guid[16] = { 0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
                                             0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92 };
/* gEfiVariableGuid ddcf3616-3275-4164-98b6-fe85707ffe7d */
static const uint8_t plain_store_guid[16] = { 0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41,
                                              0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d };

static uint64_t get16(const uint8_t *p) { return (uint64_t)p[0] | (uint64_t)p[1] << 8; }

static uint64_t get32(const uint8_t *p) { return get16(p) | get16(p + 2) << 16; }

static uint64_t get64(const uint8_t *p) { return get32(p) | get32(p + 4) << 32; }

static int bad(char *error, size_t error_size, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    if (error && error_size)
        vsnprintf(error, error_size, format, args);
    va_end(args);
    return EFI_VARS_BAD;
}

static int name_is(const uint8_t *ucs2, uint64_t bytes, const char *name)
{
    uint64_t length = strlen(name);

    if (bytes != 2 * (length + 1))
        return 0;
    for (uint64_t i = 0; i <= length; i++)
        if (get16(ucs2 + 2 * i) != (uint64_t)(uint8_t)name[i])
            return 0;
    return 1;
}

int efi_vars_find(const uint8_t *store, uint64_t size, const char *name, const uint8_t guid[16],
                  struct efi_var *out, char *error, size_t error_size)
{
    if (size < FV_HEADER_MIN || get32(store + 40) != FV_SIGNATURE)
        return bad(error, error_size, "not a firmware volume (no _FVH signature)");
    uint64_t fv_length = get64(store + 32), header_length = get16(store + 48);
    if (fv_length > size || header_length < FV_HEADER_MIN || header_length + STORE_HEADER_BYTES > fv_length)
        return bad(error, error_size, "the firmware volume header's lengths do not fit the file");

    const uint8_t *vs = store + header_length;
    uint64_t header_bytes;
    if (!memcmp(vs, auth_store_guid, 16))
        header_bytes = AUTH_HEADER_BYTES;
    else if (!memcmp(vs, plain_store_guid, 16))
        header_bytes = PLAIN_HEADER_BYTES;
    else
        return bad(error, error_size, "no variable store after the firmware volume header");
    uint64_t end = header_length + get32(vs + 16);
    if (end > fv_length || get32(vs + 16) < STORE_HEADER_BYTES)
        return bad(error, error_size, "the variable store's size runs past the volume");
    if (vs[20] != STORE_FORMATTED || vs[21] != STORE_HEALTHY)
        return bad(error, error_size, "the variable store is not formatted and healthy");

    int found = 0, found_state = 0;
    uint64_t offset = (header_length + STORE_HEADER_BYTES + 3) & ~3ull;
    /* the variables end at the first header without StartId (erased flash) */
    while (offset + header_bytes <= end && get16(store + offset) == VAR_START_ID) {
        const uint8_t *v = store + offset;
        uint64_t name_size = get32(v + header_bytes - 24), data_size = get32(v + header_bytes - 20);
        uint64_t name_at = offset + header_bytes;
        if (name_size > end - name_at || data_size > end - name_at - name_size)
            return bad(error, error_size, "a variable at offset %llu runs past the store",
                       (unsigned long long)offset);
        int state = v[2];
        if ((state == VAR_ADDED || (state == VAR_ADDED_IN_DELETED_TRANSITION && found_state != VAR_ADDED)) &&
            !memcmp(v + header_bytes - 16, guid, 16) && name_is(store + name_at, name_size, name)) {
            out->attributes = (uint32_t)get32(v + 4);
            out->data = store + name_at + name_size;
            out->data_size = data_size;
            found = 1;
            found_state = state;
        }
        offset = (name_at + name_size + data_size + 3) & ~3ull;
    }
    return found ? EFI_VARS_FOUND : EFI_VARS_ABSENT;
}

static uint8_t *read_file(const char *path, uint64_t *size, char *error, size_t error_size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *bytes = 0;
    long length;

    if (!f) {
        bad(error, error_size, "%s: %s", path, strerror(errno));
        return 0;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (length = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        bad(error, error_size, "%s: cannot find its size", path);
    } else if ((uint64_t)length > VARS_FILE_MAX) {
        bad(error, error_size, "%s: %ld bytes, too large for a variable store", path, length);
    } else if (!(bytes = malloc(length ? (size_t)length : 1))) {
        bad(error, error_size, "%s: out of memory", path);
    } else if (fread(bytes, 1, (size_t)length, f) != (size_t)length) {
        bad(error, error_size, "%s: read error", path);
        free(bytes);
        bytes = 0;
    }
    fclose(f);
    *size = bytes ? (uint64_t)length : 0;
    return bytes;
}

int efi_vars_image_key(const char *path, struct image_key *out, char *error, size_t error_size)
{
    static const uint8_t vendor[16] = IMAGE_KEY_VENDOR_GUID_BYTES;
    char reason[160] = "";
    struct efi_var var;
    uint64_t size;
    uint8_t *store = read_file(path, &size, error, error_size);
    int result;

    if (!store)
        return EFI_VARS_BAD;
    result = efi_vars_find(store, size, IMAGE_KEY_VARIABLE_NAME, vendor, &var, reason, sizeof(reason));
    if (result == EFI_VARS_BAD)
        bad(error, error_size, "%s: %s", path, reason);
    else if (result == EFI_VARS_ABSENT)
        bad(error, error_size, "%s: no %s variable (no boot has set a key, or the last one had no entropy)",
            path, IMAGE_KEY_VARIABLE_NAME);
    else if (var.attributes != (EFI_VARIABLE_NV | EFI_VARIABLE_BS))
        /* efi_main trusts no other attributes: one with runtime access
         * could have been written by an operating system */
        result = bad(error, error_size, "%s: the %s variable has attributes 0x%x, not 0x%x", path,
                     IMAGE_KEY_VARIABLE_NAME, var.attributes, EFI_VARIABLE_NV | EFI_VARIABLE_BS);
    else if (image_key_decode(var.data, var.data_size, out) != 0)
        result = bad(error, error_size, "%s: the %s variable holds no version-%u key record", path,
                     IMAGE_KEY_VARIABLE_NAME, IMAGE_KEY_RECORD_VERSION);
    secret_erase(store, size);
    free(store);
    return result;
}
