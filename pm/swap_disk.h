/*
 * The hibernation disk: the virtio-blk disk whose serial is torpor-swap,
 * and its header page, which hibernate and resume both read and write.
 * This kernel's build id lives here too: every header names the kernel
 * that wrote it.
 */
#ifndef PM_SWAP_DISK_H
#define PM_SWAP_DISK_H

#include <stdint.h>

#define SWAP_DISK_SERIAL "torpor-swap"

struct blk_disk;
struct image_header;

/* The disk with serial torpor-swap, or NULL. */
struct blk_disk *swap_disk_find(void);

/* Writes one header page to sector 0 and flushes it (a disk without
 * FLUSH is write-through: the write is the flush); 0 or an error code. */
int swap_disk_write_header(struct blk_disk *disk, const struct image_header *header,
                           uint64_t *failed_sector);

/* This kernel's build id: image_checksum of its .text (position
 * independent, so the same at any load address). */
uint64_t swap_disk_build_id(void);

#endif
