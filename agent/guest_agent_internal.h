/*
 * What the pieces of the guest agent share (agent/guest_agent.h is the
 * interface): the framer hands whole requests to the dispatcher, which
 * checks them and runs a command of the command table.
 */
#ifndef AGENT_GUEST_AGENT_INTERNAL_H
#define AGENT_GUEST_AGENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "agent/json.h" // struct json_document, struct json_writer

/* defined in agent/guest_agent.h, not included here: guest_agent.c, its
 * module, includes this header */
struct guest_agent;
struct guest_agent_ops;

/* An error desc, bounded: what does not fit is cut off. */
struct guest_agent_text {
    char *buffer;
    size_t size, length;
};

enum guest_agent_outcome {
    GUEST_AGENT_OUTCOME_VALUE, /* the return value is written */
    GUEST_AGENT_OUTCOME_ERROR, /* the error desc is in call->error */
    GUEST_AGENT_OUTCOME_GONE,  /* success without a reply: the machine went down or resumed */
};

/* What a command takes: at most two parameters (qga/qapi-schema.json). */

#define GUEST_AGENT_MAX_PARAMETERS 2

enum guest_agent_parameter_type { GUEST_AGENT_PARAMETER_INT, GUEST_AGENT_PARAMETER_STRING };

struct guest_agent_parameter {
    const char *name;
    enum guest_agent_parameter_type type;
    int required;
};

/* One request being answered: its arguments, checked, and its error. */
struct guest_agent_call {
    const struct json_document *doc;
    int has[GUEST_AGENT_MAX_PARAMETERS];
    int64_t ints[GUEST_AGENT_MAX_PARAMETERS];
    size_t values[GUEST_AGENT_MAX_PARAMETERS]; /* token index of each given parameter */
    int delimit;                               /* put the sentinel before the reply */
    struct guest_agent_text error;
};

struct guest_agent_command {
    const char *name;
    int success_response; /* 0: no reply on success (guest-info says so) */
    int (*enabled)(const struct guest_agent_ops *ops);
    /* writes the value of "return", or fails the call */
    enum guest_agent_outcome (*run)(struct guest_agent *agent, struct guest_agent_call *call,
                                    struct json_writer *w);
    struct guest_agent_parameter parameters[GUEST_AGENT_MAX_PARAMETERS];
};

/* ---- guest_agent_dispatch.c -------------------------------------------- */

/* Answers the whole request in agent->request: qapi/qmp-dispatch.c's
 * checks, then the command. Returns 1 when the machine went away (stop
 * reading). */
int guest_agent_handle_request(struct guest_agent *agent);
/* A GenericError reply with this desc, counted as an error. */
void guest_agent_send_error_text(struct guest_agent *agent, const char *desc);
/* The reply to a byte that fits no JSON text where it is; not counted. */
void guest_agent_send_stray(struct guest_agent *agent, uint8_t c);
/* Puts desc in call->error; returns GUEST_AGENT_OUTCOME_ERROR. */
enum guest_agent_outcome guest_agent_fail(struct guest_agent_call *call, const char *desc);

/* ---- guest_agent_commands.c -------------------------------------------- */

/* The command the string at index names, or NULL. */
const struct guest_agent_command *guest_agent_command_find(const struct json_document *doc,
                                                           size_t name);

#endif
