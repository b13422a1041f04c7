/*
 * The console: formatted output for people and for the test scripts (one
 * `name key=value ...` line per result, see docs/console.md). The bottom
 * output seam: it depends on nothing but lib/.
 */
#ifndef CONSOLE_CONSOLE_H
#define CONSOLE_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Where the bytes go (the UART); output before this is dropped. */
void console_set_output(void (*put_byte)(char c));

void console_write(const char *text, size_t length);
void console_puts(const char *text);
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_vprintf(const char *fmt, va_list args);
/* Bytes written so far: lets the shell see that something else printed. */
uint64_t console_bytes_sent(void);

#endif
