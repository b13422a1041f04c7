/* Host unit tests for virtio/virtio_pci_layout.c and pci/msix_layout.c:
 * a device's capabilities and BARs as QEMU gives them, then the same
 * device lying in each field. No address that comes from device data may
 * leave its BAR and its capability's length (virtio 1.2, 4.1.4; PCI 3.0,
 * 6.8.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pci/msix_layout.h"
#include "pci/pci.h"
#include "virtio/virtio_pci_layout.h"

#define BAR4 0xe000000000ull

/* QEMU 7.2's modern layout: BAR4, 16 KiB, four 4 KiB regions. */
static struct virtio_pci_cap caps[8];
static unsigned cap_count;
static struct virtio_pci_bar bars[6];

static void honest_device(void)
{
    memset(bars, 0, sizeof(bars));
    bars[0] = (struct virtio_pci_bar){ 0xc000, 0x80, 1 };
    bars[1] = (struct virtio_pci_bar){ 0xfeb00000, 0x1000, 0 };
    bars[4] = (struct virtio_pci_bar){ BAR4, 0x4000, 0 };
    cap_count = 4;
    caps[0] = (struct virtio_pci_cap){ VIRTIO_PCI_CAP_COMMON, 4, 0x0000, 0x1000, 0 };
    caps[1] = (struct virtio_pci_cap){ VIRTIO_PCI_CAP_ISR, 4, 0x1000, 0x1000, 0 };
    caps[2] = (struct virtio_pci_cap){ VIRTIO_PCI_CAP_DEVICE, 4, 0x2000, 0x1000, 0 };
    caps[3] = (struct virtio_pci_cap){ VIRTIO_PCI_CAP_NOTIFY, 4, 0x3000, 0x1000, 4 };
}

static enum virtio_pci_layout_result check(struct virtio_pci_layout *layout, const char **reason)
{
    return virtio_pci_layout_check(caps, cap_count, bars, layout, reason);
}

static void assert_refused(const char *why_contains)
{
    struct virtio_pci_layout layout;
    const char *reason = 0;
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_REFUSED);
    assert_non_null(reason);
    assert_non_null(strstr(reason, why_contains));
}

static int setup(void **state)
{
    (void)state;
    honest_device();
    return 0;
}

static void test_honest_device_is_taken(void **state)
{
    (void)state;
    struct virtio_pci_layout layout;
    const char *reason = "unset";
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_OK);
    assert_null(reason);
    assert_int_equal(layout.common.address, BAR4);
    assert_int_equal(layout.isr.address, BAR4 + 0x1000);
    assert_int_equal(layout.device.address, BAR4 + 0x2000);
    assert_int_equal(layout.notify.address, BAR4 + 0x3000);
    assert_int_equal(layout.notify_multiplier, 4);
    /* every doorbell QEMU hands out, and one past the region */
    for (uint16_t q = 0; q < 1024; q++)
        assert_int_equal(virtio_pci_doorbell(&layout, q), BAR4 + 0x3000 + 4u * q);
    assert_int_equal(virtio_pci_doorbell(&layout, 1024), 0);
    /* the last 2 bytes of the region are the last doorbell there can be */
    caps[3].notify_multiplier = 0x1000 - 2;
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_OK);
    assert_int_equal(virtio_pci_doorbell(&layout, 1), BAR4 + 0x3000 + 0xffe);
    assert_int_equal(virtio_pci_doorbell(&layout, 2), 0);
}

static void test_no_capabilities_means_legacy(void **state)
{
    (void)state;
    struct virtio_pci_layout layout;
    const char *reason;
    cap_count = 0;
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_NOT_MODERN);
    /* a capability of a type torpor does not use (PCI config access) alone */
    caps[0] = (struct virtio_pci_cap){ 5, 4, 0, 4, 0 };
    cap_count = 1;
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_NOT_MODERN);
}

static void test_a_lying_multiplier_never_aims_outside_the_region(void **state)
{
    (void)state;
    struct virtio_pci_layout layout;
    const char *reason;
    const uint32_t multipliers[] = { 0x1000, 0x10000, 0x80000000u, 0xffffffffu };
    for (size_t i = 0; i < sizeof(multipliers) / sizeof(multipliers[0]); i++) {
        caps[3].notify_multiplier = multipliers[i];
        assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_OK);
        assert_int_equal(virtio_pci_doorbell(&layout, 0), BAR4 + 0x3000); /* offset 0 is fine */
        for (uint32_t q = 1; q <= 0xffff; q = q * 3 + 1)
            assert_int_equal(virtio_pci_doorbell(&layout, (uint16_t)q), 0);
        assert_int_equal(virtio_pci_doorbell(&layout, 0xffff), 0);
    }
    /* multiplier 0: every queue shares the first doorbell (allowed) */
    caps[3].notify_multiplier = 0;
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_OK);
    assert_int_equal(virtio_pci_doorbell(&layout, 0xffff), BAR4 + 0x3000);
}

static void test_regions_outside_their_bar_are_refused(void **state)
{
    (void)state;
    /* each capability in turn runs past the BAR's end, or wraps */
    const struct { uint32_t offset, length; } lies[] = {
        { 0x3000, 0x1001 }, { 0x4000, 0x10 }, { 0xfffffff0u, 0x20 }, { 0xffffffffu, 0xffffffffu },
    };
    const char *names[] = { "common", "isr", "device config", "notify" };
    for (unsigned c = 0; c < 4; c++)
        for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
            honest_device();
            caps[c].offset = lies[i].offset;
            caps[c].length = lies[i].length;
            assert_refused(names[c]);
        }
}

static void test_bars_that_cannot_hold_registers_are_refused(void **state)
{
    (void)state;
    /* a reserved BIR, an I/O BAR, an unassigned BAR, an empty slot */
    const uint8_t bar_numbers[] = { 6, 7, 0xff, 0, 2 };
    for (size_t i = 0; i < sizeof(bar_numbers) / sizeof(bar_numbers[0]); i++) {
        honest_device();
        caps[3].bar = bar_numbers[i];
        assert_refused("notify");
    }
    honest_device();
    bars[4].address = 0; /* the firmware never assigned it */
    assert_refused("common");
}

static void test_regions_too_short_are_refused(void **state)
{
    (void)state;
    caps[0].length = VIRTIO_PCI_COMMON_MIN_LENGTH - 1;
    assert_refused("common");
    honest_device();
    caps[3].length = 1; /* not even one doorbell */
    assert_refused("notify");
    honest_device();
    caps[1].length = 0;
    assert_refused("isr");
}

static void test_a_required_region_missing_is_refused(void **state)
{
    (void)state;
    cap_count = 3; /* no notify */
    assert_refused("notify");
    honest_device();
    caps[0] = caps[3]; /* two notify capabilities, no common */
    assert_refused("common");
}

static void test_device_config_is_optional_but_checked(void **state)
{
    (void)state;
    struct virtio_pci_layout layout;
    const char *reason;
    caps[2] = caps[3];
    cap_count = 3; /* no device config at all: fine (some devices have none) */
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_OK);
    assert_int_equal(layout.device.address, 0);
    assert_false(virtio_pci_region_holds(&layout.device, 0, 1));
}

static void test_the_first_usable_capability_of_a_type_counts(void **state)
{
    (void)state;
    struct virtio_pci_layout layout;
    const char *reason;
    /* a bogus notify first, a good one after it (4.1.4.1) */
    caps[4] = caps[3];
    caps[3].offset = 0x100000;
    caps[4].notify_multiplier = 2;
    cap_count = 5;
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_OK);
    assert_int_equal(layout.notify.address, BAR4 + 0x3000);
    assert_int_equal(layout.notify_multiplier, 2);
    /* two good ones: the first */
    caps[3] = caps[4];
    caps[3].notify_multiplier = 8;
    assert_int_equal(check(&layout, &reason), VIRTIO_PCI_LAYOUT_OK);
    assert_int_equal(layout.notify_multiplier, 8);
}

static void test_config_accesses_stay_inside_the_region(void **state)
{
    (void)state;
    struct virtio_pci_region r = { BAR4, 24 };
    assert_true(virtio_pci_region_holds(&r, 0, 8));
    assert_true(virtio_pci_region_holds(&r, 16, 8));
    assert_false(virtio_pci_region_holds(&r, 17, 8));
    assert_false(virtio_pci_region_holds(&r, 24, 1));
    assert_false(virtio_pci_region_holds(&r, UINT64_MAX - 2, 8)); /* no wrap */
    assert_false(virtio_pci_region_holds(&r, 0, UINT64_MAX));
}

static void test_msix_table_and_pba_inside_their_bar(void **state)
{
    (void)state;
    struct pci_bar pbars[6];
    struct msix_layout layout;
    memset(pbars, 0, sizeof(pbars));
    pbars[1] = (struct pci_bar){ .address = 0xfeb00000, .size = 0x1000 };

    /* QEMU: table at BAR1 + 0, PBA at BAR1 + 0x800 */
    assert_null(msix_layout_check(0x0 | 1, 0x800 | 1, 3, pbars, &layout));
    assert_int_equal(layout.table, 0xfeb00000);
    assert_int_equal(layout.table_bytes, 48);
    assert_int_equal(layout.pba, 0xfeb00800);
    assert_int_equal(layout.pba_bytes, 8);
    /* a table that runs past the BAR; a PBA that does; a reserved BIR */
    assert_string_equal(msix_layout_check(0xff8 | 1, 0x800 | 1, 3, pbars, &layout),
                        "MSI-X table outside its BAR");
    assert_string_equal(msix_layout_check(0 | 1, 0xffc | 1, 3, pbars, &layout),
                        "MSI-X pending bits outside their BAR");
    assert_string_equal(msix_layout_check(0 | 6, 0x800 | 1, 3, pbars, &layout),
                        "MSI-X table outside its BAR");
    assert_string_equal(msix_layout_check(0 | 1, 0x800 | 7, 3, pbars, &layout),
                        "MSI-X pending bits outside their BAR");
    /* an I/O or unassigned BAR, a size of 0 or more than the spec allows */
    pbars[2] = (struct pci_bar){ .address = 0xc000, .size = 0x1000, .is_io = 1 };
    assert_non_null(msix_layout_check(0 | 2, 0x800 | 1, 3, pbars, &layout));
    assert_non_null(msix_layout_check(0 | 3, 0x800 | 1, 3, pbars, &layout));
    assert_non_null(msix_layout_check(0 | 1, 0x800 | 1, 0, pbars, &layout));
    assert_non_null(msix_layout_check(0 | 1, 0x800 | 1, 2049, pbars, &layout));
    /* 2048 entries need 32 KiB of table and 256 bytes of PBA */
    pbars[1].size = 0x10000;
    assert_null(msix_layout_check(0 | 1, 0x8000 | 1, 2048, pbars, &layout));
    assert_non_null(msix_layout_check(0 | 1, 0xff08 | 1, 2048, pbars, &layout));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_honest_device_is_taken, setup),
        cmocka_unit_test_setup(test_no_capabilities_means_legacy, setup),
        cmocka_unit_test_setup(test_a_lying_multiplier_never_aims_outside_the_region, setup),
        cmocka_unit_test_setup(test_regions_outside_their_bar_are_refused, setup),
        cmocka_unit_test_setup(test_bars_that_cannot_hold_registers_are_refused, setup),
        cmocka_unit_test_setup(test_regions_too_short_are_refused, setup),
        cmocka_unit_test_setup(test_a_required_region_missing_is_refused, setup),
        cmocka_unit_test_setup(test_device_config_is_optional_but_checked, setup),
        cmocka_unit_test_setup(test_the_first_usable_capability_of_a_type_counts, setup),
        cmocka_unit_test_setup(test_config_accesses_stay_inside_the_region, setup),
        cmocka_unit_test_setup(test_msix_table_and_pba_inside_their_bar, setup),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
