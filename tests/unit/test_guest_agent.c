/* Host unit tests for agent/guest_agent*.c: every command's reply shape
 * (read back with the JSON reader), the checks qemu-ga makes on a request, and
 * the framing: pieces of any size, 0xFF flushes, oversized and too-deep
 * requests, garbage. The ops are a fake that records what it is asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/guest_agent.h"

/* ---- the fake ops ------------------------------------------------------- */

struct fake {
    char out[1 << 17];
    size_t out_length;
    int fail_write;
    unsigned writes;
    unsigned suspends;
    const char *suspend_error;
    unsigned shutdowns;
    enum guest_agent_shutdown_mode mode;
    const char *shutdown_error;
    int64_t now;
    unsigned set_times;
    int has_time;
    int64_t ns;
    const char *set_time_error;
    const char *host_name;
    struct guest_agent_os_info os;
    struct guest_agent_timezone zone;
    unsigned vcpus;
    unsigned blocks;
    uint64_t block_size;
};

static struct fake fake;
static struct guest_agent agent;
static size_t read_at; /* how much of fake.out the checks have consumed */

static int fake_write(void *context, const void *bytes, size_t length)
{
    struct fake *f = context;
    assert_ptr_equal(f, &fake);
    assert_true(length > 0);
    if (f->fail_write)
        return -1;
    assert_true(length <= sizeof(f->out) - f->out_length);
    memcpy(f->out + f->out_length, bytes, length);
    f->out_length += length;
    f->writes++;
    return 0;
}

static const char *fake_suspend_disk(void *context)
{
    struct fake *f = context;
    f->suspends++;
    return f->suspend_error;
}

static const char *fake_shutdown(void *context, enum guest_agent_shutdown_mode mode)
{
    struct fake *f = context;
    f->shutdowns++;
    f->mode = mode;
    return f->shutdown_error;
}

static int64_t fake_time_ns(void *context)
{
    return ((struct fake *)context)->now;
}

static const char *fake_set_time(void *context, int has_time, int64_t ns)
{
    struct fake *f = context;
    f->set_times++;
    f->has_time = has_time;
    f->ns = ns;
    return f->set_time_error;
}

static const char *fake_host_name(void *context)
{
    return ((struct fake *)context)->host_name;
}

static void fake_os_info(void *context, struct guest_agent_os_info *info)
{
    *info = ((struct fake *)context)->os;
}

static void fake_timezone(void *context, struct guest_agent_timezone *zone)
{
    *zone = ((struct fake *)context)->zone;
}

static unsigned fake_vcpus(void *context, struct guest_agent_vcpu *vcpus, unsigned max)
{
    struct fake *f = context;
    for (unsigned i = 0; i < f->vcpus && i < max; i++)
        vcpus[i] = (struct guest_agent_vcpu){ .logical_id = i, .online = 1, .can_offline = i > 0 };
    return f->vcpus;
}

static uint64_t fake_memory_block_size(void *context)
{
    return ((struct fake *)context)->block_size;
}

static unsigned fake_memory_blocks(void *context, struct guest_agent_memory_block *blocks,
                                   unsigned max)
{
    struct fake *f = context;
    for (unsigned i = 0; i < f->blocks && i < max; i++)
        blocks[i] = (struct guest_agent_memory_block){ .phys_index = 8 + i, .online = 1 };
    return f->blocks;
}

static const struct guest_agent_ops full_ops = {
    .write = fake_write,
    .suspend_disk = fake_suspend_disk,
    .shutdown = fake_shutdown,
    .time_ns = fake_time_ns,
    .set_time = fake_set_time,
    .host_name = fake_host_name,
    .os_info = fake_os_info,
    .timezone = fake_timezone,
    .vcpus = fake_vcpus,
    .memory_block_size = fake_memory_block_size,
    .memory_blocks = fake_memory_blocks,
};

static const struct guest_agent_ops minimal_ops = { .write = fake_write };

static void start_with(const struct guest_agent_ops *ops)
{
    memset(&fake, 0, sizeof(fake));
    fake.now = 1796153527863814000;
    fake.host_name = "torpor";
    fake.zone = (struct guest_agent_timezone){ .zone = "UTC", .offset = 0 };
    fake.vcpus = 1;
    fake.blocks = 4;
    fake.block_size = 128 << 20;
    fake.os = (struct guest_agent_os_info){
        .kernel_release = "0.1.0", .kernel_version = "0.1.0 (revision abc)", .machine = "x86_64",
        .id = "torpor", .name = "torpor", .pretty_name = "torpor 0.1.0", .version = "0.1.0",
        .version_id = "0.1.0",
    };
    read_at = 0;
    memset(&agent, 0x5a, sizeof(agent)); /* init must set everything it relies on */
    guest_agent_init(&agent, ops, &fake, "0.1.0");
}

static int setup(void **state)
{
    (void)state;
    start_with(&full_ops);
    return 0;
}

static void feed_bytes(const void *bytes, size_t length)
{
    guest_agent_feed(&agent, bytes, length);
}

static void feed(const char *text)
{
    feed_bytes(text, strlen(text));
}

/* ---- reading the replies ------------------------------------------------ */


/* The next reply line (without its "\n"), NUL-terminated in a static copy;
 * fails the test when none is left. *delimited says whether 0xFF led it. */
static const char *next_reply_delimited(int *delimited)
{
    static char line[1 << 17];
    const char *start = fake.out + read_at;
    size_t left = fake.out_length - read_at;
    const char *end = memchr(start, '\n', left);
    if (!end)
        fail_msg("no reply left (%zu bytes unread)", left);
    size_t n = (size_t)(end - start);
    *delimited = n > 0 && (unsigned char)start[0] == GUEST_AGENT_SENTINEL;
    if (*delimited) {
        start++;
        n--;
    }
    memcpy(line, start, n);
    line[n] = 0;
    assert_null(memchr(line, '\n', n));
    assert_null(memchr(line, 0xFF, n));
    read_at = (size_t)(end + 1 - fake.out);
    return line;
}

static const char *next_reply(void)
{
    int delimited;
    const char *line = next_reply_delimited(&delimited);
    if (delimited)
        fail_msg("unexpected sentinel before %s", line);
    return line;
}

static void expect_reply(const char *expected)
{
    const char *line = next_reply();
    if (strcmp(line, expected) != 0)
        fail_msg("reply\n  %s\nexpected\n  %s", line, expected);
}

static void expect_no_more_replies(void)
{
    if (read_at != fake.out_length)
        fail_msg("unexpected output: %.*s", (int)(fake.out_length - read_at), fake.out + read_at);
}

static void forget_output(void)
{
    fake.out_length = 0;
    read_at = 0;
}

static struct json_token tokens[4096];
static struct json_document doc;
static const struct json_limits roomy = { .max_bytes = 1 << 20, .max_depth = JSON_MAX_DEPTH,
                                          .max_string = 1 << 20 };

/* Parses a reply: it must be an object with "return" and nothing but an
 * optional "id" beside it. Returns the index of the return value. */
static size_t parse_return(const char *line)
{
    size_t value, cursor = 0, key, member;
    enum json_error error = json_parse(&doc, line, strlen(line), tokens, 4096, &roomy, NULL);
    if (error != JSON_OK)
        fail_msg("reply is not JSON (%s): %s", json_error_text(error), line);
    assert_int_equal(json_type_of(&doc, 0), JSON_OBJECT);
    if (json_object_get(&doc, 0, "return", &value) != 0)
        fail_msg("no return: %s", line);
    while (json_object_next(&doc, 0, &cursor, &key, &member) == 0)
        assert_true(json_string_equals(&doc, key, "return") || json_string_equals(&doc, key, "id"));
    return value;
}

static size_t member(size_t object, const char *name, enum json_type type)
{
    size_t value;
    if (json_object_get(&doc, object, name, &value) != 0)
        fail_msg("no member %s", name);
    if (json_type_of(&doc, value) != type &&
        !(type == JSON_TRUE && json_type_of(&doc, value) == JSON_FALSE))
        fail_msg("member %s has type %d, expected %d", name, json_type_of(&doc, value), type);
    return value;
}

static int member_count(size_t object)
{
    return (int)doc.tokens[object].count;
}

static const char *member_string(size_t object, const char *name)
{
    static char text[256];
    size_t length;
    assert_int_equal(json_get_string(&doc, member(object, name, JSON_STRING), text, sizeof(text),
                                     &length), 0);
    return text;
}

static int64_t member_int(size_t object, const char *name)
{
    int64_t value;
    assert_int_equal(json_get_int64(&doc, member(object, name, JSON_NUMBER), &value), 0);
    return value;
}

static int member_bool(size_t object, const char *name)
{
    int value;
    assert_int_equal(json_get_bool(&doc, member(object, name, JSON_TRUE), &value), 0);
    return value;
}

/* ---- the commands ------------------------------------------------------- */

static void test_ping_and_sync_reply_exactly_as_qemu_ga(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-ping\"}\n");
    expect_reply("{\"return\": {}}");
    feed("{\"execute\":\"guest-ping\",\"arguments\":{}}");
    expect_reply("{\"return\": {}}");
    feed("{\"execute\":\"guest-sync\", \"arguments\":{\"id\":1796153527863}}\n"); /* libvirt's */
    expect_reply("{\"return\": 1796153527863}");
    feed("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":9223372036854775807}}");
    expect_reply("{\"return\": 9223372036854775807}");
    feed("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-9223372036854775808}}");
    expect_reply("{\"return\": -9223372036854775808}");
    feed("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-0}}");
    expect_reply("{\"return\": 0}");
    expect_no_more_replies();
}

static void test_sync_delimited_puts_the_sentinel_first(void **state)
{
    (void)state;
    int delimited;
    feed("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":4611686018427387904}}\n");
    /* the 0xFF itself is a stray byte to qemu-ga, and answered as one */
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}");
    const char *line = next_reply_delimited(&delimited);
    assert_true(delimited);
    assert_string_equal(line, "{\"return\": 4611686018427387904}");
    expect_no_more_replies();
    assert_int_equal(fake.out[fake.out_length - 1], '\n');

    /* only a successful delimited sync gets the sentinel */
    feed("{\"execute\":\"guest-sync-delimited\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'id' is missing\"}}");
    feed("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5}}");
    expect_reply("{\"return\": 5}");
    assert_int_equal(agent.stats.sentinels, 1);
    assert_int_equal(agent.stats.errors, 1);
}

static const char *const all_commands[] = {
    "guest-sync-delimited", "guest-sync", "guest-ping", "guest-info", "guest-get-time",
    "guest-set-time", "guest-shutdown", "guest-suspend-disk", "guest-get-vcpus",
    "guest-get-memory-blocks", "guest-get-memory-block-info", "guest-get-host-name",
    "guest-get-timezone", "guest-get-osinfo",
};
#define ALL_COMMANDS (sizeof(all_commands) / sizeof(all_commands[0]))

/* Checks guest-info's reply; enabled_mask bit i: all_commands[i] enabled. */
static void check_info(const char *line, unsigned enabled_mask)
{
    size_t info = parse_return(line);
    assert_int_equal(json_type_of(&doc, info), JSON_OBJECT);
    assert_int_equal(member_count(info), 2);
    assert_string_equal(member_string(info, "version"), "0.1.0");
    size_t list = member(info, "supported_commands", JSON_ARRAY);
    assert_int_equal(doc.tokens[list].count, ALL_COMMANDS);
    unsigned seen = 0;
    for (size_t entry = list + 1; entry < doc.tokens[list].end; entry = json_skip(&doc, entry)) {
        assert_int_equal(json_type_of(&doc, entry), JSON_OBJECT);
        assert_int_equal(member_count(entry), 3);
        const char *name = member_string(entry, "name");
        size_t i = 0;
        while (i < ALL_COMMANDS && strcmp(all_commands[i], name) != 0)
            i++;
        if (i == ALL_COMMANDS)
            fail_msg("unknown command %s listed", name);
        assert_false(seen & 1u << i);
        seen |= 1u << i;
        assert_int_equal(member_bool(entry, "enabled"), !!(enabled_mask & 1u << i));
        int quiet = strcmp(name, "guest-shutdown") == 0 || strcmp(name, "guest-suspend-disk") == 0;
        assert_int_equal(member_bool(entry, "success-response"), !quiet);
    }
    assert_int_equal(seen, (1u << ALL_COMMANDS) - 1);
}

static void test_info_lists_every_command(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-info\"}");
    const char *line = next_reply();
    check_info(line, (1u << ALL_COMMANDS) - 1);
    /* qemu-ga's member order, byte for byte, for the first entry */
    assert_non_null(strstr(line, "{\"return\": {\"version\": \"0.1.0\", \"supported_commands\": "
                                 "[{\"enabled\": true, \"name\": \"guest-sync-delimited\", "
                                 "\"success-response\": true}, "));
    assert_non_null(strstr(line, "{\"enabled\": true, \"name\": \"guest-shutdown\", "
                                 "\"success-response\": false}"));
}

static void test_commands_without_an_op_are_disabled(void **state)
{
    (void)state;
    start_with(&minimal_ops);
    feed("{\"execute\":\"guest-info\"}");
    check_info(next_reply(), 0xf); /* sync-delimited, sync, ping, info */
    for (size_t i = 4; i < ALL_COMMANDS; i++) {
        char request[128], expected[256];
        snprintf(request, sizeof(request), "{\"execute\":\"%s\",\"id\":\"x\"}", all_commands[i]);
        snprintf(expected, sizeof(expected),
                 "{\"id\": \"x\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
                 "\"Command %s has been disabled\"}}", all_commands[i]);
        feed(request);
        expect_reply(expected);
    }
    feed("{\"execute\":\"guest-ping\"}");
    expect_reply("{\"return\": {}}");
}

static void test_get_time(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-get-time\"}");
    expect_reply("{\"return\": 1796153527863814000}");
    fake.now = -5;
    feed("{\"execute\":\"guest-get-time\",\"arguments\":{}}");
    assert_int_equal(json_get_int64(&doc, parse_return(next_reply()), &fake.ns), 0);
    assert_int_equal(fake.ns, -5);
}

static void test_set_time_with_and_without_a_time(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":1700000000123456789}}");
    expect_reply("{\"return\": {}}");
    assert_int_equal(fake.set_times, 1);
    assert_int_equal(fake.has_time, 1);
    assert_int_equal(fake.ns, 1700000000123456789);

    feed("{\"execute\":\"guest-set-time\"}"); /* from the hardware clock, as hwclock -s */
    expect_reply("{\"return\": {}}");
    assert_int_equal(fake.set_times, 2);
    assert_int_equal(fake.has_time, 0);

    feed("{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":0}}");
    expect_reply("{\"return\": {}}");
    assert_int_equal(fake.has_time, 1);
    assert_int_equal(fake.ns, 0);

    /* qemu-ga takes [1970, 2070) only */
    const char *bad[] = { "-1", "3155760000000000000", "9223372036854775807" };
    for (int i = 0; i < 3; i++) {
        char request[128];
        snprintf(request, sizeof(request),
                 "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":%s}}", bad[i]);
        feed(request);
        expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid time\"}}");
    }
    feed("{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":3155759999999999999}}");
    expect_reply("{\"return\": {}}");
    assert_int_equal(fake.set_times, 4);

    fake.set_time_error = "no hardware clock";
    feed("{\"execute\":\"guest-set-time\",\"id\":1}");
    expect_reply("{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"no hardware clock\"}}");
    feed("{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":1.5e18}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid parameter type for 'time', expected: integer\"}}");
    feed("{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":null}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid parameter type for 'time', expected: integer\"}}");
    assert_int_equal(fake.set_times, 5);
    expect_no_more_replies();
}

static void test_shutdown_modes_and_no_reply_on_success(void **state)
{
    (void)state;
    const char *modes[] = { "powerdown", "reboot", "halt" };
    const enum guest_agent_shutdown_mode values[] = {
        GUEST_AGENT_SHUTDOWN_POWERDOWN, GUEST_AGENT_SHUTDOWN_REBOOT, GUEST_AGENT_SHUTDOWN_HALT,
    };
    for (int i = 0; i < 3; i++) {
        char request[128];
        snprintf(request, sizeof(request),
                 "{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"%s\"}}", modes[i]);
        fake.mode = 99;
        feed(request);
        assert_int_equal(fake.shutdowns, i + 1);
        assert_int_equal(fake.mode, values[i]);
    }
    fake.mode = 99;
    feed("{\"execute\":\"guest-shutdown\"}");
    assert_int_equal(fake.mode, GUEST_AGENT_SHUTDOWN_POWERDOWN);
    expect_no_more_replies();

    /* the rest of the bytes came from a host that is gone */
    feed("{\"execute\":\"guest-shutdown\"}{\"execute\":\"guest-ping\"}{\"execute\":\"gu");
    assert_int_equal(fake.shutdowns, 5);
    expect_no_more_replies();
    feed("{\"execute\":\"guest-ping\"}"); /* and the next bytes start afresh */
    expect_reply("{\"return\": {}}");

    feed("{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"bogus\"}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"mode is invalid (valid values are: halt|powerdown|reboot\"}}");
    feed("{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"halt\\u0000\"}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"mode is invalid (valid values are: halt|powerdown|reboot\"}}");
    feed("{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":5}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid parameter type for 'mode', expected: string\"}}");
    assert_int_equal(fake.shutdowns, 5);

    fake.shutdown_error = "ACPI S5 is not available";
    feed("{\"execute\":\"guest-shutdown\",\"id\":\"s1\"}{\"execute\":\"guest-ping\"}");
    expect_reply("{\"id\": \"s1\", \"error\": {\"class\": \"GenericError\", \"desc\": \"ACPI S5 is not available\"}}");
    expect_reply("{\"return\": {}}");
    assert_int_equal(fake.shutdowns, 6);
    expect_no_more_replies();
}

static void test_suspend_disk_is_quiet_on_success_and_reports_failure(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-suspend-disk\"}\n{\"execute\":\"guest-ping\"}");
    assert_int_equal(fake.suspends, 1);
    expect_no_more_replies(); /* resumed: the ping was the old host's */
    feed("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":77}}");
    expect_reply("{\"return\": 77}");

    fake.suspend_error = "no torpor-swap disk";
    feed("{\"execute\":\"guest-suspend-disk\"}{\"execute\":\"guest-ping\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no torpor-swap disk\"}}");
    expect_reply("{\"return\": {}}");
    assert_int_equal(fake.suspends, 2);

    feed("{\"execute\":\"guest-suspend-disk\",\"arguments\":{\"x\":1}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'x' is unexpected\"}}");
    assert_int_equal(fake.suspends, 2);
    expect_no_more_replies();
}

static void test_os_info_leaves_out_what_is_not_known(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-get-osinfo\"}");
    /* qemu-ga's member order (its QDict's hash order) */
    expect_reply("{\"return\": {\"name\": \"torpor\", \"kernel-release\": \"0.1.0\", \"version\": "
                 "\"0.1.0\", \"pretty-name\": \"torpor 0.1.0\", \"version-id\": \"0.1.0\", "
                 "\"kernel-version\": \"0.1.0 (revision abc)\", \"machine\": \"x86_64\", \"id\": "
                 "\"torpor\"}}");
    fake.os = (struct guest_agent_os_info){ .variant = "v \"q\"", .variant_id = "vid" };
    feed("{\"execute\":\"guest-get-osinfo\"}");
    size_t info = parse_return(next_reply());
    assert_int_equal(member_count(info), 2);
    assert_string_equal(member_string(info, "variant"), "v \"q\"");
    assert_string_equal(member_string(info, "variant-id"), "vid");
    fake.os = (struct guest_agent_os_info){ 0 };
    feed("{\"execute\":\"guest-get-osinfo\"}");
    expect_reply("{\"return\": {}}");
}

static void test_host_name_and_timezone(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-get-host-name\"}");
    expect_reply("{\"return\": {\"host-name\": \"torpor\"}}");
    fake.host_name = NULL;
    feed("{\"execute\":\"guest-get-host-name\"}");
    expect_reply("{\"return\": {\"host-name\": \"\"}}");
    feed("{\"execute\":\"guest-get-timezone\"}");
    expect_reply("{\"return\": {\"zone\": \"UTC\", \"offset\": 0}}");
    fake.zone = (struct guest_agent_timezone){ .zone = NULL, .offset = -18000 };
    feed("{\"execute\":\"guest-get-timezone\"}");
    expect_reply("{\"return\": {\"offset\": -18000}}");
}

static void test_vcpus_and_memory_blocks(void **state)
{
    (void)state;
    fake.vcpus = 2;
    feed("{\"execute\":\"guest-get-vcpus\"}");
    expect_reply("{\"return\": [{\"online\": true, \"can-offline\": false, \"logical-id\": 0}, "
                 "{\"online\": true, \"can-offline\": true, \"logical-id\": 1}]}");
    fake.vcpus = GUEST_AGENT_MAX_VCPUS;
    feed("{\"execute\":\"guest-get-vcpus\"}");
    size_t list = parse_return(next_reply());
    assert_int_equal(doc.tokens[list].count, GUEST_AGENT_MAX_VCPUS);
    size_t last = list + 1;
    for (size_t next = last; next < doc.tokens[list].end; next = json_skip(&doc, next))
        last = next;
    assert_int_equal(member_int(last, "logical-id"), GUEST_AGENT_MAX_VCPUS - 1);
    fake.vcpus = GUEST_AGENT_MAX_VCPUS + 1;
    feed("{\"execute\":\"guest-get-vcpus\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"too many vcpus to list\"}}");
    fake.vcpus = 0;
    feed("{\"execute\":\"guest-get-vcpus\"}");
    expect_reply("{\"return\": []}");

    feed("{\"execute\":\"guest-get-memory-block-info\"}");
    expect_reply("{\"return\": {\"size\": 134217728}}");
    fake.block_size = UINT64_MAX;
    feed("{\"execute\":\"guest-get-memory-block-info\"}");
    expect_reply("{\"return\": {\"size\": 18446744073709551615}}");
    fake.blocks = 2;
    feed("{\"execute\":\"guest-get-memory-blocks\"}");
    expect_reply("{\"return\": [{\"online\": true, \"can-offline\": false, \"phys-index\": 8}, "
                 "{\"online\": true, \"can-offline\": false, \"phys-index\": 9}]}");
    fake.blocks = GUEST_AGENT_MAX_MEMORY_BLOCKS;
    feed("{\"execute\":\"guest-get-memory-blocks\"}");
    list = parse_return(next_reply());
    assert_int_equal(doc.tokens[list].count, GUEST_AGENT_MAX_MEMORY_BLOCKS);
    fake.blocks = GUEST_AGENT_MAX_MEMORY_BLOCKS + 1;
    feed("{\"execute\":\"guest-get-memory-blocks\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"too many memory blocks to list\"}}");
    expect_no_more_replies();
}

static void test_every_reply_parses_and_ends_in_one_newline(void **state)
{
    (void)state;
    for (size_t i = 0; i < ALL_COMMANDS; i++) {
        char request[160];
        if (strcmp(all_commands[i], "guest-shutdown") == 0 ||
            strcmp(all_commands[i], "guest-suspend-disk") == 0)
            continue;
        int sync = strncmp(all_commands[i], "guest-sync", 10) == 0;
        snprintf(request, sizeof(request), "{\"execute\":\"%s\"%s,\"id\":{\"n\":%zu}}",
                 all_commands[i], sync ? ",\"arguments\":{\"id\":3}" : "", i);
        forget_output();
        feed(request);
        int delimited;
        const char *line = next_reply_delimited(&delimited);
        assert_int_equal(delimited, strcmp(all_commands[i], "guest-sync-delimited") == 0);
        parse_return(line);
        size_t id = member(0, "id", JSON_OBJECT);
        assert_int_equal(member_int(id, "n"), (int64_t)i);
        expect_no_more_replies();
        /* the id comes last in a success, as qemu-ga prints it */
        char tail[32];
        snprintf(tail, sizeof(tail), ", \"id\": {\"n\": %zu}}", i);
        assert_string_equal(line + strlen(line) - strlen(tail), tail);
    }
}

/* ---- what qemu-ga's dispatcher checks ----------------------------------- */

static void test_unknown_commands_are_command_not_found(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-nope\"}");
    expect_reply("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-nope has not been found\"}}");
    feed("{\"execute\":\"guest-file-open\",\"id\":7,\"arguments\":{\"path\":\"/etc/shadow\"}}");
    expect_reply("{\"id\": 7, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-file-open has not been found\"}}");
    feed("{\"execute\":\"guest-ping\\u0000\"}");
    expect_reply("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-ping\\u0000 has not been found\"}}");
    feed("{\"execute\":\"\"}");
    expect_reply("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command  has not been found\"}}");
    feed("{\"execute\":\"a/\xc3\xa9<>\\\"\\t\"}");
    expect_reply("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command a/\\u00E9<>\\\"\\t has not been found\"}}");
    feed("{\"execute\":\"guest-\\u0070ing\"}"); /* an escaped name is the same name */
    expect_reply("{\"return\": {}}");
    assert_int_equal(agent.stats.commands, 6);
    assert_int_equal(agent.stats.errors, 5);
}

static void test_request_members_are_checked_as_qmp_dispatch_does(void **state)
{
    (void)state;
    const char *cases[][2] = {
        { "42 ", "QMP input must be a JSON object" },
        { "\"x\"", "QMP input must be a JSON object" },
        { "[{\"execute\":\"guest-ping\"}]", "QMP input must be a JSON object" },
        { "true\n", "QMP input must be a JSON object" },
        { "{\"execute\":5}", "QMP input member 'execute' must be a string" },
        { "{\"execute\":\"guest-ping\",\"arguments\":[]}", "QMP input member 'arguments' must be an object" },
        { "{\"execute\":\"guest-ping\",\"arguments\":null}", "QMP input member 'arguments' must be an object" },
        { "{\"execute\":\"guest-nope\",\"arguments\":5}", "QMP input member 'arguments' must be an object" },
        { "{\"arguments\":{}}", "QMP input lacks member 'execute'" },
        { "{}", "QMP input lacks member 'execute'" },
        { "{\"execute\":\"guest-ping\",\"foo\":1}", "QMP input member 'foo' is unexpected" },
        { "{\"exec-oob\":\"guest-ping\"}", "QMP input member 'exec-oob' is unexpected" },
        { "{\"execute\":\"guest-ping\",\"control\":{}}", "QMP input member 'control' is unexpected" },
        { "{\"execute\":\"guest-ping\",\"execute\":\"guest-info\"}", "JSON parse error, duplicate key" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5,\"id\":6}}", "JSON parse error, duplicate key" },
        { "{\"execute\" \"guest-ping\"}", "JSON parse error, missing : in object pair" },
        { "{\"execute\":\"guest-ping\" \"x\"}", "JSON parse error, expected separator or end of container" },
        { "hello\n", "JSON parse error, invalid keyword 'hello'" },
        { "{\"execute\":True}", "JSON parse error, invalid keyword 'True'" },
        { "}", "JSON parse error, expecting value" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char expected[256];
        snprintf(expected, sizeof(expected),
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}}", cases[i][1]);
        forget_output();
        feed(cases[i][0]);
        expect_reply(expected);
        expect_no_more_replies();
    }
    /* with an id, the error carries it first */
    forget_output();
    feed("{\"id\":1,\"execute\":\"guest-ping\",\"foo\":2}{\"execute\":5,\"id\":[1,{\"a\":null}]}");
    expect_reply("{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'foo' is unexpected\"}}");
    expect_reply("{\"id\": [1, {\"a\": null}], \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' must be a string\"}}");
}

static void test_arguments_are_checked_as_the_qapi_visitor_does(void **state)
{
    (void)state;
    const char *cases[][2] = {
        { "{\"execute\":\"guest-sync\"}", "Parameter 'id' is missing" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{}}", "Parameter 'id' is missing" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":\"abc\"}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1.5}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1.0}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1e3}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":null}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":9223372036854775808}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-9223372036854775809}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":18446744073709551615}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":[1]}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1,\"extra\":2}}", "Parameter 'extra' is unexpected" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":\"a\",\"x\":1}}", "Invalid parameter type for 'id', expected: integer" },
        { "{\"execute\":\"guest-ping\",\"arguments\":{\"x\":1}}", "Parameter 'x' is unexpected" },
        { "{\"execute\":\"guest-ping\",\"arguments\":{\"\\u00e9\":1}}", "Parameter '\\u00E9' is unexpected" },
        { "{\"execute\":\"guest-info\",\"arguments\":{\"id\":1}}", "Parameter 'id' is unexpected" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char expected[256];
        snprintf(expected, sizeof(expected),
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}}", cases[i][1]);
        forget_output();
        feed(cases[i][0]);
        expect_reply(expected);
        expect_no_more_replies();
    }
    forget_output();
    feed("{\"execute\":\"guest-sync\",\"id\":1}");
    expect_reply("{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'id' is missing\"}}");
}

static void test_the_id_is_echoed_whatever_it_is(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-ping\",\"id\":\"abc\"}");
    expect_reply("{\"return\": {}, \"id\": \"abc\"}");
    feed("{\"execute\":\"guest-ping\",\"id\":null}");
    expect_reply("{\"return\": {}, \"id\": null}");
    feed("{\"id\":{\"b\":\"\\u00e9\\/x\",\"a\":1.50e+3},\"execute\":\"guest-ping\"}");
    expect_reply("{\"return\": {}, \"id\": {\"b\": \"\\u00E9/x\", \"a\": 1.50e+3}}");
    feed("{\"execute\":\"guest-ping\",\"id\":\"\\ud83d\\ude00\\u0001\\u007f\"}");
    expect_reply("{\"return\": {}, \"id\": \"\\uD83D\\uDE00\\u0001\\u007F\"}");
    feed("{\"execute\":\"guest-ping\",\"id\":[[[[[[[[[[[[[[1]]]]]]]]]]]]]]}"); /* depth 15 in all */
    expect_reply("{\"return\": {}, \"id\": [[[[[[[[[[[[[[1]]]]]]]]]]]]]]}");
}

/* ---- framing ------------------------------------------------------------ */

/* A session with every kind of event in it; replies are compared whole. */
static const char script[] =
    "{\"execute\":\"guest-sync\", \"arguments\":{\"id\":123456789012}}\n"
    "{\"execute\":\"guest-ping\"}{\"execute\":\"guest-ping\",\"id\":2}\r\n"
    "{\"execute\":\n  \"guest-info\"\n}\n"
    "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":-1}}\n"
    "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":\xff{\"execute\":\"guest-get-time\"}"
    "{\"execute\":\"guest-nope\"} 42 [1] {\"execute\":\"bad\\q\"}\n"
    "{\"execute\":\"a\x01\x62\"}\n{\"execute\":\"guest-get-osinfo\",\"id\":\"\xc3\xa9\\\"}\"}"
    "garbage{\"execute\":\"guest-get-vcpus\"}";

static void run_script_in_two_pieces(size_t split, char *output, size_t *length)
{
    start_with(&full_ops);
    feed_bytes(script, split);
    feed_bytes(script + split, sizeof(script) - 1 - split);
    memcpy(output, fake.out, fake.out_length);
    *length = fake.out_length;
}

static void test_requests_split_at_every_byte_boundary(void **state)
{
    (void)state;
    static char whole[1 << 16], pieces[1 << 16];
    size_t whole_length, length;

    run_script_in_two_pieces(sizeof(script) - 1, whole, &whole_length);
    /* what the script should give, reply by reply */
    read_at = 0;
    expect_reply("{\"return\": 123456789012}");
    expect_reply("{\"return\": {}}");
    expect_reply("{\"return\": {}, \"id\": 2}");
    check_info(next_reply(), (1u << ALL_COMMANDS) - 1);
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}");
    int delimited;
    assert_string_equal(next_reply_delimited(&delimited), "{\"return\": -1}");
    assert_true(delimited);
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}");
    expect_reply("{\"return\": 1796153527863814000}");
    expect_reply("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-nope has not been found\"}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid escape sequence in string\"}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\u0001'\"}}");
    size_t info = parse_return(next_reply());
    assert_int_equal(json_type_of(&doc, info), JSON_OBJECT);
    assert_true(json_string_equals(&doc, member(0, "id", JSON_STRING), "\xc3\xa9\"}"));
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'garbage'\"}}");
    expect_reply("{\"return\": [{\"online\": true, \"can-offline\": false, \"logical-id\": 0}]}");
    expect_no_more_replies();
    assert_int_equal(agent.stats.sentinels, 2);
    assert_int_equal(agent.stats.stray_bytes, 1);
    assert_int_equal(agent.stats.commands, 13);
    assert_int_equal(agent.stats.errors, 6);
    assert_int_equal(agent.stats.bytes_in, sizeof(script) - 1);
    assert_int_equal(agent.stats.bytes_out, whole_length);

    for (size_t split = 0; split < sizeof(script); split++) {
        run_script_in_two_pieces(split, pieces, &length);
        if (length != whole_length || memcmp(pieces, whole, length) != 0)
            fail_msg("split at %zu gives other replies", split);
    }

    /* and one byte at a time */
    start_with(&full_ops);
    for (size_t i = 0; i < sizeof(script) - 1; i++)
        feed_bytes(script + i, 1);
    assert_int_equal(fake.out_length, whole_length);
    assert_memory_equal(fake.out, whole, whole_length);
}

static void test_a_sentinel_flushes_a_partial_request_anywhere(void **state)
{
    (void)state;
    const char *partials[] = {
        "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":",
        "{\"execute\":\"gu",            /* inside a string */
        "{\"execute\":\"gu\\",          /* inside an escape */
        "[[[[",
        "-12",                          /* a bare number */
        "\"abc",                        /* a bare string */
        "tru",
        "",
    };
    for (size_t i = 0; i < sizeof(partials) / sizeof(partials[0]); i++) {
        start_with(&full_ops);
        read_at = 0;
        feed(partials[i]);
        expect_no_more_replies();
        feed("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":9}}");
        expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}");
        int delimited;
        assert_string_equal(next_reply_delimited(&delimited), "{\"return\": 9}");
        assert_true(delimited);
        expect_no_more_replies();
        assert_int_equal(agent.stats.sentinels, 1);
        assert_int_equal(agent.stats.errors, 0);
    }
    /* after the sentinel, bytes up to the next '{' or line end are skipped */
    start_with(&full_ops);
    read_at = 0;
    feed("\xff" "stale tail\"]} \n{\"execute\":\"guest-ping\"}\xff}],x{\"execute\":\"guest-ping\"}");
    next_reply();
    expect_reply("{\"return\": {}}");
    next_reply();
    expect_reply("{\"return\": {}}");
    expect_no_more_replies();
}

static void test_control_bytes_are_stray_and_the_agent_recovers(void **state)
{
    (void)state;
    feed("\x01{\"execute\":\"guest-ping\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\u0001'\"}}");
    expect_reply("{\"return\": {}}");
    feed("{\"execute\":\"guest-\nping\"}\n{\"execute\":\"guest-ping\"}"); /* a raw newline in a string */
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\n'\"}}");
    expect_reply("{\"return\": {}}");
    feed("{\"execute\":\"guest-ping\"\x7f}#{\"execute\":\"guest-ping\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, expected separator or end of container\"}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '#'\"}}");
    expect_reply("{\"return\": {}}");
    feed("{\"execute\":\xc3\xa9}\n{\"execute\":\"guest-ping\"}"); /* UTF-8 outside a string */
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}");
    expect_reply("{\"return\": {}}");
    feed("{'execute':'guest-ping'}"); /* qemu-ga's single quotes: not JSON, refused */
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, key is not a string in object\"}}");
    feed("\x02\x03\t\x04");
    for (int i = 0; i < 3; i++)
        next_reply();
    expect_no_more_replies();
    assert_int_equal(agent.stats.stray_bytes, 7);
}

static void test_bad_strings_in_requests_get_parse_errors(void **state)
{
    (void)state;
    const char *cases[][2] = {
        { "{\"execute\":\"\xc3\x28\"}", "invalid UTF-8 sequence in string" },
        { "{\"execute\":\"\xc0\x80\"}", "invalid UTF-8 sequence in string" },
        { "{\"execute\":\"\xed\xa0\x80\"}", "invalid UTF-8 sequence in string" },
        { "{\"execute\":\"\xe9\"}", "invalid UTF-8 sequence in string" },
        { "{\"execute\":\"guest-ping\\x\"}", "invalid escape sequence in string" },
        { "{\"execute\":\"\\ud800\"}", "invalid \\\\u escape in string" },
        { "{\"execute\":\"\\udc00\"}", "invalid \\\\u escape in string" },
        { "{\"execute\":\"\\u12g4\"}", "invalid \\\\u escape in string" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":01}}", "invalid number" },
        { "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-}}", "invalid number" },
        { "{\"execute\":\"guest-ping\",}", "key is not a string in object" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char expected[256];
        snprintf(expected, sizeof(expected),
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, %s\"}}",
                 cases[i][1]);
        forget_output();
        feed(cases[i][0]);
        expect_reply(expected);
        feed("{\"execute\":\"guest-ping\"}");
        expect_reply("{\"return\": {}}");
        expect_no_more_replies();
    }
}

/* A guest-ping whose string id makes the request exactly length bytes. */
static char *ping_of_length(size_t length)
{
    const char *head = "{\"execute\":\"guest-ping\",\"id\":\"", *tail = "\"}";
    size_t fixed = strlen(head) + strlen(tail);
    char *text = malloc(length + 1);
    assert_non_null(text);
    assert_true(length >= fixed);
    memcpy(text, head, strlen(head));
    memset(text + strlen(head), 'p', length - fixed);
    memcpy(text + length - strlen(tail), tail, strlen(tail) + 1);
    return text;
}

static void test_oversized_requests_are_answered_once_and_skipped(void **state)
{
    (void)state;
    char *fits = ping_of_length(GUEST_AGENT_MAX_REQUEST);
    feed(fits);
    size_t id = parse_return(next_reply());
    (void)id;
    assert_int_equal(doc.tokens[member(0, "id", JSON_STRING)].count,
                     GUEST_AGENT_MAX_REQUEST - strlen("{\"execute\":\"guest-ping\",\"id\":\"\"}"));
    free(fits);

    char *big = ping_of_length(GUEST_AGENT_MAX_REQUEST + 1);
    feed(big);
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token size limit exceeded\"}}");
    expect_no_more_replies();
    feed("{\"execute\":\"guest-ping\"}");
    expect_reply("{\"return\": {}}");
    free(big);

    /* a megabyte in one object, given in pieces, with braces in its strings */
    feed("{\"execute\":\"guest-ping\",\"id\":[");
    for (int i = 0; i < 20000; i++)
        feed("\"}}}]]]\\\"{\", {\"a\": [1, 2, {}]}, ");
    feed("0]}{\"execute\":\"guest-sync\",\"arguments\":{\"id\":31}}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token size limit exceeded\"}}");
    expect_reply("{\"return\": 31}");
    expect_no_more_replies();

    /* an endless one is cut off by a sentinel */
    feed("\"");
    for (int i = 0; i < 2000; i++)
        feed("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    feed("\xff{\"execute\":\"guest-ping\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token size limit exceeded\"}}");
    next_reply(); /* the sentinel's */
    expect_reply("{\"return\": {}}");
    expect_no_more_replies();
    assert_int_equal(agent.stats.oversized, 3);
    assert_true(agent.stats.errors >= 3);
}

static void test_a_depth_bomb_is_answered_once_and_skipped(void **state)
{
    (void)state;
    char *text = malloc(2000002);
    assert_non_null(text);
    memset(text, '[', 1000000);
    memset(text + 1000000, ']', 1000000);
    text[2000000] = 0;
    feed(text);
    feed("{\"execute\":\"guest-ping\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON nesting depth limit exceeded\"}}");
    expect_reply("{\"return\": {}}");
    expect_no_more_replies();

    /* the limit is exact: 16 levels in all are a request, 17 are not */
    for (int levels = GUEST_AGENT_MAX_DEPTH; levels <= GUEST_AGENT_MAX_DEPTH + 1; levels++) {
        char request[256], id[128], expected[256];
        size_t n = 0;
        for (int i = 0; i < levels - 2; i++)
            id[n++] = '[';
        id[n++] = '{';
        id[n++] = '}';
        for (int i = 0; i < levels - 2; i++)
            id[n++] = ']';
        id[n] = 0;
        snprintf(request, sizeof(request), "{\"execute\":\"guest-ping\",\"id\":%s}", id);
        feed(request);
        if (levels == GUEST_AGENT_MAX_DEPTH) {
            snprintf(expected, sizeof(expected), "{\"return\": {}, \"id\": %s}", id);
            expect_reply(expected);
        } else {
            expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON nesting depth limit exceeded\"}}");
        }
    }
    expect_no_more_replies();

    /* a bomb that never closes is cut off by a sentinel */
    text[1000000] = 0;
    feed(text);
    feed("\xff{\"execute\":\"guest-ping\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON nesting depth limit exceeded\"}}");
    next_reply();
    expect_reply("{\"return\": {}}");
    expect_no_more_replies();
    assert_int_equal(agent.stats.oversized, 3);
    free(text);
}

static void test_too_many_tokens_is_refused(void **state)
{
    (void)state;
    static char text[GUEST_AGENT_MAX_REQUEST];
    size_t n = (size_t)snprintf(text, sizeof(text), "{\"execute\":\"guest-ping\",\"id\":[");
    for (int i = 0; i < GUEST_AGENT_MAX_TOKENS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s0", i ? "," : "");
    snprintf(text + n, sizeof(text) - n, "]}");
    feed(text);
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token count limit exceeded\"}}");
    expect_no_more_replies();
}

static void test_reset_forgets_a_partial_request(void **state)
{
    (void)state;
    feed("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":");
    guest_agent_reset(&agent);
    feed("{\"execute\":\"guest-ping\"}");
    expect_reply("{\"return\": {}}");
    expect_no_more_replies();
    /* without the reset the two would have run together */
    start_with(&full_ops);
    read_at = 0;
    feed("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":");
    feed("{\"execute\":\"guest-ping\"}");
    expect_no_more_replies();
}

static void test_write_failures_and_oversized_replies_are_counted(void **state)
{
    (void)state;
    fake.fail_write = 1;
    feed("{\"execute\":\"guest-ping\"}{\"execute\":\"guest-nope\"}");
    assert_int_equal(agent.stats.write_failures, 2);
    assert_int_equal(agent.stats.bytes_out, 0);
    assert_int_equal(agent.stats.commands, 2);
    fake.fail_write = 0;

    static char name[GUEST_AGENT_MAX_REPLY];
    memset(name, 'h', sizeof(name) - 1);
    fake.host_name = name;
    feed("{\"execute\":\"guest-get-host-name\"}");
    expect_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": \"the reply does not fit the agent's buffer\"}}");
    name[GUEST_AGENT_MAX_REPLY - 40] = 0; /* {"return": {"host-name": "..."}}\n is 31 more */
    feed("{\"execute\":\"guest-get-host-name\"}");
    size_t value = parse_return(next_reply());
    assert_int_equal(doc.tokens[member(value, "host-name", JSON_STRING)].count,
                     GUEST_AGENT_MAX_REPLY - 40);
    expect_no_more_replies();
    assert_int_equal(agent.stats.bytes_out, fake.out_length);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ping_and_sync_reply_exactly_as_qemu_ga, setup),
        cmocka_unit_test_setup(test_sync_delimited_puts_the_sentinel_first, setup),
        cmocka_unit_test_setup(test_info_lists_every_command, setup),
        cmocka_unit_test_setup(test_commands_without_an_op_are_disabled, setup),
        cmocka_unit_test_setup(test_get_time, setup),
        cmocka_unit_test_setup(test_set_time_with_and_without_a_time, setup),
        cmocka_unit_test_setup(test_shutdown_modes_and_no_reply_on_success, setup),
        cmocka_unit_test_setup(test_suspend_disk_is_quiet_on_success_and_reports_failure, setup),
        cmocka_unit_test_setup(test_os_info_leaves_out_what_is_not_known, setup),
        cmocka_unit_test_setup(test_host_name_and_timezone, setup),
        cmocka_unit_test_setup(test_vcpus_and_memory_blocks, setup),
        cmocka_unit_test_setup(test_every_reply_parses_and_ends_in_one_newline, setup),
        cmocka_unit_test_setup(test_unknown_commands_are_command_not_found, setup),
        cmocka_unit_test_setup(test_request_members_are_checked_as_qmp_dispatch_does, setup),
        cmocka_unit_test_setup(test_arguments_are_checked_as_the_qapi_visitor_does, setup),
        cmocka_unit_test_setup(test_the_id_is_echoed_whatever_it_is, setup),
        cmocka_unit_test_setup(test_requests_split_at_every_byte_boundary, setup),
        cmocka_unit_test_setup(test_a_sentinel_flushes_a_partial_request_anywhere, setup),
        cmocka_unit_test_setup(test_control_bytes_are_stray_and_the_agent_recovers, setup),
        cmocka_unit_test_setup(test_bad_strings_in_requests_get_parse_errors, setup),
        cmocka_unit_test_setup(test_oversized_requests_are_answered_once_and_skipped, setup),
        cmocka_unit_test_setup(test_a_depth_bomb_is_answered_once_and_skipped, setup),
        cmocka_unit_test_setup(test_too_many_tokens_is_refused, setup),
        cmocka_unit_test_setup(test_reset_forgets_a_partial_request, setup),
        cmocka_unit_test_setup(test_write_failures_and_oversized_replies_are_counted, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
