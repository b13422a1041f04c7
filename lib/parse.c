/*
 * Console input parsing, free of kernel state so the host tests and the
 * fuzzers exercise exactly the kernel's code.
 */
#include "lib/parse.h"

int parse_words(char *line, char **words, int max_words)
{
    int count = 0;
    char *p = line;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            *p++ = 0;
        if (!*p)
            return count;
        if (count == max_words)
            return -1;
        words[count++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
}

int parse_u64(const char *text, uint64_t *value)
{
    unsigned base = 10;
    uint64_t result = 0;

    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text += 2;
    }
    if (!*text)
        return -1;
    for (; *text; text++) {
        unsigned digit;
        char c = *text;
        if (c >= '0' && c <= '9')
            digit = (unsigned)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = (unsigned)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = (unsigned)(c - 'A' + 10);
        else
            return -1;
        if (result > (UINT64_MAX - digit) / base)
            return -1;
        result = result * base + digit;
    }
    *value = result;
    return 0;
}
