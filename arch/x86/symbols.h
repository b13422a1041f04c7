/*
 * Names for code addresses, from the .ksyms table the build embeds.
 */
#ifndef ARCH_X86_SYMBOLS_H
#define ARCH_X86_SYMBOLS_H

#include <stdint.h>

/* Returns the name of the function containing address and its offset in
 * it, or NULL when no symbol covers the address. */
const char *symbols_lookup(uint64_t address, uint64_t *offset);
/* The address the image runs at (its ELF address 0). */
uint64_t symbols_image_base(void);

#endif
