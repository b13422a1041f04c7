/*
 * Free page hinting's state machine (virtio 1.2, 5.5.6.7); see
 * balloon_hint.h. QEMU 7.2 acts on a block only while its round runs (it
 * saw the id and no STOP since); a buffer that arrives later is returned
 * untouched, so ending a round never loses a page, it only hints less.
 */
#include "virtio/balloon_hint.h"

void hint_init(struct balloon_hint *h, const struct hint_ops *ops, void *context, uint32_t *words)
{
    *h = (struct balloon_hint){ .ops = ops, .context = context, .words = words };
}

static void give_block(struct balloon_hint *h, struct hint_block *b)
{
    h->ops->give(h->context, b->address);
    h->held--;
    h->held_pages -= 1ull << b->order;
    *b = (struct hint_block){ 0 };
}

/* Sends a command buffer (5.5.6.7: the id, or STOP once the blocks are
 * out); the device only reads it. */
static void send_command(struct balloon_hint *h, unsigned slot, uint32_t id)
{
    h->words[slot] = id; /* little-endian on x86, as virtio 1.x wants */
    if (h->ops->send(h->context, (uint64_t)(uintptr_t)&h->words[slot], 4, 0, &h->words[slot]) == 0)
        h->posted++;
    h->ops->kick(h->context, 0);
}

/* Ends the running round: STOP if still sending, then every block the
 * device returned goes back now and the rest as they return. Returns the
 * pages given back now. */
static uint64_t end_round(struct balloon_hint *h)
{
    uint64_t given = h->held_pages;

    if (!h->active)
        goto kick;
    if (h->sending)
        send_command(h, 2, HINT_CMD_ID_STOP);
    h->active = h->sending = 0;
    for (unsigned i = 0; i < HINT_MAX_BLOCKS; i++) {
        struct hint_block *b = &h->blocks[i];
        if (!b->address)
            continue;
        if (b->posted)
            b->expired = 1;
        else
            give_block(h, b);
    }
kick:
    /* QEMU pops the queue only when kicked; buffers left over from a round
     * it stopped taking (the VM paused at the end of a migration: they
     * come across in the ring) come back only after a kick, so every STOP
     * or DONE kicks while any is out, ended round or not; nothing new is
     * in the ring, so event suppression would swallow a plain kick */
    if (h->held)
        h->ops->kick(h->context, 1);
    return given - h->held_pages;
}

void hint_command(struct balloon_hint *h, uint32_t id)
{
    if (id == HINT_CMD_ID_STOP || id == HINT_CMD_ID_DONE) {
        end_round(h);
        return;
    }
    if (id == h->last_id)
        return; /* QEMU shows the id until it sees ours; one round per id */
    end_round(h);
    h->last_id = id;
    h->active = h->sending = 1;
    h->stats.rounds++;
    /* ids alternate between two words: an earlier id's buffer the device
     * has not read yet must not turn into this id */
    send_command(h, (unsigned)(h->stats.rounds & 1), id);
}

void hint_step(struct balloon_hint *h)
{
    unsigned slot = 0, sent = 0;

    while (h->sending) {
        while (slot < HINT_MAX_BLOCKS && h->blocks[slot].address)
            slot++;
        unsigned order = 0;
        uint64_t address = slot < HINT_MAX_BLOCKS ? h->ops->take(h->context, &order) : 0;
        if (!address)
            break;
        struct hint_block *b = &h->blocks[slot];
        *b = (struct hint_block){ address, (uint8_t)order, 1, 0 };
        h->held++;
        h->held_pages += 1ull << order;
        /* the device may skip these pages when migrating: it "writes" them */
        if (h->ops->send(h->context, address, HINT_PAGE_SIZE << order, 1, b) != 0) {
            b->posted = 0;
            give_block(h, b);
            break;
        }
        h->posted++;
        sent++;
    }
    if (!h->sending)
        return;
    if (sent)
        h->ops->kick(h->context, 0);
    /* no more free blocks, or no room: tell the device we are done */
    h->sending = 0;
    send_command(h, 2, HINT_CMD_ID_STOP);
}

int hint_used(struct balloon_hint *h, void *token)
{
    if (token == &h->words[0] || token == &h->words[1] || token == &h->words[2]) {
        if (h->posted)
            h->posted--;
        return 0;
    }
    for (unsigned i = 0; i < HINT_MAX_BLOCKS; i++) {
        struct hint_block *b = &h->blocks[i];
        if (token != b || !b->address || !b->posted)
            continue;
        b->posted = 0;
        h->posted--;
        if (b->expired)
            give_block(h, b);
        else
            h->stats.hinted_pages += 1ull << b->order;
        return 0;
    }
    h->stats.unknown_used++;
    return -1;
}

uint64_t hint_reclaim(struct balloon_hint *h)
{
    if (!h->active)
        return 0;
    h->stats.early_ends++;
    return end_round(h);
}

void hint_abandon(struct balloon_hint *h)
{
    h->active = h->sending = 0;
    h->posted = 0;
    h->last_id = 0; /* a reset device's next id starts a round afresh */
    for (unsigned i = 0; i < HINT_MAX_BLOCKS; i++)
        if (h->blocks[i].address)
            give_block(h, &h->blocks[i]);
}

const char *hint_state_name(const struct balloon_hint *h)
{
    return h->sending ? "sending" : h->active ? "holding" : "idle";
}
