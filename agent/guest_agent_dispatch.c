/*
 * The guest agent's dispatcher: checks a whole request as qemu-ga's QMP
 * dispatcher does (qapi/qmp-dispatch.c), runs its command and sends the
 * reply, or the error qemu-ga would send, worded as qemu-ga words it.
 */
#include "agent/guest_agent_internal.h"

#include "agent/guest_agent.h" // struct guest_agent, GUEST_AGENT_*
#include "agent/json.h"        // json_parse, json_object_*, json_write_*
#include "lib/string.h"        // memcpy, memset, strlen

static const struct json_limits request_limits = {
    .max_bytes = GUEST_AGENT_MAX_REQUEST,
    .max_depth = GUEST_AGENT_MAX_DEPTH,
    .max_string = GUEST_AGENT_MAX_REQUEST,
};

/* ---- error texts, bounded ----------------------------------------------- */

static void text_bytes(struct guest_agent_text *t, const char *bytes, size_t n)
{
    if (n > t->size - t->length)
        n = t->size - t->length; /* a desc cut short beats no reply */
    memcpy(t->buffer + t->length, bytes, n);
    t->length += n;
}

static void text_add(struct guest_agent_text *t, const char *s)
{
    text_bytes(t, s, strlen(s));
}

/* Appends the decoded string at index (it may hold any byte, NUL too; the
 * JSON writer escapes what it must). */
static void text_json_string(struct guest_agent_text *t, const struct json_document *doc,
                             size_t index)
{
    size_t room = t->size - t->length, n = 0;

    if (room > 0 && json_get_string_bytes(doc, index, t->buffer + t->length, room, &n) == 0)
        t->length += n;
}

/* Appends " 'word'", the letters at the start of bytes. */
static void quote_word(struct guest_agent_text *t, const char *bytes, size_t available)
{
    size_t n = 0;

    while (n < available && ((bytes[n] >= 'a' && bytes[n] <= 'z') ||
                             (bytes[n] >= 'A' && bytes[n] <= 'Z')))
        n++;
    text_add(t, " '");
    text_bytes(t, bytes, n);
    text_add(t, "'");
}

enum guest_agent_outcome guest_agent_fail(struct guest_agent_call *call, const char *desc)
{
    text_add(&call->error, desc);
    return GUEST_AGENT_OUTCOME_ERROR;
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

void guest_agent_send_error_text(struct guest_agent *agent, const char *desc)
{
    agent->stats.errors++;
    send_error(agent, NULL, 0, 0, "GenericError", desc, strlen(desc));
}

/* qemu-ga answers "stray" with the lexer's token; we name the byte alone. */
void guest_agent_send_stray(struct guest_agent *agent, uint8_t c)
{
    char desc[32];
    struct guest_agent_text t = { .buffer = desc, .size = sizeof(desc) };

    text_add(&t, "JSON parse error, stray '");
    text_bytes(&t, (const char *)&c, 1);
    text_add(&t, "'");
    send_error(agent, NULL, 0, 0, "GenericError", desc, t.length);
}

/* ---- one request -------------------------------------------------------- */

/* Parameters as the QAPI visitor checks them: each declared one in order
 * (type, then presence), then anything undeclared. */
static int check_arguments(const struct guest_agent_command *command,
                           const struct json_document *doc, int has_arguments, size_t arguments,
                           struct guest_agent_call *call)
{
    for (int i = 0; i < GUEST_AGENT_MAX_PARAMETERS && command->parameters[i].name; i++) {
        const struct guest_agent_parameter *parameter = &command->parameters[i];
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
        int ok = parameter->type == GUEST_AGENT_PARAMETER_INT
                     ? json_get_int64(doc, value, &call->ints[i]) == 0
                     : json_type_of(doc, value) == JSON_STRING;
        if (!ok) {
            text_add(&call->error, "Invalid parameter type for '");
            text_add(&call->error, parameter->name);
            text_add(&call->error, parameter->type == GUEST_AGENT_PARAMETER_INT
                                       ? "', expected: integer"
                                       : "', expected: string");
            return -1;
        }
        call->has[i] = 1;
        call->values[i] = value;
    }
    size_t cursor = 0, key, value;
    while (has_arguments && json_object_next(doc, arguments, &cursor, &key, &value) == 0) {
        int declared = 0;
        for (int i = 0; i < GUEST_AGENT_MAX_PARAMETERS && command->parameters[i].name; i++)
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

int guest_agent_handle_request(struct guest_agent *agent)
{
    struct json_document doc;
    size_t error_at = 0;
    enum json_error parse_error = json_parse(&doc, agent->request, agent->length, agent->tokens,
                                             GUEST_AGENT_MAX_TOKENS, &request_limits, &error_at);
    struct guest_agent_call call;
    const char *class_name = "GenericError";
    size_t id = 0, execute = 0, arguments = 0;
    int has_id, has_execute = 0, has_arguments = 0;

    agent->stats.commands++;
    memset(&call, 0, sizeof(call));
    call.doc = &doc;
    call.error = (struct guest_agent_text){ .buffer = agent->text, .size = sizeof(agent->text) };

    if (parse_error != JSON_OK) {
        /* qobject/json-streamer.c words its own limits without the prefix */
        if (parse_error == JSON_ERROR_TOO_MANY_TOKENS)
            guest_agent_send_error_text(agent, "JSON token count limit exceeded");
        else if (parse_error == JSON_ERROR_TOO_DEEP)
            guest_agent_send_error_text(agent, "JSON nesting depth limit exceeded");
        else if (parse_error == JSON_ERROR_TOO_LONG || parse_error == JSON_ERROR_STRING_TOO_LONG)
            guest_agent_send_error_text(agent, "JSON token size limit exceeded");
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
        guest_agent_send_error_text(agent, "QMP input must be a JSON object");
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

    const struct guest_agent_command *command = guest_agent_command_find(&doc, execute);
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
    enum guest_agent_outcome outcome = command->run(agent, &call, &w);
    if (outcome == GUEST_AGENT_OUTCOME_GONE)
        return 1;
    if (outcome == GUEST_AGENT_OUTCOME_ERROR)
        goto error;
    if (has_id) {
        json_write_key(&w, "id");
        json_write_value(&w, &doc, id);
    }
    json_write_object_end(&w);
    json_write_raw(&w, "\n", 1);
    long length = json_writer_finish(&w);
    if (length < 0) {
        guest_agent_send_error_text(agent, "the reply does not fit the agent's buffer");
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
