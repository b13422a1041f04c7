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
};

const char *memory_kind_name(uint32_t kind);

#endif
