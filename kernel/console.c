/*
 * Console output over the UART, with a bare "\n" sent as "\r\n" for
 * terminals (a "\r\n" already there is left alone).
 */
#include "kernel/console.h"

#include "arch/x86/uart.h" // uart_putc
#include "lib/format.h"    // format_vsnprintf

static char last_sent;
static uint64_t bytes_sent;

static void put(char c)
{
    if (c == '\n' && last_sent != '\r')
        uart_putc('\r');
    uart_putc(c);
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
