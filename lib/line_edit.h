/*
 * The console's line editor as a pure state machine: feed it bytes, it
 * says what to echo and when a line is complete. Backspace/DEL erase a
 * character, Ctrl-U erases the line, Ctrl-C abandons it, CR or LF ends it.
 */
#ifndef LIB_LINE_EDIT_H
#define LIB_LINE_EDIT_H

#include <stddef.h>

#define LINE_EDIT_MAX 200

enum line_edit_event {
    LINE_EDIT_NONE = 0,  /* keep typing */
    LINE_EDIT_DONE,      /* line holds a complete line */
    LINE_EDIT_CANCELLED, /* Ctrl-C: the line was abandoned */
};

struct line_editor {
    char line[LINE_EDIT_MAX + 1];
    size_t length;
    int last_was_cr; /* to treat CR LF as one line end */
};

/* Handles one byte. echo receives what the terminal should show (up to
 * 8 bytes, NUL-terminated). On LINE_EDIT_DONE the caller reads `line`,
 * then calls line_edit_reset. */
enum line_edit_event line_edit_feed(struct line_editor *editor, char c, char echo[8]);
void line_edit_reset(struct line_editor *editor);

#endif
