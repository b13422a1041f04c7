/* Host unit tests for lib/line_edit.c: printable input and echo, BS/DEL, Ctrl-U,
 * Ctrl-C, CR/LF/CR LF line ends, ignored bytes, the length limit, and a random model check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/line_edit.h"
#include "tests/unit/test_editor.h" // editor_setup, feed_expect, type_text, expect_*

/* ---- printable input ---------------------------------------------------- */

static void test_reset_empties_the_line(void **state)
{
    struct line_editor *editor = *state;
    assert_int_equal(editor->length, 0);
    assert_int_equal(editor->line[0], 0);
    type_text(editor, "abc");
    line_edit_reset(editor);
    assert_int_equal(editor->length, 0);
    assert_int_equal(editor->line[0], 0);
}

static void test_every_printable_byte_is_appended_and_echoed(void **state)
{
    struct line_editor *editor = *state;
    char expected[LINE_EDIT_MAX + 1];
    size_t n = 0;
    for (unsigned c = 0x20; c <= 0x7e; c++) {
        char one[2] = { (char)c, 0 };
        feed_expect(editor, (unsigned char)c, LINE_EDIT_NONE, one);
        expected[n++] = (char)c;
        assert_int_equal(editor->length, n);
        assert_memory_equal(editor->line, expected, n);
    }
    expected[n] = 0;
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, expected);
}

/* ---- backspace and DEL --------------------------------------------------- */

static void test_del_erases_one_char_and_echoes_rubout(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "abc");
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "\b \b");
    expect_pending(editor, "ab");
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "\b \b");
    expect_pending(editor, "a");
}

static void test_backspace_erases_one_char_and_echoes_rubout(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "xy");
    feed_expect(editor, 0x08, LINE_EDIT_NONE, "\b \b");
    expect_pending(editor, "x");
    feed_expect(editor, 0x08, LINE_EDIT_NONE, "\b \b");
    expect_pending(editor, "");
}

static void test_erase_on_empty_line_does_nothing(void **state)
{
    struct line_editor *editor = *state;
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "");
    feed_expect(editor, 0x08, LINE_EDIT_NONE, "");
    assert_int_equal(editor->length, 0);
    /* erase everything, then one more of each */
    type_text(editor, "ab");
    feed_expect(editor, 0x08, LINE_EDIT_NONE, "\b \b");
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "\b \b");
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "");
    feed_expect(editor, 0x08, LINE_EDIT_NONE, "");
    assert_int_equal(editor->length, 0);
}

static void test_erased_chars_do_not_reappear_in_the_finished_line(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "hello");
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "\b \b");
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "\b \b");
    type_text(editor, "p");
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "help");
}

/* ---- Ctrl-U and Ctrl-C ---------------------------------------------------- */

static void test_ctrl_u_erases_a_non_empty_line_and_cancels(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "reboot now");
    feed_expect(editor, 0x15, LINE_EDIT_CANCELLED, "^U\r\n");
    assert_int_equal(editor->length, 0);
    /* the next line starts from scratch */
    line_edit_reset(editor);
    type_text(editor, "ok");
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "ok");
}

static void test_ctrl_u_on_empty_line_is_ignored(void **state)
{
    struct line_editor *editor = *state;
    feed_expect(editor, 0x15, LINE_EDIT_NONE, "");
    assert_int_equal(editor->length, 0);
    /* also once the line was typed and erased again */
    type_text(editor, "a");
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "\b \b");
    feed_expect(editor, 0x15, LINE_EDIT_NONE, "");
    assert_int_equal(editor->length, 0);
}

static void test_ctrl_u_without_reset_still_starts_a_fresh_line(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "garbage");
    feed_expect(editor, 0x15, LINE_EDIT_CANCELLED, "^U\r\n");
    type_text(editor, "ls");
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "ls");
}

static void test_ctrl_c_cancels_a_non_empty_line(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "sleep 100");
    feed_expect(editor, 0x03, LINE_EDIT_CANCELLED, "^C\r\n");
    assert_int_equal(editor->length, 0);
}

static void test_ctrl_c_cancels_an_empty_line(void **state)
{
    struct line_editor *editor = *state;
    feed_expect(editor, 0x03, LINE_EDIT_CANCELLED, "^C\r\n");
    assert_int_equal(editor->length, 0);
    line_edit_reset(editor);
    feed_expect(editor, 0x03, LINE_EDIT_CANCELLED, "^C\r\n");
    assert_int_equal(editor->length, 0);
}

/* ---- line ends ------------------------------------------------------------ */

static void test_cr_ends_the_line(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "help");
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "help");
}

static void test_lf_ends_the_line(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "help");
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "help");
}

static void test_empty_line_is_done_and_nul_terminated(void **state)
{
    struct line_editor *editor = *state;
    editor->line[0] = 'Z'; /* must be overwritten by the terminator */
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "");
    line_edit_reset(editor);
    editor->line[0] = 'Z';
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "");
}

static void test_lf_of_cr_lf_pair_is_ignored(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "one");
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "one");
    /* the shell resets after every line; the pairing survives that */
    line_edit_reset(editor);
    feed_expect(editor, '\n', LINE_EDIT_NONE, "");
    assert_int_equal(editor->length, 0);
    type_text(editor, "two");
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "two");
    line_edit_reset(editor);
    feed_expect(editor, '\n', LINE_EDIT_NONE, "");
    /* and only one LF is swallowed: a second LF is an empty line */
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "");
}

static void test_lf_swallowed_even_without_reset(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "x");
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    feed_expect(editor, '\n', LINE_EDIT_NONE, "");
    expect_pending(editor, "x");
}

static void test_repeated_cr_and_lf_cr_give_separate_lines(void **state)
{
    struct line_editor *editor = *state;
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    line_edit_reset(editor);
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    line_edit_reset(editor);
    feed_expect(editor, '\n', LINE_EDIT_NONE, "");
    line_edit_reset(editor);
    /* LF CR is two line ends, not a pair */
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    line_edit_reset(editor);
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    line_edit_reset(editor);
    /* LF LF is two line ends */
    type_text(editor, "a");
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "a");
    line_edit_reset(editor);
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "");
}

static void test_cr_followed_by_text_does_not_swallow_a_later_lf(void **state)
{
    struct line_editor *editor = *state;
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    line_edit_reset(editor);
    type_text(editor, "ab");
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "ab");
    /* an erase after CR also clears the pairing */
    line_edit_reset(editor);
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    line_edit_reset(editor);
    feed_expect(editor, 0x7f, LINE_EDIT_NONE, "");
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "");
}

/* ---- ignored bytes -------------------------------------------------------- */

static int is_handled_control(unsigned c)
{
    return c == 0x03 || c == 0x08 || c == '\n' || c == '\r' || c == 0x15;
}

static void test_other_control_bytes_are_ignored(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "ab");
    for (unsigned c = 0x00; c < 0x20; c++) {
        if (is_handled_control(c))
            continue;
        feed_expect(editor, (unsigned char)c, LINE_EDIT_NONE, "");
        expect_pending(editor, "ab");
    }
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, "ab");
}

static void test_bytes_above_tilde_other_than_del_are_ignored(void **state)
{
    struct line_editor *editor = *state;
    type_text(editor, "ab");
    for (unsigned c = 0x80; c <= 0xff; c++) {
        feed_expect(editor, (unsigned char)c, LINE_EDIT_NONE, "");
        expect_pending(editor, "ab");
    }
    /* ignored bytes on an empty line too */
    line_edit_reset(editor);
    feed_expect(editor, 0x80, LINE_EDIT_NONE, "");
    feed_expect(editor, 0xff, LINE_EDIT_NONE, "");
    feed_expect(editor, 0x1b, LINE_EDIT_NONE, "");
    assert_int_equal(editor->length, 0);
}

static void test_escape_sequence_leaves_only_its_printable_tail(void **state)
{
    /* an arrow key (ESC [ A): the ESC is dropped, "[A" is ordinary text */
    struct line_editor *editor = *state;
    feed_expect(editor, 0x1b, LINE_EDIT_NONE, "");
    type_text(editor, "[A");
    expect_pending(editor, "[A");
}

/* ---- length limit --------------------------------------------------------- */

static void test_input_past_the_limit_is_ignored(void **state)
{
    struct line_editor *editor = *state;
    char expected[LINE_EDIT_MAX + 1];
    for (size_t i = 0; i < LINE_EDIT_MAX; i++) {
        char c = (char)('a' + i % 26);
        char one[2] = { c, 0 };
        feed_expect(editor, (unsigned char)c, LINE_EDIT_NONE, one);
        expected[i] = c;
    }
    expected[LINE_EDIT_MAX] = 0;
    assert_int_equal(editor->length, LINE_EDIT_MAX);
    for (int i = 0; i < 100; i++) {
        feed_expect(editor, 'X', LINE_EDIT_NONE, "");
        assert_int_equal(editor->length, LINE_EDIT_MAX);
    }
    assert_memory_equal(editor->line, expected, LINE_EDIT_MAX);
    feed_expect(editor, '\r', LINE_EDIT_DONE, "\r\n");
    expect_line(editor, expected);
}

static void test_erase_at_the_limit_makes_room_for_one_more(void **state)
{
    struct line_editor *editor = *state;
    for (size_t i = 0; i < LINE_EDIT_MAX + 5; i++) {
        char echo[8];
        line_edit_feed(editor, 'q', echo);
    }
    assert_int_equal(editor->length, LINE_EDIT_MAX);
    feed_expect(editor, 0x08, LINE_EDIT_NONE, "\b \b");
    assert_int_equal(editor->length, LINE_EDIT_MAX - 1);
    feed_expect(editor, 'Z', LINE_EDIT_NONE, "Z");
    feed_expect(editor, 'W', LINE_EDIT_NONE, "");
    assert_int_equal(editor->length, LINE_EDIT_MAX);
    feed_expect(editor, '\n', LINE_EDIT_DONE, "\r\n");
    assert_int_equal(editor->line[LINE_EDIT_MAX - 1], 'Z');
    assert_int_equal(editor->line[LINE_EDIT_MAX], 0);
    assert_int_equal(strlen(editor->line), LINE_EDIT_MAX);
}

/* ---- randomized stream against a reference model -------------------------- */

/* An independent statement of the editor's rules. */
struct model {
    char text[LINE_EDIT_MAX];
    size_t length;
    int after_cr;
};

static enum line_edit_event model_feed(struct model *m, unsigned char c, const char **echo)
{
    int after_cr = m->after_cr;
    m->after_cr = c == '\r';
    *echo = "";
    if (c == '\n' && after_cr)
        return LINE_EDIT_NONE;
    if (c == '\r' || c == '\n') {
        *echo = "\r\n";
        return LINE_EDIT_DONE;
    }
    if (c == 0x7f || c == 0x08) {
        if (m->length > 0) {
            m->length--;
            *echo = "\b \b";
        }
        return LINE_EDIT_NONE;
    }
    if (c == 0x15) {
        if (m->length == 0)
            return LINE_EDIT_NONE;
        m->length = 0;
        *echo = "^U\r\n";
        return LINE_EDIT_CANCELLED;
    }
    if (c == 0x03) {
        m->length = 0;
        *echo = "^C\r\n";
        return LINE_EDIT_CANCELLED;
    }
    if (c >= 0x20 && c <= 0x7e && m->length < LINE_EDIT_MAX) {
        static char one[0x80][2];
        one[c][0] = (char)c;
        one[c][1] = 0;
        m->text[m->length++] = (char)c;
        *echo = one[c];
    }
    return LINE_EDIT_NONE;
}

/* Mostly printable text, with enough of every special byte to exercise them
 * all, and long printable runs now and then so the limit is reached. */
static unsigned char random_byte(unsigned *seed, int *run)
{
    if (*run > 0) {
        (*run)--;
        return (unsigned char)(0x20 + rand_r(seed) % 0x5f);
    }
    int pick = rand_r(seed) % 100;
    if (pick < 55)
        return (unsigned char)(0x20 + rand_r(seed) % 0x5f);
    if (pick < 62) return 0x7f;
    if (pick < 67) return 0x08;
    if (pick < 71) return '\r';
    if (pick < 75) return '\n';
    if (pick < 77) return 0x15;
    if (pick < 78) return 0x03;
    if (pick < 80) {
        *run = rand_r(seed) % (2 * LINE_EDIT_MAX);
        return 'r';
    }
    return (unsigned char)(rand_r(seed) % 256); /* anything at all */
}

static void test_random_streams_match_the_reference_model(void **state)
{
    (void)state;
    static const unsigned seeds[] = { 1, 2, 3, 42, 1234, 0xdeadbeef, 20240601, 7777777 };
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        unsigned seed = seeds[s];
        int run = 0;
        struct line_editor editor;
        struct model model = { .length = 0, .after_cr = 0 };
        size_t done = 0, cancelled = 0, longest = 0;
        editor_init(&editor);
        for (int step = 0; step < 50000; step++) {
            unsigned char c = random_byte(&seed, &run);
            const char *want_echo;
            enum line_edit_event want = model_feed(&model, c, &want_echo);
            char echo[8];
            memset(echo, 0x7e, sizeof(echo));
            enum line_edit_event got = line_edit_feed(&editor, (char)c, echo);
            if (got != want || strcmp(echo, want_echo) != 0 || editor.length != model.length)
                fail_msg("seed %u step %d byte 0x%02x: event %d (want %d), length %zu "
                         "(want %zu)", seeds[s], step, c, got, want, editor.length,
                         model.length);
            assert_true(memchr(echo, 0, sizeof(echo)) != NULL);
            assert_true(editor.length <= LINE_EDIT_MAX);
            assert_memory_equal(editor.line, model.text, model.length);
            if (editor.length > longest)
                longest = editor.length;
            if (got == LINE_EDIT_DONE) {
                assert_int_equal(editor.line[editor.length], 0);
                assert_int_equal(strlen(editor.line), editor.length);
                done++;
            }
            if (got == LINE_EDIT_CANCELLED)
                cancelled++;
            if (got != LINE_EDIT_NONE) { /* what the shell does */
                line_edit_reset(&editor);
                model.length = 0;
            }
        }
        /* the stream really did exercise line ends, cancels and the limit */
        assert_true(done > 100);
        assert_true(cancelled > 10);
        assert_int_equal(longest, LINE_EDIT_MAX);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reset_empties_the_line, editor_setup),
        cmocka_unit_test_setup(test_every_printable_byte_is_appended_and_echoed, editor_setup),
        cmocka_unit_test_setup(test_del_erases_one_char_and_echoes_rubout, editor_setup),
        cmocka_unit_test_setup(test_backspace_erases_one_char_and_echoes_rubout, editor_setup),
        cmocka_unit_test_setup(test_erase_on_empty_line_does_nothing, editor_setup),
        cmocka_unit_test_setup(test_erased_chars_do_not_reappear_in_the_finished_line, editor_setup),
        cmocka_unit_test_setup(test_ctrl_u_erases_a_non_empty_line_and_cancels, editor_setup),
        cmocka_unit_test_setup(test_ctrl_u_on_empty_line_is_ignored, editor_setup),
        cmocka_unit_test_setup(test_ctrl_u_without_reset_still_starts_a_fresh_line, editor_setup),
        cmocka_unit_test_setup(test_ctrl_c_cancels_a_non_empty_line, editor_setup),
        cmocka_unit_test_setup(test_ctrl_c_cancels_an_empty_line, editor_setup),
        cmocka_unit_test_setup(test_cr_ends_the_line, editor_setup),
        cmocka_unit_test_setup(test_lf_ends_the_line, editor_setup),
        cmocka_unit_test_setup(test_empty_line_is_done_and_nul_terminated, editor_setup),
        cmocka_unit_test_setup(test_lf_of_cr_lf_pair_is_ignored, editor_setup),
        cmocka_unit_test_setup(test_lf_swallowed_even_without_reset, editor_setup),
        cmocka_unit_test_setup(test_repeated_cr_and_lf_cr_give_separate_lines, editor_setup),
        cmocka_unit_test_setup(test_cr_followed_by_text_does_not_swallow_a_later_lf, editor_setup),
        cmocka_unit_test_setup(test_other_control_bytes_are_ignored, editor_setup),
        cmocka_unit_test_setup(test_bytes_above_tilde_other_than_del_are_ignored, editor_setup),
        cmocka_unit_test_setup(test_escape_sequence_leaves_only_its_printable_tail, editor_setup),
        cmocka_unit_test_setup(test_input_past_the_limit_is_ignored, editor_setup),
        cmocka_unit_test_setup(test_erase_at_the_limit_makes_room_for_one_more, editor_setup),
        cmocka_unit_test(test_random_streams_match_the_reference_model),
    };
    return cmocka_run_group_tests_name("line_edit", tests, NULL, NULL);
}
