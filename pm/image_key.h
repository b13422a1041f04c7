/*
 * The hibernation image key after boot (docs/security.md, The key): the
 * keys efi_main read and set, kept in one page the image leaves out
 * (PAGE_TAG_SECRET) and erased once used.
 */
#ifndef PM_IMAGE_KEY_H
#define PM_IMAGE_KEY_H

#include <stdint.h>

#include "boot/handoff.h" // struct image_key, enum image_key_source

/* At bring-up, once the page allocator runs: copies both keys into the
 * secret page, erases the handoff's copies (the handoff is in the kernel
 * image, which an image saves) and prints the `image_key` line. */
void image_key_take(struct boot_handoff *handoff);

enum image_key_source image_key_source(void);

/* The key an image on the disk may have been written with; NULL when none. */
const struct image_key *image_key_resume(void);
/* After the resume check, whatever its outcome: the resume key is erased. */
void image_key_erase_resume(void);

/* The key this boot's images are written with; NULL when none. */
const struct image_key *image_key_write(void);

/* In the image kernel after a resume: the boot kernel's write key (NULL:
 * none) replaces this kernel's own, since the boot that resumed it rotated
 * the variable. Also erases any resume key and restarts the image count. */
void image_key_adopt(const struct image_key *write_key, enum image_key_source source);

/* The boot kernel, before it jumps into an image: no key may stay in what
 * the image kernel takes for free memory (the write key travels in the
 * resume handoff, which the image kernel erases). */
void image_key_erase_all(void);

/* 0, 1, 2, ...: the number of images written under the current write key
 * before this one; (counter, this) is an image's nonce. */
uint64_t image_key_next_image(void);

#endif
