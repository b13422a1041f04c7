/*
 * The kernel log: timestamped lines kept in a ring (the `log` command
 * prints it) and echoed to the console as they happen.
 */
#ifndef KERNEL_LOG_H
#define KERNEL_LOG_H

void klog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the ring, oldest line first. */
void log_dump(void);
/* Stops echoing log lines to the console (the ring still keeps them). */
void log_set_echo(int on);

#endif
