/*
 * The balloon's state machine, free of device and allocator details so the
 * host tests can drive it through a fake transport. It follows the host's
 * target in batches of page frame numbers, keeps the pages it gave away on
 * the balloon list (stored outside those pages: they belong to the host),
 * and gives pages back to the allocator only when the host acknowledged
 * their deflate (VIRTIO_BALLOON_F_MUST_TELL_HOST, 5.5.6.1), or at once on
 * OOM when that feature is off.
 */
#ifndef VIRTIO_BALLOON_H
#define VIRTIO_BALLOON_H

#include <stdint.h>

#define BALLOON_MAX_BATCH 1024 /* PFNs per request: one page of u32 */
#define BALLOON_MAX_IN_FLIGHT 8
#define BALLOON_CHUNK_PFNS 1021

enum balloon_queue { BALLOON_INFLATE = 0, BALLOON_DEFLATE = 1 };

/* statistics tags (5.5.6.3) */
enum {
    BALLOON_STAT_SWAP_IN, BALLOON_STAT_SWAP_OUT, BALLOON_STAT_MAJOR_FAULTS,
    BALLOON_STAT_MINOR_FAULTS, BALLOON_STAT_MEMORY_FREE, BALLOON_STAT_MEMORY_TOTAL,
    BALLOON_STAT_AVAILABLE, BALLOON_STAT_CACHES, BALLOON_STAT_HUGETLB_ALLOCATIONS,
    BALLOON_STAT_HUGETLB_FAILURES, BALLOON_STAT_COUNT,
};

/* one entry of the stats queue's buffer (5.5.6.3) */
struct balloon_stat {
    uint16_t tag;
    uint64_t value;
} __attribute__((packed));

/* Free page reporting (5.5.6.7): blocks the host is told of, each
 * handed to it in one request and out of the allocator until it answers. */
#define BALLOON_REPORTS 16
struct balloon_report {
    uint64_t address;
    unsigned order;
    int busy; /* sent, not yet answered */
};

struct balloon_ops {
    /* up to `wanted` pages for the balloon, contiguous from *first, each
     * given back on its own by give_page; returns how many (0 when the
     * reserve forbids any). Taking them in blocks keeps the cost per page
     * near nothing, and the balloon never writes to a page it takes. */
    unsigned (*take_pages)(void *context, unsigned wanted, uint32_t *first);
    void (*give_page)(void *context, uint32_t pfn);
    /* 4096 bytes for the list's bookkeeping, or NULL */
    void *(*alloc_chunk)(void *context);
    void (*free_chunk)(void *context, void *chunk);
    /* makes a PFN array available on a queue; -1 when the ring is full */
    int (*send)(void *context, enum balloon_queue queue, const uint32_t *pfns,
                unsigned count, void *token);
    void (*kick)(void *context, enum balloon_queue queue);
    void (*set_actual)(void *context, uint32_t pages);
    /* once per target the balloon cannot reach */
    void (*report_shortfall)(void *context, uint32_t target, uint32_t reached);
};

struct balloon_chunk {
    struct balloon_chunk *next;
    uint32_t count;
    uint32_t pfns[BALLOON_CHUNK_PFNS];
};

struct balloon_request {
    int busy;
    enum balloon_queue queue;
    unsigned count;
    int already_returned; /* an OOM deflate: the pages were reused before the ack */
    uint32_t *pfns;       /* BALLOON_MAX_BATCH entries, shared with the device */
};

struct balloon_stats {
    uint64_t inflated_pages, deflated_pages;
    uint64_t inflate_requests, deflate_requests;
    uint64_t oom_pages;       /* taken back on OOM */
    uint64_t discarded_pages; /* given back without the host on resume */
    uint64_t shortfalls;      /* targets that could not be reached */
    uint64_t unknown_acks;    /* acks for no request in flight */
};

struct balloon {
    const struct balloon_ops *ops;
    void *context;
    int must_tell_host;
    uint32_t target;
    uint32_t list_pages;      /* acknowledged and on the list */
    uint32_t inflating;       /* sent, not yet acknowledged */
    uint32_t deflating;       /* taken off the list, not yet acknowledged */
    uint32_t to_tell;         /* OOM pages reused before the host was told */
    unsigned batch_size, max_in_flight;
    uint32_t shortfall_target;/* the target last reported as unreachable */
    struct balloon_chunk *list;
    struct balloon_chunk *tell_list;
    struct balloon_request requests[BALLOON_MAX_IN_FLIGHT];
    struct balloon_stats stats;
};

/* batch_memory: BALLOON_MAX_IN_FLIGHT * BALLOON_MAX_BATCH u32, DMA-able. */
void balloon_init(struct balloon *b, const struct balloon_ops *ops, void *context,
                  uint32_t *batch_memory, int must_tell_host);
/* 1..BALLOON_MAX_BATCH PFNs per request, 1..BALLOON_MAX_IN_FLIGHT requests. */
int balloon_set_batching(struct balloon *b, unsigned batch_size, unsigned max_in_flight);
void balloon_set_target(struct balloon *b, uint32_t target);
/* Sends what it can toward the target; returns the requests sent. */
int balloon_step(struct balloon *b);
/* Sends at most one request (and kicks its queue): a driver whose host
 * answers while the kick is written (QEMU under TCG) collects each answer
 * before filling the next, so `actual` moves after the first request, not
 * after all of them. */
int balloon_step_once(struct balloon *b);
/* The host used the request `token`; returns 0, or -1 for an unknown token. */
int balloon_complete(struct balloon *b, void *token);
/* What `actual` should say: pages the host may consider its own. */
uint32_t balloon_actual(const struct balloon *b);
unsigned balloon_requests_in_flight(const struct balloon *b);
/* Deflate on OOM: gives up to `pages` pages back to the allocator now and
 * tells the host later. Returns the pages given (0 with MUST_TELL_HOST). */
uint32_t balloon_reclaim(struct balloon *b, uint32_t pages);
/* The device was reset with requests in flight (a freeze that timed
 * out): no acknowledgement will ever come, so every request is settled
 * now and the counters add up again (inflating and deflating return to
 * 0, no page lost). */
void balloon_abandon_in_flight(struct balloon *b);
/* Resume from hibernation: the host process that took the pages is gone;
 * every listed page goes back to the allocator, no message sent. */
void balloon_discard_all(struct balloon *b);
/* Reports sent and not yet answered. */
unsigned balloon_reports_busy(const struct balloon_report reports[BALLOON_REPORTS]);
/* The device was reset with reports in flight: no answer will come, so
 * each block goes back through `give` (to the allocator, unreported: the
 * host may never have seen it) and its slot is free. */
void balloon_reports_settle(struct balloon_report reports[BALLOON_REPORTS], void (*give)(uint64_t address));
/* The stats buffer: every tag in order, sizes in bytes (5.5.6.3); torpor
 * has no swap, faults or caches, so those are 0. */
void balloon_fill_stats(struct balloon_stat stats[BALLOON_STAT_COUNT], uint64_t free_bytes,
                        uint64_t total_bytes);

#endif
