/*
 * libFuzzer target for the guest agent's input path: agent/guest_agent*.c
 * frame and answer the bytes a host sends, agent/json_parse.c reads them.
 *
 * The input is fed to an agent three times: whole, in pieces whose sizes
 * come from the input itself, and (when it asks for a shutdown or a
 * hibernation) in pieces with power ops that succeed, which end a feed. The input is also parsed directly as one JSON text.
 * Properties, beyond no ASan/UBSan report:
 *   - the same bytes give the same replies however they are cut;
 *   - every reply is one line of printable ASCII ending in "\n", led by the
 *     0xFF sentinel only for a guest-sync-delimited success, and is an
 *     object with "return" or with "error" {"class", "desc"} (a known
 *     class), and at most an "id" beside it;
 *   - the counters add up (bytes in and out, replies);
 *   - a parsed text's tokens nest properly, its strings decode to valid
 *     UTF-8 of the length the token says, integers agree with a reference,
 *     and writing the value out and reading it back gives the same shape.
 * A broken property ends in __builtin_trap().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/guest_agent.h"
#include "agent/json.h"
#include "tests/fuzz/fuzz_check.h"

#define OUT_MAX (1 << 20)

struct sink {
    char *out;
    size_t length;
    unsigned replies;
    unsigned power_calls;
    int power_succeeds;
};

static int sink_write(void *context, const void *bytes, size_t length)
{
    struct sink *s = context;

    CHECK(length > 0 && length <= GUEST_AGENT_MAX_REPLY);
    if (s->length + length > OUT_MAX)
        return -1; /* a failed write: the agent must count it and go on */
    memcpy(s->out + s->length, bytes, length);
    s->length += length;
    s->replies++;
    return 0;
}

static const char *sink_suspend(void *context)
{
    struct sink *s = context;
    s->power_calls++;
    return s->power_succeeds ? NULL : "no torpor-swap disk";
}

static const char *sink_shutdown(void *context, enum guest_agent_shutdown_mode mode)
{
    struct sink *s = context;
    CHECK(mode == GUEST_AGENT_SHUTDOWN_POWERDOWN || mode == GUEST_AGENT_SHUTDOWN_REBOOT ||
          mode == GUEST_AGENT_SHUTDOWN_HALT);
    s->power_calls++;
    return s->power_succeeds ? NULL : "shutdown failed";
}

static int64_t sink_time(void *context)
{
    (void)context;
    return 1796153527863814000;
}

static const char *sink_set_time(void *context, int has_time, int64_t ns)
{
    (void)context;
    CHECK(!has_time || (ns >= 0 && ns < 3155760000000000000ll));
    return ns % 3 == 1 ? "clock refused" : NULL;
}

static const char *sink_host_name(void *context)
{
    (void)context;
    return "torpor";
}

static void sink_os_info(void *context, struct guest_agent_os_info *info)
{
    (void)context;
    info->name = "torpor";
    info->machine = "x86_64";
    info->variant = "caf\xc3\xa9 \"\x01\xff"; /* escaping on the way out */
}

static void sink_timezone(void *context, struct guest_agent_timezone *zone)
{
    (void)context;
    zone->zone = "UTC";
    zone->offset = 0;
}

static unsigned sink_vcpus(void *context, struct guest_agent_vcpu *vcpus, unsigned max)
{
    (void)context;
    for (unsigned i = 0; i < 3 && i < max; i++)
        vcpus[i] = (struct guest_agent_vcpu){ .logical_id = i, .online = 1 };
    return 3;
}

static uint64_t sink_block_size(void *context)
{
    (void)context;
    return 128 << 20;
}

static unsigned sink_blocks(void *context, struct guest_agent_memory_block *blocks, unsigned max)
{
    (void)context;
    for (unsigned i = 0; i < 4 && i < max; i++)
        blocks[i] = (struct guest_agent_memory_block){ .phys_index = i, .online = 1 };
    return 4;
}

static const struct guest_agent_ops ops = {
    .write = sink_write,
    .suspend_disk = sink_suspend,
    .shutdown = sink_shutdown,
    .time_ns = sink_time,
    .set_time = sink_set_time,
    .host_name = sink_host_name,
    .os_info = sink_os_info,
    .timezone = sink_timezone,
    .vcpus = sink_vcpus,
    .memory_block_size = sink_block_size,
    .memory_blocks = sink_blocks,
};

static struct guest_agent agent;
static struct json_token tokens[8192];

/* UTF-8 as RFC 3629 has it, written again here. */
HARNESS static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], need, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) { need = 1; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { need = 2; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { need = 3; min = 0x10000; c &= 0x07; }
        else return 0;
        if (i + need >= n)
            return 0;
        for (uint32_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            c = c << 6 | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* An integer token's text read independently: 0 and the value, or -1. */
HARNESS static int reference_int64(const char *text, size_t n, int64_t *value)
{
    int negative = n > 0 && text[0] == '-';
    __int128 v = 0;
    for (size_t i = negative; i < n; i++) {
        v = v * 10 + (text[i] - '0');
        if (v > ((__int128)1 << 63))
            return -1;
    }
    if (negative)
        v = -v;
    if (v > INT64_MAX || v < INT64_MIN)
        return -1;
    *value = (int64_t)v;
    return 0;
}

/* Token structure: subtrees nest, counts match the children. */
HARNESS static void check_document(const struct json_document *doc)
{
    CHECK(doc->count >= 1);
    CHECK(doc->tokens[0].end == doc->count);
    for (size_t i = 0; i < doc->count; i++) {
        const struct json_token *t = &doc->tokens[i];
        CHECK(t->end > i && t->end <= doc->count);
        CHECK((size_t)t->start + t->length <= doc->length);
        if (t->type == JSON_ARRAY || t->type == JSON_OBJECT) {
            uint32_t children = 0;
            size_t child = i + 1;
            while (child < t->end) {
                CHECK(doc->tokens[child].end <= t->end);
                if (t->type == JSON_OBJECT) {
                    CHECK(doc->tokens[child].type == JSON_STRING);
                    child = doc->tokens[child].end;
                    CHECK(child < t->end);
                }
                child = doc->tokens[child].end;
                children++;
            }
            CHECK(child == t->end);
            CHECK(children == t->count);
            CHECK(doc->text[t->start] == (t->type == JSON_ARRAY ? '[' : '{'));
            CHECK(doc->text[t->start + t->length - 1] == (t->type == JSON_ARRAY ? ']' : '}'));
        } else {
            CHECK(t->end == i + 1);
        }
        if (t->type == JSON_STRING) {
            static char decoded[1 << 16];
            size_t length = 0;
            CHECK(json_get_string_bytes(doc, i, decoded, sizeof(decoded), &length) == 0);
            CHECK(length == t->count);
            CHECK(valid_utf8((const uint8_t *)decoded, length));
            CHECK(!!memchr(decoded, 0, length) == !!(t->flags & JSON_TOKEN_HAS_NUL));
            if (!(t->flags & JSON_TOKEN_HAS_NUL) && length < 200) {
                decoded[length] = 0;
                CHECK(json_string_equals(doc, i, decoded));
            }
        }
        if (t->type == JSON_NUMBER) {
            int64_t got = 0, expected = 0;
            int result = json_get_int64(doc, i, &got);
            if (t->flags & JSON_TOKEN_FRACTION) {
                CHECK(result == -1);
            } else {
                int reference = reference_int64(doc->text + t->start, t->length, &expected);
                CHECK(reference == 0 ? result == 0 && got == expected : result == -2);
            }
        }
    }
}

/* Same types, same counts, token by token. */
HARNESS static int same_shape(const struct json_document *a, const struct json_document *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (a->tokens[i].type != b->tokens[i].type || a->tokens[i].count != b->tokens[i].count ||
            a->tokens[i].end != b->tokens[i].end)
            return 0;
    return 1;
}

HARNESS static void check_json(const uint8_t *data, size_t size)
{
    static const struct json_limits limits = { .max_bytes = 1 << 16, .max_depth = 12,
                                               .max_string = 1 << 15 };
    static struct json_token again[8192];
    static char written[1 << 19];
    struct json_document doc, copy;

    if (json_parse(&doc, (const char *)data, size, tokens, 8192, &limits, NULL) != JSON_OK)
        return;
    check_document(&doc);
    struct json_writer w;
    json_writer_init(&w, written, sizeof(written));
    json_write_value(&w, &doc, 0);
    long length = json_writer_finish(&w);
    CHECK(length > 0); /* 6 bytes out per byte in at most */
    for (long i = 0; i < length; i++)
        CHECK(written[i] >= 0x20 && written[i] < 0x7F);
    struct json_limits wide = limits;
    wide.max_bytes = sizeof(written);
    CHECK(json_parse(&copy, written, (size_t)length, again, 8192, &wide, NULL) == JSON_OK);
    CHECK(same_shape(&doc, &copy));
}

/* One reply line (sentinel and "\n" included) against the protocol. */
HARNESS static void check_reply(const char *line, size_t length)
{
    static const struct json_limits limits = { .max_bytes = GUEST_AGENT_MAX_REPLY,
                                               .max_depth = JSON_MAX_DEPTH,
                                               .max_string = GUEST_AGENT_MAX_REPLY };
    struct json_document doc;
    size_t value, id, error, cursor = 0, key, member;
    int delimited = (uint8_t)line[0] == GUEST_AGENT_SENTINEL;

    CHECK(line[length - 1] == '\n');
    const char *text = line + delimited;
    size_t n = length - 1 - delimited;
    for (size_t i = 0; i < n; i++)
        CHECK(text[i] >= 0x20 && text[i] < 0x7F);
    CHECK(json_parse(&doc, text, n, tokens, 8192, &limits, NULL) == JSON_OK);
    check_document(&doc);
    CHECK(json_type_of(&doc, 0) == JSON_OBJECT);
    int has_return = json_object_get(&doc, 0, "return", &value) == 0;
    int has_error = json_object_get(&doc, 0, "error", &error) == 0;
    int has_id = json_object_get(&doc, 0, "id", &id) == 0;
    CHECK(has_return != has_error);
    CHECK(doc.tokens[0].count == 1u + has_id);
    if (has_error) {
        CHECK(!delimited);
        CHECK(json_type_of(&doc, error) == JSON_OBJECT && doc.tokens[error].count == 2);
        size_t class_index, desc;
        CHECK(json_object_get(&doc, error, "class", &class_index) == 0);
        CHECK(json_object_get(&doc, error, "desc", &desc) == 0);
        CHECK(json_type_of(&doc, desc) == JSON_STRING);
        CHECK(json_string_equals(&doc, class_index, "GenericError") ||
              json_string_equals(&doc, class_index, "CommandNotFound"));
        /* qemu-ga's order: the id first in an error */
        CHECK(json_object_next(&doc, 0, &cursor, &key, &member) == 0);
        CHECK(json_string_equals(&doc, key, has_id ? "id" : "error"));
    } else {
        CHECK(!delimited || json_type_of(&doc, value) == JSON_NUMBER);
        CHECK(json_object_next(&doc, 0, &cursor, &key, &member) == 0);
        CHECK(json_string_equals(&doc, key, "return"));
    }
}

/* Every reply is a line; the first FULL_CHECKS are also read back whole
 * (garbage earns a reply per byte, and reading thousands would slow the
 * fuzzer more than it finds). */
#define FULL_CHECKS 64

HARNESS static void check_output(const struct sink *s)
{
    size_t at = 0;
    unsigned lines = 0;

    while (at < s->length) {
        const char *end = memchr(s->out + at, '\n', s->length - at);
        CHECK(end != NULL);
        size_t length = (size_t)(end + 1 - (s->out + at));
        if (lines < FULL_CHECKS)
            check_reply(s->out + at, length);
        else
            CHECK(s->out[at + ((uint8_t)s->out[at] == GUEST_AGENT_SENTINEL)] == '{' &&
                  s->out[at + length - 2] == '}');
        at += length;
        lines++;
    }
    CHECK(lines == s->replies);
}

/* Feeds data in pieces: sizes from the data's own bytes (1 .. 64), so
 * every input also tries its own way of being cut. */
static void feed_in_pieces(const uint8_t *data, size_t size)
{
    size_t at = 0, k = 0;

    while (at < size) {
        size_t piece = (size_t)(data[k++ % size] & 63) + 1;
        if (piece > size - at)
            piece = size - at;
        guest_agent_feed(&agent, data + at, piece);
        at += piece;
    }
}

static void run(struct sink *s, const uint8_t *data, size_t size, int pieces)
{
    guest_agent_init(&agent, &ops, s, "0.1.0");
    if (pieces)
        feed_in_pieces(data, size);
    else
        guest_agent_feed(&agent, data, size);
    CHECK(agent.stats.bytes_out == s->length);
    CHECK(agent.length <= GUEST_AGENT_MAX_REQUEST);
    CHECK(agent.stats.errors <= agent.stats.commands + agent.stats.stray_bytes +
                                    agent.stats.oversized);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out_whole[OUT_MAX], out_pieces[OUT_MAX], out_power[OUT_MAX];
    struct sink whole = { .out = out_whole };
    struct sink pieces = { .out = out_pieces };
    struct sink power = { .out = out_power, .power_succeeds = 1 };

    run(&whole, data, size, 0);
    CHECK(agent.stats.bytes_in == size);
    uint64_t commands = agent.stats.commands;
    check_output(&whole);

    run(&pieces, data, size, 1);
    CHECK(agent.stats.bytes_in == size);
    CHECK(agent.stats.commands == commands);
    CHECK(pieces.length == whole.length && memcmp(out_pieces, out_whole, whole.length) == 0);

    if (whole.power_calls > 0) { /* otherwise it would be the same run again */
        run(&power, data, size, 1);
        check_output(&power);
        CHECK(power.power_calls > 0);
    }

    check_json(data, size);
    return 0;
}
