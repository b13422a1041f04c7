/*
 * Console output: formatting over one output seam, the byte sink the
 * bring-up registers (the UART), with a bare "\n" sent as "\r\n" for
 * terminals (a "\r\n" already there is left alone). Nothing here knows
 * what the sink is, so every layer above may print.
 */
#include "console/console.h"

#include "lib/format.h" // format_vsnprintf

static void (*sink)(char c);
static char last_sent;
static uint64_t bytes_sent;

void console_set_output(void (*put_byte)(char c))
{
    sink = put_byte;
}

static void put(char c)
{
    if (!sink)
        return; /* before the bring-up chose a sink: nowhere to go */
    if (c == '\n' && last_sent != '\r')
        sink('\r');
    sink(c);
    last_sent = c;
    bytes_sent++;
}

uint64_t console_bytes_sent(void)
{
    return bytes_sent;
}

void console_write(const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        put(text[i]);
}

void console_puts(const char *text)
{
    while (*text)
        put(*text++);
}

void console_vprintf(const char *fmt, va_list args)
{
    char buffer[512];
    int length = format_vsnprintf(buffer, sizeof(buffer), fmt, args);

    if (length >= (int)sizeof(buffer))
        length = sizeof(buffer) - 1;
    console_write(buffer, (size_t)length);
}

void console_printf(const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    console_vprintf(fmt, args);
    va_end(args);
}
