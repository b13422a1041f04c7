/*
 * JSON reader and writer for the guest agent (RFC 8259). The reader is one
 * loop over the bytes with an explicit stack of open containers, bounded by
 * the caller's limits; the writer appends to a fixed buffer and remembers
 * an overflow instead of writing past it.
 */
#include "agent/json.h"

#include "lib/string.h" /* memcmp, memcpy, strlen */

/* ---- characters and UTF-8 ----------------------------------------------- */

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r'; /* RFC 8259, 2: ws */
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One well-formed UTF-8 sequence at s (RFC 3629, 4: no overlong forms, no
 * surrogates, nothing above U+10FFFF). Returns its length, or 0. */
static size_t utf8_decode(const uint8_t *s, size_t available, uint32_t *codepoint)
{
    uint8_t c = s[0];
    uint8_t low = 0x80, high = 0xBF;
    size_t length;
    uint32_t value;

    if (c < 0x80) {
        *codepoint = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        length = 2;
        value = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        value = c & 0x0F;
        if (c == 0xE0)
            low = 0xA0;
        if (c == 0xED)
            high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        value = c & 0x07;
        if (c == 0xF0)
            low = 0x90;
        if (c == 0xF4)
            high = 0x8F;
    } else {
        return 0;
    }
    if (available < length)
        return 0;
    for (size_t i = 1; i < length; i++) {
        uint8_t next = s[i];
        if (next < low || next > high)
            return 0;
        low = 0x80;
        high = 0xBF;
        value = value << 6 | (next & 0x3F);
    }
    *codepoint = value;
    return length;
}

static size_t utf8_encode(uint32_t codepoint, uint8_t out[4])
{
    if (codepoint < 0x80) {
        out[0] = (uint8_t)codepoint;
        return 1;
    }
    if (codepoint < 0x800) {
        out[0] = (uint8_t)(0xC0 | codepoint >> 6);
        out[1] = (uint8_t)(0x80 | (codepoint & 0x3F));
        return 2;
    }
    if (codepoint < 0x10000) {
        out[0] = (uint8_t)(0xE0 | codepoint >> 12);
        out[1] = (uint8_t)(0x80 | (codepoint >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (codepoint & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | codepoint >> 18);
    out[1] = (uint8_t)(0x80 | (codepoint >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (codepoint >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (codepoint & 0x3F));
    return 4;
}

/* Four hex digits at s; -1 if any is not hex. */
static int32_t hex4(const uint8_t *s)
{
    int32_t value = 0;

    for (int i = 0; i < 4; i++) {
        int digit = hex_value(s[i]);
        if (digit < 0)
            return -1;
        value = value << 4 | digit;
    }
    return value;
}

/* ---- reader: scanning one token ----------------------------------------- */

/* The four hex digits of the \uXXXX whose backslash is at text[i]: the
 * code unit, -1 for a byte that is not hex, -2 when the text ends first. */
static int32_t unicode_escape(const uint8_t *text, size_t length, size_t i)
{
    int32_t value = 0;

    for (size_t k = 2; k < 6; k++) {
        if (i + k >= length)
            return -2;
        int digit = hex_value(text[i + k]);
        if (digit < 0)
            return -1;
        value = value << 4 | digit;
    }
    return value;
}

/* Checks the string whose opening quote is at text[pos]. On success sets
 * *end past the closing quote, the decoded length and the flags. */
static enum json_error scan_string(const uint8_t *text, size_t length, size_t pos,
                                   size_t max_string, size_t *end, size_t *decoded,
                                   uint8_t *flags)
{
    size_t i = pos + 1, out = 0;

    *flags = 0;
    for (;;) {
        uint32_t codepoint;
        size_t units;

        if (i >= length) {
            *end = i;
            return JSON_ERROR_TRUNCATED;
        }
        uint8_t c = text[i];
        if (c == '"')
            break;
        if (c < 0x20) {
            *end = i;
            return JSON_ERROR_CONTROL_CHARACTER; /* RFC 8259, 7: must be escaped */
        }
        if (c == '\\') {
            *flags |= JSON_TOKEN_ESCAPED;
            if (i + 1 >= length) {
                *end = i;
                return JSON_ERROR_TRUNCATED;
            }
            uint8_t e = text[i + 1];
            if (e == 'u') {
                int32_t unit = unicode_escape(text, length, i);
                *end = i;
                if (unit < 0)
                    return unit == -2 ? JSON_ERROR_TRUNCATED : JSON_ERROR_BAD_UNICODE;
                if (unit >= 0xDC00 && unit <= 0xDFFF)
                    return JSON_ERROR_BAD_UNICODE; /* a low surrogate first */
                units = 6;
                codepoint = (uint32_t)unit;
                if (unit >= 0xD800 && unit <= 0xDBFF) {
                    /* RFC 8259, 7: a pair of escapes for one character past the BMP */
                    if (i + 6 >= length)
                        return JSON_ERROR_TRUNCATED;
                    if (text[i + 6] != '\\')
                        return JSON_ERROR_BAD_UNICODE;
                    if (i + 7 >= length)
                        return JSON_ERROR_TRUNCATED;
                    if (text[i + 7] != 'u')
                        return JSON_ERROR_BAD_UNICODE;
                    int32_t second = unicode_escape(text, length, i + 6);
                    if (second == -2)
                        return JSON_ERROR_TRUNCATED;
                    if (second < 0xDC00 || second > 0xDFFF)
                        return JSON_ERROR_BAD_UNICODE;
                    codepoint = 0x10000 + (((uint32_t)unit - 0xD800) << 10) +
                                ((uint32_t)second - 0xDC00);
                    units = 12;
                }
                if (codepoint == 0)
                    *flags |= JSON_TOKEN_HAS_NUL;
                uint8_t scratch[4];
                out += utf8_encode(codepoint, scratch);
                i += units;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                out++;
                i += 2;
            } else {
                *end = i;
                return JSON_ERROR_BAD_ESCAPE;
            }
        } else {
            units = utf8_decode(text + i, length - i, &codepoint);
            if (units == 0) {
                *end = i;
                return JSON_ERROR_BAD_UTF8;
            }
            out += units;
            i += units;
        }
        if (out > max_string) {
            *end = i;
            return JSON_ERROR_STRING_TOO_LONG;
        }
    }
    *end = i + 1;
    *decoded = out;
    return JSON_OK;
}

/* RFC 8259, 6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static enum json_error scan_number(const uint8_t *text, size_t length, size_t pos, size_t *end,
                                   uint8_t *flags)
{
    size_t i = pos;

    *flags = 0;
    if (text[i] == '-')
        i++;
    if (i >= length) {
        *end = i;
        return JSON_ERROR_TRUNCATED;
    }
    if (text[i] == '0') {
        i++;
        if (i < length && is_digit(text[i])) {
            *end = i;
            return JSON_ERROR_BAD_NUMBER; /* no leading zeros */
        }
    } else if (is_digit(text[i])) {
        while (i < length && is_digit(text[i]))
            i++;
    } else {
        *end = i;
        return JSON_ERROR_BAD_NUMBER;
    }
    if (i < length && text[i] == '.') {
        *flags |= JSON_TOKEN_FRACTION;
        i++;
        if (i >= length || !is_digit(text[i])) {
            *end = i;
            return i >= length ? JSON_ERROR_TRUNCATED : JSON_ERROR_BAD_NUMBER;
        }
        while (i < length && is_digit(text[i]))
            i++;
    }
    if (i < length && (text[i] == 'e' || text[i] == 'E')) {
        *flags |= JSON_TOKEN_FRACTION;
        i++;
        if (i < length && (text[i] == '+' || text[i] == '-'))
            i++;
        if (i >= length || !is_digit(text[i])) {
            *end = i;
            return i >= length ? JSON_ERROR_TRUNCATED : JSON_ERROR_BAD_NUMBER;
        }
        while (i < length && is_digit(text[i]))
            i++;
    }
    *end = i;
    return JSON_OK;
}

static int is_letter(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- reader: decoding a checked string ---------------------------------- */

/* The next character of a string token that json_parse accepted, from raw
 * offset pos (relative to the text); returns the offset after it. */
static size_t next_codepoint(const uint8_t *text, size_t pos, uint32_t *codepoint)
{
    if (text[pos] != '\\') {
        size_t units = utf8_decode(text + pos, 4, codepoint);
        return pos + (units ? units : 1); /* units is never 0 for a checked token */
    }
    switch (text[pos + 1]) {
    case 'b': *codepoint = '\b'; return pos + 2;
    case 'f': *codepoint = '\f'; return pos + 2;
    case 'n': *codepoint = '\n'; return pos + 2;
    case 'r': *codepoint = '\r'; return pos + 2;
    case 't': *codepoint = '\t'; return pos + 2;
    case 'u': break;
    default: *codepoint = text[pos + 1]; return pos + 2; /* " \ / */
    }
    uint32_t unit = (uint32_t)hex4(text + pos + 2);
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        uint32_t second = (uint32_t)hex4(text + pos + 8);
        *codepoint = 0x10000 + ((unit - 0xD800) << 10) + (second - 0xDC00);
        return pos + 12;
    }
    *codepoint = unit;
    return pos + 6;
}

static const struct json_token *token_at(const struct json_document *doc, size_t index)
{
    return index < doc->count ? &doc->tokens[index] : NULL;
}

static int string_tokens_equal(const struct json_document *doc, const struct json_token *a,
                               const struct json_token *b)
{
    const uint8_t *text = (const uint8_t *)doc->text;

    if (a->count != b->count)
        return 0;
    if (!(a->flags & JSON_TOKEN_ESCAPED) && !(b->flags & JSON_TOKEN_ESCAPED))
        return memcmp(text + a->start, text + b->start, a->length) == 0;
    size_t i = a->start, j = b->start;
    size_t a_end = a->start + a->length;
    while (i < a_end) {
        uint32_t x, y;
        i = next_codepoint(text, i, &x);
        j = next_codepoint(text, j, &y);
        if (x != y)
            return 0;
    }
    return 1;
}

/* ---- reader: the parse loop --------------------------------------------- */

enum parse_state {
    EXPECT_VALUE,
    EXPECT_VALUE_OR_CLOSE, /* just after '[' */
    EXPECT_KEY,
    EXPECT_KEY_OR_CLOSE,   /* just after '{' */
    EXPECT_COLON,
    EXPECT_COMMA_OR_CLOSE, /* after a value */
};

struct parser {
    const uint8_t *text;
    size_t length;
    struct json_token *tokens;
    size_t max_tokens, count;
    uint32_t stack[JSON_MAX_DEPTH]; /* open containers, by token index */
    unsigned depth;
};

static struct json_token *add_token(struct parser *p, enum json_type type, size_t start)
{
    if (p->count >= p->max_tokens)
        return NULL;
    struct json_token *token = &p->tokens[p->count];
    token->type = (uint8_t)type;
    token->flags = 0;
    token->unused = 0;
    token->start = (uint32_t)start;
    token->length = 0;
    token->count = 0;
    token->end = (uint32_t)(p->count + 1);
    p->count++;
    return token;
}

/* A value starting at text[*pos]; containers are opened, not finished. */
static enum json_error parse_value(struct parser *p, size_t *pos, unsigned max_depth,
                                   size_t max_string, enum parse_state *state)
{
    uint8_t c = p->text[*pos];
    struct json_token *token;

    if (p->depth > 0 && p->tokens[p->stack[p->depth - 1]].type == JSON_ARRAY)
        p->tokens[p->stack[p->depth - 1]].count++;

    if (c == '{' || c == '[') {
        if (p->depth >= max_depth)
            return JSON_ERROR_TOO_DEEP;
        token = add_token(p, c == '{' ? JSON_OBJECT : JSON_ARRAY, *pos);
        if (!token)
            return JSON_ERROR_TOO_MANY_TOKENS;
        p->stack[p->depth++] = (uint32_t)(p->count - 1);
        (*pos)++;
        *state = c == '{' ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
        return JSON_OK;
    }

    size_t end;
    uint8_t flags = 0;
    enum json_error error;
    if (c == '"') {
        size_t decoded = 0;
        error = scan_string(p->text, p->length, *pos, max_string, &end, &decoded, &flags);
        if (error) {
            *pos = end;
            return error;
        }
        token = add_token(p, JSON_STRING, *pos + 1);
        if (!token)
            return JSON_ERROR_TOO_MANY_TOKENS;
        token->length = (uint32_t)(end - *pos - 2);
        token->count = (uint32_t)decoded;
    } else if (c == '-' || is_digit(c)) {
        error = scan_number(p->text, p->length, *pos, &end, &flags);
        if (error) {
            *pos = end;
            return error;
        }
        token = add_token(p, JSON_NUMBER, *pos);
        if (!token)
            return JSON_ERROR_TOO_MANY_TOKENS;
        token->length = (uint32_t)(end - *pos);
    } else if (is_letter(c)) {
        enum json_type type;
        end = *pos;
        while (end < p->length && is_letter(p->text[end]))
            end++;
        size_t n = end - *pos;
        if (n == 4 && memcmp(p->text + *pos, "true", 4) == 0)
            type = JSON_TRUE;
        else if (n == 5 && memcmp(p->text + *pos, "false", 5) == 0)
            type = JSON_FALSE;
        else if (n == 4 && memcmp(p->text + *pos, "null", 4) == 0)
            type = JSON_NULL;
        else
            return JSON_ERROR_BAD_KEYWORD;
        token = add_token(p, type, *pos);
        if (!token)
            return JSON_ERROR_TOO_MANY_TOKENS;
        token->length = (uint32_t)n;
    } else {
        return JSON_ERROR_EXPECTED_VALUE;
    }
    token->flags = flags;
    *pos = end;
    *state = EXPECT_COMMA_OR_CLOSE;
    return JSON_OK;
}

/* A key at text[*pos] in the object on top of the stack. */
static enum json_error parse_key(struct parser *p, size_t *pos, size_t max_string)
{
    struct json_token *object = &p->tokens[p->stack[p->depth - 1]];
    size_t end, decoded = 0;
    uint8_t flags;

    if (p->text[*pos] != '"')
        return JSON_ERROR_EXPECTED_KEY;
    enum json_error error = scan_string(p->text, p->length, *pos, max_string, &end, &decoded,
                                        &flags);
    if (error) {
        *pos = end;
        return error;
    }
    struct json_token *key = add_token(p, JSON_STRING, *pos + 1);
    if (!key)
        return JSON_ERROR_TOO_MANY_TOKENS;
    key->length = (uint32_t)(end - *pos - 2);
    key->count = (uint32_t)decoded;
    key->flags = flags;

    /* every earlier member is complete, so its value's end is known */
    const struct json_document view = {
        .text = (const char *)p->text, .length = p->length, .tokens = p->tokens,
        .count = p->count,
    };
    size_t index = (size_t)(object - p->tokens) + 1;
    for (uint32_t m = 0; m < object->count; m++) {
        if (string_tokens_equal(&view, &p->tokens[index], key))
            return JSON_ERROR_DUPLICATE_KEY;
        index = p->tokens[index + 1].end;
    }
    object->count++;
    *pos = end;
    return JSON_OK;
}

static void close_container(struct parser *p, size_t pos)
{
    struct json_token *container = &p->tokens[p->stack[--p->depth]];

    container->length = (uint32_t)(pos + 1 - container->start);
    container->end = (uint32_t)p->count;
}

enum json_error json_parse(struct json_document *doc, const char *text, size_t length,
                           struct json_token *tokens, size_t max_tokens,
                           const struct json_limits *limits, size_t *error_offset)
{
    struct parser p = {
        .text = (const uint8_t *)text, .length = length, .tokens = tokens,
        .max_tokens = max_tokens,
    };
    unsigned max_depth = limits->max_depth < JSON_MAX_DEPTH ? limits->max_depth : JSON_MAX_DEPTH;
    enum parse_state state = EXPECT_VALUE;
    enum json_error error = JSON_OK;
    size_t pos = 0;

    doc->text = text;
    doc->length = length;
    doc->tokens = tokens;
    doc->count = 0;
    if (length > limits->max_bytes || length >= UINT32_MAX) {
        error = JSON_ERROR_TOO_LONG;
        goto fail;
    }

    for (;;) {
        while (pos < length && is_space(p.text[pos]))
            pos++;
        if (state == EXPECT_COMMA_OR_CLOSE && p.depth == 0)
            break;
        if (pos >= length) {
            error = p.count == 0 ? JSON_ERROR_EMPTY : JSON_ERROR_TRUNCATED;
            goto fail;
        }
        uint8_t c = p.text[pos];
        switch (state) {
        case EXPECT_VALUE_OR_CLOSE:
            if (c == ']') {
                close_container(&p, pos++);
                state = EXPECT_COMMA_OR_CLOSE;
                break;
            }
            /* fall through */
        case EXPECT_VALUE:
            error = parse_value(&p, &pos, max_depth, limits->max_string, &state);
            break;
        case EXPECT_KEY_OR_CLOSE:
            if (c == '}') {
                close_container(&p, pos++);
                state = EXPECT_COMMA_OR_CLOSE;
                break;
            }
            /* fall through */
        case EXPECT_KEY:
            error = parse_key(&p, &pos, limits->max_string);
            state = EXPECT_COLON;
            break;
        case EXPECT_COLON:
            if (c != ':') {
                error = JSON_ERROR_EXPECTED_COLON;
                break;
            }
            pos++;
            state = EXPECT_VALUE;
            break;
        case EXPECT_COMMA_OR_CLOSE: {
            int in_object = p.tokens[p.stack[p.depth - 1]].type == JSON_OBJECT;
            if (c == ',') {
                pos++;
                state = in_object ? EXPECT_KEY : EXPECT_VALUE;
            } else if (c == (in_object ? '}' : ']')) {
                close_container(&p, pos++);
            } else {
                error = JSON_ERROR_EXPECTED_SEPARATOR;
            }
            break;
        }
        }
        if (error)
            goto fail;
    }
    if (pos != length) {
        error = JSON_ERROR_TRAILING;
        goto fail;
    }
    doc->count = p.count;
    return JSON_OK;

fail:
    if (error_offset)
        *error_offset = pos;
    return error;
}

const char *json_error_text(enum json_error error)
{
    switch (error) {
    case JSON_OK: return "no error";
    case JSON_ERROR_EMPTY: return "expecting value";
    case JSON_ERROR_TRUNCATED: return "premature end of input";
    case JSON_ERROR_EXPECTED_VALUE: return "expecting value";
    case JSON_ERROR_EXPECTED_KEY: return "key is not a string in object";
    case JSON_ERROR_EXPECTED_COLON: return "missing : in object pair";
    case JSON_ERROR_EXPECTED_SEPARATOR: return "expected separator or end of container";
    case JSON_ERROR_TRAILING: return "unexpected data after the value";
    case JSON_ERROR_BAD_KEYWORD: return "invalid keyword";
    case JSON_ERROR_BAD_NUMBER: return "invalid number";
    case JSON_ERROR_BAD_ESCAPE: return "invalid escape sequence in string";
    case JSON_ERROR_BAD_UNICODE: return "invalid \\u escape in string";
    case JSON_ERROR_BAD_UTF8: return "invalid UTF-8 sequence in string";
    case JSON_ERROR_CONTROL_CHARACTER: return "control character in string";
    case JSON_ERROR_DUPLICATE_KEY: return "duplicate key";
    case JSON_ERROR_TOO_LONG: return "input too long";
    case JSON_ERROR_TOO_MANY_TOKENS: return "token count limit exceeded";
    case JSON_ERROR_TOO_DEEP: return "nesting depth limit exceeded";
    case JSON_ERROR_STRING_TOO_LONG: return "string too long";
    }
    return "unknown error";
}

/* ---- reader: access ----------------------------------------------------- */

enum json_type json_type_of(const struct json_document *doc, size_t index)
{
    const struct json_token *token = token_at(doc, index);

    return token ? (enum json_type)token->type : JSON_NULL;
}

size_t json_skip(const struct json_document *doc, size_t index)
{
    const struct json_token *token = token_at(doc, index);

    return token ? token->end : doc->count;
}

int json_object_next(const struct json_document *doc, size_t object, size_t *cursor,
                     size_t *key, size_t *value)
{
    const struct json_token *token = token_at(doc, object);

    if (!token || token->type != JSON_OBJECT)
        return -1;
    size_t at = *cursor ? *cursor : object + 1;
    if (at >= token->end || at + 1 >= doc->count)
        return -1;
    *key = at;
    *value = at + 1;
    *cursor = doc->tokens[at + 1].end;
    return 0;
}

int json_string_equals(const struct json_document *doc, size_t index, const char *name)
{
    const struct json_token *token = token_at(doc, index);
    const uint8_t *text = (const uint8_t *)doc->text;
    size_t name_length = strlen(name);

    if (!token || token->type != JSON_STRING || token->count != name_length)
        return 0;
    if (!(token->flags & JSON_TOKEN_ESCAPED))
        return memcmp(text + token->start, name, name_length) == 0;
    size_t pos = token->start, end = token->start + token->length, at = 0;
    while (pos < end) {
        uint32_t codepoint;
        uint8_t bytes[4];
        pos = next_codepoint(text, pos, &codepoint);
        size_t n = utf8_encode(codepoint, bytes);
        if (at + n > name_length || memcmp(bytes, name + at, n) != 0)
            return 0;
        at += n;
    }
    return at == name_length;
}

int json_object_get(const struct json_document *doc, size_t object, const char *name,
                    size_t *value)
{
    size_t cursor = 0, key, member;

    while (json_object_next(doc, object, &cursor, &key, &member) == 0) {
        if (json_string_equals(doc, key, name)) {
            *value = member;
            return 0;
        }
    }
    return -1;
}

int json_get_string_bytes(const struct json_document *doc, size_t index, char *out,
                          size_t size, size_t *length)
{
    const struct json_token *token = token_at(doc, index);
    const uint8_t *text = (const uint8_t *)doc->text;

    if (size > 0)
        out[0] = 0;
    if (!token || token->type != JSON_STRING)
        return -1;
    if (token->count >= size)
        return -2;
    if (!(token->flags & JSON_TOKEN_ESCAPED)) {
        memcpy(out, text + token->start, token->length);
    } else {
        size_t pos = token->start, end = token->start + token->length, at = 0;
        while (pos < end) {
            uint32_t codepoint;
            pos = next_codepoint(text, pos, &codepoint);
            at += utf8_encode(codepoint, (uint8_t *)out + at);
        }
    }
    out[token->count] = 0;
    *length = token->count;
    return 0;
}

int json_get_string(const struct json_document *doc, size_t index, char *out, size_t size,
                    size_t *length)
{
    const struct json_token *token = token_at(doc, index);

    if (size > 0)
        out[0] = 0;
    if (token && (token->flags & JSON_TOKEN_HAS_NUL))
        return -1;
    return json_get_string_bytes(doc, index, out, size, length);
}

int json_get_int64(const struct json_document *doc, size_t index, int64_t *value)
{
    const struct json_token *token = token_at(doc, index);

    if (!token || token->type != JSON_NUMBER || (token->flags & JSON_TOKEN_FRACTION))
        return -1;
    const uint8_t *digits = (const uint8_t *)doc->text + token->start;
    size_t n = token->length, i = 0;
    int negative = digits[0] == '-';
    uint64_t limit = negative ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
    uint64_t magnitude = 0;

    if (negative)
        i++;
    for (; i < n; i++) {
        uint64_t digit = (uint64_t)(digits[i] - '0');
        if (magnitude > (limit - digit) / 10)
            return -2;
        magnitude = magnitude * 10 + digit;
    }
    if (negative)
        *value = magnitude == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)magnitude;
    else
        *value = (int64_t)magnitude;
    return 0;
}

int json_get_bool(const struct json_document *doc, size_t index, int *value)
{
    enum json_type type = json_type_of(doc, index);

    if (index >= doc->count || (type != JSON_TRUE && type != JSON_FALSE))
        return -1;
    *value = type == JSON_TRUE;
    return 0;
}

/* ---- writer ------------------------------------------------------------- */

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
        size_t units = utf8_decode(s + i, length - i, &codepoint);
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
        pos = next_codepoint(text, pos, &codepoint);
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
    const struct json_token *root = token_at(doc, index);

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
