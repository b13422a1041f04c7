/*
 * The kernel log: timestamped lines kept in a ring (the `log` command
 * prints it) and echoed to the console as they happen.
 */
#ifndef CONSOLE_LOG_H
#define CONSOLE_LOG_H

#include <stdint.h>

/* The timestamp source (the monotonic clock); 0 until it is set. */
void log_set_clock(uint64_t (*now_ns)(void));

void klog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the ring, oldest line first. */
void log_dump(void);
/* Stops echoing log lines to the console (the ring still keeps them). */
void log_set_echo(int on);

#endif
