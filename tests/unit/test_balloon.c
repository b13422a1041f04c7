/* Host unit tests for virtio/balloon.c: the balloon state machine driven through a fake
 * transport (page pool with a reserve, malloc'd list chunks, a device that records requests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/balloon.h"

/* ---- the fake transport --------------------------------------------------- */

enum page_state { PAGE_FREE, PAGE_BALLOON, PAGE_OTHER };

struct sent {
    enum balloon_queue queue;
    unsigned count;
    uint32_t *copy;         /* the PFNs as they were when sent */
    const uint32_t *buffer; /* the driver's buffer, which the device reads later */
    void *token;
    int done;
};

struct fake {
    /* page pool: PFNs base .. base + npages - 1 */
    uint32_t base, npages, reserve;
    uint8_t *state;
    uint32_t *free_stack, nfree;
    uint32_t taken; /* pages in PAGE_BALLOON */
    unsigned gives, bad_gives, takes;
    unsigned max_order; /* 0: one page per take, else aligned runs */
    /* list chunks */
    void **chunks;
    size_t nchunks, chunk_cap;
    int fail_alloc;
    unsigned allocs, bad_frees;
    /* device */
    struct sent *sent;
    size_t nsent, sent_cap;
    int fail_send;
    unsigned kicks[2];
    unsigned actual_writes;
    uint32_t last_actual;
    unsigned shortfall_calls;
    uint32_t shortfall_target, shortfall_reached;
    uint8_t *mark; /* scratch, one byte per PFN */
    uint32_t *batch;
    struct balloon b;
};

static struct fake *current;

static uint32_t pool_index(struct fake *f, uint32_t pfn)
{
    assert_true(pfn >= f->base && pfn < f->base + f->npages);
    return pfn - f->base;
}

static void take_from_pool(struct fake *f, uint32_t pfn)
{
    uint32_t i = pool_index(f, pfn);

    assert_int_equal(f->state[i], PAGE_FREE);
    f->state[i] = PAGE_BALLOON;
    f->taken++;
    for (uint32_t k = 0; k < f->nfree; k++)
        if (f->free_stack[k] == pfn) {
            memmove(&f->free_stack[k], &f->free_stack[k + 1], (f->nfree - k - 1) * sizeof(uint32_t));
            f->nfree--;
            return;
        }
    fail_msg("pfn %u free but not on the free stack", pfn);
}

/* One page from the top of the free stack; with max_order set, the largest
 * aligned run of free pages (up to 2^max_order and `wanted`) that leaves
 * the reserve, as the kernel's allocator hands out blocks. */
static unsigned fake_take_pages(void *context, unsigned wanted, uint32_t *first)
{
    struct fake *f = context;

    f->takes++;
    assert_true(wanted >= 1);
    if (f->nfree <= f->reserve)
        return 0;
    if (f->max_order == 0) {
        *first = f->free_stack[f->nfree - 1];
        take_from_pool(f, *first);
        return 1;
    }
    for (unsigned order = f->max_order + 1; order-- > 0;) {
        uint32_t size = 1u << order;
        if (size > wanted || f->nfree < f->reserve + size)
            continue;
        for (uint32_t start = 0; start + size <= f->npages; start += size) {
            uint32_t k = 0;
            while (k < size && f->state[start + k] == PAGE_FREE)
                k++;
            if (k < size)
                continue;
            for (k = 0; k < size; k++)
                take_from_pool(f, f->base + start + k);
            *first = f->base + start;
            return size;
        }
    }
    return 0;
}

static void fake_give_page(void *context, uint32_t pfn)
{
    struct fake *f = context;
    uint32_t i = pool_index(f, pfn);

    f->gives++;
    if (f->state[i] != PAGE_BALLOON) {
        f->bad_gives++; /* given back twice, or never taken */
        return;
    }
    f->state[i] = PAGE_FREE;
    f->taken--;
    f->free_stack[f->nfree++] = pfn;
}

static void *fake_alloc_chunk(void *context)
{
    struct fake *f = context;

    if (f->fail_alloc)
        return NULL;
    if (f->nchunks == f->chunk_cap) {
        f->chunk_cap = f->chunk_cap ? 2 * f->chunk_cap : 16;
        f->chunks = realloc(f->chunks, f->chunk_cap * sizeof(*f->chunks));
        assert_non_null(f->chunks);
    }
    void *chunk = malloc(4096);
    assert_non_null(chunk);
    memset(chunk, 0xa5, 4096);
    f->chunks[f->nchunks++] = chunk;
    f->allocs++;
    return chunk;
}

static void fake_free_chunk(void *context, void *chunk)
{
    struct fake *f = context;

    for (size_t i = 0; i < f->nchunks; i++) {
        if (f->chunks[i] == chunk) {
            f->chunks[i] = f->chunks[--f->nchunks];
            free(chunk);
            return;
        }
    }
    f->bad_frees++;
}

static int fake_send(void *context, enum balloon_queue queue, const uint32_t *pfns,
                     unsigned count, void *token)
{
    struct fake *f = context;

    if (f->fail_send)
        return -1;
    if (f->nsent == f->sent_cap) {
        f->sent_cap = f->sent_cap ? 2 * f->sent_cap : 64;
        f->sent = realloc(f->sent, f->sent_cap * sizeof(*f->sent));
        assert_non_null(f->sent);
    }
    struct sent *s = &f->sent[f->nsent++];
    *s = (struct sent){ queue, count, malloc(count ? count * sizeof(uint32_t) : 1), pfns, token, 0 };
    assert_non_null(s->copy);
    memcpy(s->copy, pfns, count * sizeof(uint32_t));
    return 0;
}

static void fake_kick(void *context, enum balloon_queue queue)
{
    struct fake *f = context;

    assert_true(queue == BALLOON_INFLATE || queue == BALLOON_DEFLATE);
    f->kicks[queue]++;
}

static void fake_set_actual(void *context, uint32_t pages)
{
    struct fake *f = context;

    f->actual_writes++;
    f->last_actual = pages;
}

static void fake_report_shortfall(void *context, uint32_t target, uint32_t reached)
{
    struct fake *f = context;

    f->shortfall_calls++;
    f->shortfall_target = target;
    f->shortfall_reached = reached;
}

static const struct balloon_ops fake_ops = {
    fake_take_pages, fake_give_page, fake_alloc_chunk, fake_free_chunk,
    fake_send, fake_kick, fake_set_actual, fake_report_shortfall,
};

/* A pool of npages pages of which `reserve` cannot be taken, and a balloon on it. */
static struct fake *fake_new(uint32_t npages, uint32_t reserve, int must_tell_host,
                             unsigned batch_size, unsigned max_in_flight)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    current = f;
    f->base = 0x10000;
    f->npages = npages;
    f->reserve = reserve;
    f->state = calloc(npages, 1);
    f->mark = calloc(npages, 1);
    f->free_stack = malloc(npages * sizeof(uint32_t));
    f->batch = calloc(BALLOON_MAX_IN_FLIGHT * BALLOON_MAX_BATCH, sizeof(uint32_t));
    assert_non_null(f->state);
    assert_non_null(f->mark);
    assert_non_null(f->free_stack);
    assert_non_null(f->batch);
    for (uint32_t i = 0; i < npages; i++)
        f->free_stack[f->nfree++] = f->base + npages - 1 - i;
    balloon_init(&f->b, &fake_ops, f, f->batch, must_tell_host);
    assert_int_equal(balloon_set_batching(&f->b, batch_size, max_in_flight), 0);
    return f;
}

static int fake_teardown(void **state)
{
    struct fake *f = current;

    (void)state;
    if (!f)
        return 0;
    for (size_t i = 0; i < f->nchunks; i++)
        free(f->chunks[i]);
    for (size_t i = 0; i < f->nsent; i++)
        free(f->sent[i].copy);
    free(f->chunks);
    free(f->sent);
    free(f->state);
    free(f->mark);
    free(f->free_stack);
    free(f->batch);
    free(f);
    current = NULL;
    return 0;
}

/* Something other than the balloon (the OOM caller) takes n free pages. */
static void pool_consume(struct fake *f, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        assert_true(f->nfree > 0);
        uint32_t pfn = f->free_stack[--f->nfree];
        f->state[pool_index(f, pfn)] = PAGE_OTHER;
    }
}

/* ---- driving the balloon -------------------------------------------------- */

static size_t pending(const struct fake *f)
{
    size_t n = 0;

    for (size_t i = 0; i < f->nsent; i++)
        n += !f->sent[i].done;
    return n;
}

/* One balloon_step, checked: the return value counts the new requests, each
 * within the batch size, the in-flight limit holds, and each queue that got
 * requests was kicked exactly once (and the other not at all). */
static int step(struct fake *f)
{
    size_t before = f->nsent;
    unsigned kicks[2] = { f->kicks[0], f->kicks[1] };
    unsigned actual_writes = f->actual_writes;

    int sent = balloon_step(&f->b);
    assert_int_equal((size_t)sent, f->nsent - before);
    unsigned per_queue[2] = { 0, 0 };
    for (size_t i = before; i < f->nsent; i++) {
        assert_true(f->sent[i].count >= 1);
        assert_true(f->sent[i].count <= f->b.batch_size);
        per_queue[f->sent[i].queue]++;
    }
    for (int q = 0; q < 2; q++)
        assert_int_equal(f->kicks[q] - kicks[q], per_queue[q] ? 1u : 0u);
    assert_true(pending(f) <= f->b.max_in_flight);
    assert_int_equal(balloon_requests_in_flight(&f->b), pending(f));
    /* in-flight requests never share a buffer or a token */
    for (size_t i = 0; i < f->nsent; i++)
        for (size_t k = i + 1; k < f->nsent; k++)
            if (!f->sent[i].done && !f->sent[k].done) {
                assert_ptr_not_equal(f->sent[i].token, f->sent[k].token);
                assert_ptr_not_equal(f->sent[i].buffer, f->sent[k].buffer);
            }
    assert_int_equal(f->actual_writes, actual_writes); /* actual moves on acks only */
    return sent;
}

/* The device uses request i: the buffer it reads must still hold what was sent. */
static void ack(struct fake *f, size_t i)
{
    assert_true(i < f->nsent);
    struct sent *s = &f->sent[i];
    assert_false(s->done);
    assert_memory_equal(s->buffer, s->copy, s->count * sizeof(uint32_t));
    unsigned writes = f->actual_writes;
    assert_int_equal(balloon_complete(&f->b, s->token), 0);
    s->done = 1;
    assert_int_equal(f->actual_writes, writes + 1);
    assert_int_equal(f->last_actual, balloon_actual(&f->b));
}

static void ack_all(struct fake *f)
{
    for (size_t i = 0; i < f->nsent; i++)
        if (!f->sent[i].done)
            ack(f, i);
}

/* Resume from hibernation: a new device never uses the old requests. */
static void discard_all(struct fake *f)
{
    balloon_discard_all(&f->b);
    for (size_t i = 0; i < f->nsent; i++)
        f->sent[i].done = 1;
}

/* Steps and acks until nothing is sent and nothing is in flight. */
static void settle(struct fake *f)
{
    for (int round = 0; round < 100000; round++) {
        int sent = step(f);
        if (sent == 0 && pending(f) == 0)
            return;
        ack_all(f);
    }
    fail_msg("the balloon does not settle");
}

/* Pages on a list, checked distinct and (for the balloon's list, not the
 * list of reclaimed pages to tell) the balloon's in the pool. */
static uint32_t walk_list(struct fake *f, const struct balloon_chunk *list, size_t *chunks,
                          int balloon_pages)
{
    uint32_t n = 0;

    memset(f->mark, 0, f->npages);
    for (const struct balloon_chunk *c = list; c; c = c->next) {
        assert_true(c->count >= 1 && c->count <= BALLOON_CHUNK_PFNS);
        for (uint32_t k = 0; k < c->count; k++) {
            uint32_t i = pool_index(f, c->pfns[k]);
            if (balloon_pages)
                assert_int_equal(f->state[i], PAGE_BALLOON);
            else
                assert_int_not_equal(f->state[i], PAGE_BALLOON);
            assert_int_equal(f->mark[i], 0);
            f->mark[i] = 1;
        }
        n += c->count;
        if (chunks)
            ++*chunks;
    }
    return n;
}

/* The bookkeeping agrees with the pool: every page the pool says is the
 * balloon's is either on the list or in a deflate request in flight, and
 * every live chunk belongs to one of the two lists. */
static void check_consistent(struct fake *f)
{
    size_t chunks = 0;
    uint32_t listed = walk_list(f, f->b.list, &chunks, 1);
    uint32_t deflating = 0;

    assert_int_equal(listed, f->b.list_pages + f->b.inflating);
    for (size_t i = 0; i < f->nsent; i++) {
        const struct sent *s = &f->sent[i];
        struct balloon_request *r = s->token;
        if (s->done || s->queue != BALLOON_DEFLATE || r->already_returned)
            continue;
        for (unsigned k = 0; k < s->count; k++) {
            uint32_t p = pool_index(f, s->copy[k]);
            assert_int_equal(f->state[p], PAGE_BALLOON);
            assert_int_equal(f->mark[p], 0);
            f->mark[p] = 1;
        }
        deflating += s->count;
    }
    assert_int_equal(deflating, f->b.deflating);
    assert_int_equal(f->taken, listed + deflating);
    walk_list(f, f->b.tell_list, &chunks, 0);
    assert_int_equal(chunks, f->nchunks);
    assert_int_equal(f->bad_gives, 0);
    assert_int_equal(f->bad_frees, 0);
}

/* At rest: nothing in flight and the list is exactly what the pool gave. */
static void check_rest(struct fake *f, uint32_t pages)
{
    assert_int_equal(pending(f), 0);
    assert_int_equal(f->b.inflating, 0);
    assert_int_equal(f->b.deflating, 0);
    assert_int_equal(f->b.list_pages, pages);
    assert_int_equal(balloon_actual(&f->b), pages);
    assert_int_equal(f->taken, pages);
    check_consistent(f);
}

/* Sets a target, lets the balloon get there, and checks that it rests there. */
static void reach(struct fake *f, uint32_t target)
{
    balloon_set_target(&f->b, target);
    settle(f);
    check_rest(f, target);
}

/* ---- inflate ---------------------------------------------------------------- */

static void test_inflate_to_target_in_batches_within_in_flight_limit(void **state)
{
    (void)state;
    struct fake *f = fake_new(1000, 0, 1, 16, 3);

    balloon_set_target(&f->b, 100);
    assert_int_equal(step(f), 3);
    assert_int_equal(f->kicks[BALLOON_INFLATE], 1);
    /* taken out of the pool at once, but not the host's until acked */
    assert_int_equal(f->taken, 48);
    assert_int_equal(f->b.inflating, 48);
    assert_int_equal(balloon_actual(&f->b), 0);
    assert_int_equal(f->actual_writes, 0);
    check_consistent(f);
    /* no free slot: nothing sent, no kick */
    assert_int_equal(step(f), 0);
    assert_int_equal(f->kicks[BALLOON_INFLATE], 1);

    ack(f, 0);
    assert_int_equal(f->last_actual, 16);
    assert_int_equal(step(f), 1);
    assert_int_equal(f->kicks[BALLOON_INFLATE], 2);
    settle(f);

    check_rest(f, 100);
    assert_int_equal(f->last_actual, 100);
    assert_int_equal(f->nsent, 7); /* 6 x 16 + 4 */
    assert_int_equal(f->b.stats.inflate_requests, 7);
    assert_int_equal(f->b.stats.inflated_pages, 100);
    assert_int_equal(f->b.stats.deflate_requests, 0);
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 0);
    assert_int_equal(f->shortfall_calls, 0);
    /* every PFN sent is distinct and the balloon's in the pool */
    memset(f->mark, 0, f->npages);
    uint32_t total = 0;
    for (size_t i = 0; i < f->nsent; i++) {
        assert_int_equal(f->sent[i].queue, BALLOON_INFLATE);
        for (unsigned k = 0; k < f->sent[i].count; k++) {
            uint32_t p = pool_index(f, f->sent[i].copy[k]);
            assert_int_equal(f->state[p], PAGE_BALLOON);
            assert_int_equal(f->mark[p], 0);
            f->mark[p] = 1;
        }
        total += f->sent[i].count;
    }
    assert_int_equal(total, 100);
    /* at the target: stepping sends nothing more */
    assert_int_equal(step(f), 0);
    assert_int_equal(f->gives, 0);
}

static void test_last_batch_is_short_when_target_is_not_a_multiple(void **state)
{
    (void)state;
    struct fake *f = fake_new(200, 0, 1, 16, 8);

    balloon_set_target(&f->b, 50);
    assert_int_equal(step(f), 4);
    assert_int_equal(f->sent[0].count, 16);
    assert_int_equal(f->sent[1].count, 16);
    assert_int_equal(f->sent[2].count, 16);
    assert_int_equal(f->sent[3].count, 2);
    settle(f);
    check_rest(f, 50);
}

static void test_batch_size_one_sends_one_pfn_per_request(void **state)
{
    (void)state;
    struct fake *f = fake_new(20, 0, 1, 1, 2);

    balloon_set_target(&f->b, 5);
    assert_int_equal(step(f), 2);
    settle(f);
    check_rest(f, 5);
    assert_int_equal(f->nsent, 5);
    for (size_t i = 0; i < f->nsent; i++)
        assert_int_equal(f->sent[i].count, 1);
    reach(f, 2);
    assert_int_equal(f->nsent, 8);
    assert_int_equal(f->b.stats.deflate_requests, 3);
}

static void test_set_batching_rejects_out_of_range_values(void **state)
{
    (void)state;
    struct fake *f = fake_new(1, 0, 1, 7, 3);

    assert_int_equal(balloon_set_batching(&f->b, 0, 1), -1);
    assert_int_equal(balloon_set_batching(&f->b, BALLOON_MAX_BATCH + 1, 1), -1);
    assert_int_equal(balloon_set_batching(&f->b, 1, 0), -1);
    assert_int_equal(balloon_set_batching(&f->b, 1, BALLOON_MAX_IN_FLIGHT + 1), -1);
    assert_int_equal(balloon_set_batching(&f->b, 0, 0), -1);
    /* refused settings leave the old ones */
    assert_int_equal(f->b.batch_size, 7);
    assert_int_equal(f->b.max_in_flight, 3);
    assert_int_equal(balloon_set_batching(&f->b, BALLOON_MAX_BATCH, BALLOON_MAX_IN_FLIGHT), 0);
    assert_int_equal(f->b.batch_size, BALLOON_MAX_BATCH);
    assert_int_equal(f->b.max_in_flight, BALLOON_MAX_IN_FLIGHT);
    assert_int_equal(balloon_set_batching(&f->b, 1, 1), 0);
    assert_int_equal(f->b.batch_size, 1);
    assert_int_equal(f->b.max_in_flight, 1);
}

static void test_chunk_is_exactly_one_page(void **state)
{
    (void)state;
    assert_int_equal(sizeof(struct balloon_chunk), 4096);
    assert_true(BALLOON_MAX_BATCH * sizeof(uint32_t) <= 4096);
}

/* ---- acks ------------------------------------------------------------------- */

static void test_out_of_order_inflate_acks_keep_counters_right(void **state)
{
    (void)state;
    struct fake *f = fake_new(100, 0, 1, 10, 4);

    balloon_set_target(&f->b, 35);
    assert_int_equal(step(f), 4); /* 10, 10, 10, 5 */
    assert_int_equal(f->b.inflating, 35);

    ack(f, 2);
    assert_int_equal(f->b.inflating, 25);
    assert_int_equal(f->b.list_pages, 10);
    assert_int_equal(f->last_actual, 10);
    check_consistent(f);
    ack(f, 3);
    assert_int_equal(f->last_actual, 15);
    ack(f, 0);
    assert_int_equal(f->last_actual, 25);
    assert_int_equal(f->b.inflating, 10);
    check_consistent(f);
    ack(f, 1);
    check_rest(f, 35);
    assert_int_equal(f->last_actual, 35);
    assert_int_equal(step(f), 0);
}

static void test_out_of_order_deflate_acks_return_only_acked_pages(void **state)
{
    (void)state;
    struct fake *f = fake_new(100, 0, 1, 10, 4);

    balloon_set_target(&f->b, 40);
    settle(f);
    size_t first = f->nsent;
    balloon_set_target(&f->b, 5);
    assert_int_equal(step(f), 4); /* 10, 10, 10, 5 */
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 1);
    assert_int_equal(balloon_actual(&f->b), 40);

    ack(f, first + 1);
    assert_int_equal(f->taken, 30);
    for (unsigned k = 0; k < f->sent[first + 1].count; k++)
        assert_int_equal(f->state[pool_index(f, f->sent[first + 1].copy[k])], PAGE_FREE);
    assert_int_equal(f->b.deflating, 25);
    assert_int_equal(f->last_actual, 30);
    check_consistent(f);
    ack(f, first + 3);
    assert_int_equal(f->last_actual, 25);
    ack(f, first + 0);
    ack(f, first + 2);
    check_rest(f, 5);
    assert_int_equal(f->last_actual, 5);
    assert_int_equal(f->b.stats.deflated_pages, 35);
}

static void test_unknown_and_duplicate_acks_are_counted_and_change_nothing(void **state)
{
    (void)state;
    struct fake *f = fake_new(100, 0, 1, 10, 4);
    int local;

    balloon_set_target(&f->b, 30);
    assert_int_equal(step(f), 3);
    ack(f, 1);
    void *tokens[] = {
        NULL, &local, &f->b.requests[BALLOON_MAX_IN_FLIGHT - 1],
        (char *)f->sent[0].token + 1, f->sent[1].token, f->batch,
    };
    /* a foreign pointer, an idle slot, a pointer inside a busy slot, an acked one */
    struct balloon before;
    unsigned writes = f->actual_writes, gives = f->gives;
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        memcpy(&before, &f->b, sizeof(before));
        assert_int_equal(balloon_complete(&f->b, tokens[i]), -1);
        before.stats.unknown_acks++;
        assert_memory_equal(&before, &f->b, sizeof(before));
    }
    assert_int_equal(f->b.stats.unknown_acks, 6);
    assert_int_equal(f->actual_writes, writes);
    assert_int_equal(f->gives, gives);
    check_consistent(f);

    /* a deflate acked twice gives its pages back once */
    ack(f, 0);
    ack(f, 2);
    balloon_set_target(&f->b, 20);
    assert_int_equal(step(f), 1);
    ack(f, 3);
    uint64_t unknown = f->b.stats.unknown_acks;
    assert_int_equal(balloon_complete(&f->b, f->sent[3].token), -1);
    assert_int_equal(f->b.stats.unknown_acks, unknown + 1);
    check_rest(f, 20);
    assert_int_equal(f->b.stats.deflated_pages, 10);
}

/* ---- target changes ------------------------------------------------------- */

static void test_target_lowered_mid_inflate_deflates_only_after_acks(void **state)
{
    (void)state;
    struct fake *f = fake_new(200, 0, 1, 10, 4);

    balloon_set_target(&f->b, 40);
    assert_int_equal(step(f), 4);
    balloon_set_target(&f->b, 15);
    assert_int_equal(step(f), 0);
    ack(f, 1);
    ack(f, 3);
    assert_int_equal(f->b.list_pages, 20); /* above the target, inflate in flight */
    assert_int_equal(step(f), 0);
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 0);
    ack(f, 0);
    assert_int_equal(step(f), 0);
    ack(f, 2);
    assert_int_equal(step(f), 3); /* 25 pages: 10, 10, 5 */
    for (size_t i = 4; i < 7; i++)
        assert_int_equal(f->sent[i].queue, BALLOON_DEFLATE);
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 1);
    settle(f);
    check_rest(f, 15);
    assert_int_equal(f->last_actual, 15);
}

static void test_target_raised_and_lowered_mid_inflate_converges(void **state)
{
    (void)state;
    struct fake *f = fake_new(300, 0, 1, 10, 2);

    balloon_set_target(&f->b, 45);
    assert_int_equal(step(f), 2);
    balloon_set_target(&f->b, 120); /* raise while two are outstanding */
    assert_int_equal(step(f), 0);
    ack(f, 0);
    assert_int_equal(step(f), 1);
    balloon_set_target(&f->b, 12); /* lower below what is in flight */
    ack(f, 1);
    assert_int_equal(step(f), 0); /* one inflate still in flight */
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 0);
    balloon_set_target(&f->b, 33);
    ack(f, 2);
    assert_int_equal(f->b.list_pages, 30);
    settle(f);
    check_rest(f, 33);
    reach(f, 7);
    assert_int_equal(f->last_actual, 7);
    for (size_t i = 0; i < f->nsent; i++)
        assert_true(f->sent[i].done);
}

static void test_target_raised_mid_deflate_inflates_only_after_acks(void **state)
{
    (void)state;
    struct fake *f = fake_new(300, 0, 1, 10, 4);

    balloon_set_target(&f->b, 60);
    settle(f);
    balloon_set_target(&f->b, 30);
    assert_int_equal(step(f), 3);
    balloon_set_target(&f->b, 80);
    unsigned inflate_kicks = f->kicks[BALLOON_INFLATE];
    assert_int_equal(step(f), 0);
    ack(f, f->nsent - 1);
    assert_int_equal(step(f), 0); /* deflates still in flight */
    assert_int_equal(f->kicks[BALLOON_INFLATE], inflate_kicks);
    settle(f);
    check_rest(f, 80);
}

/* ---- deflate --------------------------------------------------------------- */

static void deflate_returns_pages_only_on_ack(int must_tell_host)
{
    struct fake *f = fake_new(100, 0, must_tell_host, 16, 4);

    balloon_set_target(&f->b, 40);
    settle(f);
    size_t inflates = f->nsent;
    memset(f->mark, 0, f->npages);
    for (size_t i = 0; i < inflates; i++)
        for (unsigned k = 0; k < f->sent[i].count; k++)
            f->mark[pool_index(f, f->sent[i].copy[k])] = 2; /* was inflated */
    uint8_t inflated[100];
    memcpy(inflated, f->mark, sizeof(inflated));

    balloon_set_target(&f->b, 10);
    assert_int_equal(step(f), 2); /* 16 + 14 */
    assert_int_equal(f->b.deflating, 30);
    assert_int_equal(f->b.list_pages, 10);
    /* sent but not acked: still the balloon's, still counted in actual */
    assert_int_equal(f->taken, 40);
    assert_int_equal(f->gives, 0);
    assert_int_equal(balloon_actual(&f->b), 40);
    for (size_t i = inflates; i < f->nsent; i++) {
        assert_int_equal(f->sent[i].queue, BALLOON_DEFLATE);
        for (unsigned k = 0; k < f->sent[i].count; k++) {
            uint32_t p = pool_index(f, f->sent[i].copy[k]);
            assert_int_equal(inflated[p], 2);
            assert_int_equal(f->state[p], PAGE_BALLOON);
        }
    }
    check_consistent(f);

    ack(f, inflates);
    for (unsigned k = 0; k < f->sent[inflates].count; k++)
        assert_int_equal(f->state[pool_index(f, f->sent[inflates].copy[k])], PAGE_FREE);
    for (unsigned k = 0; k < f->sent[inflates + 1].count; k++)
        assert_int_equal(f->state[pool_index(f, f->sent[inflates + 1].copy[k])], PAGE_BALLOON);
    assert_int_equal(f->taken, 24);
    assert_int_equal(f->last_actual, 24);
    ack(f, inflates + 1);
    check_rest(f, 10);
    assert_int_equal(f->last_actual, 10);
    assert_int_equal(f->gives, 30);
    assert_int_equal(f->b.stats.deflated_pages, 30);
    assert_int_equal(f->b.stats.deflate_requests, 2);
}

static void test_deflate_gives_pages_back_only_on_ack_with_must_tell_host(void **state)
{
    (void)state;
    deflate_returns_pages_only_on_ack(1);
}

static void test_deflate_gives_pages_back_only_on_ack_without_must_tell_host(void **state)
{
    (void)state;
    deflate_returns_pages_only_on_ack(0);
}

static void test_deflate_to_zero_empties_list_and_frees_every_chunk(void **state)
{
    (void)state;
    struct fake *f = fake_new(4000, 0, 1, 512, 4);

    reach(f, 3000);
    assert_int_equal(f->nchunks, 3); /* 1021 + 1021 + 958 */
    reach(f, 0);
    assert_null(f->b.list);
    assert_int_equal(f->nchunks, 0);
    assert_int_equal(f->nfree, 4000);
    assert_int_equal(f->last_actual, 0);
}

/* ---- reserve and shortfall ------------------------------------------------ */

static void test_shortfall_is_reported_once_per_unreachable_target(void **state)
{
    (void)state;
    /* 100 pages, 25 kept back: the balloon can take 75 */
    struct fake *f = fake_new(100, 25, 1, 16, 2);

    balloon_set_target(&f->b, 120);
    settle(f);
    check_rest(f, 75);
    assert_int_equal(f->nfree, 25);
    assert_int_equal(f->last_actual, 75);
    assert_int_equal(f->shortfall_calls, 1);
    assert_int_equal(f->shortfall_target, 120);
    assert_int_equal(f->shortfall_reached, 75);
    assert_int_equal(f->b.stats.shortfalls, 1);
    size_t sent = f->nsent;
    for (int i = 0; i < 50; i++)
        assert_int_equal(step(f), 0);
    assert_int_equal(f->nsent, sent);
    assert_int_equal(f->shortfall_calls, 1);
    assert_int_equal(f->b.stats.shortfalls, 1);
    check_rest(f, 75);

    /* another unreachable target: reported once more */
    balloon_set_target(&f->b, 150);
    for (int i = 0; i < 20; i++)
        assert_int_equal(step(f), 0);
    assert_int_equal(f->shortfall_calls, 2);
    assert_int_equal(f->shortfall_target, 150);
    assert_int_equal(f->shortfall_reached, 75);
    assert_int_equal(f->b.stats.shortfalls, 2);

    /* a reachable target: no report */
    reach(f, 50);
    assert_int_equal(f->shortfall_calls, 2);
    assert_int_equal(f->last_actual, 50);

    /* the first unreachable target again, after a change: reported again */
    balloon_set_target(&f->b, 120);
    settle(f);
    assert_int_equal(f->shortfall_calls, 3);
    assert_int_equal(f->shortfall_target, 120);
    assert_int_equal(f->b.stats.shortfalls, 3);
}

/* A lying device asks for every page there could be: the balloon stops at
 * what it may take, reports the shortfall once, and comes back down. */
static void test_absurd_target_stops_at_the_reserve(void **state)
{
    (void)state;
    struct fake *f = fake_new(100, 25, 1, 16, 2);

    balloon_set_target(&f->b, UINT32_MAX);
    settle(f);
    check_rest(f, 75);
    assert_int_equal(f->nfree, 25);
    assert_int_equal(f->last_actual, 75);
    assert_int_equal(f->shortfall_calls, 1);
    assert_int_equal(f->shortfall_target, UINT32_MAX);
    assert_int_equal(f->b.stats.shortfalls, 1);
    reach(f, 0);
    assert_int_equal(f->nfree, 100);
}

static void test_shortfall_mid_batch_sends_the_partial_batch(void **state)
{
    (void)state;
    struct fake *f = fake_new(50, 10, 1, 16, 8);

    balloon_set_target(&f->b, 60);
    assert_int_equal(step(f), 3); /* 16, 16, 8: the pool is dry */
    assert_int_equal(f->sent[2].count, 8);
    assert_int_equal(f->shortfall_calls, 1);
    assert_int_equal(f->shortfall_reached, 40);
    assert_int_equal(step(f), 0);
    settle(f);
    check_rest(f, 40);
    assert_int_equal(f->shortfall_calls, 1);
    assert_int_equal(f->last_actual, 40);
}

/* ---- transport failures ----------------------------------------------------- */

static void test_inflate_send_failure_gives_the_batch_back(void **state)
{
    (void)state;
    struct fake *f = fake_new(3000, 0, 1, 1024, 2);

    f->fail_send = 1;
    balloon_set_target(&f->b, 2500); /* a batch crosses a chunk boundary */
    assert_int_equal(step(f), 0);
    assert_int_equal(f->kicks[BALLOON_INFLATE], 0);
    assert_int_equal(f->taken, 0);
    assert_int_equal(f->nfree, 3000);
    assert_int_equal(f->gives, 1024);
    assert_int_equal(f->nchunks, 0);
    check_rest(f, 0);
    assert_int_equal(f->b.stats.inflate_requests, 0);
    assert_int_equal(f->shortfall_calls, 0);

    /* the ring has room again */
    f->fail_send = 0;
    assert_int_equal(step(f), 2);
    ack(f, 1);
    /* full again with one request in flight: only the new batch goes back */
    f->fail_send = 1;
    assert_int_equal(step(f), 0);
    assert_int_equal(f->gives, 1024 + 452);
    assert_int_equal(f->b.inflating, 1024);
    assert_int_equal(f->b.list_pages, 1024);
    assert_int_equal(f->taken, 2048);
    check_consistent(f);
    f->fail_send = 0;
    settle(f);
    check_rest(f, 2500);
    assert_int_equal(f->b.stats.inflate_requests, 3);
    assert_int_equal(f->shortfall_calls, 0);
}

static void test_deflate_send_failure_keeps_pages_on_the_list(void **state)
{
    (void)state;
    struct fake *f = fake_new(3000, 0, 1, 100, 4);

    balloon_set_target(&f->b, 1100); /* chunks of 1021 and 79 */
    settle(f);
    uint64_t requests = f->b.stats.deflate_requests;
    balloon_set_target(&f->b, 0);
    f->fail_send = 1;
    assert_int_equal(step(f), 0); /* the first batch empties the top chunk */
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 0);
    check_rest(f, 1100);
    assert_int_equal(f->gives, 0);
    assert_int_equal(f->b.stats.deflate_requests, requests);
    f->fail_send = 0;
    settle(f);
    check_rest(f, 0);
    assert_int_equal(f->nchunks, 0);
}

/* The undo after a failed deflate send pushes the pages back, and may need
 * a chunk (the pops freed one); alloc_chunk may return NULL. */
static void test_deflate_send_failure_without_a_chunk_loses_no_page(void **state)
{
    (void)state;
    struct fake *f = fake_new(2000, 0, 1, 10, 1);

    balloon_set_target(&f->b, BALLOON_CHUNK_PFNS + 5); /* top chunk holds 5 */
    settle(f);
    assert_int_equal(f->nchunks, 2);
    balloon_set_target(&f->b, BALLOON_CHUNK_PFNS - 5); /* a batch of 10 */
    f->fail_send = 1;
    f->fail_alloc = 1;
    assert_int_equal(step(f), 0);
    f->fail_send = 0;
    f->fail_alloc = 0;
    /* every page the balloon holds is still on its list */
    check_rest(f, BALLOON_CHUNK_PFNS + 5);
    reach(f, 0);
}

static void test_alloc_chunk_failure_gives_the_page_back(void **state)
{
    (void)state;
    struct fake *f = fake_new(2000, 0, 1, 1024, 2);

    f->fail_alloc = 1;
    balloon_set_target(&f->b, 10);
    assert_int_equal(step(f), 0);
    assert_int_equal(f->taken, 0);
    assert_int_equal(f->gives, 1);
    check_rest(f, 0);
    f->fail_alloc = 0;
    settle(f);
    check_rest(f, 10);

    /* the list's first chunk fills up at 1021 pages: the next page goes back */
    balloon_set_target(&f->b, BALLOON_CHUNK_PFNS + 10);
    f->fail_alloc = 1;
    unsigned gives = f->gives;
    assert_int_equal(step(f), 1);
    assert_int_equal(f->sent[f->nsent - 1].count, BALLOON_CHUNK_PFNS - 10);
    assert_int_equal(f->gives, gives + 1);
    check_consistent(f);
    ack_all(f);
    check_rest(f, BALLOON_CHUNK_PFNS);
    f->fail_alloc = 0;
    settle(f);
    check_rest(f, BALLOON_CHUNK_PFNS + 10);
    assert_int_equal(f->nchunks, 2);
}

/* ---- reclaim (deflate on OOM) ----------------------------------------------- */

static void test_reclaim_gives_pages_at_once_and_tells_the_host_later(void **state)
{
    (void)state;
    /* 100 pages, 50 reserved: the balloon takes exactly 50 */
    struct fake *f = fake_new(100, 50, 0, 16, 4);

    reach(f, 50);
    size_t before = f->nsent;
    memset(f->mark, 0, f->npages);
    uint8_t was_balloon[100];
    for (uint32_t i = 0; i < 100; i++)
        was_balloon[i] = f->state[i] == PAGE_BALLOON;

    unsigned writes = f->actual_writes;
    assert_int_equal(balloon_reclaim(&f->b, 20), 20);
    assert_int_equal(f->taken, 30);
    assert_int_equal(f->nfree, 70);
    assert_int_equal(f->b.list_pages, 30);
    assert_int_equal(balloon_actual(&f->b), 30);
    assert_int_equal(f->actual_writes, writes + 1);
    assert_int_equal(f->last_actual, 30);
    assert_int_equal(f->b.stats.oom_pages, 20);
    assert_int_equal(f->nsent, before); /* nothing sent from the OOM path */
    uint8_t reclaimed[100];
    for (uint32_t i = 0; i < 100; i++) {
        reclaimed[i] = was_balloon[i] && f->state[i] == PAGE_FREE;
        if (was_balloon[i] && !reclaimed[i])
            assert_int_equal(f->state[i], PAGE_BALLOON);
    }
    /* the OOM caller uses the pages at once */
    pool_consume(f, 20);
    for (uint32_t i = 0; i < 100; i++)
        if (reclaimed[i])
            assert_int_equal(f->state[i], PAGE_OTHER);

    step(f);
    uint32_t told = 0;
    memset(f->mark, 0, f->npages);
    for (size_t i = before; i < f->nsent; i++) {
        const struct sent *s = &f->sent[i];
        if (s->queue != BALLOON_DEFLATE)
            continue;
        assert_true(((struct balloon_request *)s->token)->already_returned);
        for (unsigned k = 0; k < s->count; k++) {
            uint32_t p = pool_index(f, s->copy[k]);
            assert_true(reclaimed[p]);
            assert_int_equal(f->mark[p], 0);
            f->mark[p] = 1;
        }
        told += s->count;
    }
    assert_int_equal(told, 20);
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 1);

    unsigned gives = f->gives;
    uint8_t pool_before[100];
    memcpy(pool_before, f->state, sizeof(pool_before));
    uint64_t deflated = f->b.stats.deflated_pages;
    ack_all(f);
    assert_memory_equal(pool_before, f->state, sizeof(pool_before));
    assert_int_equal(f->gives, gives);
    assert_int_equal(f->b.stats.deflated_pages, deflated);
    assert_int_equal(f->b.list_pages, 30);
    assert_int_equal(f->last_actual, 30);
    assert_int_equal(f->b.to_tell, 0);
    assert_null(f->b.tell_list);
    check_rest(f, 30);
    /* after an OOM the balloon gives up the host's target until a new one
     * comes: stepping does not inflate back into the shortage */
    assert_int_equal(f->b.target, 30);
    for (int i = 0; i < 10; i++)
        step(f);
    check_rest(f, 30);
    assert_int_equal(f->shortfall_calls, 0);
}

static void test_reclaim_is_refused_with_must_tell_host(void **state)
{
    (void)state;
    struct fake *f = fake_new(100, 0, 1, 16, 4);

    balloon_set_target(&f->b, 40);
    settle(f);
    unsigned writes = f->actual_writes;
    assert_int_equal(balloon_reclaim(&f->b, 10), 0);
    check_rest(f, 40);
    assert_int_equal(f->gives, 0);
    assert_int_equal(f->actual_writes, writes);
    assert_int_equal(f->b.stats.oom_pages, 0);
    assert_int_equal(step(f), 0);
}

static void test_reclaim_is_refused_while_an_inflate_is_in_flight(void **state)
{
    (void)state;
    struct fake *f = fake_new(100, 0, 0, 16, 2);

    balloon_set_target(&f->b, 30);
    settle(f);
    balloon_set_target(&f->b, 60);
    assert_int_equal(step(f), 2);
    ack(f, f->nsent - 1);
    assert_int_equal(balloon_reclaim(&f->b, 10), 0);
    assert_int_equal(f->gives, 0);
    assert_int_equal(f->b.stats.oom_pages, 0);
    check_consistent(f);
    ack_all(f);
    check_rest(f, 60);
}

static void test_reclaim_stops_at_the_listed_pages(void **state)
{
    (void)state;
    struct fake *f = fake_new(3000, 0, 0, 256, 4);

    balloon_set_target(&f->b, 1100);
    settle(f);
    assert_int_equal(balloon_reclaim(&f->b, 5000), 1100);
    assert_int_equal(f->taken, 0);
    assert_int_equal(f->b.list_pages, 0);
    assert_null(f->b.list);
    assert_int_equal(f->last_actual, 0);
    assert_int_equal(f->b.stats.oom_pages, 1100);
    assert_int_equal(balloon_reclaim(&f->b, 1), 0);
    balloon_set_target(&f->b, 0);
    settle(f);
    assert_int_equal(f->b.stats.deflate_requests, 5); /* 1100 told in batches of 256 */
    assert_null(f->b.tell_list);
    check_rest(f, 0);
    assert_int_equal(f->nchunks, 0);
    assert_int_equal(f->nfree, 3000);
}

/* ---- abandon (a freeze that timed out, then thaw) ----------------------- */

/* The device was reset with requests in flight: none is ever acked. */
static void abandon(struct fake *f)
{
    balloon_abandon_in_flight(&f->b);
    for (size_t i = 0; i < f->nsent; i++)
        f->sent[i].done = 1;
    assert_int_equal(balloon_requests_in_flight(&f->b), 0);
}

static void test_abandoned_inflate_stays_on_the_list_and_deflates_exactly(void **state)
{
    (void)state;
    struct fake *f = fake_new(4000, 0, 0, 256, 4);

    balloon_set_target(&f->b, 2000);
    assert_true(step(f) > 0); /* requests in flight, none acked */
    assert_true(f->b.inflating > 0);
    abandon(f);
    assert_int_equal(f->b.inflating, 0);
    uint32_t listed = f->b.list_pages;
    assert_true(listed > 0);
    check_rest(f, listed);
    /* thawed: the balloon follows targets exactly again, both ways */
    settle(f);
    check_rest(f, 2000);
    reach(f, 0);
    assert_int_equal(f->nfree, 4000);
}

static void test_abandoned_deflate_gives_its_pages_back(void **state)
{
    (void)state;
    struct fake *f = fake_new(4000, 0, 0, 256, 4);

    balloon_set_target(&f->b, 2000);
    settle(f);
    balloon_set_target(&f->b, 500);
    assert_true(step(f) > 0);
    assert_true(f->b.deflating > 0);
    abandon(f);
    assert_int_equal(f->b.deflating, 0);
    check_rest(f, f->b.list_pages);
    settle(f);
    check_rest(f, 500);
    reach(f, 0);
    assert_int_equal(f->nfree, 4000);
}

static void test_abandoned_deflate_with_must_tell_host_stays_ballooned(void **state)
{
    (void)state;
    struct fake *f = fake_new(4000, 0, 1, 256, 4);

    balloon_set_target(&f->b, 1000);
    settle(f);
    balloon_set_target(&f->b, 0);
    assert_true(step(f) > 0);
    abandon(f);
    /* the host never heard of that deflate: the pages are the host's still */
    check_rest(f, 1000);
    settle(f); /* and the next deflate tells it */
    check_rest(f, 0);
    assert_int_equal(f->nfree, 4000);
}

/* ---- discard_all (resume from hibernation) --------------------------------- */

static void test_discard_all_returns_every_listed_page(void **state)
{
    (void)state;
    struct fake *f = fake_new(3000, 0, 1, 256, 4);

    balloon_set_target(&f->b, 2500);
    settle(f);
    size_t sent = f->nsent;
    discard_all(f);
    assert_int_equal(f->nsent, sent);
    assert_int_equal(f->b.target, 0);
    check_rest(f, 0);
    assert_int_equal(f->nchunks, 0);
    assert_int_equal(f->nfree, 3000);
    assert_int_equal(f->gives, 2500);
    assert_int_equal(f->b.stats.discarded_pages, 2500);
    assert_int_equal(step(f), 0);
    /* the balloon works again afterwards */
    reach(f, 10);
}

static void test_discard_all_with_a_deflate_in_flight_returns_each_page_once(void **state)
{
    (void)state;
    struct fake *f = fake_new(100, 0, 1, 10, 4);

    balloon_set_target(&f->b, 40);
    settle(f);
    size_t first = f->nsent;
    balloon_set_target(&f->b, 15);
    assert_int_equal(step(f), 3);
    ack(f, first + 1); /* 10 back now; 15 still in flight */
    assert_int_equal(f->taken, 30);
    discard_all(f);
    assert_int_equal(f->taken, 0);
    assert_int_equal(f->gives, 40);
    assert_int_equal(f->bad_gives, 0);
    assert_int_equal(balloon_requests_in_flight(&f->b), 0);
    assert_int_equal(f->b.list_pages, 0);
    assert_int_equal(f->b.inflating, 0);
    assert_int_equal(f->b.deflating, 0);
    assert_int_equal(f->b.target, 0);
    assert_int_equal(f->nchunks, 0);
    /* a late ack from the old device is unknown and gives nothing */
    assert_int_equal(balloon_complete(&f->b, f->sent[first].token), -1);
    assert_int_equal(f->gives, 40);
    assert_int_equal(f->bad_gives, 0);
}

static void test_discard_all_with_reclaimed_pages_still_to_tell(void **state)
{
    (void)state;
    struct fake *f = fake_new(200, 0, 0, 10, 2);

    balloon_set_target(&f->b, 30);
    settle(f);
    assert_int_equal(balloon_reclaim(&f->b, 25), 25);
    pool_consume(f, 25);
    assert_int_equal(step(f), 2); /* tells 20; 5 wait on the tell list */
    assert_non_null(f->b.tell_list);
    unsigned gives = f->gives;
    discard_all(f);
    assert_int_equal(f->gives, gives + 5); /* the 5 still listed, not the reclaimed */
    assert_int_equal(f->taken, 0);
    assert_int_equal(f->bad_gives, 0);
    assert_int_equal(f->nchunks, 0);
    assert_null(f->b.tell_list);
    assert_int_equal(f->b.to_tell, 0);
    assert_int_equal(balloon_requests_in_flight(&f->b), 0);
    assert_int_equal(f->nfree, 175);
    assert_int_equal(step(f), 0);
}

static void test_discard_all_with_an_inflate_and_a_tell_in_flight(void **state)
{
    (void)state;
    struct fake *f = fake_new(200, 0, 0, 10, 3);

    balloon_set_target(&f->b, 30);
    settle(f);
    assert_int_equal(balloon_reclaim(&f->b, 15), 15);
    pool_consume(f, 15);
    balloon_set_target(&f->b, 80);
    assert_int_equal(step(f), 3); /* tells of 10 and 5, an inflate of 10 */
    assert_int_equal(f->b.inflating, 10);
    assert_int_equal(f->taken, 25);
    discard_all(f);
    assert_int_equal(f->taken, 0);
    assert_int_equal(f->bad_gives, 0);
    assert_int_equal(f->nchunks, 0);
    assert_int_equal(f->b.inflating, 0);
    assert_int_equal(balloon_requests_in_flight(&f->b), 0);
    assert_int_equal(f->nfree, 185);
}

/* ---- scale ------------------------------------------------------------------ */

static void test_big_balloon_spans_many_chunks_and_deflates_fully(void **state)
{
    (void)state;
    struct fake *f = fake_new(110000, 0, 1, BALLOON_MAX_BATCH, BALLOON_MAX_IN_FLIGHT);

    balloon_set_target(&f->b, 100000);
    assert_int_equal(step(f), 8);
    settle(f);
    check_rest(f, 100000);
    assert_int_equal(f->nchunks, (100000 + BALLOON_CHUNK_PFNS - 1) / BALLOON_CHUNK_PFNS);
    assert_int_equal(f->b.stats.inflate_requests, (100000 + BALLOON_MAX_BATCH - 1) / BALLOON_MAX_BATCH);
    assert_int_equal(f->last_actual, 100000);
    reach(f, 0);
    assert_int_equal(f->nchunks, 0);
    assert_int_equal(f->nfree, 110000);
    assert_int_equal(f->b.stats.deflated_pages, 100000);
    assert_int_equal(f->last_actual, 0);
}

/* ---- pages in blocks, one request at a time -------------------------------- */

/* The allocator hands out runs: a request is filled from few of them, each
 * page listed once, and the pages go back one by one on deflate. */
static void test_inflate_takes_runs_and_deflates_them_page_by_page(void **state)
{
    (void)state;
    struct fake *f = fake_new(4096, 100, 1, 1024, 8);

    f->max_order = 10;
    balloon_set_target(&f->b, 3000);
    assert_int_equal(step(f), 3);
    /* 1024 + 1024 + 952 (512 + 256 + 128 + 32 + 16 + 8): 8 takes, not 3000 */
    assert_int_equal(f->takes, 8);
    assert_int_equal(f->sent[0].count, 1024);
    for (unsigned k = 1; k < 1024; k++)
        assert_int_equal(f->sent[0].copy[k], f->sent[0].copy[0] + k);
    check_consistent(f);
    settle(f);
    check_rest(f, 3000);
    /* a target past the reserve stops exactly at it, run sizes shrinking */
    balloon_set_target(&f->b, 4096);
    settle(f);
    assert_int_equal(balloon_actual(&f->b), 3996);
    assert_int_equal(f->nfree, 100);
    assert_int_equal(f->shortfall_calls, 1);
    reach(f, 1);
    assert_int_equal(f->nfree, 4095);
    reach(f, 0);
    assert_int_equal(f->bad_gives, 0);
}

/* A run is cut short when the list cannot grow: the pages not listed go
 * back to the allocator at once and the request carries only listed ones. */
static void test_run_cut_by_a_missing_chunk_gives_the_rest_back(void **state)
{
    (void)state;
    struct fake *f = fake_new(4096, 0, 1, 1024, 1);

    f->max_order = 10;
    reach(f, BALLOON_CHUNK_PFNS - 4); /* the first chunk has 4 slots left */
    f->fail_alloc = 1;
    unsigned gives = f->gives;
    balloon_set_target(&f->b, BALLOON_CHUNK_PFNS + 500);
    assert_int_equal(step(f), 1);
    assert_int_equal(f->sent[f->nsent - 1].count, 4);
    /* 504 missing: a 256-page run, 4 of it listed */
    assert_int_equal(f->gives - gives, 256 - 4);
    check_consistent(f);
    ack_all(f);
    check_rest(f, BALLOON_CHUNK_PFNS);
    f->fail_alloc = 0;
    reach(f, 0);
    assert_int_equal(f->nfree, 4096);
    assert_int_equal(f->bad_gives, 0);
}

/* balloon_step_once sends one request and kicks once, so a driver can
 * collect each answer before the next; it still keeps max_in_flight. */
static void test_step_once_sends_one_request_and_kicks_it(void **state)
{
    (void)state;
    struct fake *f = fake_new(4096, 0, 1, 256, 2);

    balloon_set_target(&f->b, 1000);
    for (unsigned i = 1; i <= 2; i++) {
        assert_int_equal(balloon_step_once(&f->b), 1);
        assert_int_equal(f->nsent, i);
        assert_int_equal(f->kicks[BALLOON_INFLATE], i);
    }
    assert_int_equal(balloon_step_once(&f->b), 0); /* two in flight */
    ack(f, 0);
    assert_int_equal(f->last_actual, 256);
    assert_int_equal(balloon_step_once(&f->b), 1);
    for (int round = 0; round < 100 && (pending(f) || balloon_actual(&f->b) != 1000); round++) {
        ack_all(f);
        balloon_step_once(&f->b);
    }
    check_rest(f, 1000);
    /* deflate and a reclaimed page to tell: one request per call too */
    balloon_set_target(&f->b, 0);
    assert_int_equal(balloon_step_once(&f->b), 1);
    assert_int_equal(f->kicks[BALLOON_DEFLATE], 1);
    ack_all(f);
    assert_int_equal(balloon_reclaim(&f->b, 2), 0); /* must_tell_host */
    while (balloon_step_once(&f->b))
        ack_all(f);
    check_rest(f, 0);
}

static void test_stats_buffer_is_every_tag_in_order_in_bytes(void **state)
{
    struct balloon_stat stats[BALLOON_STAT_COUNT];

    (void)state;
    memset(stats, 0xee, sizeof stats);
    balloon_fill_stats(stats, 3ull << 30, 8ull << 30);
    /* the wire layout: a 16-bit tag then a 64-bit value, packed (5.5.6.3) */
    assert_int_equal(sizeof stats[0], 10);
    assert_int_equal(BALLOON_STAT_COUNT, 10);
    for (unsigned tag = 0; tag < BALLOON_STAT_COUNT; tag++) {
        uint64_t want = tag == BALLOON_STAT_MEMORY_FREE || tag == BALLOON_STAT_AVAILABLE ? 3ull << 30
                        : tag == BALLOON_STAT_MEMORY_TOTAL                               ? 8ull << 30
                                                                                         : 0;
        assert_int_equal(stats[tag].tag, tag);
        assert_true(stats[tag].value == want);
    }
    /* the spec's numbers for the tags torpor fills */
    assert_int_equal(BALLOON_STAT_MEMORY_FREE, 4);
    assert_int_equal(BALLOON_STAT_MEMORY_TOTAL, 5);
    assert_int_equal(BALLOON_STAT_AVAILABLE, 6);
}

static uint64_t given[BALLOON_REPORTS];
static unsigned given_count;

static void record_given(uint64_t address)
{
    assert_true(given_count < BALLOON_REPORTS);
    given[given_count++] = address;
}

static void test_settled_reports_give_each_block_back_once(void **state)
{
    struct balloon_report reports[BALLOON_REPORTS] = { { 0 } };

    (void)state;
    given_count = 0;
    for (unsigned i = 0; i < BALLOON_REPORTS; i += 3)
        reports[i] = (struct balloon_report){ 0x200000ull * (i + 1), 9, 1 };
    assert_int_equal(balloon_reports_busy(reports), 6);
    balloon_reports_settle(reports, record_given);
    assert_int_equal(balloon_reports_busy(reports), 0);
    assert_int_equal(given_count, 6);
    for (unsigned k = 0; k < given_count; k++)
        assert_true(given[k] == 0x200000ull * (3 * k + 1));
    /* settled twice: nothing is given twice */
    balloon_reports_settle(reports, record_given);
    assert_int_equal(given_count, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_inflate_to_target_in_batches_within_in_flight_limit, fake_teardown),
        cmocka_unit_test_teardown(test_last_batch_is_short_when_target_is_not_a_multiple, fake_teardown),
        cmocka_unit_test_teardown(test_batch_size_one_sends_one_pfn_per_request, fake_teardown),
        cmocka_unit_test_teardown(test_set_batching_rejects_out_of_range_values, fake_teardown),
        cmocka_unit_test(test_chunk_is_exactly_one_page),
        cmocka_unit_test_teardown(test_out_of_order_inflate_acks_keep_counters_right, fake_teardown),
        cmocka_unit_test_teardown(test_out_of_order_deflate_acks_return_only_acked_pages, fake_teardown),
        cmocka_unit_test_teardown(test_unknown_and_duplicate_acks_are_counted_and_change_nothing, fake_teardown),
        cmocka_unit_test_teardown(test_target_lowered_mid_inflate_deflates_only_after_acks, fake_teardown),
        cmocka_unit_test_teardown(test_target_raised_and_lowered_mid_inflate_converges, fake_teardown),
        cmocka_unit_test_teardown(test_target_raised_mid_deflate_inflates_only_after_acks, fake_teardown),
        cmocka_unit_test_teardown(test_deflate_gives_pages_back_only_on_ack_with_must_tell_host, fake_teardown),
        cmocka_unit_test_teardown(test_deflate_gives_pages_back_only_on_ack_without_must_tell_host, fake_teardown),
        cmocka_unit_test_teardown(test_deflate_to_zero_empties_list_and_frees_every_chunk, fake_teardown),
        cmocka_unit_test_teardown(test_shortfall_is_reported_once_per_unreachable_target, fake_teardown),
        cmocka_unit_test_teardown(test_absurd_target_stops_at_the_reserve, fake_teardown),
        cmocka_unit_test_teardown(test_shortfall_mid_batch_sends_the_partial_batch, fake_teardown),
        cmocka_unit_test_teardown(test_inflate_send_failure_gives_the_batch_back, fake_teardown),
        cmocka_unit_test_teardown(test_deflate_send_failure_keeps_pages_on_the_list, fake_teardown),
        cmocka_unit_test_teardown(test_deflate_send_failure_without_a_chunk_loses_no_page, fake_teardown),
        cmocka_unit_test_teardown(test_alloc_chunk_failure_gives_the_page_back, fake_teardown),
        cmocka_unit_test_teardown(test_reclaim_gives_pages_at_once_and_tells_the_host_later, fake_teardown),
        cmocka_unit_test_teardown(test_reclaim_is_refused_with_must_tell_host, fake_teardown),
        cmocka_unit_test_teardown(test_reclaim_is_refused_while_an_inflate_is_in_flight, fake_teardown),
        cmocka_unit_test_teardown(test_reclaim_stops_at_the_listed_pages, fake_teardown),
        cmocka_unit_test_teardown(test_abandoned_inflate_stays_on_the_list_and_deflates_exactly, fake_teardown),
        cmocka_unit_test_teardown(test_abandoned_deflate_gives_its_pages_back, fake_teardown),
        cmocka_unit_test_teardown(test_abandoned_deflate_with_must_tell_host_stays_ballooned, fake_teardown),
        cmocka_unit_test_teardown(test_discard_all_returns_every_listed_page, fake_teardown),
        cmocka_unit_test_teardown(test_discard_all_with_a_deflate_in_flight_returns_each_page_once, fake_teardown),
        cmocka_unit_test_teardown(test_discard_all_with_reclaimed_pages_still_to_tell, fake_teardown),
        cmocka_unit_test_teardown(test_discard_all_with_an_inflate_and_a_tell_in_flight, fake_teardown),
        cmocka_unit_test_teardown(test_big_balloon_spans_many_chunks_and_deflates_fully, fake_teardown),
        cmocka_unit_test_teardown(test_inflate_takes_runs_and_deflates_them_page_by_page, fake_teardown),
        cmocka_unit_test_teardown(test_run_cut_by_a_missing_chunk_gives_the_rest_back, fake_teardown),
        cmocka_unit_test_teardown(test_step_once_sends_one_request_and_kicks_it, fake_teardown),
        cmocka_unit_test(test_stats_buffer_is_every_tag_in_order_in_bytes),
        cmocka_unit_test(test_settled_reports_give_each_block_back_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
