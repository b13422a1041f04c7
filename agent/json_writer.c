/*
 * The JSON writer (agent/json.h): appends to a fixed buffer, spaced as
 * QEMU spaces its JSON, escapes everything but printable ASCII, and
 * remembers an overflow or a misuse instead of writing past it.
 */
#include "agent/json.h"

#include "agent/json_internal.h" // json_next_codepoint, json_token_at, json_utf8_decode
#include "lib/string.h"          // memcpy, strlen

void json_writer_init(struct json_writer *w, char *buffer, size_t size)
{
    w->buffer = buffer;
    w->size = size;
    w->length = 0;
    w->failed = size == 0;
    w->depth = 0;
    w->has_items = 0;
    w->is_object = 0;
    w->after_key = 0;
    if (size > 0)
        buffer[0] = 0;
}

static void put(struct json_writer *w, const char *bytes, size_t n)
{
    if (w->failed)
        return;
    if (n >= w->size - w->length) { /* keep room for the NUL */
        w->failed = 1;
        return;
    }
    memcpy(w->buffer + w->length, bytes, n);
    w->length += n;
    w->buffer[w->length] = 0;
}

static void put_char(struct json_writer *w, char c)
{
    put(w, &c, 1);
}

/* Separators before a value; fails a value where a key is due. */
static void begin_value(struct json_writer *w)
{
    uint64_t bit = (uint64_t)1 << w->depth;

    if (w->failed)
        return;
    if (w->is_object & bit) {
        if (!w->after_key) {
            w->failed = 1;
            return;
        }
        w->after_key = 0;
        return;
    }
    if (w->depth == 0 && (w->has_items & bit)) {
        w->failed = 1; /* one root value only */
        return;
    }
    if (w->has_items & bit)
        put(w, ", ", 2);
    w->has_items |= bit;
}

static void put_codepoint(struct json_writer *w, uint32_t codepoint)
{
    static const char hex[] = "0123456789ABCDEF";
    char escape[12];

    switch (codepoint) {
    case '"': put(w, "\\\"", 2); return;
    case '\\': put(w, "\\\\", 2); return;
    case '\b': put(w, "\\b", 2); return;
    case '\f': put(w, "\\f", 2); return;
    case '\n': put(w, "\\n", 2); return;
    case '\r': put(w, "\\r", 2); return;
    case '\t': put(w, "\\t", 2); return;
    }
    if (codepoint >= 0x20 && codepoint < 0x7F) {
        put_char(w, (char)codepoint);
        return;
    }
    uint32_t units[2] = { codepoint, 0 };
    int count = 1;
    if (codepoint > 0xFFFF) { /* RFC 8259, 7: a surrogate pair */
        units[0] = 0xD800 + ((codepoint - 0x10000) >> 10);
        units[1] = 0xDC00 + ((codepoint - 0x10000) & 0x3FF);
        count = 2;
    }
    for (int k = 0; k < count; k++) {
        escape[6 * k + 0] = '\\';
        escape[6 * k + 1] = 'u';
        for (int d = 0; d < 4; d++)
            escape[6 * k + 2 + d] = hex[units[k] >> (12 - 4 * d) & 0xF];
    }
    put(w, escape, (size_t)(6 * count));
}

static void put_string_bytes(struct json_writer *w, const char *bytes, size_t length)
{
    const uint8_t *s = (const uint8_t *)bytes;
    size_t i = 0;

    put_char(w, '"');
    while (i < length && !w->failed) {
        uint32_t codepoint;
        size_t units = json_utf8_decode(s + i, length - i, &codepoint);
        if (units == 0) {
            codepoint = 0xFFFD; /* not UTF-8: the replacement character, byte by byte */
            units = 1;
        }
        put_codepoint(w, codepoint);
        i += units;
    }
    put_char(w, '"');
}

static void put_string_token(struct json_writer *w, const struct json_document *doc,
                             const struct json_token *token)
{
    const uint8_t *text = (const uint8_t *)doc->text;
    size_t pos = token->start, end = token->start + token->length;

    put_char(w, '"');
    while (pos < end && !w->failed) {
        uint32_t codepoint;
        pos = json_next_codepoint(text, pos, &codepoint);
        put_codepoint(w, codepoint);
    }
    put_char(w, '"');
}

static void open_container(struct json_writer *w, int object)
{
    begin_value(w);
    if (w->failed)
        return;
    if (w->depth >= JSON_MAX_DEPTH) {
        w->failed = 1;
        return;
    }
    put_char(w, object ? '{' : '[');
    w->depth++;
    uint64_t bit = (uint64_t)1 << w->depth;
    w->has_items &= ~bit;
    if (object)
        w->is_object |= bit;
    else
        w->is_object &= ~bit;
}

static void close_container_writer(struct json_writer *w, int object)
{
    uint64_t bit = (uint64_t)1 << w->depth;

    if (w->failed)
        return;
    if (w->depth == 0 || !!(w->is_object & bit) != object || w->after_key) {
        w->failed = 1;
        return;
    }
    put_char(w, object ? '}' : ']');
    w->depth--;
}

void json_write_object_begin(struct json_writer *w)
{
    open_container(w, 1);
}

void json_write_object_end(struct json_writer *w)
{
    close_container_writer(w, 1);
}

void json_write_array_begin(struct json_writer *w)
{
    open_container(w, 0);
}

void json_write_array_end(struct json_writer *w)
{
    close_container_writer(w, 0);
}

/* Checks that a key is due here and writes the separator before it. */
static int begin_key(struct json_writer *w)
{
    uint64_t bit = (uint64_t)1 << w->depth;

    if (w->failed)
        return -1;
    if (!(w->is_object & bit) || w->after_key) {
        w->failed = 1;
        return -1;
    }
    if (w->has_items & bit)
        put(w, ", ", 2);
    w->has_items |= bit;
    return 0;
}

void json_write_key(struct json_writer *w, const char *name)
{
    if (begin_key(w) < 0)
        return;
    put_string_bytes(w, name, strlen(name));
    put(w, ": ", 2);
    w->after_key = 1;
}

void json_write_string_bytes(struct json_writer *w, const char *bytes, size_t length)
{
    begin_value(w);
    put_string_bytes(w, bytes, length);
}

void json_write_string(struct json_writer *w, const char *text)
{
    json_write_string_bytes(w, text, strlen(text));
}

static void put_unsigned(struct json_writer *w, uint64_t value, int negative)
{
    char digits[21];
    size_t n = sizeof(digits);

    do {
        digits[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    if (negative)
        digits[--n] = '-';
    put(w, digits + n, sizeof(digits) - n);
}

void json_write_int64(struct json_writer *w, int64_t value)
{
    begin_value(w);
    if (value < 0)
        put_unsigned(w, (uint64_t)0 - (uint64_t)value, 1);
    else
        put_unsigned(w, (uint64_t)value, 0);
}

void json_write_uint64(struct json_writer *w, uint64_t value)
{
    begin_value(w);
    put_unsigned(w, value, 0);
}

void json_write_bool(struct json_writer *w, int value)
{
    begin_value(w);
    if (value)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void json_write_null(struct json_writer *w)
{
    begin_value(w);
    put(w, "null", 4);
}

void json_write_raw(struct json_writer *w, const char *bytes, size_t length)
{
    put(w, bytes, length);
}

void json_write_value(struct json_writer *w, const struct json_document *doc, size_t index)
{
    struct {
        uint32_t end;   /* token index where this container's children stop */
        uint8_t object;
        uint8_t expect_key;
    } open[JSON_MAX_DEPTH];
    unsigned depth = 0;
    const struct json_token *root = json_token_at(doc, index);

    if (!root) {
        w->failed = 1;
        return;
    }
    size_t i = index, end = root->end;
    for (;;) {
        while (depth > 0 && i >= open[depth - 1].end) {
            depth--;
            close_container_writer(w, open[depth].object);
        }
        if (i >= end || w->failed)
            break;
        const struct json_token *token = &doc->tokens[i];
        if (depth > 0 && open[depth - 1].object && open[depth - 1].expect_key) {
            if (begin_key(w) < 0)
                break;
            put_string_token(w, doc, token);
            put(w, ": ", 2);
            w->after_key = 1;
            open[depth - 1].expect_key = 0;
            i++;
            continue;
        }
        if (depth > 0 && open[depth - 1].object)
            open[depth - 1].expect_key = 1;
        switch (token->type) {
        case JSON_OBJECT:
        case JSON_ARRAY:
            if (depth >= JSON_MAX_DEPTH) {
                w->failed = 1;
                return;
            }
            open_container(w, token->type == JSON_OBJECT);
            open[depth].end = token->end;
            open[depth].object = token->type == JSON_OBJECT;
            open[depth].expect_key = 1;
            depth++;
            break;
        case JSON_STRING:
            begin_value(w);
            put_string_token(w, doc, token);
            break;
        default: /* numbers and keywords as written: their text is plain ASCII */
            begin_value(w);
            put(w, doc->text + token->start, token->length);
            break;
        }
        i++;
    }
}

long json_writer_finish(struct json_writer *w)
{
    if (w->failed || w->depth != 0 || w->after_key)
        return -1;
    return (long)w->length;
}
