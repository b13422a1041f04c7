/*
 * Minimal ACPI table reader (ACPI 6.4, chapter 5): RSDP -> XSDT (or RSDT)
 * -> FADT, MADT, MCFG, and the DSDT for the \_S4 and \_S5 packages. No AML
 * interpreter: the sleep packages are plain Name() objects in QEMU's DSDT.
 */
#include "acpi/acpi.h"

#include "console/log.h" // klog
#include "lib/string.h"  // memcmp

struct sdt_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} __attribute__((packed));

static struct acpi_info info;
static const struct sdt_header *root; /* XSDT or RSDT */
static int root_is_xsdt;

static uint8_t read8(const void *base, uint32_t offset) { return ((const uint8_t *)base)[offset]; }
static uint16_t read16(const void *base, uint32_t offset) { uint16_t v; memcpy(&v, (const uint8_t *)base + offset, 2); return v; }
static uint32_t read32(const void *base, uint32_t offset) { uint32_t v; memcpy(&v, (const uint8_t *)base + offset, 4); return v; }
static uint64_t read64(const void *base, uint32_t offset) { uint64_t v; memcpy(&v, (const uint8_t *)base + offset, 8); return v; }

static const struct sdt_header *valid_table(uint64_t address)
{
    const struct sdt_header *table = (const void *)(uintptr_t)address;

    if (!address || table->length < sizeof(*table) || table->length > (16u << 20) ||
        !acpi_checksum_ok(table, table->length))
        return 0;
    return table;
}

const void *acpi_find_table(const char signature[4])
{
    if (!root)
        return 0;
    unsigned entry_size = root_is_xsdt ? 8 : 4;
    unsigned count = (root->length - sizeof(*root)) / entry_size;
    for (unsigned i = 0; i < count; i++) {
        uint32_t offset = sizeof(*root) + i * entry_size;
        uint64_t address = root_is_xsdt ? read64(root, offset) : read32(root, offset);
        const struct sdt_header *table = valid_table(address);
        if (table && memcmp(table->signature, signature, 4) == 0)
            return table;
    }
    return 0;
}

static uint16_t gas_io_port(const void *fadt, uint32_t length, uint32_t offset)
{
    /* Generic Address Structure: space 1 is system I/O */
    if (offset + 12 > length || read8(fadt, offset) != 1)
        return 0;
    return (uint16_t)read64(fadt, offset + 4);
}

static void read_fadt(const struct sdt_header *fadt)
{
    uint32_t length = fadt->length;
    uint32_t flags = length >= 116 ? read32(fadt, 112) : 0;

    info.sci_irq = read16(fadt, 46);
    info.smi_command = read32(fadt, 48);
    info.acpi_enable_value = read8(fadt, 52);
    info.pm1a_event = (uint16_t)read32(fadt, 56);
    info.pm1b_event = (uint16_t)read32(fadt, 60);
    info.pm1a_control = (uint16_t)read32(fadt, 64);
    info.pm1b_control = (uint16_t)read32(fadt, 68);
    info.pm_timer = (uint16_t)read32(fadt, 76);
    info.pm1_event_length = read8(fadt, 88);
    info.pm_timer_32bit = (flags >> 8) & 1; /* TMR_VAL_EXT */
    if (!info.pm1a_control)
        info.pm1a_control = gas_io_port(fadt, length, 172);
    if (!info.pm_timer)
        info.pm_timer = gas_io_port(fadt, length, 208);
    if ((flags >> 10) & 1) { /* RESET_REG_SUP */
        uint16_t port = gas_io_port(fadt, length, 116);
        if (port && length >= 129) {
            info.reset_supported = 1;
            info.reset_port = port;
            info.reset_value = read8(fadt, 128);
        }
    }

    uint64_t dsdt_address = length >= 148 ? read64(fadt, 140) : 0;
    if (!dsdt_address)
        dsdt_address = read32(fadt, 40);
    const struct sdt_header *dsdt = valid_table(dsdt_address);
    if (!dsdt) {
        klog("acpi: no valid DSDT; no sleep states");
        return;
    }
    const uint8_t *aml = (const uint8_t *)dsdt + sizeof(*dsdt);
    uint32_t aml_length = dsdt->length - sizeof(*dsdt);
    info.s4 = acpi_parse_sleep_type(aml, aml_length, "_S4_");
    info.s5 = acpi_parse_sleep_type(aml, aml_length, "_S5_");
}

static void read_madt(const struct sdt_header *madt)
{
    info.local_apic = read32(madt, 36);
    for (uint32_t at = 44; at + 2 <= madt->length;) {
        uint8_t type = read8(madt, at), length = read8(madt, at + 1);
        if (length < 2 || at + length > madt->length)
            break;
        if (type == 1 && length >= 12 && !info.ioapic) {
            info.ioapic = read32(madt, at + 4);
            info.ioapic_gsi_base = read32(madt, at + 8);
        } else if (type == 2 && length >= 10 && info.override_count < ACPI_MAX_OVERRIDES) {
            info.overrides[info.override_count++] = (struct acpi_interrupt_override){
                .source = read8(madt, at + 3),
                .gsi = read32(madt, at + 4),
                .flags = read16(madt, at + 8),
            };
        } else if (type == 5 && length >= 12) {
            info.local_apic = read64(madt, at + 4); /* 64-bit override */
        }
        at += length;
    }
}

int acpi_init(uint64_t rsdp_address)
{
    const uint8_t *rsdp = (const void *)(uintptr_t)rsdp_address;

    /* a resumed kernel reads the new firmware's tables from scratch */
    memset(&info, 0, sizeof(info));
    root = 0;
    root_is_xsdt = 0;

    if (!rsdp || memcmp(rsdp, "RSD PTR ", 8) != 0 || !acpi_checksum_ok(rsdp, 20)) {
        klog("acpi: no valid RSDP");
        return -1;
    }
    if (read8(rsdp, 15) >= 2 && acpi_checksum_ok(rsdp, read32(rsdp, 20))) {
        root = valid_table(read64(rsdp, 24));
        root_is_xsdt = root != 0;
    }
    if (!root)
        root = valid_table(read32(rsdp, 16));
    if (!root) {
        klog("acpi: no valid RSDT or XSDT");
        return -1;
    }

    const struct sdt_header *fadt = acpi_find_table("FACP");
    if (!fadt || fadt->length < 116) {
        klog("acpi: no valid FADT");
        return -1;
    }
    read_fadt(fadt);
    const struct sdt_header *madt = acpi_find_table("APIC");
    if (madt)
        read_madt(madt);
    info.mcfg = (uint64_t)(uintptr_t)acpi_find_table("MCFG");
    info.found = 1;
    klog("acpi: pm1a_control=0x%x pm_timer=0x%x%s sci=%u s4=%s s5=%s ioapic=0x%llx",
         info.pm1a_control, info.pm_timer, info.pm_timer_32bit ? "/32" : "/24",
         info.sci_irq, info.s4.valid ? "yes" : "no", info.s5.valid ? "yes" : "no",
         (unsigned long long)info.ioapic);
    return 0;
}

const struct acpi_info *acpi_get(void)
{
    return &info;
}
