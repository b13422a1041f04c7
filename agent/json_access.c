/*
 * Reading a parsed JSON document (agent/json.h): a value's type and
 * subtree, object members by name or in order, strings decoded, integers
 * and booleans checked.
 */
#include "agent/json.h"

#include "agent/json_internal.h" // json_next_codepoint, json_token_at, json_utf8_encode
#include "lib/string.h"          // memcmp, memcpy, strlen

const struct json_token *json_token_at(const struct json_document *doc, size_t index)
{
    return index < doc->count ? &doc->tokens[index] : NULL;
}

enum json_type json_type_of(const struct json_document *doc, size_t index)
{
    const struct json_token *token = json_token_at(doc, index);

    return token ? (enum json_type)token->type : JSON_NULL;
}

size_t json_skip(const struct json_document *doc, size_t index)
{
    const struct json_token *token = json_token_at(doc, index);

    return token ? token->end : doc->count;
}

int json_object_next(const struct json_document *doc, size_t object, size_t *cursor,
                     size_t *key, size_t *value)
{
    const struct json_token *token = json_token_at(doc, object);

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
    const struct json_token *token = json_token_at(doc, index);
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
        pos = json_next_codepoint(text, pos, &codepoint);
        size_t n = json_utf8_encode(codepoint, bytes);
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
    const struct json_token *token = json_token_at(doc, index);
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
            pos = json_next_codepoint(text, pos, &codepoint);
            at += json_utf8_encode(codepoint, (uint8_t *)out + at);
        }
    }
    out[token->count] = 0;
    *length = token->count;
    return 0;
}

int json_get_string(const struct json_document *doc, size_t index, char *out, size_t size,
                    size_t *length)
{
    const struct json_token *token = json_token_at(doc, index);

    if (size > 0)
        out[0] = 0;
    if (token && (token->flags & JSON_TOKEN_HAS_NUL))
        return -1;
    return json_get_string_bytes(doc, index, out, size, length);
}

int json_get_int64(const struct json_document *doc, size_t index, int64_t *value)
{
    const struct json_token *token = json_token_at(doc, index);

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
