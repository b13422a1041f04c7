/*
 * `balloon`: the balloon's target, list and counters, and its tuning
 * (reserve, batching), over virtio/virtio_balloon.h.
 */
#include "console/console.h"       // console_printf
#include "lib/string.h"            // strcmp
#include "mm/page.h"               // PAGES_PER_MIB
#include "shell/commands.h"        // shell_balloon_commands
#include "virtio/virtio.h"         // struct virtio_feature_name
#include "virtio/virtio_balloon.h" // virtio_balloon_*

static void command_balloon(int argc, char **argv)
{
    uint64_t value, in_flight = 0;
    struct virtio_balloon_info b;

    if (virtio_balloon_get_info(&b) != 0) {
        shell_error("balloon: no virtio-balloon device");
        return;
    }
    if (argc >= 3 && strcmp(argv[1], "reserve") == 0) {
        if (shell_parse_number(argv[2], "balloon", &value))
            return;
        virtio_balloon_set_reserve(value * PAGES_PER_MIB);
        console_printf("balloon reserve_pages=%llu\n", (unsigned long long)(value * PAGES_PER_MIB));
        return;
    }
    if (argc >= 3 && strcmp(argv[1], "batch") == 0) {
        if (shell_parse_number(argv[2], "balloon", &value) ||
            (argc > 3 && shell_parse_number(argv[3], "balloon", &in_flight)))
            return;
        if (value > BALLOON_MAX_BATCH || in_flight > BALLOON_MAX_IN_FLIGHT ||
            virtio_balloon_set_batching((unsigned)value, argc > 3 ? (unsigned)in_flight : b.in_flight) != 0) {
            shell_error("balloon: batch must be 1-%u PFNs and 1-%u requests in flight",
                        BALLOON_MAX_BATCH, BALLOON_MAX_IN_FLIGHT);
            return;
        }
        virtio_balloon_get_info(&b);
        console_printf("balloon batch=%u in_flight=%u\n", b.batch, b.in_flight);
        return;
    }
    if (argc != 1) {
        shell_error("usage: balloon | balloon reserve MIB | balloon batch PFNS [IN_FLIGHT]");
        return;
    }
    const struct balloon_stats *s = &b.core;
    console_printf("balloon target_pages=%u actual_pages=%u list_pages=%u inflating=%u deflating=%u "
                   "reserve_pages=%llu batch=%u in_flight=%u features=",
                   b.target_pages, b.actual_pages, b.list_pages, b.inflating, b.deflating,
                   (unsigned long long)b.reserve_pages, b.batch, b.in_flight);
    const char *separator = "";
    for (const struct virtio_feature_name *n = b.feature_names; n->name; n++)
        if ((b.features >> n->bit) & 1) {
            console_printf("%s%s", separator, n->name);
            separator = ",";
        }
    console_printf("%s inflated_pages=%llu deflated_pages=%llu inflate_requests=%llu "
                   "deflate_requests=%llu oom_pages=%llu discarded_pages=%llu shortfalls=%llu "
                   "reported_pages=%llu stats_updates=%llu ",
                   *separator ? "" : "none", (unsigned long long)s->inflated_pages,
                   (unsigned long long)s->deflated_pages, (unsigned long long)s->inflate_requests,
                   (unsigned long long)s->deflate_requests, (unsigned long long)s->oom_pages,
                   (unsigned long long)s->discarded_pages, (unsigned long long)s->shortfalls, (unsigned long long)b.reported_pages,
                   (unsigned long long)b.stats_updates);
    console_printf("hint=%s hint_rounds=%llu hinted_pages=%llu hint_held_pages=%llu "
                   "hint_early_ends=%llu\n",
                   b.hint_state, (unsigned long long)b.hint.rounds,
                   (unsigned long long)b.hint.hinted_pages, (unsigned long long)b.hint_held_pages,
                   (unsigned long long)b.hint.early_ends);
}

static const struct shell_command commands[] = {
    { "balloon", "[reserve MIB|batch N [K]]", "the balloon: target, list, counters; tuning",
      0, 3, command_balloon },
};

SHELL_FAMILY(shell_balloon_commands, commands);
