/*
 * Balloon state machine (virtio 1.2, 5.5.6). Inflate and deflate never run
 * at the same time: a page is either on its way to the host, on the list,
 * or on its way back, and the counters say which:
 *
 *   allocator --take--> list (inflating) --host ack--> list (list_pages)
 *   list --pop--> request (deflating) --host ack--> allocator
 *
 * Taken pages go on the list at once, so a page in flight is never lost.
 */
#include "virtio/balloon.h"

static int list_push(struct balloon *b, struct balloon_chunk **list, uint32_t pfn)
{
    struct balloon_chunk *chunk = *list;

    if (!chunk || chunk->count == BALLOON_CHUNK_PFNS) {
        struct balloon_chunk *fresh = b->ops->alloc_chunk(b->context);
        if (!fresh)
            return -1;
        fresh->next = chunk;
        fresh->count = 0;
        *list = chunk = fresh;
    }
    chunk->pfns[chunk->count++] = pfn;
    return 0;
}

static int list_pop(struct balloon *b, struct balloon_chunk **list, uint32_t *pfn)
{
    struct balloon_chunk *chunk = *list;

    if (!chunk || chunk->count == 0)
        return -1;
    *pfn = chunk->pfns[--chunk->count];
    if (chunk->count == 0) {
        *list = chunk->next;
        b->ops->free_chunk(b->context, chunk);
    }
    return 0;
}

/* Copies the top `count` entries, in pop order, leaving the list as it is:
 * a request is built from the list and only taken off once it is sent, so
 * a failed send needs no undo (which could need a chunk we cannot get). */
static unsigned list_copy_top(const struct balloon_chunk *list, uint32_t *pfns, unsigned count)
{
    unsigned copied = 0;

    for (const struct balloon_chunk *chunk = list; chunk && copied < count; chunk = chunk->next)
        for (uint32_t i = chunk->count; i-- > 0 && copied < count;)
            pfns[copied++] = chunk->pfns[i];
    return copied;
}

static void list_drop(struct balloon *b, struct balloon_chunk **list, unsigned count)
{
    uint32_t pfn;

    while (count-- && list_pop(b, list, &pfn) == 0)
        ;
}

void balloon_init(struct balloon *b, const struct balloon_ops *ops, void *context,
                  uint32_t *batch_memory, int must_tell_host)
{
    *b = (struct balloon){
        .ops = ops,
        .context = context,
        .must_tell_host = must_tell_host,
        .batch_size = 256,
        .max_in_flight = 1,
    };
    for (unsigned i = 0; i < BALLOON_MAX_IN_FLIGHT; i++)
        b->requests[i].pfns = batch_memory + i * BALLOON_MAX_BATCH;
}

int balloon_set_batching(struct balloon *b, unsigned batch_size, unsigned max_in_flight)
{
    if (batch_size == 0 || batch_size > BALLOON_MAX_BATCH || max_in_flight == 0 ||
        max_in_flight > BALLOON_MAX_IN_FLIGHT)
        return -1;
    b->batch_size = batch_size;
    b->max_in_flight = max_in_flight;
    return 0;
}

void balloon_set_target(struct balloon *b, uint32_t target)
{
    if (target != b->target)
        b->shortfall_target = 0; /* a new target may be reported again */
    b->target = target;
}

uint32_t balloon_actual(const struct balloon *b)
{
    return b->list_pages + b->deflating;
}

unsigned balloon_requests_in_flight(const struct balloon *b)
{
    unsigned busy = 0;

    for (unsigned i = 0; i < BALLOON_MAX_IN_FLIGHT; i++)
        busy += b->requests[i].busy;
    return busy;
}

static struct balloon_request *free_request(struct balloon *b)
{
    if (balloon_requests_in_flight(b) >= b->max_in_flight)
        return 0;
    for (unsigned i = 0; i < BALLOON_MAX_IN_FLIGHT; i++)
        if (!b->requests[i].busy)
            return &b->requests[i];
    return 0;
}

static int send(struct balloon *b, struct balloon_request *r, enum balloon_queue queue,
                unsigned count, int already_returned)
{
    r->queue = queue;
    r->count = count;
    r->already_returned = already_returned;
    if (b->ops->send(b->context, queue, r->pfns, count, r) != 0)
        return -1;
    r->busy = 1;
    if (queue == BALLOON_INFLATE)
        b->stats.inflate_requests++;
    else
        b->stats.deflate_requests++;
    return 0;
}

/* Fills one inflate request; returns the pages taken (0: none possible). */
static unsigned take_batch(struct balloon *b, struct balloon_request *r, unsigned wanted)
{
    unsigned count = 0;

    while (count < wanted) {
        uint32_t first;
        unsigned taken = b->ops->take_pages(b->context, wanted - count, &first);
        if (taken == 0 || taken > wanted - count)
            break;
        for (unsigned i = 0; i < taken; i++) {
            if (list_push(b, &b->list, first + i) != 0) {
                /* no chunk: the rest of the run goes back untouched */
                while (i < taken)
                    b->ops->give_page(b->context, first + i++);
                return count;
            }
            r->pfns[count++] = first + i;
        }
    }
    return count;
}

static int inflate(struct balloon *b, int limit)
{
    int sent = 0;

    while (sent < limit && b->list_pages + b->inflating < b->target) {
        struct balloon_request *r = free_request(b);
        if (!r)
            break;
        uint32_t missing = b->target - (b->list_pages + b->inflating);
        unsigned wanted = missing < b->batch_size ? missing : b->batch_size;
        unsigned count = take_batch(b, r, wanted);
        if (count && send(b, r, BALLOON_INFLATE, count, 0) != 0) {
            /* ring full: undo, the pages are the last ones pushed */
            for (unsigned i = 0; i < count; i++) {
                uint32_t pfn;
                list_pop(b, &b->list, &pfn);
                b->ops->give_page(b->context, pfn);
            }
            break;
        }
        if (count) {
            b->inflating += count;
            sent++;
        }
        if (count < wanted) {
            /* the reserve stops us: say so once per target, and wait for
             * the next target rather than retry in a loop */
            if (b->shortfall_target != b->target) {
                b->shortfall_target = b->target;
                b->stats.shortfalls++;
                if (b->ops->report_shortfall)
                    b->ops->report_shortfall(b->context, b->target, b->list_pages + b->inflating);
            }
            break;
        }
    }
    return sent;
}

static int deflate(struct balloon *b, int limit)
{
    int sent = 0;

    /* pages already deflating are on their way out: only the list counts */
    while (sent < limit && b->list_pages > b->target) {
        struct balloon_request *r = free_request(b);
        if (!r)
            break;
        uint32_t excess = b->list_pages - b->target;
        unsigned count = excess < b->batch_size ? excess : b->batch_size;
        count = list_copy_top(b->list, r->pfns, count);
        if (count == 0 || send(b, r, BALLOON_DEFLATE, count, 0) != 0)
            break;
        list_drop(b, &b->list, count);
        b->list_pages -= count;
        b->deflating += count;
        sent++;
    }
    return sent;
}

/* Tells the host about pages reclaimed on OOM (already in use again). */
static int tell_reclaimed(struct balloon *b, int limit)
{
    int sent = 0;

    while (sent < limit && b->to_tell) {
        struct balloon_request *r = free_request(b);
        if (!r)
            break;
        unsigned count = list_copy_top(b->tell_list, r->pfns, b->batch_size);
        if (count == 0) {
            b->to_tell = 0; /* nothing recorded (a chunk could not be had) */
            break;
        }
        if (send(b, r, BALLOON_DEFLATE, count, 1) != 0)
            break;
        list_drop(b, &b->tell_list, count);
        b->to_tell = b->to_tell > count ? b->to_tell - count : 0;
        sent++;
    }
    return sent;
}

static int step(struct balloon *b, int limit)
{
    int inflate_sent = 0, deflate_sent = tell_reclaimed(b, limit);

    if (deflate_sent >= limit)
        ;
    else if (b->deflating == 0 && b->list_pages + b->inflating < b->target)
        inflate_sent = inflate(b, limit - deflate_sent);
    else if (b->inflating == 0 && b->list_pages > b->target)
        deflate_sent += deflate(b, limit - deflate_sent);
    if (inflate_sent)
        b->ops->kick(b->context, BALLOON_INFLATE);
    if (deflate_sent)
        b->ops->kick(b->context, BALLOON_DEFLATE);
    return inflate_sent + deflate_sent;
}

int balloon_step(struct balloon *b)
{
    return step(b, BALLOON_MAX_IN_FLIGHT);
}

int balloon_step_once(struct balloon *b)
{
    return step(b, 1);
}

int balloon_complete(struct balloon *b, void *token)
{
    struct balloon_request *r = 0;

    for (unsigned i = 0; i < BALLOON_MAX_IN_FLIGHT; i++)
        if (token == &b->requests[i] && b->requests[i].busy)
            r = &b->requests[i];
    if (!r) {
        b->stats.unknown_acks++;
        return -1;
    }
    if (r->queue == BALLOON_INFLATE) {
        b->inflating -= r->count;
        b->list_pages += r->count;
        b->stats.inflated_pages += r->count;
    } else if (!r->already_returned) {
        /* only now may the pages be used again (MUST_TELL_HOST) */
        for (unsigned i = 0; i < r->count; i++)
            b->ops->give_page(b->context, r->pfns[i]);
        b->deflating -= r->count;
        b->stats.deflated_pages += r->count;
    }
    r->busy = 0;
    b->ops->set_actual(b->context, balloon_actual(b));
    return 0;
}

uint32_t balloon_reclaim(struct balloon *b, uint32_t pages)
{
    uint32_t given = 0;

    /* with MUST_TELL_HOST a page is ours only after the host's ack; pages
     * of an inflate in flight are still on their way to the host */
    if (b->must_tell_host || b->inflating)
        return 0;
    while (given < pages && b->list_pages) {
        uint32_t pfn;
        if (list_pop(b, &b->list, &pfn) != 0)
            break;
        b->list_pages--;
        b->ops->give_page(b->context, pfn);
        if (list_push(b, &b->tell_list, pfn) == 0)
            b->to_tell++;
        given++;
    }
    b->stats.oom_pages += given;
    if (given) {
        /* give up the target until the host sets a new one, or the next
         * step would inflate right back into the shortage */
        b->target = b->list_pages;
        b->ops->set_actual(b->context, balloon_actual(b));
    }
    return given;
}

void balloon_abandon_in_flight(struct balloon *b)
{
    for (unsigned i = 0; i < BALLOON_MAX_IN_FLIGHT; i++) {
        struct balloon_request *r = &b->requests[i];
        if (!r->busy)
            continue;
        if (r->queue == BALLOON_DEFLATE && !r->already_returned && b->must_tell_host) {
            /* the host was never told: the pages stay ballooned, and a
             * later deflate tells it (5.5.6.1) */
            for (unsigned k = 0; k < r->count; k++)
                if (list_push(b, &b->list, r->pfns[k]) == 0) {
                    b->list_pages++;
                    b->deflating--;
                }
            r->busy = 0;
            continue;
        }
        /* as if acknowledged: an inflate's pages stay on the list (the
         * host may hold them), a deflate's go back to the allocator */
        balloon_complete(b, r);
    }
}

void balloon_discard_all(struct balloon *b)
{
    uint32_t pfn;

    for (unsigned i = 0; i < BALLOON_MAX_IN_FLIGHT; i++) {
        struct balloon_request *r = &b->requests[i];
        /* a deflate in flight holds pages already off the list */
        if (r->busy && r->queue == BALLOON_DEFLATE && !r->already_returned)
            for (unsigned k = 0; k < r->count; k++)
                b->ops->give_page(b->context, r->pfns[k]);
        r->busy = 0;
    }
    b->stats.discarded_pages += b->list_pages;
    while (list_pop(b, &b->list, &pfn) == 0)
        b->ops->give_page(b->context, pfn);
    while (list_pop(b, &b->tell_list, &pfn) == 0)
        ;
    b->list_pages = b->inflating = b->deflating = b->to_tell = 0;
    b->target = 0; /* a new host process starts with no balloon */
    b->shortfall_target = 0;
}

void balloon_fill_stats(struct balloon_stat stats[BALLOON_STAT_COUNT], uint64_t free_bytes,
                        uint64_t total_bytes)
{
    for (unsigned tag = 0; tag < BALLOON_STAT_COUNT; tag++)
        stats[tag] = (struct balloon_stat){ (uint16_t)tag, 0 };
    stats[BALLOON_STAT_MEMORY_FREE].value = free_bytes;
    stats[BALLOON_STAT_MEMORY_TOTAL].value = total_bytes;
    stats[BALLOON_STAT_AVAILABLE].value = free_bytes;
}

unsigned balloon_reports_busy(const struct balloon_report reports[BALLOON_REPORTS])
{
    unsigned busy = 0;

    for (unsigned i = 0; i < BALLOON_REPORTS; i++)
        busy += reports[i].busy != 0;
    return busy;
}

void balloon_reports_settle(struct balloon_report reports[BALLOON_REPORTS], void (*give)(uint64_t address))
{
    for (unsigned i = 0; i < BALLOON_REPORTS; i++)
        if (reports[i].busy) {
            give(reports[i].address);
            reports[i].busy = 0;
        }
}
