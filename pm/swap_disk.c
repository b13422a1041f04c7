/*
 * The hibernation disk and its header page (see pm/swap_disk.h).
 */
#include "pm/swap_disk.h"

#include "mm/page.h"           // PAGE_SIZE
#include "pm/image.h"          // image_checksum, struct image_header
#include "virtio/virtio_blk.h" // blk_*

extern const char _text[], _etext[];

struct blk_disk *swap_disk_find(void)
{
    return blk_disk_find(SWAP_DISK_SERIAL);
}

int swap_disk_write_header(struct blk_disk *disk, const struct image_header *header,
                           uint64_t *failed_sector)
{
    struct blk_info info;
    int result = blk_write(disk, 0, header, PAGE_SIZE, failed_sector);

    /* a disk that offers no VIRTIO_BLK_F_FLUSH has no flush to send, and
     * the spec does not make its completed writes stable (virtio 1.2,
     * 5.2.6.2): hibernate writes no image there (disk-not-durable); a
     * resume's state marks on it are as durable as the device makes them */
    blk_disk_info(disk, &info);
    if (result != 0 || !info.has_flush)
        return result;
    return blk_flush(disk, failed_sector);
}

uint64_t swap_disk_build_id(void)
{
    /* linker-script bounds: compared as addresses */
    return image_checksum(_text, ((uintptr_t)_etext - (uintptr_t)_text) & ~(size_t)7);
}
