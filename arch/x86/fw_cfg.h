/*
 * QEMU's firmware configuration device (fw_cfg) through its I/O ports:
 * lets the host hand the kernel a file such as opt/torpor/cmdline.
 */
#ifndef ARCH_X86_FW_CFG_H
#define ARCH_X86_FW_CFG_H

#include <stddef.h>

/* Reads the named file into buffer (NUL-terminated, cut at size - 1).
 * Returns its length, or -1 when there is no fw_cfg device or no file. */
int fw_cfg_read_file(const char *name, char *buffer, size_t size);

#endif
