/*
 * virtio-blk configuration checks (virtio 1.2, 5.2.4), kept pure so the
 * host tests can feed them what a lying device would report. The driver
 * (virtio/virtio_blk.c) reads the fields, this decides what to use.
 */
#ifndef VIRTIO_BLK_CONFIG_H
#define VIRTIO_BLK_CONFIG_H

#include <stdint.h>

/* feature bits (5.2.3) */
#define BLK_F_SIZE_MAX 1
#define BLK_F_SEG_MAX 2
#define BLK_F_GEOMETRY 4
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define BLK_F_TOPOLOGY 10
#define BLK_F_CONFIG_WCE 11
#define BLK_F_MQ 12
#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14

#define BLK_CONFIG_MAX_SEGMENTS 126                 /* + header + status = 128 descriptors */

/* The device configuration, as far as torpor reads it (5.2.4). */
struct virtio_blk_config {
    uint64_t capacity; /* 512-byte sectors */
    uint32_t size_max; /* BLK_F_SIZE_MAX: bytes in one segment */
    uint32_t seg_max;  /* BLK_F_SEG_MAX: segments in one request */
    struct {
        uint16_t cylinders;
        uint8_t heads;
        uint8_t sectors;
    } geometry;        /* BLK_F_GEOMETRY */
    uint32_t blk_size; /* BLK_F_BLK_SIZE */
} __attribute__((packed));
#define BLK_CONFIG_MAX_SECTORS (1ull << 48)         /* 128 PiB: beyond it the device lies */

/* What the device reported; fields of features it did not offer are
 * ignored. */
struct blk_config_report {
    uint64_t features;      /* negotiated */
    uint64_t capacity;      /* 512-byte sectors */
    uint32_t size_max, seg_max, blk_size;
};

struct blk_limits {
    uint64_t sectors;
    uint32_t block_size;         /* 512 unless a sane blk_size was offered */
    uint32_t max_segments;       /* 1 to BLK_CONFIG_MAX_SEGMENTS */
    uint32_t max_segment_bytes;  /* 0: no limit; else whole sectors */
    int read_only, has_flush;
    int ignored_block_size;      /* blk_size was offered but absurd */
};

/* Fills *limits and returns NULL, or returns why the disk cannot be used. */
const char *blk_config_check(const struct blk_config_report *report, struct blk_limits *limits);

#endif
