/*
 * Line editing for the serial console, kept free of I/O so it can be unit
 * tested and fuzzed. Control bytes other than the handled ones are ignored,
 * as is input past LINE_EDIT_MAX characters.
 */
#include "lib/line_edit.h"

void line_edit_reset(struct line_editor *editor)
{
    editor->length = 0;
    editor->line[0] = 0;
}

enum line_edit_event line_edit_feed(struct line_editor *editor, char c, char echo[8])
{
    int after_cr = editor->last_was_cr;

    echo[0] = 0;
    editor->last_was_cr = c == '\r';
    switch (c) {
    case '\n':
        if (after_cr)
            return LINE_EDIT_NONE; /* the LF of a CR LF pair */
        /* fall through */
    case '\r':
        editor->line[editor->length] = 0;
        echo[0] = '\r';
        echo[1] = '\n';
        echo[2] = 0;
        return LINE_EDIT_DONE;
    case 0x7f: /* DEL, what most terminals send for backspace */
    case 0x08:
        if (editor->length) {
            editor->length--;
            echo[0] = '\b';
            echo[1] = ' ';
            echo[2] = '\b';
            echo[3] = 0;
        }
        return LINE_EDIT_NONE;
    case 0x15: /* Ctrl-U: erase the line, shown as a fresh line */
        if (editor->length) {
            editor->length = 0;
            echo[0] = '^';
            echo[1] = 'U';
            echo[2] = '\r';
            echo[3] = '\n';
            echo[4] = 0;
            return LINE_EDIT_CANCELLED;
        }
        return LINE_EDIT_NONE;
    case 0x03: /* Ctrl-C */
        editor->length = 0;
        echo[0] = '^';
        echo[1] = 'C';
        echo[2] = '\r';
        echo[3] = '\n';
        echo[4] = 0;
        return LINE_EDIT_CANCELLED;
    default:
        if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e ||
            editor->length == LINE_EDIT_MAX)
            return LINE_EDIT_NONE;
        editor->line[editor->length++] = c;
        echo[0] = c;
        echo[1] = 0;
        return LINE_EDIT_NONE;
    }
}
