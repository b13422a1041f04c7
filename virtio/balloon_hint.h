/*
 * Free page hinting (virtio 1.2, 5.5.6.7): the state machine, free of
 * device and allocator details so the host tests drive it through a fake
 * transport. A round starts when the device shows a new command id: the
 * driver sends the id (4 bytes the device reads), then free blocks taken
 * out of the allocator (buffers the device "writes", i.e. may skip when
 * migrating), then STOP. The blocks stay out of the allocator until the
 * round ends: the device says STOP or DONE or shows a new id, or the
 * kernel needs the memory (an early end), or the device is reset.
 */
#ifndef VIRTIO_BALLOON_HINT_H
#define VIRTIO_BALLOON_HINT_H

#include <stdint.h>

#define HINT_CMD_ID_STOP 0u /* free_page_hint_cmd_id values (5.5.6.7) */
#define HINT_CMD_ID_DONE 1u
#define HINT_MAX_BLOCKS 128 /* blocks out of the allocator at once */
#define HINT_PAGE_SIZE 4096u

struct hint_ops {
    /* the largest free block the kernel can spare, taken out of the
     * allocator; its address and order, or 0 when none is left */
    uint64_t (*take)(void *context, unsigned *order);
    void (*give)(void *context, uint64_t address);
    /* one buffer on the free page queue; -1 when the ring is full */
    int (*send)(void *context, uint64_t address, uint32_t length, int device_writes, void *token);
    /* notifies the device; `again`: of buffers it was already told of
     * (no new one since), past its event suppression */
    void (*kick)(void *context, int again);
};

struct hint_block {
    uint64_t address; /* 0: the slot is free */
    uint8_t order;
    uint8_t posted;  /* the device has not returned its buffer yet */
    uint8_t expired; /* its round is over: back to the allocator once returned */
};

struct hint_stats {
    uint64_t rounds;        /* command ids acted on */
    uint64_t hinted_pages;  /* in blocks the device returned during their round */
    uint64_t early_ends;    /* rounds ended because the kernel needed memory */
    uint64_t unknown_used;  /* returned buffers that were never sent */
};

struct balloon_hint {
    const struct hint_ops *ops;
    void *context;
    uint32_t *words;  /* 3 device-readable le32: two for ids, one for STOP */
    uint32_t last_id; /* the last id acted on (an id is answered once) */
    int active;       /* a round runs: its blocks are held */
    int sending;      /* the id went out, STOP has not */
    unsigned held;    /* blocks out of the allocator */
    unsigned posted;  /* buffers (blocks and commands) not returned */
    uint64_t held_pages;
    struct hint_block blocks[HINT_MAX_BLOCKS];
    struct hint_stats stats;
};

/* words: three uint32_t the device can read (DMA-able). */
void hint_init(struct balloon_hint *h, const struct hint_ops *ops, void *context, uint32_t *words);
/* The device's free_page_hint_cmd_id, read after each config change. */
void hint_command(struct balloon_hint *h, uint32_t id);
/* Sends the round's blocks (and then STOP) while it is sending. */
void hint_step(struct balloon_hint *h);
/* The device returned the buffer `token`; 0, or -1 for an unknown one. */
int hint_used(struct balloon_hint *h, void *token);
/* The kernel needs memory: ends a running round (STOP sent) and returns
 * the pages given back at once (blocks the device still has follow when
 * it returns them). */
uint64_t hint_reclaim(struct balloon_hint *h);
/* The device was reset: no buffer comes back, every block returns now. */
void hint_abandon(struct balloon_hint *h);
/* "off" never appears here: idle, sending (id sent, blocks going out),
 * holding (STOP sent, blocks held until the device ends the round). */
const char *hint_state_name(const struct balloon_hint *h);

#endif
