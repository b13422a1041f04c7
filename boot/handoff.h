/*
 * What efi_main hands to kmain: everything the kernel keeps from the
 * firmware, in the kernel's own terms, so nothing after ExitBootServices
 * needs a UEFI header.
 */
#ifndef BOOT_HANDOFF_H
#define BOOT_HANDOFF_H

#include <stdint.h>

#define BOOT_MAX_RANGES 512
#define BOOT_CMDLINE_SIZE 256
#define BOOT_STACK_SIZE (64 * 1024)

enum memory_kind {
    MEMORY_USABLE = 1,   /* free for the page allocator */
    MEMORY_KERNEL,       /* the kernel image and its early block */
    MEMORY_FIRMWARE,     /* UEFI runtime code and data: never touched */
    MEMORY_ACPI_TABLES,  /* ACPI reclaimable: kept, the tables are read late */
    MEMORY_ACPI_NVS,
    MEMORY_RESERVED,     /* reserved, unusable, persistent, unaccepted */
    MEMORY_MMIO,
};

struct memory_range {
    uint64_t base;
    uint64_t pages;
    uint32_t kind;     /* enum memory_kind */
    uint32_t efi_type; /* the firmware's type, for `mem map` */
};

/* The image key (docs/security.md, The key): efi_main keeps it in the UEFI
 * variable IMAGE_KEY_VARIABLE_NAME of vendor IMAGE_KEY_VENDOR_GUID,
 * non-volatile and boot-service access only, as one 64-byte record,
 * little-endian: u32 magic "TKEY", u32 version, u8 chain[16], u64 counter,
 * u8 secret[32]. */
#define IMAGE_KEY_CHAIN_BYTES 16
#define IMAGE_KEY_SECRET_BYTES 32
#define IMAGE_KEY_RECORD_BYTES 64
#define IMAGE_KEY_RECORD_MAGIC 0x59454b54u /* "TKEY" */
#define IMAGE_KEY_RECORD_VERSION 1u
#define IMAGE_KEY_VARIABLE_NAME "TorporImageKey" /* UCS-2 in the variable store */
/* 115cb0dd-ec86-4d3d-bc3e-beae7afd1521 as EFI_GUID's bytes in memory */
#define IMAGE_KEY_VENDOR_GUID_BYTES                                            \
    { 0xdd, 0xb0, 0x5c, 0x11, 0x86, 0xec, 0x3d, 0x4d,                          \
      0xbc, 0x3e, 0xbe, 0xae, 0x7a, 0xfd, 0x15, 0x21 }

struct image_key {
    uint8_t chain[IMAGE_KEY_CHAIN_BYTES];   /* names the vars store's line of keys */
    uint64_t counter;                       /* 1 for a new chain, +1 per boot */
    uint8_t secret[IMAGE_KEY_SECRET_BYTES]; /* never printed, never on disk */
};

/* Where this boot's fresh secret came from. */
enum image_key_source {
    IMAGE_KEY_SOURCE_NONE = 0,     /* no entropy: no write key */
    IMAGE_KEY_SOURCE_RNG_PROTOCOL, /* EFI_RNG_PROTOCOL, default algorithm */
    IMAGE_KEY_SOURCE_RDRAND,       /* the CPU's RDRAND */
};

#define BOOT_IMAGE_KEY_RESUME 0x1u     /* `resume` holds the record read at boot */
#define BOOT_IMAGE_KEY_WRITE 0x2u      /* `write` holds the record set at boot */
#define BOOT_IMAGE_KEY_SET_FAILED 0x4u /* SetVariable (or the delete) failed */

struct boot_image_keys {
    uint32_t source;         /* enum image_key_source */
    uint32_t flags;          /* BOOT_IMAGE_KEY_* */
    uint32_t set_status;     /* low 32 bits of the failing EFI_STATUS, or 0 */
    uint32_t reserved;
    uint64_t random_tsc;     /* TSC ticks spent drawing the random bytes */
    uint64_t variable_tsc;   /* and reading, writing or deleting the variable */
    struct image_key resume; /* the key an image on the disk may carry */
    struct image_key write;  /* the key this boot's images are written with */
};

struct boot_handoff {
    uint64_t tsc_at_entry;      /* rdtsc at the top of efi_main */
    uint64_t image_base;
    uint64_t image_size;
    uint64_t acpi_rsdp;         /* physical address, 0 if none */
    void *efi_runtime_services; /* EFI_RUNTIME_SERVICES *, identity mapped */
    uint64_t early_base;        /* stack, then page-table pages */
    uint64_t early_pages;
    uint64_t stack_top;
    uint64_t page_table_base;   /* first page-table page in the early block */
    uint64_t page_table_pages;
    uint64_t identity_map_end;  /* map [0, this) at boot */
    uint32_t exit_boot_services_tries;
    uint32_t range_count;       /* sorted by base, non-overlapping */
    struct memory_range ranges[BOOT_MAX_RANGES];
    char cmdline[BOOT_CMDLINE_SIZE];
    struct boot_image_keys image_keys; /* pm/image_key.c takes and erases them */
};

const char *memory_kind_name(uint32_t kind);

/* The variable's record (boot/handoff.c, pure, host-tested). decode
 * returns 0, or -1 when the bytes are not a version-1 record. */
void image_key_encode(const struct image_key *key, uint8_t record[IMAGE_KEY_RECORD_BYTES]);
int image_key_decode(const uint8_t *record, uint64_t size, struct image_key *key);
const char *image_key_source_name(uint32_t source);

#endif
