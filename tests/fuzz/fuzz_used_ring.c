/*
 * libFuzzer target for the driver's side of the used ring in
 * virtio/virtqueue.c, with the simulated device of tests/unit/sim_device.c
 * (set up the way tests/unit/test_virtqueue.c does).
 *
 * Input: two bytes choose the queue (split or packed, size, event_idx,
 * indirect descriptors); the rest is a script of operations, one byte each
 * plus arguments (OP_* below): add a chain, let the simulated device read
 * and complete chains honestly, write arbitrary used entries, ids, lengths,
 * flags and indexes straight into the device-side ring memory (a lying
 * device), move event-suppression fields, and take used chains back with
 * vq_get_used. Once the script ends, the queue is drained (bounded).
 *
 * Properties, beyond no ASan/UBSan report:
 *   - vq_get_used returns only tokens that were added and are in flight
 *     (never one twice without re-adding), with a length no larger than
 *     the chain's writable bytes (VQ_USED_BAD_LENGTH: exactly that);
 *   - vq_add_chain succeeds exactly when a model of the free descriptors
 *     and ids says there is room and the queue is not broken;
 *   - the driver's bookkeeping stays sound after every operation: the
 *     counts match the model, every chain in flight is recorded under its
 *     head or id, and the free list holds no descriptor or id in flight and
 *     none twice;
 *   - while the device is honest, the queue never breaks and every chain
 *     completes.
 * A broken property ends in __builtin_trap(); a driver mistake the
 * simulated device sees (its fail_msg) does too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* only for sim_device.c's fail_msg: _fail and print_error are defined here */

#include "lib/error.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/unit/sim_device.h"
#include "virtio/virtqueue.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#endif
#endif
#ifndef POISON
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MAX_BUFFERS 8      /* buffers in one chain */
#define BUFFER_BYTES 64    /* each buffer's memory */
#define POOL_SIZE (VQ_MAX_SIZE + 1)
#define MAX_OPS 512        /* operations per input */
#define MAX_RING_BYTES (320u << 10) /* the largest queue: 1024 entries, 16 indirect each */


/* The simulated device reports a driver mistake with cmocka's fail_msg;
 * outside a cmocka test that is a crash of this target. */
void print_error(const char *const format, ...)
{
    va_list args;

    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
}

void _fail(const char *const file, const int line)
{
    fprintf(stderr, "fuzz_used_ring: the simulated device failed at %s:%d\n", file, line);
    __builtin_trap();
}

enum op {
    OP_ADD,          /* a chain of 1..8 buffers, some device-writable */
    OP_FETCH,        /* honest device: read every available chain */
    OP_COMPLETE,     /* honest device: use some chains (in order, reversed, random) */
    OP_COMPLETE_LIE, /* honest device, one chain with a claimed length */
    OP_RAW_ENTRY,    /* write a used entry anywhere in the ring */
    OP_PUSH,         /* write a used entry where the driver looks next, publish it */
    OP_RAW_INDEX,    /* split: move used->index */
    OP_EVENT,        /* device-written event suppression fields */
    OP_GET,          /* vq_get_used, 1..8 times */
    OP_INTERRUPTS,   /* enable / disable interrupts, kick */
    OP_COUNT,
};

struct request {
    int in_flight;
    unsigned flying_index; /* its place in flying[] while in flight */
    unsigned count, needed;
    uint32_t writable;
    uint16_t slot; /* split: head descriptor; packed: buffer id */
    struct vq_buffer buffers[MAX_BUFFERS];
    uint8_t data[MAX_BUFFERS][BUFFER_BYTES];
};

static struct request pool[POOL_SIZE];
static struct request *flying[POOL_SIZE]; /* the requests in flight, in no order */
static unsigned pool_hint;
/* the rings: one static block, the part past this queue's rings poisoned */
static uint8_t ring_memory[MAX_RING_BYTES] __attribute__((aligned(4096)));

static struct {
    struct vq_config config;
    struct virtqueue vq;
    uint8_t *ring;
    size_t ring_bytes;
    void *state;
    struct sim_device dev;
    int honest;           /* no raw writes yet: the simulated device's view is the truth */
    unsigned in_flight, needed; /* the model: chains and ring descriptors in flight (flying[]) */
    uint8_t *mark;        /* per descriptor or id, for the bookkeeping check */
} h;

struct input {
    const uint8_t *p;
    size_t left;
};

static uint8_t u8(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static uint16_t u16(struct input *in)
{
    uint16_t low = u8(in);
    return (uint16_t)(low | (uint16_t)u8(in) << 8);
}

static uint32_t u32(struct input *in)
{
    uint32_t low = u16(in);
    return low | (uint32_t)u16(in) << 16;
}

HARNESS static struct request *request_alloc(void)
{
    for (unsigned n = 0; n < POOL_SIZE; n++) {
        unsigned i = (pool_hint + n) % POOL_SIZE;
        if (!pool[i].in_flight) {
            pool_hint = i + 1;
            return &pool[i];
        }
    }
    return NULL; /* cannot happen: at most VQ_MAX_SIZE chains in flight */
}

HARNESS static void fly(struct request *r)
{
    r->in_flight = 1;
    r->flying_index = h.in_flight;
    flying[h.in_flight++] = r;
    h.needed += r->needed;
}

HARNESS static void land(struct request *r)
{
    struct request *last = flying[--h.in_flight];

    flying[r->flying_index] = last;
    last->flying_index = r->flying_index;
    r->in_flight = 0;
    h.needed -= r->needed;
}

HARNESS static struct request *as_request(void *token)
{
    uintptr_t at = (uintptr_t)token, base = (uintptr_t)pool;

    CHECK(token != NULL);
    CHECK(at >= base && at < base + sizeof(pool));
    CHECK((at - base) % sizeof(struct request) == 0);
    return token;
}

static int uses_indirect(unsigned count)
{
    return h.config.indirect_max > 1 && count > 1 && count <= h.config.indirect_max;
}

/* The k-th chain in flight (k taken modulo their number), or NULL. */
static struct request *in_flight_request(unsigned k)
{
    return h.in_flight ? flying[k % h.in_flight] : NULL;
}

/* ---- the driver's bookkeeping, checked after every operation --------- */

HARNESS static void check_bookkeeping(void)
{
    struct virtqueue *vq = &h.vq;
    uint16_t size = h.config.size;
    unsigned needed = 0;

    memset(h.mark, 0, size);
    for (unsigned i = 0; i < h.in_flight; i++) {
        struct request *r = flying[i];
        CHECK(r->in_flight && r->flying_index == i);
        needed += r->needed;
        CHECK(r->slot < size);
        CHECK(vq->chains[r->slot].token == r);
        CHECK(vq->chains[r->slot].descriptor_count == r->needed);
        CHECK(vq->chains[r->slot].writable_bytes == r->writable);
        if (h.config.layout == VQ_PACKED) {
            CHECK(!h.mark[r->slot]);
            h.mark[r->slot] = 1;
            continue;
        }
        /* split: the descriptors the device was given, linked from the head
         * (the device never writes the descriptor table) */
        uint16_t index = r->slot;
        for (unsigned k = 0; k < r->needed; k++) {
            CHECK(index < size);
            CHECK(!h.mark[index]); /* one descriptor in two chains */
            h.mark[index] = 1;
            if (k + 1 < r->needed) {
                CHECK(vq->desc[index].flags & VRING_DESC_F_NEXT);
                index = vq->desc[index].next;
            }
        }
        CHECK(!(vq->desc[index].flags & VRING_DESC_F_NEXT));
        CHECK(vq->chains[r->slot].last == index);
    }
    CHECK(needed == h.needed);
    CHECK(vq_in_flight(vq) == h.in_flight);
    if (h.config.layout == VQ_SPLIT) {
        CHECK(vq->free_count == size - h.needed);
        CHECK(vq->chains_in_flight == h.in_flight);
    } else {
        CHECK(vq->free_count == size - h.in_flight);
        CHECK(vq->free_slots == size - h.needed);
        /* the ring from next_used to next_avail holds exactly the descriptors
         * in flight, so adding never overwrites one the driver has not taken */
        unsigned span = vq->avail_wrap == vq->used_wrap ? (unsigned)(vq->next_avail - vq->next_used)
                                                        : (unsigned)(vq->next_avail + size - vq->next_used);
        CHECK(vq->next_avail < size && vq->next_used < size);
        CHECK(span == h.needed);
    }
    /* the free list: free_count entries, none in flight, none twice */
    uint16_t index = vq->free_head;
    for (unsigned k = 0; k < vq->free_count; k++) {
        CHECK(index < size);
        CHECK(h.mark[index] == 0);
        h.mark[index] = 2;
        index = vq->free_next[index];
    }
    if (h.honest)
        CHECK(!vq_is_broken(vq));
}

/* ---- operations ------------------------------------------------------- */

static void op_add(struct input *in)
{
    uint8_t shape = u8(in), writes = u8(in);
    unsigned count = 1 + shape % MAX_BUFFERS;
    struct request *r = request_alloc();
    int valid = 1, seen_writable = 0;

    CHECK(r != NULL);
    memset(r, 0, sizeof(*r));
    r->count = count;
    for (unsigned i = 0; i < count; i++) {
        uint32_t length = u8(in) % (BUFFER_BYTES + 1);
        int device_writes = (writes >> i) & 1;
        if (device_writes) {
            seen_writable = 1;
            r->writable += length;
            memset(r->data[i], 0xee, BUFFER_BYTES);
        } else {
            valid &= !seen_writable; /* readable after writable */
            memset(r->data[i], (int)i + 1, BUFFER_BYTES);
        }
        r->buffers[i] = (struct vq_buffer){ (uint64_t)(uintptr_t)r->data[i], length, device_writes };
    }
    r->needed = uses_indirect(count) ? 1 : count;
    valid &= count <= h.config.size;

    int room = h.config.layout == VQ_SPLIT
                   ? h.config.size - h.needed >= r->needed
                   : h.in_flight < h.config.size && h.config.size - h.needed >= r->needed;
    uint16_t slot = h.vq.free_head; /* the head (split) or id (packed) it will get */
    int result = vq_add_chain(&h.vq, r->buffers, count, r);

    if (!valid) {
        CHECK(result == ERROR_INVALID);
    } else if (vq_is_broken(&h.vq)) {
        CHECK(result == ERROR_DEVICE);
    } else if (!room) {
        CHECK(result == ERROR_BUSY);
    } else {
        CHECK(result == 0);
        r->slot = slot;
        fly(r);
    }
}

static void take(enum vq_used_status status, void *token, uint32_t length)
{
    CHECK(status == VQ_USED_OK || status == VQ_USED_BAD_LENGTH);
    struct request *r = as_request(token);
    CHECK(r->in_flight); /* added, and not taken back since */
    if (status == VQ_USED_BAD_LENGTH)
        CHECK(length == r->writable);
    else
        CHECK(length <= r->writable);
    land(r);
}

static void op_get(struct input *in)
{
    unsigned times = 1 + u8(in) % 8;

    for (unsigned i = 0; i < times; i++) {
        void *token = NULL;
        uint32_t length = 0xdeadbeef;
        enum vq_used_status status = vq_get_used(&h.vq, &token, &length);
        if (status == VQ_USED_NONE)
            break;
        CHECK(!vq_is_broken(&h.vq));
        take(status, token, length);
    }
}

/* an id for a lying used entry: raw, small, or a chain really in flight */
static uint32_t pick_id(struct input *in)
{
    uint8_t how = u8(in);

    switch (how % 4) {
    case 0:
        return u32(in);
    case 1:
        return u8(in);
    default: {
        struct request *r = in_flight_request(u8(in));
        return r ? r->slot : how;
    }
    }
}

static uint32_t pick_length(struct input *in)
{
    uint8_t how = u8(in);

    return how & 1 ? u32(in) : how >> 1;
}

static uint16_t pick_packed_flags(struct input *in, int wrap)
{
    uint8_t how = u8(in);
    uint16_t both = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;

    switch (how % 6) {
    case 0: return wrap ? both : 0;  /* used in this lap */
    case 1: return wrap ? 0 : both;  /* used in the other lap */
    case 2: return VRING_PACKED_DESC_F_AVAIL;
    case 3: return VRING_PACKED_DESC_F_USED;
    case 4: return (uint16_t)((wrap ? both : 0) | VRING_DESC_F_WRITE);
    default: return u16(in);
    }
}

static void write_packed(uint16_t position, uint16_t id, uint32_t length, uint16_t flags)
{
    struct vring_packed_desc *d = &h.vq.packed[position];

    d->id = id;
    d->length = length;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t *)&d->flags = flags;
}

static void op_raw_entry(struct input *in)
{
    h.honest = 0;
    if (h.config.layout == VQ_SPLIT) {
        uint16_t slot = u16(in) % h.config.size;
        uint32_t id = pick_id(in);
        h.vq.used->ring[slot] = (struct vring_used_element){ id, pick_length(in) };
    } else {
        uint16_t position = u16(in) % h.config.size;
        uint16_t id = (uint16_t)pick_id(in);
        uint32_t length = pick_length(in);
        write_packed(position, id, length, pick_packed_flags(in, h.vq.used_wrap));
    }
}

static void op_push(struct input *in)
{
    h.honest = 0;
    if (h.config.layout == VQ_SPLIT) {
        uint16_t index = h.vq.used->index;
        uint32_t id = pick_id(in);
        h.vq.used->ring[index & (h.config.size - 1)] = (struct vring_used_element){ id, pick_length(in) };
        __asm__ volatile("" ::: "memory");
        *(volatile uint16_t *)&h.vq.used->index = (uint16_t)(index + 1);
    } else {
        uint16_t id = (uint16_t)pick_id(in);
        uint32_t length = pick_length(in);
        write_packed(h.vq.next_used, id, length, pick_packed_flags(in, h.vq.used_wrap));
    }
}

static void op_raw_index(struct input *in)
{
    uint8_t how = u8(in);

    if (h.config.layout != VQ_SPLIT)
        return;
    h.honest = 0;
    if (how & 1)
        h.vq.used->index = u16(in);
    else
        h.vq.used->index = (uint16_t)(h.vq.used->index + (int8_t)u8(in));
}

static void op_event(struct input *in)
{
    uint8_t how = u8(in);
    uint16_t value = u16(in);

    /* fields only the device writes and only the driver reads: the
     * simulated device stays in step */
    if (h.config.layout == VQ_SPLIT) {
        if (how & 1)
            h.vq.used->flags = value;
        else
            *(uint16_t *)&h.vq.used->ring[h.config.size] = value; /* avail_event */
    } else if (how & 1) {
        h.vq.device_event->flags = value;
    } else {
        h.vq.device_event->off_wrap = value;
    }
    if (how & 2) {
        if (how & 4)
            sim_set_idle(&h.dev);
        else
            sim_set_busy(&h.dev);
    }
}

static void op_interrupts(struct input *in)
{
    uint8_t how = u8(in);

    switch (how % 3) {
    case 0:
        (void)vq_enable_interrupts(&h.vq);
        break;
    case 1:
        vq_disable_interrupts(&h.vq);
        break;
    default: {
        int kick = vq_kick_prepare(&h.vq);
        CHECK(kick == 0 || kick == 1);
        break;
    }
    }
}

static void run(struct input *in)
{
    for (unsigned ops = 0; ops < MAX_OPS && in->left; ops++) {
        uint8_t op = u8(in);
        switch (op % OP_COUNT) {
        case OP_ADD:
            op_add(in);
            break;
        case OP_FETCH:
            if (h.honest)
                sim_fetch(&h.dev);
            break;
        case OP_COMPLETE: {
            uint8_t how = u8(in);
            if (h.honest) {
                h.dev.partial_writes = how >> 7;
                sim_complete(&h.dev, 1 + how % 16, (enum sim_order)((how >> 4) % 3));
                h.dev.log_count = 0; /* its completion log is for the unit tests */
            }
            break;
        }
        case OP_COMPLETE_LIE: {
            uint8_t which = u8(in);
            uint32_t claimed = pick_length(in);
            if (h.honest && h.dev.pending_count) {
                sim_complete_one(&h.dev, which % h.dev.pending_count, claimed);
                h.dev.log_count = 0;
            }
            break;
        }
        case OP_RAW_ENTRY:
            op_raw_entry(in);
            break;
        case OP_PUSH:
            op_push(in);
            break;
        case OP_RAW_INDEX:
            op_raw_index(in);
            break;
        case OP_EVENT:
            op_event(in);
            break;
        case OP_GET:
            op_get(in);
            break;
        default:
            op_interrupts(in);
            break;
        }
        check_bookkeeping();
    }
}

/* Takes back what is left; an honest device first completes everything,
 * and then every chain must come back. */
static void drain(void)
{
    if (h.honest) {
        sim_fetch(&h.dev);
        sim_complete(&h.dev, h.config.size, SIM_IN_ORDER);
        h.dev.log_count = 0;
    }
    for (unsigned i = 0; i <= VQ_MAX_SIZE; i++) {
        void *token = NULL;
        uint32_t length = 0;
        enum vq_used_status status = vq_get_used(&h.vq, &token, &length);
        if (status == VQ_USED_NONE)
            break;
        take(status, token, length);
        check_bookkeeping();
    }
    if (h.honest)
        CHECK(h.in_flight == 0 && !vq_is_broken(&h.vq));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t indirect_choices[8] = { 0, 0, 1, 2, 3, 4, 8, 16 };
    struct input in = { data, size };
    uint8_t shape = u8(&in), size_byte = u8(&in);
    uint16_t queue_size;

    /* mostly small queues, where the rings wrap often; large ones (the
     * simulated device allocates 1.2 KiB per entry) from size bytes 0xf0 up */
    if (shape & 1) /* packed: any size */
        queue_size = size_byte < 0xf0 ? (uint16_t)(1 + size_byte % 48)
                                      : (uint16_t)(64 * (size_byte - 0xf0) + 64);
    else /* split: a power of two */
        queue_size = (uint16_t)(size_byte < 0xf0 ? 1u << (size_byte % 7) : 128u << (size_byte % 4));

    while (h.in_flight) /* what the last input left in flight */
        land(flying[0]);
    memset(&h, 0, sizeof(h));
    pool_hint = 0;
    h.honest = 1;
    h.config = (struct vq_config){ shape & 1 ? VQ_PACKED : VQ_SPLIT, queue_size, (shape >> 1) & 1,
                                   indirect_choices[(shape >> 2) & 7], (shape >> 5) & 1 };
    h.ring_bytes = vq_ring_bytes(&h.config);
    CHECK(h.ring_bytes <= sizeof(ring_memory));
    h.ring = ring_memory;
    h.state = malloc(vq_state_bytes(&h.config));
    h.mark = malloc(queue_size);
    if (!h.state || !h.mark)
        abort();
    memset(h.ring, 0xa5, h.ring_bytes); /* vq_init must clear what it uses */
    memset(h.state, 0xa5, vq_state_bytes(&h.config));
    POISON(h.ring + h.ring_bytes, sizeof(ring_memory) - h.ring_bytes);
    CHECK(vq_init(&h.vq, &h.config, h.ring, h.state) == 0);
    CHECK(sim_init(&h.dev, h.config.layout == VQ_PACKED, queue_size, h.config.event_idx,
                   h.config.indirect_max > 1, vq_descriptor_area(&h.vq), vq_driver_area(&h.vq),
                   vq_device_area(&h.vq), 0x12345678u) == 0);
    check_bookkeeping();

    run(&in);
    drain();

    sim_free(&h.dev);
    UNPOISON(ring_memory, sizeof(ring_memory));
    free(h.state);
    free(h.mark);
    return 0;
}
