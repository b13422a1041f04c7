/*
 * The line editor under test: a fresh one as the shell makes it (a cmocka
 * setup, editor_setup, puts it in *state), and checked feeding of bytes.
 * Include after <cmocka.h>.
 */
#ifndef TESTS_UNIT_TEST_EDITOR_H
#define TESTS_UNIT_TEST_EDITOR_H

#include <string.h>

#include "lib/line_edit.h"

/* A fresh editor as the shell makes one: reset, with no CR pending. */
static inline void editor_init(struct line_editor *editor)
{
    memset(editor, 0x5a, sizeof(*editor)); /* garbage in the line buffer */
    line_edit_reset(editor);
    editor->last_was_cr = 0;
}

/* Feeds one byte and checks the event and the exact echo. The echo buffer is
 * pre-filled with junk to make sure the editor always NUL-terminates it. */
static inline void feed_expect(struct line_editor *editor, unsigned char c,
                               enum line_edit_event expected_event, const char *expected_echo)
{
    char echo[8];
    memset(echo, 0x7e, sizeof(echo));
    enum line_edit_event event = line_edit_feed(editor, (char)c, echo);
    assert_true(memchr(echo, 0, sizeof(echo)) != NULL);
    assert_int_equal(event, expected_event);
    assert_string_equal(echo, expected_echo);
    assert_true(editor->length <= LINE_EDIT_MAX);
}

/* Feeds printable text, which must all be accepted and echoed. */
static inline void type_text(struct line_editor *editor, const char *text)
{
    for (const char *p = text; *p; p++) {
        char one[2] = { *p, 0 };
        feed_expect(editor, (unsigned char)*p, LINE_EDIT_NONE, one);
    }
}

/* The editor holds exactly `text` (length and content). */
static inline void expect_pending(const struct line_editor *editor, const char *text)
{
    assert_int_equal(editor->length, strlen(text));
    assert_memory_equal(editor->line, text, strlen(text));
}

/* After LINE_EDIT_DONE: `line` is the NUL-terminated text. */
static inline void expect_line(const struct line_editor *editor, const char *text)
{
    expect_pending(editor, text);
    assert_int_equal(editor->line[editor->length], 0);
    assert_string_equal(editor->line, text);
}

static inline int editor_setup(void **state)
{
    static struct line_editor editor;

    editor_init(&editor);
    *state = &editor;
    return 0;
}

#endif
