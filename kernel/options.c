/*
 * Boot options, gathered once at boot from both places the host can set
 * them; later words win, so fw_cfg overrides the load options.
 */
#include "kernel/options.h"

#include "arch/x86/fw_cfg.h" // fw_cfg_read_file
#include "lib/parse.h"       // parse_u64
#include "lib/string.h"      // strlen, strncmp

#define OPTIONS_SIZE 512

static char line[OPTIONS_SIZE];

void options_init(const char *load_options)
{
    size_t used = string_copy(line, load_options ? load_options : "", sizeof(line));

    if (used >= sizeof(line) - 2)
        return;
    size_t start = used ? used + 1 : 0; /* a space between the two sources */
    if (fw_cfg_read_file("opt/torpor/cmdline", line + start, sizeof(line) - start) > 0 && used)
        line[used] = ' ';
}

const char *options_line(void)
{
    return line;
}

/* The last word that starts with prefix (exact: that is the whole word). */
static const char *find_word(const char *prefix, size_t prefix_length, int exact)
{
    const char *found = 0;

    for (const char *p = line; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        size_t length = (size_t)(p - start);
        if (length >= prefix_length && strncmp(start, prefix, prefix_length) == 0 &&
            (!exact || length == prefix_length))
            found = start; /* keep looking: the last one wins */
    }
    return found;
}

int options_has(const char *word)
{
    return find_word(word, strlen(word), 1) != 0;
}

int options_number(const char *name, uint64_t *value)
{
    char key[64], number[24];
    size_t length = string_copy(key, name, sizeof(key) - 1);

    key[length] = '=';
    key[length + 1] = 0;
    const char *found = find_word(key, length + 1, 0);
    if (!found)
        return -1;
    size_t n = 0;
    for (const char *p = found + length + 1; *p && *p != ' ' && *p != '\t' && n < sizeof(number) - 1; p++)
        number[n++] = *p;
    number[n] = 0;
    return parse_u64(number, value);
}
