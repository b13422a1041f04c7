/* Host unit tests for virtio/virtqueue.c: split and packed rings driven against the simulated device
 * in tests/unit/sim_device.c (chains, capacity, wrap-around, indirect, event suppression, lying devices). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/error.h"
#include "tests/unit/sim_device.h"
#include "virtio/virtqueue.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define FILL 0xee         /* writable bytes before the device writes them */
#define MAX_CHAIN 40      /* buffers in one test request */
#define POOL_SIZE 2048    /* requests alive at once */

struct params {
    enum vq_layout layout;
    int event_idx;
    uint16_t indirect_max;
};

static struct params variants[] = {
    { VQ_SPLIT, 0, 0 },  { VQ_SPLIT, 1, 0 },  { VQ_SPLIT, 0, 4 },  { VQ_SPLIT, 1, 4 },
    { VQ_PACKED, 0, 0 }, { VQ_PACKED, 1, 0 }, { VQ_PACKED, 0, 4 }, { VQ_PACKED, 1, 4 },
};

/* One chain as the test owns it: every buffer its own heap block, so ASan
 * sees a device write that runs past a descriptor's length. */
struct request {
    int in_use, in_flight;
    unsigned count;
    struct vq_buffer buffers[MAX_CHAIN];
    uint32_t writable; /* bytes the device may write */
    uint32_t seed;     /* hash of the readable bytes: picks the pattern the device writes */
    unsigned needed;   /* ring descriptors the chain should take */
};

static struct harness {
    struct vq_config config;
    struct virtqueue vq;
    uint8_t *ring;
    size_t ring_bytes, ring_allocated, state_bytes;
    void *state;
    struct sim_device dev;
    int dev_open;
    struct request *pool;
    unsigned pool_hint;
    unsigned log_cursor;
    /* the driver's resources as a model predicts them */
    unsigned free_descriptors, free_ids, in_flight;
    uint32_t rng;
} h;

static uint32_t rnd(void)
{
    uint32_t x = h.rng ? h.rng : 0x2545f491u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return h.rng = x;
}

/* ---- requests ---------------------------------------------------------- */

static void request_release(struct request *r)
{
    for (unsigned i = 0; i < r->count; i++)
        free((void *)(uintptr_t)r->buffers[i].address);
    memset(r, 0, sizeof(*r));
}

static struct request *request_alloc(void)
{
    if (!h.pool) {
        h.pool = calloc(POOL_SIZE, sizeof(*h.pool));
        assert_non_null(h.pool);
    }
    for (unsigned n = 0; n < POOL_SIZE; n++) {
        unsigned i = (h.pool_hint + n) % POOL_SIZE;
        if (!h.pool[i].in_use) {
            h.pool_hint = i + 1;
            h.pool[i].in_use = 1;
            return &h.pool[i];
        }
    }
    fail_msg("request pool exhausted");
    return NULL;
}

static unsigned needed_for(unsigned count)
{
    int indirect = h.config.indirect_max > 1 && count > 1 && count <= h.config.indirect_max;
    return indirect ? 1 : count;
}

static void request_add_buffer(struct request *r, uint32_t length, int writes)
{
    assert_true(r->count < MAX_CHAIN);
    uint8_t *bytes = malloc(length ? length : 1);
    assert_non_null(bytes);
    if (writes) {
        memset(bytes, FILL, length);
        r->writable += length;
    } else {
        for (uint32_t i = 0; i < length; i++)
            bytes[i] = (uint8_t)rnd();
    }
    r->buffers[r->count++] = (struct vq_buffer){ (uint64_t)(uintptr_t)bytes, length, writes };
}

static void request_seal(struct request *r)
{
    r->seed = SIM_SEED_INIT;
    for (unsigned i = 0; i < r->count; i++)
        if (!r->buffers[i].device_writes)
            r->seed = sim_hash(r->seed, (const uint8_t *)(uintptr_t)r->buffers[i].address,
                               r->buffers[i].length);
    r->needed = needed_for(r->count);
}

/* kinds: one letter a buffer, r (device-readable) or w (device-writable). */
static struct request *request_build(const char *kinds, const uint32_t *lengths)
{
    struct request *r = request_alloc();
    for (unsigned i = 0; kinds[i]; i++)
        request_add_buffer(r, lengths[i], kinds[i] == 'w');
    request_seal(r);
    return r;
}

/* 1 to 4 buffers, at least one readable (its bytes seed the device's pattern). */
static struct request *request_random(void)
{
    struct request *r = request_alloc();
    unsigned count = 1 + rnd() % 4, readable = 1 + rnd() % count;
    for (unsigned i = 0; i < count; i++)
        request_add_buffer(r, i < readable ? 1 + rnd() % 32 : 1 + rnd() % 64, i >= readable);
    request_seal(r);
    return r;
}

static struct request *as_request(void *token)
{
    assert_non_null(token);
    assert_non_null(h.pool);
    uintptr_t offset = (uintptr_t)token - (uintptr_t)h.pool;
    assert_true((uintptr_t)token >= (uintptr_t)h.pool && offset < POOL_SIZE * sizeof(*h.pool));
    assert_int_equal(offset % sizeof(*h.pool), 0);
    return token;
}

/* The device has not touched the writable bytes; the readable ones are intact. */
static void check_untouched(const struct request *r)
{
    uint32_t seed = SIM_SEED_INIT;
    for (unsigned i = 0; i < r->count; i++) {
        const uint8_t *bytes = (const uint8_t *)(uintptr_t)r->buffers[i].address;
        if (!r->buffers[i].device_writes) {
            seed = sim_hash(seed, bytes, r->buffers[i].length);
            continue;
        }
        for (uint32_t j = 0; j < r->buffers[i].length; j++)
            if (bytes[j] != FILL)
                fail_msg("buffer %u of a chain not used was written at byte %u", i, j);
    }
    assert_int_equal(seed, r->seed);
}

/* The first `length` writable bytes hold this chain's pattern, the rest is untouched. */
static void check_written(const struct request *r, uint32_t length)
{
    uint32_t offset = 0, seed = SIM_SEED_INIT;
    for (unsigned i = 0; i < r->count; i++)
        if (!r->buffers[i].device_writes)
            seed = sim_hash(seed, (const uint8_t *)(uintptr_t)r->buffers[i].address, r->buffers[i].length);
    assert_int_equal(seed, r->seed);
    for (unsigned i = 0; i < r->count; i++) {
        if (!r->buffers[i].device_writes)
            continue;
        const uint8_t *bytes = (const uint8_t *)(uintptr_t)r->buffers[i].address;
        for (uint32_t j = 0; j < r->buffers[i].length; j++, offset++) {
            uint8_t expected = offset < length ? sim_pattern(r->seed, offset) : FILL;
            if (bytes[j] != expected)
                fail_msg("buffer %u byte %u: %#x, expected %#x (written length %u)", i, j, bytes[j],
                         expected, length);
        }
    }
}

/* ---- the queue and its device ------------------------------------------ */

/* the next open_queue uses the modern compact layout; teardown clears it */
static int compact_layout;

static void open_queue(enum vq_layout layout, uint16_t size, int event_idx, uint16_t indirect_max)
{
    if (!h.rng)
        h.rng = 0x12345678u ^ size ^ ((uint32_t)layout << 20) ^ ((uint32_t)event_idx << 21) ^
                ((uint32_t)indirect_max << 22);
    h.config = (struct vq_config){ layout, size, event_idx, indirect_max, compact_layout };
    h.ring_bytes = vq_ring_bytes(&h.config);
    h.ring_allocated = (h.ring_bytes + 4095) & ~(size_t)4095;
    h.state_bytes = vq_state_bytes(&h.config);
    h.ring = aligned_alloc(4096, h.ring_allocated);
    h.state = malloc(h.state_bytes);
    assert_non_null(h.ring);
    assert_non_null(h.state);
    memset(h.ring, 0xa5, h.ring_allocated); /* init must clear what it uses */
    memset(h.state, 0xa5, h.state_bytes);
    POISON(h.ring + h.ring_bytes, h.ring_allocated - h.ring_bytes);
    assert_int_equal(vq_init(&h.vq, &h.config, h.ring, h.state), 0);
    assert_int_equal(sim_init(&h.dev, layout == VQ_PACKED, size, event_idx, indirect_max > 1,
                              vq_descriptor_area(&h.vq), vq_driver_area(&h.vq),
                              vq_device_area(&h.vq), rnd()),
                     0);
    h.dev_open = 1;
    h.free_descriptors = h.free_ids = size;
    h.in_flight = 0;
    h.log_cursor = 0;
}

static void open_params(const struct params *p, uint16_t size)
{
    open_queue(p->layout, size, p->event_idx, p->indirect_max);
}

static void close_queue(void)
{
    if (h.pool) {
        for (unsigned i = 0; i < POOL_SIZE; i++)
            if (h.pool[i].in_use)
                request_release(&h.pool[i]);
        free(h.pool);
    }
    if (h.dev_open)
        sim_free(&h.dev);
    if (h.ring) {
        UNPOISON(h.ring, h.ring_allocated);
        free(h.ring);
    }
    free(h.state);
    memset(&h, 0, sizeof(h));
}

static int teardown(void **state)
{
    (void)state;
    close_queue();
    compact_layout = 0;
    return 0;
}

static int room_for(const struct request *r)
{
    if (h.config.layout == VQ_SPLIT)
        return h.free_descriptors >= r->needed;
    return h.free_ids > 0 && h.free_descriptors >= r->needed;
}

static int add(struct request *r)
{
    int result = vq_add_chain(&h.vq, r->buffers, r->count, r);
    if (result == 0) {
        assert_false(r->in_flight);
        r->in_flight = 1;
        h.free_descriptors -= r->needed;
        h.free_ids--;
        h.in_flight++;
    }
    return result;
}

static void note_returned(struct request *r)
{
    if (!r->in_flight)
        fail_msg("a token came back that was not in flight");
    r->in_flight = 0;
    h.free_descriptors += r->needed;
    h.free_ids++;
    h.in_flight--;
}

static void expect_used(struct request *r, uint32_t length, enum vq_used_status status)
{
    void *token = NULL;
    uint32_t got = 0xdeadbeef;
    assert_int_equal(vq_get_used(&h.vq, &token, &got), status);
    assert_ptr_equal(token, r);
    assert_int_equal(got, length);
    note_returned(r);
}

static void expect_none(void)
{
    void *token = NULL;
    uint32_t length = 0;
    assert_int_equal(vq_get_used(&h.vq, &token, &length), VQ_USED_NONE);
}

static void clear_log(void)
{
    if (h.log_cursor == h.dev.log_count) {
        h.dev.log_count = 0;
    } else {
        memmove(h.dev.log, h.dev.log + h.log_cursor,
                (h.dev.log_count - h.log_cursor) * sizeof(*h.dev.log));
        h.dev.log_count -= h.log_cursor;
    }
    h.log_cursor = 0;
}

/* Takes up to `max` used chains: each must be the next one the device
 * logged, with the length it wrote and its pattern in the right buffers. */
static unsigned take_logged(unsigned max)
{
    unsigned taken = 0;

    while (taken < max && h.log_cursor < h.dev.log_count) {
        const struct sim_completion *c = &h.dev.log[h.log_cursor++];
        void *token = NULL;
        uint32_t length = 0xdeadbeef;
        assert_int_equal(vq_get_used(&h.vq, &token, &length), VQ_USED_OK);
        struct request *r = as_request(token);
        assert_true(r->in_use);
        if (r->buffers[0].address != c->first_address)
            fail_msg("used chains out of the device's order (completion %u)", h.log_cursor - 1);
        assert_int_equal(length, c->written);
        check_written(r, length);
        note_returned(r);
        request_release(r);
        taken++;
    }
    clear_log();
    return taken;
}

static void take_all_logged(void)
{
    take_logged(~0u);
    expect_none();
}

static unsigned find_pending(const struct request *r)
{
    for (unsigned i = 0; i < h.dev.pending_count; i++)
        if (h.dev.pending[i].buffers[0].address == r->buffers[0].address)
            return i;
    fail_msg("the device never read this chain");
    return 0;
}

/* Device-side event fields through the addresses the transport got. */
static uint16_t *split_avail_event(void) { return (uint16_t *)&h.dev.used->ring[h.config.size]; }
static uint16_t *split_used_event(void) { return &h.dev.avail->ring[h.config.size]; }

/* ---- init and layout --------------------------------------------------- */

static int try_init(enum vq_layout layout, uint16_t size)
{
    struct vq_config config = { layout, size, 0, 0, 0 };
    size_t ring_bytes = vq_ring_bytes(&config), state_bytes = vq_state_bytes(&config);
    void *ring = aligned_alloc(4096, (ring_bytes + 4095) & ~(size_t)4095);
    void *state = malloc(state_bytes ? state_bytes : 1);
    struct virtqueue vq;
    assert_non_null(ring);
    assert_non_null(state);
    memset(&vq, 0x5a, sizeof(vq));
    int result = vq_init(&vq, &config, ring, state);
    if (result == 0) {
        assert_int_equal(vq_in_flight(&vq), 0);
        assert_int_equal(vq_is_broken(&vq), 0);
    }
    free(ring);
    free(state);
    return result;
}

static void test_init_split_rejects_zero_oversized_and_non_power_of_two_sizes(void **state)
{
    (void)state;
    static const uint16_t bad[] = { 0, 3, 5, 6, 12, 100, 1000, 1023, 1025, 2048, 32768, 65535 };
    static const uint16_t good[] = { 1, 2, 4, 8, 16, 256, 512, 1024 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (try_init(VQ_SPLIT, bad[i]) != -1)
            fail_msg("split size %u accepted", bad[i]);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (try_init(VQ_SPLIT, good[i]) != 0)
            fail_msg("split size %u refused", good[i]);
}

static void test_init_packed_accepts_any_size_up_to_the_maximum(void **state)
{
    (void)state;
    static const uint16_t bad[] = { 0, 1025, 4096, 65535 };
    static const uint16_t good[] = { 1, 3, 12, 100, 1000, 1023, 1024 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (try_init(VQ_PACKED, bad[i]) != -1)
            fail_msg("packed size %u accepted", bad[i]);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (try_init(VQ_PACKED, good[i]) != 0)
            fail_msg("packed size %u refused", good[i]);
}

static void test_init_clears_the_rings_and_starts_empty(void **state)
{
    const struct params *p = *state;
    open_params(p, 16);
    /* the indirect tables at the end are left as they were: each is
     * written up to its chain's length before the device may read it */
    size_t tables = h.config.indirect_max > 1 ? (size_t)16 * h.config.indirect_max * 16 : 0;
    for (size_t i = 0; i < h.ring_bytes - tables; i++)
        if (h.ring[i])
            fail_msg("ring byte %zu is %#x after init", i, h.ring[i]);
    assert_int_equal(vq_in_flight(&h.vq), 0);
    assert_int_equal(vq_is_broken(&h.vq), 0);
    struct vq_stats zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&h.vq.stats, &zero, sizeof(zero));
    expect_none();
    assert_int_equal(sim_has_available(&h.dev), 0);
}

static void test_packed_size_100_fills_drains_and_wraps(void **state)
{
    (void)state;
    open_queue(VQ_PACKED, 100, 0, 0);
    for (int round = 0; round < 3; round++) {
        for (unsigned i = 0; i < 100; i++)
            assert_int_equal(add(request_build("w", (const uint32_t[]){ 8 })), 0);
        struct request *extra = request_build("w", (const uint32_t[]){ 8 });
        assert_int_equal(add(extra), ERROR_BUSY);
        request_release(extra);
        assert_int_equal(vq_in_flight(&h.vq), 100);
        vq_kick_prepare(&h.vq);
        assert_int_equal(sim_fetch(&h.dev), 100);
        /* a partial round shifts where the next lap starts */
        assert_int_equal(sim_complete(&h.dev, round == 1 ? 37 : 100, SIM_RANDOM), round == 1 ? 37 : 100);
        take_all_logged();
        if (round == 1) {
            for (unsigned i = 0; i < 37; i++)
                assert_int_equal(add(request_build("w", (const uint32_t[]){ 3 })), 0);
            vq_kick_prepare(&h.vq);
            assert_int_equal(sim_fetch(&h.dev), 37);
            assert_int_equal(sim_complete(&h.dev, 100, SIM_REVERSED), 100);
            take_all_logged();
        }
        assert_int_equal(vq_in_flight(&h.vq), 0);
    }
    assert_int_equal(h.vq.stats.added, 337);
    assert_int_equal(h.vq.stats.completed, 337);
}

static void test_split_areas_follow_the_legacy_layout_inside_ring_bytes(void **state)
{
    (void)state;
    static const uint16_t sizes[] = { 1, 2, 4, 8, 16, 128, 256, 1024 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (uint16_t indirect = 0; indirect <= 4; indirect += 4) {
            uint16_t size = sizes[i];
            open_queue(VQ_SPLIT, size, 1, indirect);
            uint64_t base = (uintptr_t)h.ring;
            uint64_t desc = vq_descriptor_area(&h.vq) - base, avail = vq_driver_area(&h.vq) - base,
                     used = vq_device_area(&h.vq) - base;
            size_t avail_end = 16u * size + 6 + 2u * size;
            assert_int_equal(desc, 0);
            assert_int_equal(avail, 16u * size); /* right after the table */
            assert_int_equal(used % 4096, 0);
            assert_int_equal(used, (avail_end + 4095) & ~(size_t)4095); /* legacy: next page */
            assert_true(used + 6 + 8u * size <= h.ring_bytes);
            close_queue();
        }
    }
}

/* Modern devices take each area at its own address (4.1.4.3): the used
 * ring right after the available ring, a small queue in a few hundred
 * bytes (virtio-console's many data queues, docs/virtio.md). */
static void test_split_compact_areas_are_packed_inside_ring_bytes(void **state)
{
    (void)state;
    static const uint16_t sizes[] = { 1, 2, 8, 32, 256 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (uint16_t indirect = 0; indirect <= 4; indirect += 4) {
            uint16_t size = sizes[i];
            compact_layout = 1;
            open_queue(VQ_SPLIT, size, 1, indirect);
            uint64_t base = (uintptr_t)h.ring;
            uint64_t avail = vq_driver_area(&h.vq) - base, used = vq_device_area(&h.vq) - base;
            size_t avail_end = 16u * size + 6 + 2u * size;
            assert_int_equal(avail, 16u * size);
            assert_int_equal(used, (avail_end + 15) & ~(size_t)15); /* 16 >= the 4 the used ring asks */
            assert_true(used + 6 + 8u * size <= h.ring_bytes);
            if (!indirect)
                assert_true(h.ring_bytes < (size_t)32 * size + 64);
            close_queue();
        }
    }
    struct vq_config eight = { VQ_SPLIT, 8, 1, 0, 1 };
    assert_true(vq_ring_bytes(&eight) + vq_state_bytes(&eight) <= 512);
    compact_layout = 0;
}

static void test_packed_areas_are_aligned_and_inside_ring_bytes(void **state)
{
    (void)state;
    static const uint16_t sizes[] = { 1, 3, 8, 12, 100, 1024 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint16_t size = sizes[i];
        open_queue(VQ_PACKED, size, 1, 4);
        uint64_t base = (uintptr_t)h.ring;
        uint64_t desc = vq_descriptor_area(&h.vq) - base, driver = vq_driver_area(&h.vq) - base,
                 device = vq_device_area(&h.vq) - base;
        assert_int_equal(desc, 0);
        assert_int_equal(driver % 4, 0);
        assert_int_equal(device % 4, 0);
        assert_true(driver >= 16u * size && device >= 16u * size);
        assert_true(driver + 4 <= device || device + 4 <= driver);
        assert_true(driver + 4 <= h.ring_bytes && device + 4 <= h.ring_bytes);
        close_queue();
    }
}

static void test_ring_bytes_grow_with_indirect_max(void **state)
{
    (void)state;
    static const uint16_t sizes[] = { 1, 8, 12, 256 };
    for (int layout = VQ_SPLIT; layout <= VQ_PACKED; layout++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            if (layout == VQ_SPLIT && sizes[i] == 12)
                continue;
            struct vq_config c = { layout, sizes[i], 0, 0, 0 };
            size_t none = vq_ring_bytes(&c), previous = none;
            c.indirect_max = 1; /* 1 means no indirect descriptors */
            assert_int_equal(vq_ring_bytes(&c), none);
            for (uint16_t max = 2; max <= 32; max *= 2) {
                c.indirect_max = max;
                size_t bytes = vq_ring_bytes(&c);
                assert_true(bytes > previous);
                assert_true(bytes >= none + (size_t)sizes[i] * max * 16);
                previous = bytes;
            }
        }
    }
}

/* ---- one chain, capacity, ordering ------------------------------------- */

static void test_one_chain_comes_back_with_its_token_and_written_length(void **state)
{
    const struct params *p = *state;
    open_params(p, 8);
    expect_none();
    struct request *r = request_build("rww", (const uint32_t[]){ 16, 64, 1 });
    assert_int_equal(add(r), 0);
    assert_int_equal(vq_in_flight(&h.vq), 1);
    expect_none(); /* available, not used */
    assert_int_equal(vq_kick_prepare(&h.vq), 1);
    assert_int_equal(sim_fetch(&h.dev), 1);
    const struct sim_chain *c = &h.dev.pending[0];
    assert_int_equal(c->count, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(c->buffers[i].address, r->buffers[i].address);
        assert_int_equal(c->buffers[i].length, r->buffers[i].length);
        assert_int_equal(c->buffers[i].writable, r->buffers[i].device_writes);
    }
    assert_int_equal(c->indirect, p->indirect_max > 1);
    expect_none(); /* read by the device, not used yet */
    check_untouched(r);
    assert_int_equal(sim_complete(&h.dev, 1, SIM_IN_ORDER), 1);
    expect_used(r, 65, VQ_USED_OK);
    check_written(r, 65);
    expect_none();
    assert_int_equal(vq_in_flight(&h.vq), 0);

    /* a device that fills only part of the space */
    h.dev.write_limit = 37;
    struct request *r2 = request_build("rww", (const uint32_t[]){ 4, 30, 70 });
    assert_int_equal(add(r2), 0);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 1);
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    expect_used(r2, 37, VQ_USED_OK);
    check_written(r2, 37);
    expect_none();
    assert_int_equal(h.vq.stats.added, 2);
    assert_int_equal(h.vq.stats.completed, 2);
    assert_int_equal(h.vq.stats.bad_length + h.vq.stats.bad_id + h.vq.stats.stale_id + h.vq.stats.bad_index, 0);
}

/* Adds copies of one shape until the queue says full; returns how many went in. */
static unsigned fill(const char *kinds, const uint32_t *lengths)
{
    unsigned added = 0;
    for (;;) {
        struct request *r = request_build(kinds, lengths);
        int expected = room_for(r) ? 0 : ERROR_BUSY;
        int result = add(r);
        assert_int_equal(result, expected);
        if (result) {
            request_release(r);
            return added;
        }
        added++;
        assert_true(added <= h.config.size);
    }
}

static void test_ring_fills_to_capacity_and_takes_chains_again_after_completions(void **state)
{
    const struct params *p = *state;
    static const uint32_t three[] = { 8, 32, 1 }, one[] = { 16 };
    open_params(p, 8);

    /* three buffers a chain: one descriptor each with indirect, else three */
    unsigned capacity = p->indirect_max > 1 ? 8 : 8 / 3;
    assert_int_equal(fill("rww", three), capacity);
    assert_int_equal(vq_in_flight(&h.vq), capacity);
    assert_int_equal(h.vq.stats.added, capacity);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), capacity);
    assert_int_equal(sim_complete(&h.dev, 1, SIM_IN_ORDER), 1);
    assert_int_equal(fill("rww", three), 0); /* used, but the driver has not taken it */
    take_all_logged();
    assert_int_equal(fill("rww", three), 1);
    assert_int_equal(fill("rww", three), 0);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 1);
    assert_int_equal(sim_complete(&h.dev, capacity, SIM_REVERSED), capacity);
    take_all_logged();
    assert_int_equal(vq_in_flight(&h.vq), 0);

    /* one buffer a chain: every layout takes `size` of them */
    for (int round = 0; round < 4; round++) {
        assert_int_equal(fill("w", one), 8);
        assert_int_equal(vq_in_flight(&h.vq), 8);
        vq_kick_prepare(&h.vq);
        assert_int_equal(sim_fetch(&h.dev), 8);
        assert_int_equal(sim_complete(&h.dev, 3, SIM_RANDOM), 3);
        take_all_logged();
        assert_int_equal(fill("w", one), 3);
        vq_kick_prepare(&h.vq);
        assert_int_equal(sim_fetch(&h.dev), 3);
        assert_int_equal(sim_complete(&h.dev, 8, round % 2 ? SIM_RANDOM : SIM_REVERSED), 8);
        take_all_logged();
    }
    assert_int_equal(h.vq.stats.added, h.vq.stats.completed);
}

static void test_out_of_order_completion_returns_tokens_in_the_device_order(void **state)
{
    const struct params *p = *state;
    static const char *const kinds[] = { "r", "rw", "rww", "rwww", "rrw", "w" };
    static const uint32_t lengths[] = { 5, 9, 13, 17 };
    static const unsigned order[] = { 3, 0, 5, 1, 4, 2 };
    struct request *r[6];
    open_params(p, 16);
    for (unsigned i = 0; i < 6; i++) {
        r[i] = request_build(kinds[i], lengths);
        assert_int_equal(add(r[i]), 0);
    }
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 6);
    for (unsigned i = 0; i < 6; i++) {
        sim_complete_one(&h.dev, find_pending(r[order[i]]), -1);
        assert_int_equal(h.dev.log[i].first_address, r[order[i]]->buffers[0].address);
    }
    take_all_logged();

    /* the descriptors and ids came back in a new order: reuse them all */
    for (int round = 0; round < 20; round++) {
        unsigned added = 0;
        for (;;) {
            struct request *x = request_random();
            int expected = room_for(x) ? 0 : ERROR_BUSY;
            int result = add(x);
            assert_int_equal(result, expected);
            if (result) {
                request_release(x);
                break;
            }
            added++;
        }
        assert_true(added > 0 || h.in_flight > 0);
        vq_kick_prepare(&h.vq);
        sim_fetch(&h.dev);
        sim_complete(&h.dev, 1 + rnd() % h.dev.pending_count, (enum sim_order)(round % 3));
        take_all_logged();
    }
    sim_complete(&h.dev, h.dev.pending_count, SIM_RANDOM);
    take_all_logged();
    assert_int_equal(vq_in_flight(&h.vq), 0);
}

static void test_in_flight_counts_chains_not_descriptors(void **state)
{
    const struct params *p = *state;
    open_params(p, 8);
    struct request *a = request_build("r", (const uint32_t[]){ 4 });
    struct request *b = request_build("rw", (const uint32_t[]){ 4, 4 });
    struct request *c = request_build("rww", (const uint32_t[]){ 4, 4, 4 });
    assert_int_equal(vq_in_flight(&h.vq), 0);
    assert_int_equal(add(a), 0);
    assert_int_equal(vq_in_flight(&h.vq), 1);
    assert_int_equal(add(b), 0);
    assert_int_equal(vq_in_flight(&h.vq), 2);
    assert_int_equal(add(c), 0);
    assert_int_equal(vq_in_flight(&h.vq), 3);
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete_one(&h.dev, find_pending(b), -1);
    assert_int_equal(vq_in_flight(&h.vq), 3); /* used, not yet taken */
    expect_used(b, 4, VQ_USED_OK);
    assert_int_equal(vq_in_flight(&h.vq), 2);
    sim_complete(&h.dev, 2, SIM_REVERSED);
    expect_used(c, 8, VQ_USED_OK);
    assert_int_equal(vq_in_flight(&h.vq), 1);
    expect_used(a, 0, VQ_USED_OK);
    assert_int_equal(vq_in_flight(&h.vq), 0);
}

/* ---- wrap-around ------------------------------------------------------- */

/*
 * Thousands of add/kick/complete/take cycles with random chains, random
 * completion order, partial device writes, a device that goes idle or
 * busy, and a driver that sleeps or polls. Checks every step against a
 * model: when add must fail, when a kick is due, when the device must (not)
 * interrupt, which token comes back next and what lands in its buffers.
 */
static void run_stress(const struct params *p, uint16_t size, uint64_t chains)
{
    open_params(p, size);
    h.dev.partial_writes = 1;
    h.dev.set_write_flag = 1;
    uint64_t kicks = 0, suppressed = 0, added = 0, progress_at = 0;
    int idle = 1, enabled = 1;
    sim_set_idle(&h.dev);

    for (uint64_t round = 0; added < chains; round++) {
        if (round - progress_at > 1000)
            fail_msg("no chain added or used for 1000 rounds (%llu added)", (unsigned long long)added);
        unsigned want = rnd() % (size + 1), added_now = 0;
        for (unsigned i = 0; i < want; i++) {
            struct request *r = request_random();
            int expected = room_for(r) ? 0 : ERROR_BUSY;
            int result = add(r);
            assert_int_equal(result, expected);
            if (result) {
                request_release(r);
                break;
            }
            added_now++;
        }
        added += added_now;
        assert_int_equal(vq_in_flight(&h.vq), h.in_flight);

        /* an idle device asked to hear of the next chain; a busy one polls */
        int kick = vq_kick_prepare(&h.vq);
        int expected_kick = idle && (added_now > 0 || !p->event_idx);
        if (kick != expected_kick)
            fail_msg("kick %d, expected %d (idle %d, added %u)", kick, expected_kick, idle, added_now);
        if (kick)
            kicks++;
        else
            suppressed++;
        if (kick || !idle)
            sim_fetch(&h.dev);
        assert_int_equal(sim_has_available(&h.dev), 0);
        idle = rnd() % 2;
        if (idle)
            sim_set_idle(&h.dev);
        else
            sim_set_busy(&h.dev);

        /* the driver polls, or enables interrupts and sleeps, or (when it has
         * taken everything with interrupts left on) just sleeps */
        int sleeping = 0, polling = 0, mode = rnd() % 3;
        if (mode == 0) {
            vq_disable_interrupts(&h.vq);
            polling = 1;
            enabled = 0;
        } else if (mode == 1 || !enabled || h.log_cursor < h.dev.log_count) {
            int pending = vq_enable_interrupts(&h.vq);
            assert_int_equal(pending, h.log_cursor < h.dev.log_count);
            sleeping = !pending;
            enabled = 1;
        } else {
            sleeping = 1;
        }
        unsigned done = sim_complete(&h.dev, rnd() % (h.dev.pending_count + 1), (enum sim_order)(rnd() % 3));
        if (added_now || done)
            progress_at = round;
        if (done && sleeping && !h.dev.last_batch_interrupted)
            fail_msg("lost interrupt: the driver sleeps and %u chains were used", done);
        if (done && polling && h.dev.last_batch_interrupted)
            fail_msg("interrupt while interrupts are disabled");
        take_logged(rnd() % 2 ? ~0u : rnd() % (size + 1));
        assert_int_equal(vq_in_flight(&h.vq), h.in_flight);
    }
    for (int round = 0; h.in_flight; round++) {
        if (round > 100)
            fail_msg("%u chains never came back", h.in_flight);
        sim_fetch(&h.dev);
        sim_complete(&h.dev, h.dev.pending_count, SIM_RANDOM);
        take_all_logged();
    }
    assert_int_equal(vq_in_flight(&h.vq), 0);
    assert_int_equal(h.vq.stats.added, added);
    assert_int_equal(h.vq.stats.completed, added);
    assert_int_equal(h.vq.stats.kicks, kicks);
    assert_int_equal(h.vq.stats.kicks_suppressed, suppressed);
    assert_int_equal(h.vq.stats.bad_id + h.vq.stats.stale_id + h.vq.stats.bad_index + h.vq.stats.bad_length, 0);
    if (p->layout == VQ_SPLIT)
        assert_true(added > 65536); /* the 16-bit indices wrapped */
}

static void test_wrap_around_size_8(void **state) { run_stress(*state, 8, 70000); }
/* the modern compact layout under the same model */
static void test_wrap_around_compact_size_8(void **state)
{
    compact_layout = 1;
    run_stress(*state, 8, 70000);
}
static void test_wrap_around_size_16(void **state) { run_stress(*state, 16, 70000); }
static void test_wrap_around_packed_size_12(void **state) { run_stress(*state, 12, 30000); }

/* ---- indirect descriptors ---------------------------------------------- */

static void test_indirect_chain_takes_one_ring_descriptor_split(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 4);
    struct request *r = request_build("rww", (const uint32_t[]){ 8, 16, 1 });
    assert_int_equal(add(r), 0);
    uint16_t head = h.dev.avail->ring[0];
    assert_true(head < 8);
    const struct vring_desc *d = &h.dev.desc[head];
    assert_int_equal(d->flags, VRING_DESC_F_INDIRECT);
    assert_int_equal(d->length, 16 * 3);
    assert_true(d->address >= (uintptr_t)h.ring && d->address + 48 <= (uintptr_t)h.ring + h.ring_bytes);
    assert_int_equal(d->address % 16, 0);
    const struct vring_desc *table = (const struct vring_desc *)(uintptr_t)d->address;
    static const uint16_t flags[] = { VRING_DESC_F_NEXT, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, VRING_DESC_F_WRITE };
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(table[i].address, r->buffers[i].address);
        assert_int_equal(table[i].length, r->buffers[i].length);
        assert_int_equal(table[i].flags, flags[i]);
        if (i < 2)
            assert_int_equal(table[i].next, i + 1);
    }
    /* one descriptor a chain: eight such chains fit */
    assert_int_equal(fill("rww", (const uint32_t[]){ 8, 16, 1 }), 7);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 8);
    for (unsigned i = 0; i < 8; i++)
        assert_true(h.dev.pending[i].indirect);
    sim_complete(&h.dev, 8, SIM_RANDOM);
    take_all_logged();
}

static void test_indirect_chain_takes_one_ring_descriptor_packed(void **state)
{
    (void)state;
    open_queue(VQ_PACKED, 8, 0, 4);
    struct request *r = request_build("rrww", (const uint32_t[]){ 8, 4, 16, 1 });
    assert_int_equal(add(r), 0);
    const struct vring_packed_desc *d = &h.dev.ring[0];
    /* first lap: AVAIL set, USED clear; no WRITE, no NEXT on the table descriptor */
    assert_int_equal(d->flags, VRING_DESC_F_INDIRECT | VRING_PACKED_DESC_F_AVAIL);
    assert_int_equal(d->length, 16 * 4);
    assert_true(d->id < 8);
    assert_true(d->address >= (uintptr_t)h.ring && d->address + 64 <= (uintptr_t)h.ring + h.ring_bytes);
    assert_int_equal(d->address % 16, 0);
    const struct vring_packed_desc *table = (const struct vring_packed_desc *)(uintptr_t)d->address;
    static const uint16_t flags[] = { 0, 0, VRING_DESC_F_WRITE, VRING_DESC_F_WRITE };
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(table[i].address, r->buffers[i].address);
        assert_int_equal(table[i].length, r->buffers[i].length);
        assert_int_equal(table[i].flags, flags[i]); /* WRITE is the only flag allowed */
    }
    assert_int_equal(h.dev.ring[1].flags, 0); /* the next chain starts at 1 */
    struct request *r2 = request_build("rw", (const uint32_t[]){ 8, 8 });
    assert_int_equal(add(r2), 0);
    assert_int_equal(h.dev.ring[1].flags, VRING_DESC_F_INDIRECT | VRING_PACKED_DESC_F_AVAIL);
    assert_int_equal(fill("rww", (const uint32_t[]){ 8, 16, 1 }), 6);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 8);
    sim_complete(&h.dev, 8, SIM_REVERSED);
    take_all_logged();
}

static void test_chain_longer_than_indirect_max_falls_back_to_direct(void **state)
{
    const struct params *p = *state;
    open_queue(p->layout, 8, 0, 4);
    struct request *r = request_build("rwwww", (const uint32_t[]){ 4, 4, 4, 4, 4 });
    assert_int_equal(r->needed, 5);
    assert_int_equal(add(r), 0);
    if (p->layout == VQ_SPLIT) {
        uint16_t index = h.dev.avail->ring[0];
        for (unsigned i = 0; i < 5; i++) {
            const struct vring_desc *d = &h.dev.desc[index];
            assert_int_equal(d->flags & VRING_DESC_F_INDIRECT, 0);
            assert_int_equal(d->address, r->buffers[i].address);
            assert_int_equal(!!(d->flags & VRING_DESC_F_NEXT), i < 4);
            index = d->next;
        }
    } else {
        for (unsigned i = 0; i < 5; i++) {
            const struct vring_packed_desc *d = &h.dev.ring[i];
            assert_int_equal(d->flags & VRING_DESC_F_INDIRECT, 0);
            assert_int_equal(d->address, r->buffers[i].address);
            assert_int_equal(!!(d->flags & VRING_DESC_F_NEXT), i < 4);
        }
        assert_true(h.dev.ring[4].id < 8); /* the buffer id is in the last one */
        assert_int_equal(h.dev.ring[5].flags, 0);
    }
    /* five of eight descriptors taken: a direct five no longer fits, indirect ones do */
    struct request *x = request_build("rwwww", (const uint32_t[]){ 4, 4, 4, 4, 4 });
    assert_int_equal(add(x), ERROR_BUSY);
    request_release(x);
    assert_int_equal(fill("rwww", (const uint32_t[]){ 4, 4, 4, 4 }), 3);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 4);
    assert_false(h.dev.pending[0].indirect);
    assert_true(h.dev.pending[1].indirect);
    sim_complete(&h.dev, 4, SIM_RANDOM);
    take_all_logged();
}

static void test_single_buffer_chain_is_direct_even_with_indirect(void **state)
{
    const struct params *p = *state;
    open_queue(p->layout, 8, 0, 4);
    struct request *r = request_build("w", (const uint32_t[]){ 32 });
    assert_int_equal(add(r), 0);
    if (p->layout == VQ_SPLIT) {
        const struct vring_desc *d = &h.dev.desc[h.dev.avail->ring[0]];
        assert_int_equal(d->flags, VRING_DESC_F_WRITE);
        assert_int_equal(d->address, r->buffers[0].address);
        assert_int_equal(d->length, 32);
    } else {
        const struct vring_packed_desc *d = &h.dev.ring[0];
        assert_int_equal(d->flags, VRING_DESC_F_WRITE | VRING_PACKED_DESC_F_AVAIL);
        assert_int_equal(d->address, r->buffers[0].address);
        assert_int_equal(d->length, 32);
    }
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    take_all_logged();
}

static void test_indirect_max_of_one_means_no_indirect(void **state)
{
    const struct params *p = *state;
    open_queue(p->layout, 8, 0, 1);
    assert_int_equal(fill("rw", (const uint32_t[]){ 4, 4 }), 4);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 4);
    for (unsigned i = 0; i < 4; i++)
        assert_false(h.dev.pending[i].indirect);
    sim_complete(&h.dev, 4, SIM_IN_ORDER);
    take_all_logged();
}

/* ---- chains the queue refuses ------------------------------------------ */

#define assert_refused(buffers, count, token) \
    assert_int_equal(vq_add_chain(&h.vq, (buffers), (count), (token)), ERROR_INVALID)

static void test_invalid_chains_are_refused_without_side_effects(void **state)
{
    const struct params *p = *state;
    open_params(p, 8);
    uint8_t *before = malloc(h.ring_bytes);
    assert_non_null(before);
    memcpy(before, h.ring, h.ring_bytes);
    uint8_t a[8], b[8], c[8];
    struct vq_buffer rw[] = { { (uintptr_t)a, 8, 0 }, { (uintptr_t)b, 8, 1 }, { (uintptr_t)c, 8, 1 } };
    struct vq_buffer wr[] = { { (uintptr_t)a, 8, 0 }, { (uintptr_t)b, 8, 1 }, { (uintptr_t)c, 8, 0 } };
    int token;
    assert_refused(rw, 0, &token);
    assert_refused(wr, 3, &token);   /* readable after writable */
    assert_refused(wr + 1, 2, &token);
    assert_refused(rw, 3, NULL);
    /* nine direct descriptors in a queue of eight; with indirect_max 4 it is direct too */
    struct vq_buffer nine[9];
    for (unsigned i = 0; i < 9; i++)
        nine[i] = (struct vq_buffer){ (uintptr_t)a, 8, 0 };
    assert_refused(nine, 9, &token);
    assert_int_equal(vq_in_flight(&h.vq), 0);
    assert_int_equal(h.vq.stats.added, 0);
    assert_int_equal(sim_has_available(&h.dev), 0);
    for (size_t i = 0; i < h.ring_bytes; i++)
        if (h.ring[i] != before[i])
            fail_msg("a refused chain changed ring byte %zu", i);
    free(before);
    /* eight direct descriptors fit exactly */
    struct request *r = request_build("rrrrwwww", (const uint32_t[]){ 1, 2, 3, 4, 5, 6, 7, 8 });
    assert_int_equal(add(r), 0);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), 1);
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    take_all_logged();
}

static void test_writable_bytes_up_to_4gib_minus_one_are_accepted(void **state)
{
    const struct params *p = *state;
    open_params(p, 8);
    int token;
    struct vq_buffer max[] = { { 0x1000, 0x7fffffff, 1 }, { 0x2000, 0x80000000u, 1 } };
    struct vq_buffer over[] = { { 0x1000, 0x80000000u, 1 }, { 0x2000, 0x80000000u, 1 } };
    assert_refused(over, 2, &token); /* a used length could not say 4 GiB */
    assert_int_equal(vq_add_chain(&h.vq, max, 2, &token), 0);
}

/* ---- available-buffer notifications (kicks) ----------------------------- */

static void add_small(unsigned chains)
{
    for (unsigned i = 0; i < chains; i++)
        assert_int_equal(add(request_build("w", (const uint32_t[]){ 4 })), 0);
}

static void device_takes_everything(void)
{
    sim_fetch(&h.dev);
    sim_complete(&h.dev, h.dev.pending_count, SIM_IN_ORDER);
    take_all_logged();
}

static void test_split_kick_follows_no_notify_without_event_idx(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    h.dev.used->flags = VRING_USED_F_NO_NOTIFY;
    add_small(1);
    assert_int_equal(vq_kick_prepare(&h.vq), 0);
    h.dev.used->flags = 0;
    add_small(1);
    assert_int_equal(vq_kick_prepare(&h.vq), 1);
    /* without event_idx, avail_event means nothing */
    *split_avail_event() = 100;
    add_small(2);
    assert_int_equal(vq_kick_prepare(&h.vq), 1);
    h.dev.used->flags = VRING_USED_F_NO_NOTIFY;
    *split_avail_event() = 4;
    add_small(1);
    assert_int_equal(vq_kick_prepare(&h.vq), 0);
    assert_int_equal(h.vq.stats.kicks, 2);
    assert_int_equal(h.vq.stats.kicks_suppressed, 2);
    device_takes_everything();
}

/* The device sets avail_event anywhere around the driver's window; the
 * driver must kick exactly when the chain placed at avail_event is among
 * the ones it added since its last kick check (old <= event < new, mod 2^16). */
static void test_split_kick_follows_avail_event_across_index_wrap(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 1, 0);
    uint16_t old = 0;
    uint64_t kicks = 0, suppressed = 0, total = 0;
    while (total < 70000) {
        unsigned k = 1 + rnd() % 4;
        int delta = (int)(rnd() % (k + 7)) - 3;
        *split_avail_event() = (uint16_t)(old + delta);
        /* with event_idx the driver ignores NO_NOTIFY */
        h.dev.used->flags = rnd() % 2 ? VRING_USED_F_NO_NOTIFY : 0;
        add_small(k);
        assert_int_equal(h.dev.avail->index, (uint16_t)(old + k));
        int expected = delta >= 0 && delta < (int)k;
        int kick = vq_kick_prepare(&h.vq);
        if (kick != expected)
            fail_msg("old %u, added %u, avail_event %u: kick %d", old, k, (uint16_t)(old + delta), kick);
        if (kick)
            kicks++;
        else
            suppressed++;
        device_takes_everything();
        old = (uint16_t)(old + k);
        total += k;
    }
    assert_int_equal(h.vq.stats.kicks, kicks);
    assert_int_equal(h.vq.stats.kicks_suppressed, suppressed);
    assert_true(kicks > 1000 && suppressed > 1000);
}

static void test_packed_kick_follows_device_event_flags(void **state)
{
    const struct params *p = *state;
    open_queue(VQ_PACKED, 8, p->event_idx, 0);
    h.dev.device_event->flags = VRING_EVENT_F_DISABLE;
    add_small(1);
    assert_int_equal(vq_kick_prepare(&h.vq), 0);
    h.dev.device_event->flags = VRING_EVENT_F_ENABLE;
    add_small(1);
    assert_int_equal(vq_kick_prepare(&h.vq), 1);
    h.dev.device_event->flags = VRING_EVENT_F_DISABLE;
    add_small(2);
    assert_int_equal(vq_kick_prepare(&h.vq), 0);
    if (!p->event_idx) {
        /* DESC needs event_idx; a driver without it must not go quiet */
        h.dev.device_event->flags = VRING_EVENT_F_DESC;
        h.dev.device_event->off_wrap = 7;
        add_small(1);
        assert_int_equal(vq_kick_prepare(&h.vq), 1);
    }
    assert_int_equal(h.vq.stats.kicks, p->event_idx ? 1 : 2);
    assert_int_equal(h.vq.stats.kicks_suppressed, 2);
    device_takes_everything();
}

static uint16_t off_wrap(uint64_t linear, uint16_t size)
{
    return (uint16_t)((linear % size) | ((1 ^ ((linear / size) & 1)) << 15));
}

/* Positions counted linearly from 0 (wrap counter 1 in lap 0); the device
 * names one by offset and wrap counter, which can only mean this lap or the
 * one before. Kick exactly when that descriptor was made available now. */
static void run_packed_desc_event(uint16_t size)
{
    open_queue(VQ_PACKED, size, 1, 0);
    uint64_t position = 0, kicks = 0, suppressed = 0;
    for (int iteration = 0; iteration < 4000; iteration++) {
        unsigned descriptors = 0;
        static const char *const kinds[] = { "w", "rw", "rww" };
        struct request *chains[16];
        unsigned count = 0;
        for (;;) {
            unsigned n = 1 + rnd() % 3;
            if (descriptors + n > size || (count && rnd() % 3 == 0))
                break;
            chains[count++] = request_build(kinds[n - 1], (const uint32_t[]){ 3, 3, 3 });
            descriptors += n;
        }
        uint64_t old = position, new_position = position + descriptors;
        uint64_t lap_start = new_position / size * size;
        uint64_t lowest = lap_start >= size ? lap_start - size : 0;
        uint64_t event = lowest + rnd() % (lap_start + size - lowest);
        h.dev.device_event->off_wrap = off_wrap(event, size);
        h.dev.device_event->flags = VRING_EVENT_F_DESC;
        for (unsigned i = 0; i < count; i++)
            assert_int_equal(add(chains[i]), 0);
        int expected = old <= event && event < new_position;
        int kick = vq_kick_prepare(&h.vq);
        if (kick != expected)
            fail_msg("made %llu..%llu available, event at %llu (off_wrap %#x): kick %d",
                     (unsigned long long)old, (unsigned long long)new_position,
                     (unsigned long long)event, off_wrap(event, size), kick);
        if (kick)
            kicks++;
        else
            suppressed++;
        device_takes_everything();
        position = new_position;
    }
    assert_int_equal(h.vq.stats.kicks, kicks);
    assert_int_equal(h.vq.stats.kicks_suppressed, suppressed);
    assert_true(kicks > 100 && suppressed > 100);
    close_queue();
}

static void test_packed_kick_follows_desc_event_offset_and_wrap(void **state)
{
    (void)state;
    run_packed_desc_event(8);
    run_packed_desc_event(12);

    /* by hand, across the end of the ring: six in lap 0, then four more (6, 7 | 0, 1) */
    open_queue(VQ_PACKED, 8, 1, 0);
    uint64_t position = 0;
    static const struct { uint16_t off_wrap; int kick; } cases[] = {
        { 7 | 1u << 15, 1 }, /* offset 7 of the previous lap: made available now */
        { 6 | 1u << 15, 1 },
        { 5 | 1u << 15, 0 }, /* before the window */
        { 0, 1 },            /* offset 0 of the new lap (wrap 0) */
        { 1, 1 },
        { 2, 0 },            /* not made available yet */
        { 6, 0 },            /* offset 6 with wrap 0 is a lap ahead */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* on to offset 6 of an even lap (wrap counter 1) */
        h.dev.device_event->flags = VRING_EVENT_F_DISABLE;
        while (position % 16 != 6) {
            unsigned step = (unsigned)((6 - position % 16 + 16) % 16);
            step = step > 8 ? 8 : step;
            add_small(step);
            assert_int_equal(vq_kick_prepare(&h.vq), 0);
            device_takes_everything();
            position += step;
        }
        h.dev.device_event->off_wrap = cases[i].off_wrap;
        h.dev.device_event->flags = VRING_EVENT_F_DESC;
        add_small(4);
        if (vq_kick_prepare(&h.vq) != cases[i].kick)
            fail_msg("off_wrap %#x: expected kick %d", cases[i].off_wrap, cases[i].kick);
        device_takes_everything();
        position += 4;
    }
}

/* ---- used-buffer notifications (interrupts) ----------------------------- */

static void test_interrupts_disabled_enabled_and_pending_work(void **state)
{
    const struct params *p = *state;
    open_params(p, 8);
    struct request *a = request_build("rw", (const uint32_t[]){ 4, 4 });
    struct request *b = request_build("rw", (const uint32_t[]){ 4, 4 });

    vq_disable_interrupts(&h.vq);
    if (p->layout == VQ_PACKED)
        assert_int_equal(h.dev.driver_event->flags, VRING_EVENT_F_DISABLE);
    else if (!p->event_idx)
        assert_int_equal(h.dev.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
    assert_int_equal(add(a), 0);
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    assert_false(h.dev.last_batch_interrupted);
    assert_int_equal(h.dev.interrupts, 0);

    assert_int_equal(vq_enable_interrupts(&h.vq), 1); /* a is waiting */
    take_all_logged();
    assert_int_equal(vq_enable_interrupts(&h.vq), 0);
    if (p->layout == VQ_PACKED)
        assert_int_equal(h.dev.driver_event->flags, VRING_EVENT_F_ENABLE);
    else
        assert_int_equal(h.dev.avail->flags, 0);

    assert_int_equal(add(b), 0);
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    assert_true(h.dev.last_batch_interrupted); /* the driver sleeps: it must hear of b */
    assert_int_equal(h.dev.interrupts, 1);
    take_all_logged();

    /* disabled again with several completions: still quiet */
    vq_disable_interrupts(&h.vq);
    for (int i = 0; i < 20; i++) {
        add_small(1 + i % 3);
        vq_kick_prepare(&h.vq);
        sim_fetch(&h.dev);
        sim_complete(&h.dev, h.dev.pending_count, SIM_REVERSED);
        assert_false(h.dev.last_batch_interrupted);
        if (i % 2)
            take_all_logged();
    }
    add_small(1);
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    assert_false(h.dev.last_batch_interrupted);
    assert_int_equal(h.dev.interrupts, 1);
    assert_int_equal(vq_enable_interrupts(&h.vq), 1);
    take_all_logged();
    assert_int_equal(vq_enable_interrupts(&h.vq), 0);
}

static void test_split_used_event_follows_the_consumed_index(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 1, 0);
    assert_int_equal(vq_enable_interrupts(&h.vq), 0);
    assert_int_equal(*split_used_event(), 0);
    add_small(3);
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    assert_true(h.dev.last_batch_interrupted); /* entry 0 == used_event */
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    assert_false(h.dev.last_batch_interrupted); /* driver has not caught up */
    take_logged(1);
    assert_int_equal(*split_used_event(), 1);
    take_logged(1);
    assert_int_equal(*split_used_event(), 2);
    expect_none();
    sim_complete(&h.dev, 1, SIM_IN_ORDER);
    assert_true(h.dev.last_batch_interrupted); /* entry 2 == used_event */
    take_all_logged();
    assert_int_equal(*split_used_event(), 3);
    /* disabled: used_event stays put and the device stays quiet */
    vq_disable_interrupts(&h.vq);
    uint16_t frozen = *split_used_event();
    add_small(4);
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete(&h.dev, 4, SIM_RANDOM);
    assert_false(h.dev.last_batch_interrupted);
    take_all_logged();
    assert_int_equal(*split_used_event(), frozen);
    assert_int_equal(vq_enable_interrupts(&h.vq), 0);
    assert_int_equal(*split_used_event(), 7);
}

/* 2.7.7.1 Driver Requirements: Used Buffer Notification Suppression: with
 * VIRTIO_F_EVENT_IDX negotiated "the driver MUST set flags to 0". */
static void test_split_event_idx_keeps_avail_flags_zero(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 1, 0);
    vq_disable_interrupts(&h.vq);
    assert_int_equal(h.dev.avail->flags, 0);
    vq_enable_interrupts(&h.vq);
    assert_int_equal(h.dev.avail->flags, 0);
}

/* ---- lying devices ------------------------------------------------------ */

static void add_all(struct request **r, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        assert_int_equal(add(r[i]), 0);
    vq_kick_prepare(&h.vq);
    assert_int_equal(sim_fetch(&h.dev), count);
}

static struct request *small(void)
{
    return request_build("rw", (const uint32_t[]){ 8, 8 });
}

static void test_split_used_id_beyond_the_queue_is_skipped(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    struct request *r[3] = { small(), small(), small() };
    add_all(r, 3);
    sim_split_push_used(&h.dev, 8, 4);
    sim_split_push_used(&h.dev, 0xffffffffu, 4);
    sim_complete_one(&h.dev, find_pending(r[1]), -1);
    expect_used(r[1], 8, VQ_USED_OK);
    check_written(r[1], 8);
    assert_int_equal(h.vq.stats.bad_id, 2);
    assert_int_equal(h.vq.stats.stale_id + h.vq.stats.bad_index, 0);
    expect_none();
    assert_false(vq_is_broken(&h.vq));
    check_untouched(r[0]);
    check_untouched(r[2]);
}

static void test_split_used_id_not_in_flight_is_stale_and_skipped(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    struct request *r[3] = { request_build("rww", (const uint32_t[]){ 8, 8, 8 }), small(), small() };
    add_all(r, 3);
    const struct sim_chain *a = &h.dev.pending[find_pending(r[0])];
    uint16_t inner = a->slots[1]; /* a descriptor in flight, but not a head */
    uint8_t busy[8] = { 0 };
    for (unsigned i = 0; i < h.dev.pending_count; i++)
        for (unsigned j = 0; j < h.dev.pending[i].ring_descriptors; j++)
            busy[h.dev.pending[i].slots[j]] = 1;
    uint16_t free_descriptor = 0;
    while (busy[free_descriptor])
        free_descriptor++;
    assert_true(free_descriptor < 8);
    sim_split_push_used(&h.dev, inner, 4);
    sim_split_push_used(&h.dev, free_descriptor, 4); /* never added */
    sim_complete_one(&h.dev, find_pending(r[2]), -1);
    expect_used(r[2], 8, VQ_USED_OK);
    assert_int_equal(h.vq.stats.stale_id, 2);
    assert_int_equal(h.vq.stats.bad_id + h.vq.stats.bad_index, 0);
    expect_none();
    check_untouched(r[0]);
    check_untouched(r[1]);
    assert_false(vq_is_broken(&h.vq));
}

static void test_split_duplicate_used_id_is_stale_and_skipped(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    struct request *r[3] = { small(), small(), small() };
    add_all(r, 3);
    uint16_t head = h.dev.pending[find_pending(r[0])].id;
    sim_complete_one(&h.dev, find_pending(r[0]), -1);
    expect_used(r[0], 8, VQ_USED_OK);
    sim_split_push_used(&h.dev, head, 8); /* r[0] again */
    sim_complete_one(&h.dev, find_pending(r[1]), -1);
    expect_used(r[1], 8, VQ_USED_OK); /* the duplicate is skipped, not returned */
    expect_none();
    assert_int_equal(h.vq.stats.stale_id, 1);
    assert_int_equal(h.vq.stats.completed, 2);
    check_untouched(r[2]);
    assert_false(vq_is_broken(&h.vq));
}

static void test_split_used_index_running_ahead_breaks_the_queue(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    struct request *r[2] = { small(), small() };
    add_all(r, 2);
    sim_split_set_used_index(&h.dev, 3); /* three used of two in flight */
    expect_none();
    assert_int_equal(h.vq.stats.bad_index, 1);
    assert_true(vq_is_broken(&h.vq));
    expect_none();
    assert_int_equal(h.vq.stats.bad_index, 1);
    assert_int_equal(h.vq.stats.completed, 0);
    struct request *c = small();
    assert_int_equal(add(c), ERROR_DEVICE);
    assert_int_equal(h.dev.avail->index, 2);
    check_untouched(r[0]);
    check_untouched(r[1]);
}

static void test_split_used_index_moving_backwards_breaks_the_queue(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 1, 0);
    struct request *r[2] = { small(), small() };
    add_all(r, 2);
    sim_complete_one(&h.dev, find_pending(r[0]), -1);
    expect_used(r[0], 8, VQ_USED_OK);
    sim_split_set_used_index(&h.dev, 0);
    expect_none();
    assert_int_equal(h.vq.stats.bad_index, 1);
    assert_true(vq_is_broken(&h.vq));
    check_untouched(r[1]);
}

static void test_split_used_index_exactly_at_in_flight_is_accepted(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    struct request *r[8];
    for (unsigned i = 0; i < 8; i++)
        r[i] = request_build("w", (const uint32_t[]){ 8 });
    add_all(r, 8);
    sim_complete(&h.dev, 8, SIM_REVERSED);
    take_all_logged();
    assert_false(vq_is_broken(&h.vq));
    assert_int_equal(h.vq.stats.bad_index, 0);
}

static void test_used_length_beyond_writable_bytes_is_clamped(void **state)
{
    const struct params *p = *state;
    open_params(p, 16);
    struct request *a = request_build("rww", (const uint32_t[]){ 8, 8, 1 });
    struct request *b = request_build("rr", (const uint32_t[]){ 8, 8 });
    struct request *c = request_build("rww", (const uint32_t[]){ 8, 8, 1 });
    struct request *d = small();
    struct request *all[] = { a, b, c, d };
    add_all(all, 4);
    sim_complete_one(&h.dev, find_pending(a), 100);
    expect_used(a, 9, VQ_USED_BAD_LENGTH);
    check_written(a, 9);
    assert_int_equal(h.vq.stats.bad_length, 1);
    sim_complete_one(&h.dev, find_pending(b), 5);
    expect_used(b, 0, VQ_USED_BAD_LENGTH); /* nothing writable */
    assert_int_equal(h.vq.stats.bad_length, 2);
    sim_complete_one(&h.dev, find_pending(c), 9); /* exactly the writable bytes */
    expect_used(c, 9, VQ_USED_OK);
    sim_complete_one(&h.dev, find_pending(d), 0xffffffffu);
    expect_used(d, 8, VQ_USED_BAD_LENGTH);
    assert_int_equal(h.vq.stats.bad_length, 3);
    assert_int_equal(h.vq.stats.completed, 4);
    expect_none();
    assert_false(vq_is_broken(&h.vq));
    /* still works */
    h.dev.log_count = 0;
    add_small(2);
    vq_kick_prepare(&h.vq);
    sim_fetch(&h.dev);
    sim_complete(&h.dev, 2, SIM_IN_ORDER);
    take_all_logged();
}

static void test_packed_used_id_beyond_the_queue_breaks_the_queue(void **state)
{
    (void)state;
    open_queue(VQ_PACKED, 8, 0, 0);
    struct request *r[2] = { small(), small() };
    add_all(r, 2);
    sim_packed_push_used(&h.dev, 8, 4, 1);
    expect_none();
    assert_true(vq_is_broken(&h.vq));
    assert_int_equal(h.vq.stats.bad_id, 1);
    expect_none();
    assert_int_equal(h.vq.stats.bad_id, 1);
    assert_int_equal(h.vq.stats.completed, 0);
    struct request *c = small();
    assert_int_equal(add(c), ERROR_DEVICE);
    assert_int_equal(h.dev.ring[4].flags, 0);
    check_untouched(r[0]);
    check_untouched(r[1]);
}

static void test_packed_used_id_never_added_breaks_the_queue(void **state)
{
    (void)state;
    open_queue(VQ_PACKED, 8, 0, 0);
    struct request *r[2] = { small(), small() };
    add_all(r, 2);
    uint16_t unused = 0;
    while (unused == h.dev.pending[0].id || unused == h.dev.pending[1].id)
        unused++;
    sim_packed_push_used(&h.dev, unused, 4, 1);
    expect_none();
    assert_true(vq_is_broken(&h.vq));
    assert_int_equal(h.vq.stats.stale_id, 1);
    assert_int_equal(h.vq.stats.bad_id, 0);
    check_untouched(r[0]);
    check_untouched(r[1]);
    struct request *c = small();
    assert_int_equal(add(c), ERROR_DEVICE);
}

static void test_packed_duplicate_used_id_breaks_the_queue(void **state)
{
    (void)state;
    open_queue(VQ_PACKED, 8, 0, 0);
    struct request *r[2] = { small(), small() };
    add_all(r, 2);
    uint16_t id = h.dev.pending[find_pending(r[0])].id;
    sim_complete_one(&h.dev, find_pending(r[0]), -1);
    expect_used(r[0], 8, VQ_USED_OK);
    sim_packed_push_used(&h.dev, id, 8, 1); /* r[0] again */
    expect_none();
    assert_true(vq_is_broken(&h.vq));
    assert_int_equal(h.vq.stats.stale_id, 1);
    assert_int_equal(h.vq.stats.completed, 1);
    check_untouched(r[1]);
}

/* ---- findings: expected to fail until virtqueue.c is fixed -------------- */

/* A lying used entry is skipped, yet vq_in_flight() (split) drops as if a
 * chain had come back: B's token is still out and the device may still
 * write its buffers. Packed counts ids and stays right. */
static void test_split_in_flight_still_counts_a_chain_after_a_skipped_entry(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    struct request *r[2] = { small(), small() };
    add_all(r, 2);
    sim_split_push_used(&h.dev, 100, 0);
    sim_complete_one(&h.dev, find_pending(r[0]), -1);
    expect_used(r[0], 8, VQ_USED_OK);
    expect_none();
    assert_int_equal(h.vq.stats.bad_id, 1);
    check_untouched(r[1]);
    assert_int_equal(vq_in_flight(&h.vq), 1); /* r[1] */
}

/* 2.7.5.3.1 Driver Requirements: Indirect Descriptors (split): "A driver
 * MUST NOT create a descriptor chain longer than the Queue Size of the
 * device"; packed, Driver Requirements: Scatter-Gather Support: "MUST NOT
 * create a descriptor list longer than the Queue Size". */
static void test_indirect_chain_longer_than_the_queue_is_refused(void **state)
{
    const struct params *p = *state;
    open_queue(p->layout, 8, 0, 16);
    uint8_t byte;
    struct vq_buffer twelve[12];
    for (unsigned i = 0; i < 12; i++)
        twelve[i] = (struct vq_buffer){ (uintptr_t)&byte, 1, 0 };
    int token;
    assert_int_equal(vq_add_chain(&h.vq, twelve, 8, &token), 0); /* eight is fine */
    assert_refused(twelve, 9, &token);
    assert_refused(twelve, 12, &token);
}

/* 2.7.5.2 Driver Requirements: The Virtqueue Descriptor Table: "Drivers
 * MUST NOT add a descriptor chain longer than 2^32 bytes in total";
 * readable bytes count too (only writable ones are summed now). */
static void test_split_chain_over_4gib_in_total_is_refused(void **state)
{
    (void)state;
    open_queue(VQ_SPLIT, 8, 0, 0);
    int token;
    struct vq_buffer big[] = { { 0x1000, 0x80000000u, 0 }, { 0x2000, 0x80000001u, 0 } };
    assert_refused(big, 2, &token);
}

/* ---- registry ---------------------------------------------------------- */

#define VARIANT(fn, i, label) { #fn "/" label, fn, NULL, teardown, &variants[i] }
#define ALL_VARIANTS(fn)                                                                          \
    VARIANT(fn, 0, "split"), VARIANT(fn, 1, "split+event_idx"), VARIANT(fn, 2, "split+indirect"), \
        VARIANT(fn, 3, "split+event_idx+indirect"), VARIANT(fn, 4, "packed"),                     \
        VARIANT(fn, 5, "packed+event_idx"), VARIANT(fn, 6, "packed+indirect"),                    \
        VARIANT(fn, 7, "packed+event_idx+indirect")
#define PACKED_VARIANTS(fn)                                                                      \
    VARIANT(fn, 4, "packed"), VARIANT(fn, 5, "packed+event_idx"), VARIANT(fn, 6, "packed+indirect"), \
        VARIANT(fn, 7, "packed+event_idx+indirect")
#define LAYOUTS(fn) VARIANT(fn, 0, "split"), VARIANT(fn, 4, "packed")
#define TEST(fn) { #fn, fn, NULL, teardown, NULL }

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_init_split_rejects_zero_oversized_and_non_power_of_two_sizes),
        TEST(test_init_packed_accepts_any_size_up_to_the_maximum),
        ALL_VARIANTS(test_init_clears_the_rings_and_starts_empty),
        TEST(test_packed_size_100_fills_drains_and_wraps),
        TEST(test_split_areas_follow_the_legacy_layout_inside_ring_bytes),
        TEST(test_split_compact_areas_are_packed_inside_ring_bytes),
        TEST(test_packed_areas_are_aligned_and_inside_ring_bytes),
        TEST(test_ring_bytes_grow_with_indirect_max),
        ALL_VARIANTS(test_one_chain_comes_back_with_its_token_and_written_length),
        ALL_VARIANTS(test_ring_fills_to_capacity_and_takes_chains_again_after_completions),
        ALL_VARIANTS(test_out_of_order_completion_returns_tokens_in_the_device_order),
        ALL_VARIANTS(test_in_flight_counts_chains_not_descriptors),
        ALL_VARIANTS(test_wrap_around_size_8),
        ALL_VARIANTS(test_wrap_around_compact_size_8),
        ALL_VARIANTS(test_wrap_around_size_16),
        PACKED_VARIANTS(test_wrap_around_packed_size_12),
        TEST(test_indirect_chain_takes_one_ring_descriptor_split),
        TEST(test_indirect_chain_takes_one_ring_descriptor_packed),
        LAYOUTS(test_chain_longer_than_indirect_max_falls_back_to_direct),
        LAYOUTS(test_single_buffer_chain_is_direct_even_with_indirect),
        LAYOUTS(test_indirect_max_of_one_means_no_indirect),
        ALL_VARIANTS(test_invalid_chains_are_refused_without_side_effects),
        LAYOUTS(test_writable_bytes_up_to_4gib_minus_one_are_accepted),
        TEST(test_split_kick_follows_no_notify_without_event_idx),
        TEST(test_split_kick_follows_avail_event_across_index_wrap),
        VARIANT(test_packed_kick_follows_device_event_flags, 4, "packed"),
        VARIANT(test_packed_kick_follows_device_event_flags, 5, "packed+event_idx"),
        TEST(test_packed_kick_follows_desc_event_offset_and_wrap),
        ALL_VARIANTS(test_interrupts_disabled_enabled_and_pending_work),
        TEST(test_split_used_event_follows_the_consumed_index),
        TEST(test_split_used_id_beyond_the_queue_is_skipped),
        TEST(test_split_used_id_not_in_flight_is_stale_and_skipped),
        TEST(test_split_duplicate_used_id_is_stale_and_skipped),
        TEST(test_split_used_index_running_ahead_breaks_the_queue),
        TEST(test_split_used_index_moving_backwards_breaks_the_queue),
        TEST(test_split_used_index_exactly_at_in_flight_is_accepted),
        VARIANT(test_used_length_beyond_writable_bytes_is_clamped, 0, "split"),
        VARIANT(test_used_length_beyond_writable_bytes_is_clamped, 2, "split+indirect"),
        VARIANT(test_used_length_beyond_writable_bytes_is_clamped, 4, "packed"),
        VARIANT(test_used_length_beyond_writable_bytes_is_clamped, 6, "packed+indirect"),
        TEST(test_packed_used_id_beyond_the_queue_breaks_the_queue),
        TEST(test_packed_used_id_never_added_breaks_the_queue),
        TEST(test_packed_duplicate_used_id_breaks_the_queue),
        TEST(test_split_event_idx_keeps_avail_flags_zero),
        TEST(test_split_in_flight_still_counts_a_chain_after_a_skipped_entry),
        LAYOUTS(test_indirect_chain_longer_than_the_queue_is_refused),
        TEST(test_split_chain_over_4gib_in_total_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
