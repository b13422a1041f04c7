/*
 * The hibernation image on the torpor-swap disk, defined once for the
 * kernel and the host tool (tools/hibimg). Little-endian; documented in
 * docs/image-format.md.
 *
 *   sector 0          header (one 4 KiB page; image_header below)
 *   index_sector      page_count index entries (16 bytes each), padded to 4 KiB
 *   data_sector       the data of every non-zero page, in index order
 *
 * A reader can resume with one sequential read. The header is written
 * last (after the data and index are flushed), so an image is valid only
 * once everything it describes is on the disk.
 */
#ifndef PM_IMAGE_FORMAT_H
#define PM_IMAGE_FORMAT_H

#include <stdint.h>

#define IMAGE_MAGIC 0x4e52425450524f54ull /* "TORPTBRN" */
#define IMAGE_VERSION 3             /* 1: the xor-multiply checksum, no disk identity;
                                       2: 16-byte index entries, no authentication */
#define IMAGE_PAGE_SIZE 4096u
#define IMAGE_SECTOR_SIZE 512u
#define IMAGE_MAX_RANGES 64
#define IMAGE_DISK_SERIAL_BYTES 20  /* virtio-blk GET_ID (virtio 1.2, 5.2.6) */
#define IMAGE_CHECKSUM_SEED 0       /* every checksum is XXH64 (lib/hash.h) with this seed */
#define IMAGE_TAG_BYTES 16          /* a page MAC tag (crypto/page_mac.h) */
#define IMAGE_KEY_CHAIN_BYTES 16    /* which guest's key chain (docs/security.md, The key) */
#define IMAGE_NONCE_BYTES 16

/* header.flags (docs/security.md): how the pages and the index are checked */
#define IMAGE_FLAG_AUTHENTICATED 1u /* page tags and the index and header tags, under a key */
#define IMAGE_FLAG_ENCRYPTED 2u     /* data pages are ChaCha20 ciphertext; needs AUTHENTICATED */
#define IMAGE_FLAGS_KNOWN (IMAGE_FLAG_AUTHENTICATED | IMAGE_FLAG_ENCRYPTED)

/* header.state: what became of the image (docs/image-format.md, States) */
enum image_state {
    IMAGE_STATE_EMPTY = 0,     /* no image (what a fresh disk reads as) */
    IMAGE_STATE_VALID = 1,     /* complete; may be resumed once */
    IMAGE_STATE_RESUMING = 2,  /* a boot began to resume it and never said how it ended */
    IMAGE_STATE_USED = 3,      /* resumed; never again */
    IMAGE_STATE_SKIPPED = 4,   /* a boot went on fresh while it was on the disk; never by itself */
};

/* index entry flags, in the low bits of pfn_and_flags */
#define IMAGE_ENTRY_ZERO 1ull   /* an all-zero page: no data stored */
#define IMAGE_ENTRY_FLAG_BITS 12
#define IMAGE_ENTRY_PFN(e) ((e) >> IMAGE_ENTRY_FLAG_BITS)

/* A zero page has checksum and tag all zero. Otherwise a plain image
 * stores image_checksum of the page's 4 KiB in checksum (the other 8 bytes
 * 0), and an authenticated one the page's tag, of the bytes as stored
 * (ciphertext when encrypted), in tag. */
struct image_index_entry {
    uint64_t pfn_and_flags;
    union {
        uint64_t checksum;
        uint8_t tag[IMAGE_TAG_BYTES];
    };
};

/* RAM as the writing boot saw it; every saved page must be RAM here, and
 * in the resuming boot's map. */
struct image_ram_range {
    uint64_t base;
    uint64_t pages;
};

/* The CPU state the snapshot saved: what the resumed kernel needs to
 * return from the snapshot call a second time. */
struct image_cpu_state {
    uint64_t rip, rsp, rbx, rbp, r12, r13, r14, r15, rflags;
    uint64_t cr0, cr3, cr4, efer;
    uint16_t gdt_limit, idt_limit, reserved[2];
    uint64_t gdt_base, idt_base;
    uint8_t fxsave[512] __attribute__((aligned(16)));
};
/* arch/x86/image_cpu_state.inc repeats these offsets for the assembly */
_Static_assert(__builtin_offsetof(struct image_cpu_state, rflags) == 64, "CPU_RFLAGS");
_Static_assert(__builtin_offsetof(struct image_cpu_state, efer) == 96, "CPU_EFER");
_Static_assert(__builtin_offsetof(struct image_cpu_state, gdt_limit) == 104, "CPU_GDT_LIMIT");
_Static_assert(__builtin_offsetof(struct image_cpu_state, idt_base) == 120, "CPU_IDT_BASE");
_Static_assert(__builtin_offsetof(struct image_cpu_state, fxsave) == 128, "CPU_FXSAVE");

/* What changes after the image is written (state, and so header_checksum)
 * lies in the first 512-byte sector with magic and version: a change of
 * state rewrites the header page with only sector 0's bytes different, so
 * a write torn at a sector boundary leaves the old header or the new one,
 * never a mix. No padding anywhere: every byte is a field. */
struct image_header {
    uint64_t magic;
    uint32_t version;
    uint32_t state;            /* enum image_state */
    uint64_t header_checksum;  /* image_checksum of the header with this field 0 */
    uint64_t build_id;         /* image_checksum of the writing kernel's .text */
    uint64_t image_base;       /* where that kernel ran */
    uint64_t ram_bytes;        /* usable RAM of the writing boot */
    uint32_t range_count;
    uint32_t flags;
    struct image_ram_range ranges[IMAGE_MAX_RANGES];
    uint64_t page_count;       /* index entries */
    uint64_t zero_pages;
    uint64_t data_pages;       /* page_count - zero_pages */
    uint64_t index_sector;
    uint64_t data_sector;
    uint64_t index_checksum;   /* image_checksum of the index bytes */
    uint64_t written_ns;       /* how long writing took, for `hibimg info` */
    /* the disk it was written to: resumed from no other (image_set_disk_identity) */
    uint64_t disk_sectors;     /* its capacity, 512-byte sectors */
    uint8_t disk_serial[IMAGE_DISK_SERIAL_BYTES]; /* its GET_ID serial, NUL-padded */
    uint32_t reserved;         /* 0 */
    struct image_cpu_state cpu;
    /* under IMAGE_FLAG_AUTHENTICATED, else all zero: the key the image was
     * written under (its chain and counter; the secret is never here),
     * the image's nonce, and the tags of the index bytes and of this
     * header (with state, header_checksum and header_tag taken as 0) */
    uint8_t key_chain[IMAGE_KEY_CHAIN_BYTES];
    uint64_t key_counter;
    uint8_t nonce[IMAGE_NONCE_BYTES];
    uint8_t index_tag[IMAGE_TAG_BYTES];
    uint8_t header_tag[IMAGE_TAG_BYTES];
    uint64_t reserved_end;     /* 0: the header is a whole number of 16-byte units */
};

_Static_assert(sizeof(struct image_header) <= IMAGE_PAGE_SIZE, "the header fits one page");
/* docs/image-format.md gives these offsets */
_Static_assert(__builtin_offsetof(struct image_header, header_checksum) == 16, "header_checksum");
_Static_assert(__builtin_offsetof(struct image_header, ranges) == 56, "ranges");
_Static_assert(__builtin_offsetof(struct image_header, disk_sectors) == 1136, "disk_sectors");
_Static_assert(__builtin_offsetof(struct image_header, cpu) == 1168, "cpu");
_Static_assert(__builtin_offsetof(struct image_header, key_chain) == 1808, "key_chain");
_Static_assert(__builtin_offsetof(struct image_header, header_tag) == 1864, "header_tag");
_Static_assert(sizeof(struct image_header) == 1888, "header size");
_Static_assert(sizeof(struct image_index_entry) == 24, "index entries are 24 bytes");

#endif
