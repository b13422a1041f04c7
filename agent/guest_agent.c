/*
 * QEMU guest agent protocol core: splits the host's byte stream into
 * requests, checks them as qemu-ga's QMP dispatcher does (qapi/qmp-dispatch.c)
 * and answers with the shapes of qga/qapi-schema.json, member for member in
 * the order qemu-ga prints them. What the answers say comes from the ops.
 *
 * Framing follows QEMU's JSON streamer (qobject/json-streamer.c): a request
 * ends where its brackets balance, so it may span lines and several may
 * share one. A byte no JSON text can hold there (0xFF above all, which
 * clients send to flush the parser: guest-sync-delimited) is answered with
 * a parse error and drops the partial request; the framer then skips to
 * the next '{' or line end, as QEMU's lexer recovers.
 */
#include "agent/guest_agent.h"

#include "lib/string.h" /* memcpy, memset, strlen */

static const struct json_limits request_limits = {
    .max_bytes = GUEST_AGENT_MAX_REQUEST,
    .max_depth = GUEST_AGENT_MAX_DEPTH,
    .max_string = GUEST_AGENT_MAX_REQUEST,
};

/* Seconds from 1970 to 2070-01-01: qemu-ga's guest-set-time refuses a
 * time outside [1970, 2070) (qga/commands-posix.c). */
#define SET_TIME_LIMIT_SECONDS 3155760000ll

/* ---- error texts, bounded ----------------------------------------------- */

struct text {
    char *buffer;
    size_t size, length;
};

static void text_bytes(struct text *t, const char *bytes, size_t n)
{
    if (n > t->size - t->length)
        n = t->size - t->length; /* a desc cut short beats no reply */
    memcpy(t->buffer + t->length, bytes, n);
    t->length += n;
}

static void text_add(struct text *t, const char *s)
{
    text_bytes(t, s, strlen(s));
}

/* Appends the decoded string at index (it may hold any byte, NUL too; the
 * JSON writer escapes what it must). */
static void text_json_string(struct text *t, const struct json_document *doc, size_t index)
{
    size_t room = t->size - t->length, n = 0;

    if (room > 0 && json_get_string_bytes(doc, index, t->buffer + t->length, room, &n) == 0)
        t->length += n;
}

/* Appends " 'word'", the letters at the start of bytes. */
static void quote_word(struct text *t, const char *bytes, size_t available)
{
    size_t n = 0;

    while (n < available && ((bytes[n] >= 'a' && bytes[n] <= 'z') ||
                             (bytes[n] >= 'A' && bytes[n] <= 'Z')))
        n++;
    text_add(t, " '");
    text_bytes(t, bytes, n);
    text_add(t, "'");
}

/* ---- one request -------------------------------------------------------- */

enum outcome {
    OUTCOME_VALUE, /* the return value is written */
    OUTCOME_ERROR, /* the error desc is in call->error */
    OUTCOME_GONE,  /* success without a reply: the machine went down or resumed */
};

#define MAX_PARAMETERS 2

enum parameter_type { PARAMETER_INT, PARAMETER_STRING };

struct parameter {
    const char *name;
    enum parameter_type type;
    int required;
};

struct call {
    const struct json_document *doc;
    int has[MAX_PARAMETERS];
    int64_t ints[MAX_PARAMETERS];
    size_t values[MAX_PARAMETERS]; /* token index of each given parameter */
    int delimit;                   /* put the sentinel before the reply */
    struct text error;
};

struct command {
    const char *name;
    int success_response;          /* 0: no reply on success (guest-info says so) */
    int (*enabled)(const struct guest_agent_ops *ops);
    enum outcome (*run)(struct guest_agent *agent, struct call *call, struct json_writer *w);
    struct parameter parameters[MAX_PARAMETERS];
};

static enum outcome fail(struct call *call, const char *desc)
{
    text_add(&call->error, desc);
    return OUTCOME_ERROR;
}

/* ---- the commands ------------------------------------------------------- */

static int always(const struct guest_agent_ops *ops)
{
    (void)ops;
    return 1;
}

static enum outcome run_sync(struct guest_agent *agent, struct call *call, struct json_writer *w)
{
    (void)agent;
    json_write_int64(w, call->ints[0]);
    return OUTCOME_VALUE;
}

static enum outcome run_sync_delimited(struct guest_agent *agent, struct call *call,
                                       struct json_writer *w)
{
    call->delimit = 1; /* qemu-ga: only this reply, and only on success (qga/main.c) */
    return run_sync(agent, call, w);
}

static enum outcome run_ping(struct guest_agent *agent, struct call *call, struct json_writer *w)
{
    (void)agent;
    (void)call;
    json_write_object_begin(w);
    json_write_object_end(w);
    return OUTCOME_VALUE;
}

static enum outcome run_info(struct guest_agent *agent, struct call *call, struct json_writer *w);

static int has_suspend_disk(const struct guest_agent_ops *ops) { return ops->suspend_disk != NULL; }
static int has_shutdown(const struct guest_agent_ops *ops) { return ops->shutdown != NULL; }
static int has_time_ns(const struct guest_agent_ops *ops) { return ops->time_ns != NULL; }
static int has_set_time(const struct guest_agent_ops *ops) { return ops->set_time != NULL; }
static int has_os_info(const struct guest_agent_ops *ops) { return ops->os_info != NULL; }
static int has_host_name(const struct guest_agent_ops *ops) { return ops->host_name != NULL; }
static int has_timezone(const struct guest_agent_ops *ops) { return ops->timezone != NULL; }
static int has_vcpus(const struct guest_agent_ops *ops) { return ops->vcpus != NULL; }
static int has_memory_blocks(const struct guest_agent_ops *ops)
{
    return ops->memory_blocks != NULL;
}
static int has_memory_block_size(const struct guest_agent_ops *ops)
{
    return ops->memory_block_size != NULL;
}

static enum outcome done_or_error(struct call *call, const char *error)
{
    return error ? fail(call, error) : OUTCOME_GONE;
}

static enum outcome run_suspend_disk(struct guest_agent *agent, struct call *call,
                                     struct json_writer *w)
{
    (void)w;
    return done_or_error(call, agent->ops->suspend_disk(agent->context));
}

static enum outcome run_shutdown(struct guest_agent *agent, struct call *call,
                                 struct json_writer *w)
{
    enum guest_agent_shutdown_mode mode = GUEST_AGENT_SHUTDOWN_POWERDOWN;

    (void)w;
    if (call->has[0]) {
        if (json_string_equals(call->doc, call->values[0], "powerdown"))
            mode = GUEST_AGENT_SHUTDOWN_POWERDOWN;
        else if (json_string_equals(call->doc, call->values[0], "reboot"))
            mode = GUEST_AGENT_SHUTDOWN_REBOOT;
        else if (json_string_equals(call->doc, call->values[0], "halt"))
            mode = GUEST_AGENT_SHUTDOWN_HALT;
        else /* qemu-ga's words, its missing ')' included */
            return fail(call, "mode is invalid (valid values are: halt|powerdown|reboot");
    }
    return done_or_error(call, agent->ops->shutdown(agent->context, mode));
}

static enum outcome run_get_time(struct guest_agent *agent, struct call *call,
                                 struct json_writer *w)
{
    (void)call;
    json_write_int64(w, agent->ops->time_ns(agent->context));
    return OUTCOME_VALUE;
}

static enum outcome run_set_time(struct guest_agent *agent, struct call *call,
                                 struct json_writer *w)
{
    int64_t ns = call->has[0] ? call->ints[0] : 0;

    if (call->has[0] && (ns < 0 || ns / 1000000000 >= SET_TIME_LIMIT_SECONDS))
        return fail(call, "Invalid time");
    const char *error = agent->ops->set_time(agent->context, call->has[0], ns);
    if (error)
        return fail(call, error);
    return run_ping(agent, call, w);
}

static void write_member(struct json_writer *w, const char *key, const char *value)
{
    if (value) {
        json_write_key(w, key);
        json_write_string(w, value);
    }
}

static enum outcome run_os_info(struct guest_agent *agent, struct call *call,
                                struct json_writer *w)
{
    struct guest_agent_os_info info;

    (void)call;
    memset(&info, 0, sizeof(info));
    agent->ops->os_info(agent->context, &info);
    json_write_object_begin(w);
    write_member(w, "name", info.name);
    write_member(w, "kernel-release", info.kernel_release);
    write_member(w, "version", info.version);
    write_member(w, "variant", info.variant);
    write_member(w, "pretty-name", info.pretty_name);
    write_member(w, "version-id", info.version_id);
    write_member(w, "variant-id", info.variant_id);
    write_member(w, "kernel-version", info.kernel_version);
    write_member(w, "machine", info.machine);
    write_member(w, "id", info.id);
    json_write_object_end(w);
    return OUTCOME_VALUE;
}

static enum outcome run_host_name(struct guest_agent *agent, struct call *call,
                                  struct json_writer *w)
{
    const char *name = agent->ops->host_name(agent->context);

    (void)call;
    json_write_object_begin(w);
    json_write_key(w, "host-name");
    json_write_string(w, name ? name : "");
    json_write_object_end(w);
    return OUTCOME_VALUE;
}

static enum outcome run_timezone(struct guest_agent *agent, struct call *call,
                                 struct json_writer *w)
{
    struct guest_agent_timezone zone = { 0 };

    (void)call;
    agent->ops->timezone(agent->context, &zone);
    json_write_object_begin(w);
    write_member(w, "zone", zone.zone);
    json_write_key(w, "offset");
    json_write_int64(w, zone.offset);
    json_write_object_end(w);
    return OUTCOME_VALUE;
}

static enum outcome run_vcpus(struct guest_agent *agent, struct call *call,
                              struct json_writer *w)
{
    struct guest_agent_vcpu *vcpus = agent->facts.vcpus;
    unsigned count = agent->ops->vcpus(agent->context, vcpus, GUEST_AGENT_MAX_VCPUS);

    if (count > GUEST_AGENT_MAX_VCPUS)
        return fail(call, "too many vcpus to list");
    json_write_array_begin(w);
    for (unsigned i = 0; i < count; i++) {
        json_write_object_begin(w);
        json_write_key(w, "online");
        json_write_bool(w, vcpus[i].online);
        json_write_key(w, "can-offline");
        json_write_bool(w, vcpus[i].can_offline);
        json_write_key(w, "logical-id");
        json_write_int64(w, vcpus[i].logical_id);
        json_write_object_end(w);
    }
    json_write_array_end(w);
    return OUTCOME_VALUE;
}

static enum outcome run_memory_blocks(struct guest_agent *agent, struct call *call,
                                      struct json_writer *w)
{
    struct guest_agent_memory_block *blocks = agent->facts.blocks;
    unsigned count = agent->ops->memory_blocks(agent->context, blocks,
                                               GUEST_AGENT_MAX_MEMORY_BLOCKS);

    if (count > GUEST_AGENT_MAX_MEMORY_BLOCKS)
        return fail(call, "too many memory blocks to list");
    json_write_array_begin(w);
    for (unsigned i = 0; i < count; i++) {
        json_write_object_begin(w);
        json_write_key(w, "online");
        json_write_bool(w, blocks[i].online);
        json_write_key(w, "can-offline");
        json_write_bool(w, blocks[i].can_offline);
        json_write_key(w, "phys-index");
        json_write_uint64(w, blocks[i].phys_index);
        json_write_object_end(w);
    }
    json_write_array_end(w);
    return OUTCOME_VALUE;
}

static enum outcome run_memory_block_info(struct guest_agent *agent, struct call *call,
                                          struct json_writer *w)
{
    (void)call;
    json_write_object_begin(w);
    json_write_key(w, "size");
    json_write_uint64(w, agent->ops->memory_block_size(agent->context));
    json_write_object_end(w);
    return OUTCOME_VALUE;
}

/* qga/qapi-schema.json: names, arguments and success-response. */
static const struct command commands[] = {
    { "guest-sync-delimited", 1, always, run_sync_delimited, { { "id", PARAMETER_INT, 1 } } },
    { "guest-sync", 1, always, run_sync, { { "id", PARAMETER_INT, 1 } } },
    { "guest-ping", 1, always, run_ping, { { 0 } } },
    { "guest-info", 1, always, run_info, { { 0 } } },
    { "guest-get-time", 1, has_time_ns, run_get_time, { { 0 } } },
    { "guest-set-time", 1, has_set_time, run_set_time, { { "time", PARAMETER_INT, 0 } } },
    { "guest-shutdown", 0, has_shutdown, run_shutdown, { { "mode", PARAMETER_STRING, 0 } } },
    { "guest-suspend-disk", 0, has_suspend_disk, run_suspend_disk, { { 0 } } },
    { "guest-get-vcpus", 1, has_vcpus, run_vcpus, { { 0 } } },
    { "guest-get-memory-blocks", 1, has_memory_blocks, run_memory_blocks, { { 0 } } },
    { "guest-get-memory-block-info", 1, has_memory_block_size, run_memory_block_info, { { 0 } } },
    { "guest-get-host-name", 1, has_host_name, run_host_name, { { 0 } } },
    { "guest-get-timezone", 1, has_timezone, run_timezone, { { 0 } } },
    { "guest-get-osinfo", 1, has_os_info, run_os_info, { { 0 } } },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static enum outcome run_info(struct guest_agent *agent, struct call *call, struct json_writer *w)
{
    (void)call;
    json_write_object_begin(w);
    json_write_key(w, "version");
    json_write_string(w, agent->version ? agent->version : "");
    json_write_key(w, "supported_commands");
    json_write_array_begin(w);
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        json_write_object_begin(w); /* GuestAgentCommandInfo, in qemu-ga's member order */
        json_write_key(w, "enabled");
        json_write_bool(w, commands[i].enabled(agent->ops));
        json_write_key(w, "name");
        json_write_string(w, commands[i].name);
        json_write_key(w, "success-response");
        json_write_bool(w, commands[i].success_response);
        json_write_object_end(w);
    }
    json_write_array_end(w);
    json_write_object_end(w);
    return OUTCOME_VALUE;
}

/* ---- replies ------------------------------------------------------------ */

static void send(struct guest_agent *agent, const char *bytes, size_t length)
{
    if (!agent->ops->write || agent->ops->write(agent->context, bytes, length) != 0) {
        agent->stats.write_failures++;
        return;
    }
    agent->stats.bytes_out += length;
}

/* {"id": ..., "error": {"class": ..., "desc": ...}}: qemu-ga's order. An id
 * too big to echo in the room left is dropped rather than the reply. */
static void send_error(struct guest_agent *agent, const struct json_document *doc, size_t id,
                       int has_id, const char *class_name, const char *desc, size_t desc_length)
{
    struct json_writer w;

    for (int with_id = has_id; with_id >= 0; with_id--) {
        json_writer_init(&w, agent->reply, sizeof(agent->reply));
        json_write_object_begin(&w);
        if (with_id) {
            json_write_key(&w, "id");
            json_write_value(&w, doc, id);
        }
        json_write_key(&w, "error");
        json_write_object_begin(&w);
        json_write_key(&w, "class");
        json_write_string(&w, class_name);
        json_write_key(&w, "desc");
        json_write_string_bytes(&w, desc, desc_length);
        json_write_object_end(&w);
        json_write_object_end(&w);
        json_write_raw(&w, "\n", 1);
        long length = json_writer_finish(&w);
        if (length >= 0) {
            send(agent, agent->reply, (size_t)length);
            return;
        }
    }
}

static void send_error_text(struct guest_agent *agent, const char *desc)
{
    agent->stats.errors++;
    send_error(agent, NULL, 0, 0, "GenericError", desc, strlen(desc));
}

/* Parameters as the QAPI visitor checks them: each declared one in order
 * (type, then presence), then anything undeclared. */
static int check_arguments(const struct command *command, const struct json_document *doc,
                           int has_arguments, size_t arguments, struct call *call)
{
    for (int i = 0; i < MAX_PARAMETERS && command->parameters[i].name; i++) {
        const struct parameter *parameter = &command->parameters[i];
        size_t value;

        if (!has_arguments || json_object_get(doc, arguments, parameter->name, &value) < 0) {
            if (parameter->required) {
                text_add(&call->error, "Parameter '");
                text_add(&call->error, parameter->name);
                text_add(&call->error, "' is missing");
                return -1;
            }
            continue;
        }
        int ok = parameter->type == PARAMETER_INT
                     ? json_get_int64(doc, value, &call->ints[i]) == 0
                     : json_type_of(doc, value) == JSON_STRING;
        if (!ok) {
            text_add(&call->error, "Invalid parameter type for '");
            text_add(&call->error, parameter->name);
            text_add(&call->error, parameter->type == PARAMETER_INT ? "', expected: integer"
                                                                    : "', expected: string");
            return -1;
        }
        call->has[i] = 1;
        call->values[i] = value;
    }
    size_t cursor = 0, key, value;
    while (has_arguments && json_object_next(doc, arguments, &cursor, &key, &value) == 0) {
        int declared = 0;
        for (int i = 0; i < MAX_PARAMETERS && command->parameters[i].name; i++)
            declared |= json_string_equals(doc, key, command->parameters[i].name);
        if (!declared) {
            text_add(&call->error, "Parameter '");
            text_json_string(&call->error, doc, key);
            text_add(&call->error, "' is unexpected");
            return -1;
        }
    }
    return 0;
}

/* A whole request in agent->request: qapi/qmp-dispatch.c's checks, then
 * the command. Returns 1 when the machine went away (stop reading). */
static int handle_request(struct guest_agent *agent)
{
    struct json_document doc;
    size_t error_at = 0;
    enum json_error parse_error = json_parse(&doc, agent->request, agent->length, agent->tokens,
                                             GUEST_AGENT_MAX_TOKENS, &request_limits, &error_at);
    struct call call;
    const char *class_name = "GenericError";
    size_t id = 0, execute = 0, arguments = 0;
    int has_id, has_execute = 0, has_arguments = 0;

    agent->stats.commands++;
    memset(&call, 0, sizeof(call));
    call.doc = &doc;
    call.error = (struct text){ .buffer = agent->text, .size = sizeof(agent->text) };

    if (parse_error != JSON_OK) {
        /* qobject/json-streamer.c words its own limits without the prefix */
        if (parse_error == JSON_ERROR_TOO_MANY_TOKENS)
            send_error_text(agent, "JSON token count limit exceeded");
        else if (parse_error == JSON_ERROR_TOO_DEEP)
            send_error_text(agent, "JSON nesting depth limit exceeded");
        else if (parse_error == JSON_ERROR_TOO_LONG || parse_error == JSON_ERROR_STRING_TOO_LONG)
            send_error_text(agent, "JSON token size limit exceeded");
        else {
            text_add(&call.error, "JSON parse error, ");
            text_add(&call.error, json_error_text(parse_error));
            if (parse_error == JSON_ERROR_BAD_KEYWORD) /* qemu-ga names the word */
                quote_word(&call.error, agent->request + error_at, agent->length - error_at);
            agent->stats.errors++;
            send_error(agent, NULL, 0, 0, class_name, call.error.buffer, call.error.length);
        }
        return 0;
    }
    if (json_type_of(&doc, 0) != JSON_OBJECT) {
        send_error_text(agent, "QMP input must be a JSON object");
        return 0;
    }

    has_id = json_object_get(&doc, 0, "id", &id) == 0; /* echoed in every reply */
    size_t cursor = 0, key, value;
    while (json_object_next(&doc, 0, &cursor, &key, &value) == 0) {
        if (json_string_equals(&doc, key, "execute")) {
            if (json_type_of(&doc, value) != JSON_STRING) {
                text_add(&call.error, "QMP input member 'execute' must be a string");
                goto error;
            }
            has_execute = 1;
            execute = value;
        } else if (json_string_equals(&doc, key, "arguments")) {
            if (json_type_of(&doc, value) != JSON_OBJECT) {
                text_add(&call.error, "QMP input member 'arguments' must be an object");
                goto error;
            }
            has_arguments = 1;
            arguments = value;
        } else if (!json_string_equals(&doc, key, "id")) {
            /* "exec-oob" and "control" too: qemu-ga allows no out-of-band */
            text_add(&call.error, "QMP input member '");
            text_json_string(&call.error, &doc, key);
            text_add(&call.error, "' is unexpected");
            goto error;
        }
    }
    if (!has_execute) {
        text_add(&call.error, "QMP input lacks member 'execute'");
        goto error;
    }

    const struct command *command = NULL;
    for (size_t i = 0; i < COMMAND_COUNT && !command; i++)
        if (json_string_equals(&doc, execute, commands[i].name))
            command = &commands[i];
    class_name = "CommandNotFound";
    if (!command) {
        text_add(&call.error, "The command ");
        text_json_string(&call.error, &doc, execute);
        text_add(&call.error, " has not been found");
        goto error;
    }
    if (!command->enabled(agent->ops)) {
        text_add(&call.error, "Command ");
        text_add(&call.error, command->name);
        text_add(&call.error, " has been disabled");
        goto error;
    }
    class_name = "GenericError";
    if (check_arguments(command, &doc, has_arguments, arguments, &call) < 0)
        goto error;

    /* reply[0] is kept for the sentinel, which only a success may need */
    struct json_writer w;
    json_writer_init(&w, agent->reply + 1, sizeof(agent->reply) - 1);
    json_write_object_begin(&w);
    json_write_key(&w, "return");
    enum outcome outcome = command->run(agent, &call, &w);
    if (outcome == OUTCOME_GONE)
        return 1;
    if (outcome == OUTCOME_ERROR)
        goto error;
    if (has_id) {
        json_write_key(&w, "id");
        json_write_value(&w, &doc, id);
    }
    json_write_object_end(&w);
    json_write_raw(&w, "\n", 1);
    long length = json_writer_finish(&w);
    if (length < 0) {
        send_error_text(agent, "the reply does not fit the agent's buffer");
        return 0;
    }
    if (call.delimit) {
        agent->reply[0] = (char)GUEST_AGENT_SENTINEL;
        send(agent, agent->reply, (size_t)length + 1);
    } else {
        send(agent, agent->reply + 1, (size_t)length);
    }
    return 0;

error:
    agent->stats.errors++;
    send_error(agent, &doc, id, has_id, class_name, call.error.buffer, call.error.length);
    return 0;
}

/* ---- framing ------------------------------------------------------------ */

static void drop_request(struct guest_agent *agent)
{
    agent->length = 0;
    agent->depth = 0;
    agent->skipping = 0;
}

/* A byte that fits no JSON text where it is: qemu-ga answers "stray" with
 * the lexer's token; we name the byte alone. */
static void stray(struct guest_agent *agent, uint8_t c)
{
    char desc[32];
    struct text t = { .buffer = desc, .size = sizeof(desc) };

    text_add(&t, "JSON parse error, stray '");
    text_bytes(&t, (const char *)&c, 1);
    text_add(&t, "'");
    if (c == GUEST_AGENT_SENTINEL) {
        agent->stats.sentinels++; /* a client flushing the channel, not a fault */
    } else {
        agent->stats.stray_bytes++;
        agent->stats.errors++;
    }
    drop_request(agent);
    agent->frame = GUEST_AGENT_RECOVERY;
    send_error(agent, NULL, 0, 0, "GenericError", desc, t.length);
}

/* Over a limit: answer now, then follow the request to its end keeping
 * nothing (qemu-ga answers and starts over at once, which turns the rest
 * of the request into more errors). */
static void over_limit(struct guest_agent *agent, const char *desc)
{
    agent->stats.oversized++;
    send_error_text(agent, desc);
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
        gone = handle_request(agent);
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
