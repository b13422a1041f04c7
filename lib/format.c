/*
 * A small printf core shared by the console, the log and the host tests.
 * Output is cut at the buffer size but the return value counts everything,
 * so callers can detect truncation.
 */
#include "lib/format.h"

#include <stdint.h>

struct format_out {
    char *buf;
    size_t size;
    size_t len;
};

static void out_char(struct format_out *out, char c)
{
    if (out->len + 1 < out->size)
        out->buf[out->len] = c;
    out->len++;
}

static void out_padded(struct format_out *out, const char *s, size_t len,
                       int width, int left, char pad)
{
    int fill = width > (int)len ? width - (int)len : 0;

    /* a zero pad goes after the sign */
    if (pad == '0' && len && *s == '-') {
        out_char(out, '-');
        s++;
        len--;
    }
    if (!left)
        while (fill-- > 0)
            out_char(out, pad);
    while (len--)
        out_char(out, *s++);
    if (left)
        while (fill-- > 0)
            out_char(out, ' ');
}

static size_t number_to_text(char *tmp, uint64_t value, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char rev[24];
    size_t n = 0;

    do {
        rev[n++] = digits[value % base];
        value /= base;
    } while (value);
    for (size_t i = 0; i < n; i++)
        tmp[i] = rev[n - 1 - i];
    return n;
}

int format_vsnprintf(char *buf, size_t size, const char *fmt, va_list args)
{
    struct format_out out = { buf, size, 0 };

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out_char(&out, *fmt);
            continue;
        }
        fmt++;
        int left = 0;
        char pad = ' ';
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                pad = '0';
            else
                break;
        }
        int width = 0;
        while (*fmt >= '0' && *fmt <= '9') {
            if (width < 4096) /* wider than any line; also no int overflow */
                width = width * 10 + (*fmt - '0');
            fmt++;
        }
        int longs = 0;
        while (*fmt == 'l' || *fmt == 'z') {
            longs += *fmt == 'z' ? 2 : 1;
            fmt++;
        }
        if (left)
            pad = ' ';

        char tmp[24];
        size_t len;
        uint64_t value;
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t v = longs ? va_arg(args, long long) : va_arg(args, int);
            uint64_t magnitude = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
            size_t at = 0;
            if (v < 0)
                tmp[at++] = '-';
            len = at + number_to_text(tmp + at, magnitude, 10, 0);
            out_padded(&out, tmp, len, width, left, pad);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
            value = longs ? va_arg(args, unsigned long long) : va_arg(args, unsigned int);
            len = number_to_text(tmp, value, *fmt == 'u' ? 10 : 16, *fmt == 'X');
            out_padded(&out, tmp, len, width, left, pad);
            break;
        case 'p':
            value = (uintptr_t)va_arg(args, void *);
            tmp[0] = '0';
            tmp[1] = 'x';
            len = 2 + number_to_text(tmp + 2, value, 16, 0);
            out_padded(&out, tmp, len, width, left, pad);
            break;
        case 's': {
            const char *s = va_arg(args, const char *);
            if (!s)
                s = "(null)";
            size_t n = 0;
            while (s[n])
                n++;
            out_padded(&out, s, n, width, left, ' ');
            break;
        }
        case 'c':
            tmp[0] = (char)va_arg(args, int);
            out_padded(&out, tmp, 1, width, left, ' ');
            break;
        case '%':
            out_char(&out, '%');
            break;
        case 0:
            fmt--; /* a lone '%' at the end: stop at the terminator */
            break;
        default: /* unknown conversion: print it literally */
            out_char(&out, '%');
            out_char(&out, *fmt);
            break;
        }
    }
    if (size)
        buf[out.len < size ? out.len : size - 1] = 0;
    return (int)out.len;
}

int format_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    int n = format_vsnprintf(buf, size, fmt, args);
    va_end(args);
    return n;
}
