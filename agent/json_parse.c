/*
 * The JSON reader (RFC 8259): one loop over the bytes with an explicit
 * stack of open containers, bounded by the caller's limits, that checks
 * every rule and lays the values out as tokens (agent/json.h).
 */
#include "agent/json.h"

#include "agent/json_internal.h" // json_hex_value, json_next_codepoint, json_utf8_*
#include "lib/string.h"          // memcmp

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r'; /* RFC 8259, 2: ws */
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* ---- scanning one token ------------------------------------------------ */

/* The four hex digits of the \uXXXX whose backslash is at text[i]: the
 * code unit, -1 for a byte that is not hex, -2 when the text ends first. */
static int32_t unicode_escape(const uint8_t *text, size_t length, size_t i)
{
    int32_t value = 0;

    for (size_t k = 2; k < 6; k++) {
        if (i + k >= length)
            return -2;
        int digit = json_hex_value(text[i + k]);
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
                out += json_utf8_encode(codepoint, scratch);
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
            units = json_utf8_decode(text + i, length - i, &codepoint);
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
        i = json_next_codepoint(text, i, &x);
        j = json_next_codepoint(text, j, &y);
        if (x != y)
            return 0;
    }
    return 1;
}

/* ---- the parse loop ---------------------------------------------------- */

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
