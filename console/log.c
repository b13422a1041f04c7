/*
 * Log ring: a fixed byte ring of complete lines. When it is full the
 * oldest lines are dropped whole, so a dump never starts mid-line.
 */
#include "console/log.h"

#include <stdarg.h>
#include <stdint.h>

#include "console/console.h" // console_write
#include "lib/format.h"      // format_snprintf

#define LOG_RING_SIZE 16384

static char ring[LOG_RING_SIZE];
static uint64_t ring_start; /* offset of the oldest byte kept */
static uint64_t ring_end;   /* offset one past the newest byte */
static int echo = 1;
static uint64_t (*clock_now_ns)(void);

void log_set_clock(uint64_t (*now_ns)(void))
{
    clock_now_ns = now_ns;
}

static void ring_append(const char *text, int length)
{
    for (int i = 0; i < length; i++)
        ring[(ring_end + i) % LOG_RING_SIZE] = text[i];
    ring_end += (uint64_t)length;
    /* drop whole lines from the front until the rest fits */
    while (ring_end - ring_start > LOG_RING_SIZE) {
        while (ring[ring_start % LOG_RING_SIZE] != '\n')
            ring_start++;
        ring_start++;
    }
}

void klog(const char *fmt, ...)
{
    char line[256];
    uint64_t ns = clock_now_ns ? clock_now_ns() : 0;
    int length = format_snprintf(line, sizeof(line), "[%5llu.%06llu] ",
                                 (unsigned long long)(ns / 1000000000),
                                 (unsigned long long)(ns / 1000 % 1000000));
    va_list args;

    va_start(args, fmt);
    length += format_vsnprintf(line + length, sizeof(line) - (size_t)length - 1, fmt, args);
    va_end(args);
    if (length > (int)sizeof(line) - 2)
        length = sizeof(line) - 2;
    line[length++] = '\n';
    line[length] = 0;
    ring_append(line, length);
    if (echo)
        console_write(line, (size_t)length);
}

void log_dump(void)
{
    for (uint64_t at = ring_start; at < ring_end;) {
        char chunk[128];
        int n = 0;
        while (at < ring_end && n < (int)sizeof(chunk))
            chunk[n++] = ring[at++ % LOG_RING_SIZE];
        console_write(chunk, (size_t)n);
    }
}

void log_set_echo(int on)
{
    echo = on;
}
