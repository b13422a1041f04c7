/*
 * The UEFI side of torpor: collect what the kernel needs from the firmware
 * (memory map, ACPI RSDP, the loaded image, load options, the image key),
 * reserve the early block (kernel stack and boot page tables), exit boot
 * services and jump to kmain on the new stack. Nothing here runs after kmain starts.
 */
#include <efi.h>
#include <efilib.h> // LoadedImageProtocol

#include "boot/efi_image_key.h" // efi_image_key_setup
#include "boot/handoff.h"
#include "init/kmain.h" // kmain
#include "mm/page.h"    // PAGE_SIZE

/* The firmware's map and our handoff live in the image, not in firmware
 * allocations, so they survive ExitBootServices where we put them. */
static uint8_t efi_memory_map[48 * 1024] __attribute__((aligned(16)));
static struct boot_handoff handoff;

static const EFI_GUID acpi20_guid = ACPI_20_TABLE_GUID;
static const EFI_GUID acpi10_guid = ACPI_TABLE_GUID;

static inline uint64_t read_tsc(void)
{
    uint32_t low, high;

    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return ((uint64_t)high << 32) | low;
}

static void fail(EFI_SYSTEM_TABLE *system, CHAR16 *message)
{
    system->ConOut->OutputString(system->ConOut, L"torpor: ");
    system->ConOut->OutputString(system->ConOut, message);
    system->ConOut->OutputString(system->ConOut, L"\r\n");
}

static int guid_equal(const EFI_GUID *a, const EFI_GUID *b)
{
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;

    for (unsigned i = 0; i < sizeof(EFI_GUID); i++)
        if (x[i] != y[i])
            return 0;
    return 1;
}

static uint64_t find_rsdp(EFI_SYSTEM_TABLE *system)
{
    uint64_t acpi10 = 0;

    for (UINTN i = 0; i < system->NumberOfTableEntries; i++) {
        EFI_CONFIGURATION_TABLE *table = &system->ConfigurationTable[i];
        if (guid_equal(&table->VendorGuid, &acpi20_guid))
            return (uint64_t)(uintptr_t)table->VendorTable;
        if (guid_equal(&table->VendorGuid, &acpi10_guid))
            acpi10 = (uint64_t)(uintptr_t)table->VendorTable;
    }
    return acpi10;
}

/* Load options are UCS-2; the kernel keeps the ASCII part. */
static void copy_load_options(const EFI_LOADED_IMAGE *image)
{
    const CHAR16 *text = image->LoadOptions;
    UINTN count = image->LoadOptionsSize / sizeof(CHAR16);
    UINTN out = 0;

    for (UINTN i = 0; text && i < count && out + 1 < BOOT_CMDLINE_SIZE; i++) {
        if (text[i] == 0)
            break;
        handoff.cmdline[out++] = text[i] < 0x80 ? (char)text[i] : '?';
    }
    handoff.cmdline[out] = 0;
}

static uint32_t memory_kind_of(UINT32 efi_type)
{
    switch (efi_type) {
    case EfiLoaderCode:
    case EfiLoaderData:
    case EfiBootServicesCode:
    case EfiBootServicesData:
    case EfiConventionalMemory:
        return MEMORY_USABLE;
    case EfiRuntimeServicesCode:
    case EfiRuntimeServicesData:
        return MEMORY_FIRMWARE;
    case EfiACPIReclaimMemory:
        return MEMORY_ACPI_TABLES;
    case EfiACPIMemoryNVS:
        return MEMORY_ACPI_NVS;
    case EfiMemoryMappedIO:
    case EfiMemoryMappedIOPortSpace:
        return MEMORY_MMIO;
    default:
        return MEMORY_RESERVED;
    }
}

static void add_range(uint64_t base, uint64_t pages, uint32_t kind, uint32_t efi_type)
{
    if (pages == 0)
        return;
    struct memory_range *last = handoff.range_count ? &handoff.ranges[handoff.range_count - 1] : 0;
    if (last && last->kind == kind && last->efi_type == efi_type &&
        last->base + last->pages * PAGE_SIZE == base) {
        last->pages += pages;
        return;
    }
    if (handoff.range_count == BOOT_MAX_RANGES)
        return; /* the kernel reports the truncation from range_count */
    handoff.ranges[handoff.range_count++] = (struct memory_range){ base, pages, kind, efi_type };
}

/* Adds a usable descriptor, cutting out the parts the kernel occupies. */
static void add_usable_range(uint64_t base, uint64_t pages, uint32_t efi_type)
{
    const uint64_t kernel[2][2] = {
        { handoff.image_base, handoff.image_base + handoff.image_size },
        { handoff.early_base, handoff.early_base + handoff.early_pages * PAGE_SIZE },
    };
    uint64_t end = base + pages * PAGE_SIZE;

    while (base < end) {
        uint64_t next = end;
        int inside = -1;
        for (int k = 0; k < 2; k++) {
            uint64_t start = kernel[k][0] & ~(PAGE_SIZE - 1);
            uint64_t stop = (kernel[k][1] + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
            if (base >= start && base < stop) {
                inside = k;
                next = stop < end ? stop : end;
                break;
            }
            if (start > base && start < next)
                next = start;
        }
        add_range(base, (next - base) / PAGE_SIZE,
                  inside >= 0 ? MEMORY_KERNEL : MEMORY_USABLE, efi_type);
        base = next;
    }
}

static void sort_descriptors(UINTN map_size, UINTN descriptor_size)
{
    UINTN count = map_size / descriptor_size;

    /* insertion sort: the map is short and nearly sorted */
    for (UINTN i = 1; i < count; i++) {
        for (UINTN j = i; j > 0; j--) {
            EFI_MEMORY_DESCRIPTOR *a = (void *)(efi_memory_map + (j - 1) * descriptor_size);
            EFI_MEMORY_DESCRIPTOR *b = (void *)(efi_memory_map + j * descriptor_size);
            if (a->PhysicalStart <= b->PhysicalStart)
                break;
            EFI_MEMORY_DESCRIPTOR tmp = *a;
            *a = *b;
            *b = tmp;
        }
    }
}

static void translate_memory_map(UINTN map_size, UINTN descriptor_size)
{
    sort_descriptors(map_size, descriptor_size);
    for (UINTN offset = 0; offset + descriptor_size <= map_size; offset += descriptor_size) {
        EFI_MEMORY_DESCRIPTOR *d = (void *)(efi_memory_map + offset);
        uint32_t kind = memory_kind_of(d->Type);
        if (kind == MEMORY_USABLE)
            add_usable_range(d->PhysicalStart, d->NumberOfPages, d->Type);
        else
            add_range(d->PhysicalStart, d->NumberOfPages, kind, d->Type);
    }
}

/* Page tables for an identity map of [0, end) with 2 MiB pages, plus one
 * 4 KiB table so that page 0 stays unmapped (null pointers fault). */
static uint64_t page_table_pages_for(uint64_t end)
{
    uint64_t gib = (end + (1ull << 30) - 1) >> 30;
    uint64_t pdpts = (gib + 511) / 512;

    return 1 + pdpts + gib + 1;
}

static EFI_STATUS read_memory_map(EFI_BOOT_SERVICES *boot, UINTN *map_size, UINTN *key,
                                  UINTN *descriptor_size)
{
    UINT32 version;

    *map_size = sizeof(efi_memory_map);
    return boot->GetMemoryMap(map_size, (EFI_MEMORY_DESCRIPTOR *)efi_memory_map, key,
                              descriptor_size, &version);
}

EFI_STATUS efi_main(EFI_HANDLE image_handle, EFI_SYSTEM_TABLE *system)
{
    EFI_BOOT_SERVICES *boot = system->BootServices;
    EFI_LOADED_IMAGE *image = 0;
    UINTN map_size, key, descriptor_size;
    EFI_STATUS status;

    handoff.tsc_at_entry = read_tsc();

    status = boot->HandleProtocol(image_handle, &LoadedImageProtocol, (void **)&image);
    if (EFI_ERROR(status)) {
        fail(system, L"no loaded image protocol");
        return status;
    }
    handoff.image_base = (uint64_t)(uintptr_t)image->ImageBase;
    handoff.image_size = image->ImageSize;
    copy_load_options(image);
    handoff.acpi_rsdp = find_rsdp(system);
    handoff.efi_runtime_services = system->RuntimeServices;
    /* the key's variable is boot-service access only: now or never */
    efi_image_key_setup(system, &handoff.image_keys);

    /* size the identity map from the highest address the map mentions */
    status = read_memory_map(boot, &map_size, &key, &descriptor_size);
    if (EFI_ERROR(status)) {
        fail(system, L"GetMemoryMap failed");
        return status;
    }
    uint64_t top = 4ull << 30;
    for (UINTN offset = 0; offset + descriptor_size <= map_size; offset += descriptor_size) {
        EFI_MEMORY_DESCRIPTOR *d = (void *)(efi_memory_map + offset);
        uint64_t end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
        if (end > top)
            top = end;
    }
    handoff.identity_map_end = (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);
    handoff.page_table_pages = page_table_pages_for(handoff.identity_map_end);
    handoff.early_pages = BOOT_STACK_SIZE / PAGE_SIZE + handoff.page_table_pages;

    EFI_PHYSICAL_ADDRESS early = 0;
    status = boot->AllocatePages(AllocateAnyPages, EfiLoaderData, handoff.early_pages, &early);
    if (EFI_ERROR(status)) {
        fail(system, L"cannot allocate the early block");
        return status;
    }
    handoff.early_base = early;
    handoff.stack_top = early + BOOT_STACK_SIZE;
    handoff.page_table_base = handoff.stack_top;

    /* ExitBootServices fails with EFI_INVALID_PARAMETER when the map changed
     * since we read it (UEFI 2.10 section 7.4): read it again and retry. */
    for (handoff.exit_boot_services_tries = 1;; handoff.exit_boot_services_tries++) {
        status = read_memory_map(boot, &map_size, &key, &descriptor_size);
        if (!EFI_ERROR(status))
            status = boot->ExitBootServices(image_handle, key);
        if (!EFI_ERROR(status))
            break;
        if (handoff.exit_boot_services_tries == 16) {
            fail(system, L"ExitBootServices keeps failing");
            return status;
        }
    }

    /* From here on the machine is ours: no firmware call but runtime ones. */
    __asm__ volatile("cli");
    translate_memory_map(map_size, descriptor_size);
    __asm__ volatile("mov %0, %%rsp\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "call kmain\n\t"
                     "ud2"
                     :
                     : "r"(handoff.stack_top), "D"(&handoff)
                     : "memory");
    __builtin_unreachable();
}

const char *memory_kind_name(uint32_t kind)
{
    switch (kind) {
    case MEMORY_USABLE: return "usable";
    case MEMORY_KERNEL: return "kernel";
    case MEMORY_FIRMWARE: return "firmware";
    case MEMORY_ACPI_TABLES: return "acpi";
    case MEMORY_ACPI_NVS: return "acpi-nvs";
    case MEMORY_MMIO: return "mmio";
    default: return "reserved";
    }
}
