/*
 * Boot options: the UEFI load options and QEMU's
 * `-fw_cfg name=opt/torpor/cmdline,string=...`, as space-separated words
 * (`noresume`, `balloon_reserve=64`). Documented in docs/console.md.
 */
#ifndef KERNEL_OPTIONS_H
#define KERNEL_OPTIONS_H

#include <stdint.h>

/* Joins the firmware's load options and the fw_cfg file. */
void options_init(const char *load_options);
const char *options_line(void);
/* Whether the bare word is present. */
int options_has(const char *word);
/* The number after `name=`; returns 0 and sets *value, or -1. */
int options_number(const char *name, uint64_t *value);

#endif
