/*
 * The guest agent's framer: splits the host's byte stream into requests
 * for the dispatcher (guest_agent_dispatch.c), within the request limits.
 *
 * Framing follows QEMU's JSON streamer (qobject/json-streamer.c): a request
 * ends where its brackets balance, so it may span lines and several may
 * share one. A byte no JSON text can hold there (0xFF above all, which
 * clients send to flush the parser: guest-sync-delimited) is answered with
 * a parse error and drops the partial request; the framer then skips to
 * the next '{' or line end, as QEMU's lexer recovers.
 */
#include "agent/guest_agent.h"

#include "agent/guest_agent_internal.h" // guest_agent_handle_request, guest_agent_send_*
#include "lib/string.h"                 // memset

static void drop_request(struct guest_agent *agent)
{
    agent->length = 0;
    agent->depth = 0;
    agent->skipping = 0;
}

/* A byte that fits no JSON text where it is. */
static void stray(struct guest_agent *agent, uint8_t c)
{
    if (c == GUEST_AGENT_SENTINEL) {
        agent->stats.sentinels++; /* a client flushing the channel, not a fault */
    } else {
        agent->stats.stray_bytes++;
        agent->stats.errors++;
    }
    drop_request(agent);
    agent->frame = GUEST_AGENT_RECOVERY;
    guest_agent_send_stray(agent, c);
}

/* Over a limit: answer now, then follow the request to its end keeping
 * nothing (qemu-ga answers and starts over at once, which turns the rest
 * of the request into more errors). */
static void over_limit(struct guest_agent *agent, const char *desc)
{
    agent->stats.oversized++;
    guest_agent_send_error_text(agent, desc);
    agent->length = 0;
    agent->skipping = 1;
}

static void keep(struct guest_agent *agent, uint8_t c)
{
    if (agent->skipping)
        return;
    if (agent->length >= sizeof(agent->request)) {
        over_limit(agent, "JSON token size limit exceeded");
        return;
    }
    agent->request[agent->length++] = (char)c;
}

/* The request ended; returns 1 when the machine went away. */
static int finish_request(struct guest_agent *agent)
{
    int gone = 0;

    agent->frame = GUEST_AGENT_IDLE;
    if (!agent->skipping)
        gone = guest_agent_handle_request(agent);
    drop_request(agent);
    return gone;
}

static int is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Bytes that continue a number or a keyword (the reader judges them). */
static int is_bare(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.';
}

/* One byte from the host; returns 1 when the machine went away. */
static int frame_byte(struct guest_agent *agent, uint8_t c)
{
    if (c == 0xFF || c == 0xFE) { /* never in UTF-8: a stray anywhere, and a fresh start */
        stray(agent, c);
        return 0;
    }
    switch (agent->frame) {
    case GUEST_AGENT_RECOVERY:
        if (c == '\n' || c == '\r') {
            agent->frame = GUEST_AGENT_IDLE;
            return 0;
        }
        if (c < 0x20 && c != '\t') {
            stray(agent, c);
            return 0;
        }
        if (c != '{')
            return 0;
        agent->frame = GUEST_AGENT_IDLE;
        /* fall through - the '{' starts a request */
    case GUEST_AGENT_IDLE:
        if (is_blank(c))
            return 0;
        if (c == '{' || c == '[') {
            agent->depth = 1;
            agent->frame = GUEST_AGENT_CONTAINER;
        } else if (c == '"') {
            agent->frame = GUEST_AGENT_STRING;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            agent->frame = GUEST_AGENT_BARE;
        } else if (c == '}' || c == ']' || c == ',' || c == ':') {
            keep(agent, c); /* a request of one byte, as QEMU's streamer takes it */
            return finish_request(agent);
        } else {
            stray(agent, c);
            return 0;
        }
        keep(agent, c);
        return 0;
    case GUEST_AGENT_BARE:
        if (is_bare(c)) {
            keep(agent, c);
            return 0;
        }
        (void)finish_request(agent); /* a bare value is never a command */
        return frame_byte(agent, c); /* once: the frame is IDLE now */
    case GUEST_AGENT_CONTAINER:
        if (c == '"') {
            agent->frame = GUEST_AGENT_STRING;
        } else if (c == '{' || c == '[') {
            if (agent->depth < UINT32_MAX)
                agent->depth++;
            if (agent->depth == GUEST_AGENT_MAX_DEPTH + 1 && !agent->skipping)
                over_limit(agent, "JSON nesting depth limit exceeded");
        } else if (c == '}' || c == ']') {
            keep(agent, c);
            if (--agent->depth == 0)
                return finish_request(agent);
            return 0;
        } else if ((c < 0x20 && !is_blank(c)) || c >= 0x80) {
            stray(agent, c);
            return 0;
        }
        keep(agent, c);
        return 0;
    case GUEST_AGENT_STRING:
    case GUEST_AGENT_ESCAPE:
        if (c < 0x20) { /* raw control bytes never belong in a string (RFC 8259, 7) */
            stray(agent, c);
            return 0;
        }
        keep(agent, c);
        if (agent->frame == GUEST_AGENT_ESCAPE)
            agent->frame = GUEST_AGENT_STRING;
        else if (c == '\\')
            agent->frame = GUEST_AGENT_ESCAPE;
        else if (c == '"' && agent->depth == 0)
            return finish_request(agent);
        else if (c == '"')
            agent->frame = GUEST_AGENT_CONTAINER;
        return 0;
    }
    return 0;
}

void guest_agent_init(struct guest_agent *agent, const struct guest_agent_ops *ops,
                      void *context, const char *version)
{
    memset(agent, 0, sizeof(*agent));
    agent->ops = ops;
    agent->context = context;
    agent->version = version;
    agent->frame = GUEST_AGENT_IDLE;
}

void guest_agent_reset(struct guest_agent *agent)
{
    drop_request(agent);
    agent->frame = GUEST_AGENT_IDLE;
}

void guest_agent_feed(struct guest_agent *agent, const void *bytes, size_t length)
{
    const uint8_t *data = bytes;

    for (size_t i = 0; i < length; i++) {
        agent->stats.bytes_in++;
        if (frame_byte(agent, data[i])) {
            guest_agent_reset(agent);
            return;
        }
    }
}
