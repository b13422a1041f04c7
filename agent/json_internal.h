/*
 * What the pieces of the JSON reader and writer share (agent/json.h is
 * the interface): UTF-8, hex digits, a token by index, and the walk over
 * a checked string.
 */
#ifndef AGENT_JSON_INTERNAL_H
#define AGENT_JSON_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "agent/json.h" // struct json_document, struct json_token

/* ---- json_unicode.c ---------------------------------------------------- */

/* A hex digit's value, or -1. */
int json_hex_value(uint8_t c);

/* One well-formed UTF-8 sequence at s (RFC 3629, 4: no overlong forms, no
 * surrogates, nothing above U+10FFFF). Returns its length, or 0. */
size_t json_utf8_decode(const uint8_t *s, size_t available, uint32_t *codepoint);

/* Writes codepoint as UTF-8; returns its length (1 to 4). */
size_t json_utf8_encode(uint32_t codepoint, uint8_t out[4]);

/* The next character of a string token that json_parse accepted, from raw
 * offset pos (relative to the text); returns the offset after it. */
size_t json_next_codepoint(const uint8_t *text, size_t pos, uint32_t *codepoint);

/* ---- json_access.c ----------------------------------------------------- */

/* The token at index, or NULL past the document's end. */
const struct json_token *json_token_at(const struct json_document *doc, size_t index);

#endif
