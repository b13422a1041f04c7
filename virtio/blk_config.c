/*
 * virtio-blk configuration checks (see virtio/blk_config.h).
 */
#include "virtio/blk_config.h"

#define SECTOR_SIZE 512u

static int offered(const struct blk_config_report *report, unsigned bit)
{
    return (report->features >> bit) & 1;
}

const char *blk_config_check(const struct blk_config_report *report, struct blk_limits *limits)
{
    *limits = (struct blk_limits){
        .sectors = report->capacity,
        .block_size = SECTOR_SIZE,
        .max_segments = BLK_CONFIG_MAX_SEGMENTS,
        .read_only = offered(report, BLK_F_RO),
        .has_flush = offered(report, BLK_F_FLUSH),
    };
    if (report->capacity > BLK_CONFIG_MAX_SECTORS)
        return "capacity out of range";
    if (offered(report, BLK_F_BLK_SIZE)) {
        /* a hint for alignment only (5.2.4): a power of two 512..64 KiB */
        uint32_t size = report->blk_size;
        if (size >= SECTOR_SIZE && size <= 65536 && (size & (size - 1)) == 0)
            limits->block_size = size;
        else
            limits->ignored_block_size = 1;
    }
    if (offered(report, BLK_F_SEG_MAX)) {
        if (report->seg_max == 0)
            return "seg_max is 0";
        if (report->seg_max < limits->max_segments)
            limits->max_segments = report->seg_max;
    }
    if (offered(report, BLK_F_SIZE_MAX)) {
        if (report->size_max < SECTOR_SIZE)
            return "size_max below one sector";
        limits->max_segment_bytes = report->size_max & ~(SECTOR_SIZE - 1);
    }
    return 0;
}
