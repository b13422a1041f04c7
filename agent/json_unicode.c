/*
 * The characters under the JSON reader and writer: hex digits, UTF-8
 * (RFC 3629) both ways, and the characters of a string token already checked.
 */
#include "agent/json_internal.h"

int json_hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t json_utf8_decode(const uint8_t *s, size_t available, uint32_t *codepoint)
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

size_t json_utf8_encode(uint32_t codepoint, uint8_t out[4])
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
        int digit = json_hex_value(s[i]);
        if (digit < 0)
            return -1;
        value = value << 4 | digit;
    }
    return value;
}

size_t json_next_codepoint(const uint8_t *text, size_t pos, uint32_t *codepoint)
{
    if (text[pos] != '\\') {
        size_t units = json_utf8_decode(text + pos, 4, codepoint);
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
