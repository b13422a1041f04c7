/*
 * libFuzzer target for the console's input path: lib/line_edit.c turns
 * bytes into lines, lib/parse.c splits a line into words and reads numbers
 * (shell/shell.c does the same with every byte from the serial port).
 *
 * Every input byte goes to line_edit_feed; each completed line, and the
 * whole input as one NUL-terminated string, is split with parse_words and
 * every word read with parse_u64. Properties, beyond no ASan/UBSan report:
 *   - the editor's echo is NUL-terminated within its 8 bytes, its length
 *     never passes LINE_EDIT_MAX, and a completed line is exactly what a
 *     simple model of the documented editing rules (lib/line_edit.h) holds;
 *   - parse_words returns -1 or the words in order: non-empty, without
 *     spaces or tabs, inside the line, no more than max_words;
 *   - parse_u64 agrees with a reference written independently here.
 * A broken property ends in __builtin_trap().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/line_edit.h"
#include "lib/parse.h"
#include "tests/fuzz/fuzz_check.h"

#define SHELL_MAX_WORDS 8 /* shell/shell.c's MAX_WORDS */


/* decimal, or hex after 0x/0X; -1 for empty, stray characters or overflow */
HARNESS static int reference_u64(const char *text, uint64_t *value)
{
    uint64_t base = 10, result = 0;
    size_t i = 0;

    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (!text[i])
        return -1;
    for (; text[i]; i++) {
        const char *digits = "0123456789abcdef";
        char c = text[i] >= 'A' && text[i] <= 'F' && base == 16 ? (char)(text[i] - 'A' + 'a') : text[i];
        const char *at = c ? memchr(digits, c, base) : NULL;
        if (!at)
            return -1;
        if (__builtin_mul_overflow(result, base, &result) ||
            __builtin_add_overflow(result, (uint64_t)(at - digits), &result))
            return -1;
    }
    *value = result;
    return 0;
}

HARNESS static void check_number(const char *word)
{
    uint64_t got = 0x5a5a5a5a5a5a5a5aull, expected = 0xa5a5a5a5a5a5a5a5ull;
    int result = parse_u64(word, &got);
    int reference = reference_u64(word, &expected);

    CHECK(result == reference);
    if (result == 0)
        CHECK(got == expected);
}

/* Splits a heap copy of text of exactly its size (so reading past the NUL
 * is an ASan report) and checks the words. */
HARNESS static void check_words(const char *text, size_t length, int max_words)
{
    char *line = malloc(length + 1);
    char *words[64];

    if (!line)
        abort();
    memcpy(line, text, length);
    line[length] = 0;
    size_t visible = strlen(line); /* the words come from before the first NUL */

    for (int i = 0; i < 64; i++)
        words[i] = NULL;
    int count = parse_words(line, words, max_words);
    CHECK(count == -1 || (count >= 0 && count <= max_words));
    if (count > 0) {
        for (int i = 0; i < count; i++) {
            CHECK(words[i] >= line && words[i] < line + visible);
            CHECK(i == 0 || words[i] > words[i - 1]);
            size_t n = strlen(words[i]);
            CHECK(n > 0);
            CHECK(!memchr(words[i], ' ', n) && !memchr(words[i], '\t', n));
            check_number(words[i]);
        }
    }
    for (int i = count > 0 ? count : 0; i < 64; i++)
        CHECK(i >= max_words || count == -1 || words[i] == NULL); /* nothing written past count */
    free(line);
}

/* The editing rules of lib/line_edit.h, written out again. */
struct model {
    char line[LINE_EDIT_MAX + 1];
    size_t length;
    int after_cr;
};

HARNESS static enum line_edit_event model_feed(struct model *m, unsigned char c)
{
    int after_cr = m->after_cr;

    m->after_cr = c == '\r';
    if (c == '\n' && after_cr)
        return LINE_EDIT_NONE;
    if (c == '\r' || c == '\n')
        return LINE_EDIT_DONE;
    if (c == 0x7f || c == 0x08) {
        if (m->length)
            m->length--;
        return LINE_EDIT_NONE;
    }
    if (c == 0x15) {
        if (!m->length)
            return LINE_EDIT_NONE;
        m->length = 0;
        return LINE_EDIT_CANCELLED;
    }
    if (c == 0x03) {
        m->length = 0;
        return LINE_EDIT_CANCELLED;
    }
    if (c >= 0x20 && c <= 0x7e && m->length < LINE_EDIT_MAX)
        m->line[m->length++] = (char)c;
    return LINE_EDIT_NONE;
}

/* A completed line: the model's text, printable, then split into words. */
HARNESS static void check_line(const struct line_editor *editor, const struct model *model)
{
    CHECK(memcmp(editor->line, model->line, model->length) == 0);
    for (size_t k = 0; k < editor->length; k++)
        CHECK(editor->line[k] >= 0x20 && editor->line[k] <= 0x7e);
    check_words(editor->line, editor->length, SHELL_MAX_WORDS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct line_editor editor;
    struct model model;

    memset(&editor, 0x5a, sizeof(editor)); /* reset must set what feed relies on */
    editor.last_was_cr = 0;
    line_edit_reset(&editor);
    memset(&model, 0, sizeof(model));

    for (size_t i = 0; i < size; i++) {
        char echo[8];
        memset(echo, 0x5a, sizeof(echo));
        enum line_edit_event event = line_edit_feed(&editor, (char)data[i], echo);
        enum line_edit_event expected = model_feed(&model, data[i]);

        CHECK(memchr(echo, 0, sizeof(echo)) != NULL);
        CHECK(editor.length <= LINE_EDIT_MAX);
        CHECK(event == expected);
        if (event == LINE_EDIT_DONE) {
            CHECK(editor.length == model.length);
            CHECK(editor.line[editor.length] == 0);
            check_line(&editor, &model);
        } else if (event == LINE_EDIT_NONE) {
            CHECK(editor.length == model.length); /* the text itself: when the line completes */
        }
        if (event != LINE_EDIT_NONE) { /* what the shell does after a line or a cancel */
            line_edit_reset(&editor);
            model.length = 0;
        }
    }

    /* the raw input as one string, with the shell's limit and a roomy one */
    check_words((const char *)data, size, SHELL_MAX_WORDS);
    check_words((const char *)data, size, 64);
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = 0;
    check_number(text);
    free(text);
    return 0;
}
