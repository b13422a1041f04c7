/*
 * The image key after boot (docs/security.md, The key). efi_main leaves
 * the keys in the boot handoff, a static inside the kernel image, which a
 * hibernation image saves; they move at once to a page tagged
 * PAGE_TAG_SECRET, which pm/hibernate.c leaves out of the image, and the
 * handoff's copies are erased. Only the flags and counters below live in
 * the kernel image: after a resume the secret page holds whatever the
 * resuming kernel left there, until image_key_adopt fills it.
 */
#include "pm/image_key.h"

#include "arch/x86/clock.h"   // clock_tsc_to_ns
#include "console/console.h" // console_printf
#include "crypto/secret.h"   // secret_erase
#include "mm/page_alloc.h"   // page_alloc, PAGE_TAG_SECRET

struct key_page {
    struct image_key resume;
    struct image_key write;
};

static struct key_page *keys; /* the secret page; NULL if it could not be had */
static uint32_t source;       /* enum image_key_source */
static int have_resume;
static int have_write;
static uint64_t images_written; /* under the current write key */

static void copy_key(struct image_key *to, const struct image_key *from)
{
    /* byte by byte into the page: no copy passes through the stack */
    volatile uint8_t *d = (volatile uint8_t *)to;
    const volatile uint8_t *s = (const volatile uint8_t *)from;

    for (uint64_t i = 0; i < sizeof(*to); i++)
        d[i] = s[i];
}

static struct key_page *secret_page(void)
{
    if (!keys)
        keys = (struct key_page *)(uintptr_t)page_alloc(0, PAGE_TAG_SECRET);
    return keys;
}

static void print_chain(const uint8_t *chain)
{
    console_printf(" chain=");
    for (int i = 0; i < IMAGE_KEY_CHAIN_BYTES; i++)
        console_printf("%02x", chain[i]);
}

void image_key_take(struct boot_handoff *handoff)
{
    struct boot_image_keys *boot = &handoff->image_keys;
    struct key_page *page = secret_page();

    source = boot->source;
    have_resume = page && (boot->flags & BOOT_IMAGE_KEY_RESUME);
    have_write = page && (boot->flags & BOOT_IMAGE_KEY_WRITE);
    if (have_resume)
        copy_key(&page->resume, &boot->resume);
    if (have_write)
        copy_key(&page->write, &boot->write);
    secret_erase(&boot->resume, sizeof(boot->resume));
    secret_erase(&boot->write, sizeof(boot->write));
    images_written = 0;

    console_printf("image_key source=%s resume_key=%d write_key=%d", image_key_source_name(source),
                   have_resume, have_write);
    if (have_resume)
        console_printf(" resume_counter=%llu", (unsigned long long)page->resume.counter);
    if (have_write) {
        console_printf(" counter=%llu", (unsigned long long)page->write.counter);
        print_chain(page->write.chain);
    }
    if (boot->flags & BOOT_IMAGE_KEY_SET_FAILED)
        console_printf(" set_failed=1 status=0x%x", boot->set_status);
    if (!page)
        console_printf(" no_page=1");
    /* what the firmware took for it, inside the boot's boot_us */
    console_printf(" random_us=%llu variable_us=%llu",
                   (unsigned long long)(clock_tsc_to_ns(boot->random_tsc) / 1000),
                   (unsigned long long)(clock_tsc_to_ns(boot->variable_tsc) / 1000));
    if (!have_write)
        console_printf(" (images will not be authenticated)");
    console_printf("\n");
}

enum image_key_source image_key_source(void)
{
    return (enum image_key_source)source;
}

const struct image_key *image_key_resume(void)
{
    return have_resume ? &keys->resume : 0;
}

void image_key_erase_resume(void)
{
    if (keys)
        secret_erase(&keys->resume, sizeof(keys->resume));
    have_resume = 0;
}

const struct image_key *image_key_write(void)
{
    return have_write ? &keys->write : 0;
}

void image_key_adopt(const struct image_key *write_key, enum image_key_source new_source)
{
    struct key_page *page = secret_page();

    image_key_erase_resume();
    if (page)
        secret_erase(&page->write, sizeof(page->write));
    have_write = page && write_key;
    if (have_write)
        copy_key(&page->write, write_key);
    source = new_source;
    images_written = 0;
}

void image_key_erase_all(void)
{
    image_key_erase_resume();
    if (keys)
        secret_erase(&keys->write, sizeof(keys->write));
    have_write = 0;
}

uint64_t image_key_next_image(void)
{
    return images_written++;
}
