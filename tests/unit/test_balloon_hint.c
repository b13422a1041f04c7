/* Host unit tests for virtio/balloon_hint.c: free page hinting's state machine driven
 * through a fake transport (a pool of blocks, a device that records every buffer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/balloon_hint.h"

/* ---- the fake transport --------------------------------------------------- */

#define POOL 300 /* blocks the fake allocator can hand out */
#define RING 1024

struct buffer {
    uint64_t address;
    uint32_t length;
    int device_writes;
    void *token;
    uint32_t value; /* a command's word when it was sent */
    int used;
};

struct fake {
    unsigned free_blocks;              /* left to take */
    unsigned order;                    /* of each block */
    int state[POOL];                   /* 0 free, 1 taken */
    unsigned takes, gives, bad_gives;
    struct buffer ring[RING];
    unsigned sent, ring_room;          /* buffers sent; how many more fit */
    unsigned kicks, rekicks;
    uint32_t words[3];
    struct balloon_hint h;
};

static struct fake *f;

static uint64_t block_address(unsigned i)
{
    return 0x10000000ull + (uint64_t)i * 0x200000ull * 4;
}

static uint64_t fake_take(void *context, unsigned *order)
{
    (void)context;
    for (unsigned i = 0; i < POOL && f->free_blocks; i++)
        if (!f->state[i]) {
            f->state[i] = 1;
            f->free_blocks--;
            f->takes++;
            *order = f->order;
            return block_address(i);
        }
    return 0;
}

static void fake_give(void *context, uint64_t address)
{
    (void)context;
    f->gives++;
    for (unsigned i = 0; i < POOL; i++)
        if (block_address(i) == address && f->state[i]) {
            f->state[i] = 0;
            f->free_blocks++;
            return;
        }
    f->bad_gives++;
}

static int fake_send(void *context, uint64_t address, uint32_t length, int device_writes, void *token)
{
    (void)context;
    if (!f->ring_room || f->sent == RING)
        return -1;
    f->ring_room--;
    struct buffer *b = &f->ring[f->sent++];
    *b = (struct buffer){ address, length, device_writes, token, 0, 0 };
    if (!device_writes)
        b->value = *(uint32_t *)(uintptr_t)address;
    return 0;
}

static void fake_kick(void *context, int again)
{
    (void)context;
    f->kicks++;
    f->rekicks += again != 0;
}

static const struct hint_ops fake_ops = { fake_take, fake_give, fake_send, fake_kick };

static int setup(void **state)
{
    f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->free_blocks = 10;
    f->order = 10;
    f->ring_room = RING;
    hint_init(&f->h, &fake_ops, f, f->words);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(f);
    f = NULL;
    return 0;
}

/* The device returns buffer i (as QEMU pushes it back). */
static void use(unsigned i)
{
    assert_true(i < f->sent);
    assert_false(f->ring[i].used);
    f->ring[i].used = 1;
    assert_int_equal(hint_used(&f->h, f->ring[i].token), 0);
}

static void use_all(void)
{
    for (unsigned i = 0; i < f->sent; i++)
        if (!f->ring[i].used)
            use(i);
}

static unsigned held_blocks(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < POOL; i++)
        n += f->state[i];
    return n;
}

static void start_round(uint32_t id)
{
    hint_command(&f->h, id);
    hint_step(&f->h);
}

/* ---- tests ---------------------------------------------------------------- */

/* 5.5.6.7: the id (device-readable, 4 bytes), then the blocks
 * (device-writable), then STOP; the blocks stay out of the allocator. */
static void test_round_sends_id_blocks_then_stop(void **state)
{
    (void)state;
    start_round(0x80000000u);
    assert_int_equal(f->sent, 12);
    assert_int_equal(f->ring[0].device_writes, 0);
    assert_int_equal(f->ring[0].length, 4);
    assert_int_equal(f->ring[0].value, 0x80000000u);
    for (unsigned i = 1; i <= 10; i++) {
        assert_int_equal(f->ring[i].device_writes, 1);
        assert_int_equal(f->ring[i].length, 4096u << 10);
        assert_int_equal(f->ring[i].address, block_address(i - 1));
    }
    assert_int_equal(f->ring[11].device_writes, 0);
    assert_int_equal(f->ring[11].value, HINT_CMD_ID_STOP);
    assert_int_equal(held_blocks(), 10);
    assert_int_equal(f->h.held_pages, 10u << 10);
    assert_int_equal(f->gives, 0);
    assert_string_equal(hint_state_name(&f->h), "holding");
    assert_int_equal(f->h.stats.rounds, 1);
    assert_true(f->kicks >= 1);
}

static void test_blocks_returned_in_the_round_count_as_hinted_and_stay_held(void **state)
{
    (void)state;
    start_round(0x80000000u);
    use_all();
    assert_int_equal(f->h.stats.hinted_pages, 10u << 10);
    assert_int_equal(held_blocks(), 10);
    assert_int_equal(f->gives, 0);
    assert_int_equal(f->h.posted, 0);
}

static void test_host_stop_gives_returned_blocks_back_and_the_rest_as_they_return(void **state)
{
    (void)state;
    start_round(0x80000000u);
    for (unsigned i = 0; i <= 5; i++) /* the id and blocks 0-4 */
        use(i);
    unsigned kicks = f->kicks;
    hint_command(&f->h, HINT_CMD_ID_STOP);
    assert_int_equal(held_blocks(), 5);
    assert_string_equal(hint_state_name(&f->h), "idle");
    assert_true(f->kicks > kicks); /* the leftovers come back only when kicked */
    assert_int_equal(f->sent, 12);  /* STOP was already sent: not twice */
    use_all();
    assert_int_equal(held_blocks(), 0);
    assert_int_equal(f->gives, 10);
    assert_int_equal(f->bad_gives, 0);
    /* blocks returned after their round ended were not hinted */
    assert_int_equal(f->h.stats.hinted_pages, 5u << 10);
    assert_int_equal(f->h.held_pages, 0);
}

/* The end of a migration: STOP came while the VM still ran, the device
 * stopped popping before it returned the blocks, and they crossed over
 * in the ring; DONE on the destination kicks again so they come back. */
static void test_done_after_stop_kicks_for_blocks_still_out(void **state)
{
    (void)state;
    start_round(0x80000000u);
    hint_command(&f->h, HINT_CMD_ID_STOP);
    assert_int_equal(held_blocks(), 10);
    unsigned kicks = f->kicks;
    unsigned rekicks = f->rekicks;
    hint_command(&f->h, HINT_CMD_ID_DONE);
    assert_true(f->kicks > kicks);
    assert_true(f->rekicks > rekicks); /* nothing new: past suppression */
    use_all();
    assert_int_equal(held_blocks(), 0);
    kicks = f->kicks;
    hint_command(&f->h, HINT_CMD_ID_DONE); /* nothing out: no kick */
    assert_int_equal(f->kicks, kicks);
}

static void test_done_gives_everything_back_once(void **state)
{
    (void)state;
    start_round(0x80000000u);
    use_all();
    hint_command(&f->h, HINT_CMD_ID_DONE);
    assert_int_equal(held_blocks(), 0);
    assert_int_equal(f->gives, 10);
    hint_command(&f->h, HINT_CMD_ID_DONE); /* a second config change: nothing */
    hint_command(&f->h, HINT_CMD_ID_STOP);
    assert_int_equal(f->gives, 10);
    assert_int_equal(f->bad_gives, 0);
}

static void test_an_id_is_answered_once(void **state)
{
    (void)state;
    start_round(0x80000000u);
    use_all();
    unsigned sent = f->sent;
    start_round(0x80000000u); /* another config change showing the same id */
    assert_int_equal(f->sent, sent);
    assert_int_equal(f->h.stats.rounds, 1);
    hint_command(&f->h, HINT_CMD_ID_STOP);
    start_round(0x80000000u); /* still the same id after an early end */
    assert_int_equal(f->sent, sent);
}

static void test_new_id_ends_the_round_and_starts_another(void **state)
{
    (void)state;
    start_round(0x80000000u);
    use_all();
    start_round(0x80000001u);
    assert_int_equal(f->h.stats.rounds, 2);
    /* round 1's blocks went back first, so round 2 hints them again */
    assert_int_equal(f->gives, 10);
    assert_int_equal(held_blocks(), 10);
    assert_int_equal(f->ring[12].value, 0x80000001u);
    assert_int_equal(f->ring[23].value, HINT_CMD_ID_STOP);
    /* the first id's word still reads the first id: a buffer the device
     * had not read yet keeps its meaning */
    assert_ptr_not_equal(f->ring[0].token, f->ring[12].token);
    assert_int_equal(*(uint32_t *)f->ring[0].token, 0x80000000u);
    use_all();
    assert_int_equal(f->h.stats.hinted_pages, 20u << 10);
}

static void test_reclaim_while_sending_sends_stop_and_returns_what_it_can(void **state)
{
    (void)state;
    f->free_blocks = 3;
    hint_command(&f->h, 0x80000000u); /* the id is out */
    f->ring_room = 2; /* two blocks fit; the third, and STOP, do not */
    hint_step(&f->h);
    assert_int_equal(held_blocks(), 2);
    assert_int_equal(f->gives, 1); /* the block that did not fit went back */
    f->ring_room = RING;
    use(0);
    use(1);
    uint64_t given = hint_reclaim(&f->h);
    assert_int_equal(given, 1u << 10); /* block 1 returned: back now */
    assert_int_equal(f->h.stats.early_ends, 1);
    assert_int_equal(held_blocks(), 1);
    use_all();
    assert_int_equal(held_blocks(), 0);
    assert_int_equal(f->bad_gives, 0);
    assert_int_equal(hint_reclaim(&f->h), 0); /* no round: nothing */
    assert_int_equal(f->h.stats.early_ends, 1);
}

static void test_reclaim_in_a_sending_round_sends_stop_once(void **state)
{
    (void)state;
    hint_command(&f->h, 0x80000000u); /* the id is out, no block yet */
    assert_string_equal(hint_state_name(&f->h), "sending");
    hint_reclaim(&f->h);
    assert_int_equal(f->sent, 2);
    assert_int_equal(f->ring[1].value, HINT_CMD_ID_STOP);
    hint_step(&f->h); /* the round is over: nothing more goes out */
    assert_int_equal(f->sent, 2);
    assert_int_equal(f->takes, 0);
}

static void test_round_stops_at_the_block_limit(void **state)
{
    (void)state;
    f->free_blocks = POOL;
    f->order = 9;
    start_round(0x80000000u);
    assert_int_equal(held_blocks(), HINT_MAX_BLOCKS);
    assert_int_equal(f->sent, HINT_MAX_BLOCKS + 2);
    assert_int_equal(f->ring[f->sent - 1].value, HINT_CMD_ID_STOP);
    use_all();
    hint_command(&f->h, HINT_CMD_ID_DONE);
    assert_int_equal(held_blocks(), 0);
}

static void test_abandon_gives_every_block_back_and_forgets_the_id(void **state)
{
    (void)state;
    start_round(0x80000000u);
    use(0);
    use(1);
    hint_abandon(&f->h);
    assert_int_equal(held_blocks(), 0);
    assert_int_equal(f->gives, 10);
    assert_int_equal(f->h.posted, 0);
    assert_string_equal(hint_state_name(&f->h), "idle");
    /* after a reset the same id starts a round again */
    start_round(0x80000000u);
    assert_int_equal(f->h.stats.rounds, 2);
    assert_int_equal(held_blocks(), 10);
}

static void test_unknown_tokens_are_counted_and_change_nothing(void **state)
{
    (void)state;
    start_round(0x80000000u);
    int other;
    assert_int_equal(hint_used(&f->h, &other), -1);
    use(3);
    assert_int_equal(hint_used(&f->h, f->ring[3].token), -1); /* returned twice */
    assert_int_equal(f->h.stats.unknown_used, 2);
    assert_int_equal(held_blocks(), 10);
    assert_int_equal(f->h.stats.hinted_pages, 1u << 10);
}

static void test_no_free_block_sends_id_and_stop_only(void **state)
{
    (void)state;
    f->free_blocks = 0;
    start_round(0x80000000u);
    assert_int_equal(f->sent, 2);
    assert_int_equal(f->ring[0].value, 0x80000000u);
    assert_int_equal(f->ring[1].value, HINT_CMD_ID_STOP);
    assert_string_equal(hint_state_name(&f->h), "holding");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_sends_id_blocks_then_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_returned_in_the_round_count_as_hinted_and_stay_held,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_stop_gives_returned_blocks_back_and_the_rest_as_they_return,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_after_stop_kicks_for_blocks_still_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_gives_everything_back_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_id_is_answered_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_id_ends_the_round_and_starts_another, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_while_sending_sends_stop_and_returns_what_it_can,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_in_a_sending_round_sends_stop_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_stops_at_the_block_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandon_gives_every_block_back_and_forgets_the_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tokens_are_counted_and_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_free_block_sends_id_and_stop_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
