/*
 * The image key's firmware half (docs/security.md, The key). Each boot
 * reads the record of the image it may resume, then sets a fresh one for
 * the image it may write: the same chain, the counter plus one, a new
 * secret. Without entropy it deletes the variable instead, so no older
 * image can be resumed by replay. The secrets go to the handoff only; every
 * copy on this (firmware-owned) stack is erased before returning.
 */
#include "boot/efi_image_key.h"

#include "crypto/secret.h" // secret_erase

#define RDRAND_RETRIES 10 /* Intel DRNG guide, 5.2.1: retry up to 10 times */
#define CPUID_1_ECX_RDRAND (1u << 30)

static EFI_GUID rng_protocol_guid = EFI_RNG_PROTOCOL_GUID;
static EFI_GUID key_vendor = { 0x115cb0dd, 0xec86, 0x4d3d, { 0xbc, 0x3e, 0xbe, 0xae, 0x7a, 0xfd, 0x15, 0x21 } };
static CHAR16 key_name[] = L"" IMAGE_KEY_VARIABLE_NAME;

#define KEY_ATTRIBUTES (EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS)

static int cpu_has_rdrand(void)
{
    uint32_t eax = 1, ebx, ecx = 0, edx;

    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    return (ecx & CPUID_1_ECX_RDRAND) != 0;
}

/* CF=0 means the DRNG had no value ready: retry, then give up. */
static int rdrand64(uint64_t *value)
{
    for (int i = 0; i < RDRAND_RETRIES; i++) {
        uint8_t ok;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(*value), "=qm"(ok) : : "cc");
        if (ok)
            return 0;
    }
    return -1;
}

static int rdrand_fill(uint8_t *out, UINTN bytes)
{
    for (UINTN i = 0; i < bytes; i += 8) {
        uint64_t value;
        if (rdrand64(&value) != 0)
            return -1;
        for (UINTN k = 0; k < 8 && i + k < bytes; k++)
            out[i + k] = (uint8_t)(value >> (8 * k));
        secret_erase(&value, sizeof(value));
    }
    return 0;
}

static inline uint64_t read_tsc(void)
{
    uint32_t low, high;

    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return ((uint64_t)high << 32) | low;
}

/* Every random byte the boot needs (a new chain and a new secret), from
 * the first source that gives them, in the order: one request,
 * since each GetRNG is a round trip to the virtio-rng device (about a
 * millisecond under TCG). Returns the source, or none. */
static uint32_t draw_random(EFI_BOOT_SERVICES *boot, uint8_t *out, UINTN bytes)
{
    EFI_RNG_PROTOCOL *rng = 0;

    if (!EFI_ERROR(boot->LocateProtocol(&rng_protocol_guid, 0, (void **)&rng)) && rng &&
        !EFI_ERROR(rng->GetRNG(rng, 0, bytes, out))) /* NULL: the default algorithm */
        return IMAGE_KEY_SOURCE_RNG_PROTOCOL;
    if (cpu_has_rdrand() && rdrand_fill(out, bytes) == 0)
        return IMAGE_KEY_SOURCE_RDRAND;
    return IMAGE_KEY_SOURCE_NONE;
}

/* The record in the variable, if it is one of ours: 64 bytes, our magic
 * and version, and exactly our attributes (one with runtime access could
 * have been written by an operating system, UEFI 2.10 section 8.2). */
static int read_record(EFI_RUNTIME_SERVICES *runtime, struct image_key *key)
{
    uint8_t record[IMAGE_KEY_RECORD_BYTES];
    UINTN size = sizeof(record);
    UINT32 attributes = 0;
    int result = -1;

    if (!EFI_ERROR(runtime->GetVariable(key_name, &key_vendor, &attributes, &size, record)) &&
        attributes == KEY_ATTRIBUTES)
        result = image_key_decode(record, size, key);
    secret_erase(record, sizeof(record));
    return result;
}

static EFI_STATUS write_record(EFI_RUNTIME_SERVICES *runtime, const struct image_key *key)
{
    uint8_t record[IMAGE_KEY_RECORD_BYTES];
    EFI_STATUS status;

    image_key_encode(key, record);
    status = runtime->SetVariable(key_name, &key_vendor, KEY_ATTRIBUTES, sizeof(record), record);
    if (EFI_ERROR(status)) {
        /* a variable of ours with other attributes refuses the write
         * (EFI_INVALID_PARAMETER): delete it and try once more */
        runtime->SetVariable(key_name, &key_vendor, 0, 0, 0);
        status = runtime->SetVariable(key_name, &key_vendor, KEY_ATTRIBUTES, sizeof(record), record);
    }
    secret_erase(record, sizeof(record));
    return status;
}

/* Deleting a variable is SetVariable with DataSize 0 (UEFI 2.10, 8.2);
 * one that is already absent is fine. */
static EFI_STATUS delete_record(EFI_RUNTIME_SERVICES *runtime)
{
    EFI_STATUS status = runtime->SetVariable(key_name, &key_vendor, 0, 0, 0);

    return status == EFI_NOT_FOUND ? EFI_SUCCESS : status;
}

void efi_image_key_setup(EFI_SYSTEM_TABLE *system, struct boot_image_keys *keys)
{
    EFI_RUNTIME_SERVICES *runtime = system->RuntimeServices;
    uint8_t random[IMAGE_KEY_CHAIN_BYTES + IMAGE_KEY_SECRET_BYTES];
    EFI_STATUS status;

    uint64_t started = read_tsc();
    keys->source = draw_random(system->BootServices, random, sizeof(random));
    uint64_t drawn = read_tsc();
    keys->random_tsc = drawn - started;
    if (read_record(runtime, &keys->resume) == 0)
        keys->flags |= BOOT_IMAGE_KEY_RESUME;

    struct image_key *next = &keys->write;
    int fresh = keys->source != IMAGE_KEY_SOURCE_NONE;
    if (fresh && (keys->flags & BOOT_IMAGE_KEY_RESUME) && keys->resume.counter != UINT64_MAX) {
        for (int i = 0; i < IMAGE_KEY_CHAIN_BYTES; i++)
            next->chain[i] = keys->resume.chain[i];
        next->counter = keys->resume.counter + 1;
    } else if (fresh) {
        for (int i = 0; i < IMAGE_KEY_CHAIN_BYTES; i++)
            next->chain[i] = random[i];
        next->counter = 1;
    }
    for (int i = 0; fresh && i < IMAGE_KEY_SECRET_BYTES; i++)
        next->secret[i] = random[IMAGE_KEY_CHAIN_BYTES + i];
    secret_erase(random, sizeof(random));

    if (fresh) {
        status = write_record(runtime, next);
        if (!EFI_ERROR(status))
            keys->flags |= BOOT_IMAGE_KEY_WRITE;
    } else {
        keys->source = IMAGE_KEY_SOURCE_NONE; /* a source that failed half way is none */
        status = delete_record(runtime);
    }
    if (EFI_ERROR(status)) {
        keys->flags |= BOOT_IMAGE_KEY_SET_FAILED;
        keys->set_status = (uint32_t)status;
        delete_record(runtime); /* best effort: leave no record to replay against */
    }
    if (!(keys->flags & BOOT_IMAGE_KEY_WRITE))
        secret_erase(next, sizeof(*next));
    keys->variable_tsc = read_tsc() - drawn;
}
