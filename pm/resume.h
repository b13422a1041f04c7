/*
 * Hibernation, coming up. The boot side (resume_from_disk) finds a valid
 * image on the torpor-swap disk, checks it, reads every saved page into
 * memory this boot does not use, records the attempt in the header and
 * jumps through arch/x86/resume_trampoline.asm into the image kernel,
 * which returns from its snapshot in hibernate(), runs the bring-up's
 * resume half (init/bringup.c) and calls resume_finish. Anything wrong before the jump prints
 * `resume refused reason=...` and the boot goes on fresh.
 */
#ifndef PM_RESUME_H
#define PM_RESUME_H

#include <stdint.h>

#include "boot/handoff.h" // struct image_key

struct boot_handoff;

/* What the boot kernel passes to the image kernel: the new firmware's
 * facts, which replace the image's. */
struct resume_handoff {
    uint64_t tsc_at_entry;      /* this boot's efi_main */
    uint64_t acpi_rsdp;
    void *efi_runtime_services;
    uint64_t page_count;        /* pages the image restored */
    uint64_t read_ns;           /* reading and checking the image */
    uint64_t read_bytes;
    uint64_t staged_pages;      /* loaded elsewhere, copied by the trampoline */
    /* the key this boot set for the next image (the image kernel adopts
     * it and erases this copy: docs/security.md, The key) */
    uint32_t key_source;        /* enum image_key_source */
    uint32_t has_write_key;
    struct image_key write_key;
};

/* Boot side. Returns when there is no image, `noresume` was given, or the
 * image was refused; otherwise it never returns. */
void resume_from_disk(const struct boot_handoff *handoff);

/* Image side, last step of a resume: marks the image used, so no later
 * boot resumes it again, and prints `resume ok`. restored is 0 when every
 * driver came back. */
void resume_finish(const struct resume_handoff *handoff, int restored);

#endif
