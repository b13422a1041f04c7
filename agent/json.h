/*
 * A JSON reader and writer for input from an untrusted host (RFC 8259),
 * freestanding and allocation-free: the caller provides the token array
 * and the output buffer, every size is bounded, nothing recurses.
 *
 * The reader turns one JSON text into a flat array of tokens in document
 * order: a container is followed by its children (an object's as key,
 * value, key, value...), and each token knows where its subtree ends, so
 * a sibling is one step away. Strings are fully checked while parsing
 * (escapes, \uXXXX with surrogate pairs, strict UTF-8), so reading one
 * later can only fail for want of room.
 *
 * json_parse.c reads, json_access.c looks into what it read, json_writer.c
 * writes; json_unicode.c holds the characters they share.
 */
#ifndef AGENT_JSON_H
#define AGENT_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32 /* the most nesting any reader or writer accepts */

enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

/* What a parse found wrong; json_error_text names each in words. */
enum json_error {
    JSON_OK = 0,
    JSON_ERROR_EMPTY,             /* nothing but whitespace */
    JSON_ERROR_TRUNCATED,         /* the text ends inside a value */
    JSON_ERROR_EXPECTED_VALUE,    /* a byte no value starts with */
    JSON_ERROR_EXPECTED_KEY,      /* an object key that is not a string */
    JSON_ERROR_EXPECTED_COLON,    /* a key without ':' after it */
    JSON_ERROR_EXPECTED_SEPARATOR,/* neither ',' nor the matching close bracket */
    JSON_ERROR_TRAILING,          /* more after the value */
    JSON_ERROR_BAD_KEYWORD,       /* letters that are not true, false or null */
    JSON_ERROR_BAD_NUMBER,        /* not RFC 8259 number syntax (e.g. 01, 1., -) */
    JSON_ERROR_BAD_ESCAPE,        /* backslash followed by something unknown */
    JSON_ERROR_BAD_UNICODE,       /* bad \uXXXX: not hex, or a lone surrogate */
    JSON_ERROR_BAD_UTF8,          /* a raw byte sequence that is not UTF-8 */
    JSON_ERROR_CONTROL_CHARACTER, /* a raw byte below 0x20 inside a string */
    JSON_ERROR_DUPLICATE_KEY,     /* an object with the same key twice */
    JSON_ERROR_TOO_LONG,          /* the text is over limits.max_bytes */
    JSON_ERROR_TOO_MANY_TOKENS,   /* more values than the token array holds */
    JSON_ERROR_TOO_DEEP,          /* nesting over limits.max_depth */
    JSON_ERROR_STRING_TOO_LONG,   /* a decoded string over limits.max_string */
};

struct json_limits {
    size_t max_bytes;    /* input length; at most UINT32_MAX - 1 */
    unsigned max_depth;  /* 1 .. JSON_MAX_DEPTH: 1 allows [] and {} of scalars */
    size_t max_string;   /* decoded bytes of one string (keys included) */
};

struct json_token {
    uint8_t type;     /* enum json_type */
    uint8_t flags;    /* JSON_TOKEN_* */
    uint16_t unused;
    uint32_t start;   /* string: first byte after the quote; others: first byte */
    uint32_t length;  /* string: raw bytes between the quotes; container: through its close */
    uint32_t count;   /* array: elements; object: members; string: decoded bytes */
    uint32_t end;     /* index of the first token after this value's subtree */
};

#define JSON_TOKEN_ESCAPED 1  /* a string with a backslash: decoding is needed */
#define JSON_TOKEN_FRACTION 2 /* a number with a fraction or an exponent */
#define JSON_TOKEN_HAS_NUL 4  /* a string whose decoded text holds a \u0000 */

struct json_document {
    const char *text;
    size_t length;
    const struct json_token *tokens;
    size_t count;
};

/* Parses text[0 .. length) as one JSON value with optional whitespace
 * around it. Returns JSON_OK and fills doc (the root is token 0), or the
 * error, with *error_offset (if not NULL) the byte where it was seen. */
enum json_error json_parse(struct json_document *doc, const char *text, size_t length,
                           struct json_token *tokens, size_t max_tokens,
                           const struct json_limits *limits, size_t *error_offset);

/* A phrase for the error, lower case, no period (as "duplicate key"). */
const char *json_error_text(enum json_error error);

/* Token access. Indices outside the document read as JSON_NULL, and every
 * helper below refuses them. */
enum json_type json_type_of(const struct json_document *doc, size_t index);
/* The index after index's whole subtree (its next sibling, if any). */
size_t json_skip(const struct json_document *doc, size_t index);

/* Finds the member called name (compared with the decoded key, exactly)
 * of the object at index. Returns 0 and its value's index, or -1 (not an
 * object, or no such member). */
int json_object_get(const struct json_document *doc, size_t object, const char *name,
                    size_t *value);

/* Iterates an object's members: start with *cursor = 0; each call returns
 * 0 with the next member's key and value indices, or -1 after the last. */
int json_object_next(const struct json_document *doc, size_t object, size_t *cursor,
                     size_t *key, size_t *value);

/* Whether the string at index decodes to exactly the bytes of name. */
int json_string_equals(const struct json_document *doc, size_t index, const char *name);

/* Decodes the string at index into out (always NUL-terminated when size
 * > 0) and sets *length to the decoded bytes (not counting the NUL).
 * json_get_string refuses a string with an embedded NUL, which a C string
 * cannot hold; json_get_string_bytes gives it whole. Returns 0, -1 when
 * index is not a string (or holds a NUL, for json_get_string), -2 when
 * out is too small (out then holds nothing). */
int json_get_string(const struct json_document *doc, size_t index, char *out, size_t size,
                    size_t *length);
int json_get_string_bytes(const struct json_document *doc, size_t index, char *out,
                          size_t size, size_t *length);

/* An exact int64: no fraction, no exponent (1.0 and 1e3 are refused, as
 * an integer field in QAPI refuses them). Returns 0, -1 when index is not
 * a number or not an integer, -2 when it is out of range. */
int json_get_int64(const struct json_document *doc, size_t index, int64_t *value);

/* true or false. Returns 0, or -1 for anything else. */
int json_get_bool(const struct json_document *doc, size_t index, int *value);

/* ---- writer ------------------------------------------------------------ */

/* Builds one JSON text in a fixed buffer. Output is ASCII only, spaced the
 * way QEMU's JSON writer spaces it ({"a": 1, "b": [true, null]}): strings
 * are read as UTF-8, and every byte that is not printable ASCII is written
 * as \uXXXX (invalid UTF-8 as \uFFFD). Calls after an overflow or a misuse
 * (a value where a key is due, too deep...) do nothing; json_writer_finish
 * says whether the text is whole. */
struct json_writer {
    char *buffer;
    size_t size;
    size_t length;
    int failed;         /* 1: out of room or misused; the text is not usable */
    unsigned depth;     /* containers open */
    uint64_t has_items; /* bit d: the container at depth d has an item (bit 0: the root is written) */
    uint64_t is_object; /* bit d: the container at depth d is an object */
    int after_key;      /* a key was written; its value is due */
};

void json_writer_init(struct json_writer *w, char *buffer, size_t size);
void json_write_object_begin(struct json_writer *w);
void json_write_object_end(struct json_writer *w);
void json_write_array_begin(struct json_writer *w);
void json_write_array_end(struct json_writer *w);
void json_write_key(struct json_writer *w, const char *name);
void json_write_string(struct json_writer *w, const char *text);
void json_write_string_bytes(struct json_writer *w, const char *bytes, size_t length);
void json_write_int64(struct json_writer *w, int64_t value);
void json_write_uint64(struct json_writer *w, uint64_t value);
void json_write_bool(struct json_writer *w, int value);
void json_write_null(struct json_writer *w);
/* Writes the value at index of a parsed document again: numbers as they
 * were written, strings re-escaped, containers re-spaced. */
void json_write_value(struct json_writer *w, const struct json_document *doc, size_t index);
/* Appends raw bytes outside the JSON grammar (a line end, a sentinel). */
void json_write_raw(struct json_writer *w, const char *bytes, size_t length);
/* Returns the length of the text (NUL-terminated in the buffer), or -1
 * when it overflowed, was misused or left a container open. */
long json_writer_finish(struct json_writer *w);

#endif
