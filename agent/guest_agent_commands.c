/*
 * The guest agent's commands (qga/qapi-schema.json): the table of names,
 * arguments and success-response, and each command's reply, member for
 * member in the order qemu-ga prints them. What they say comes from the ops.
 */
#include "agent/guest_agent_internal.h"

#include "agent/guest_agent.h" // struct guest_agent, GUEST_AGENT_MAX_*
#include "agent/json.h"        // json_string_equals, json_write_*
#include "lib/string.h"        // memset

/* Seconds from 1970 to 2070-01-01: qemu-ga's guest-set-time refuses a
 * time outside [1970, 2070) (qga/commands-posix.c). */
#define SET_TIME_LIMIT_SECONDS 3155760000ll

/* ---- the commands ------------------------------------------------------- */

static int always(const struct guest_agent_ops *ops)
{
    (void)ops;
    return 1;
}

static enum guest_agent_outcome run_sync(struct guest_agent *agent, struct guest_agent_call *call,
                                         struct json_writer *w)
{
    (void)agent;
    json_write_int64(w, call->ints[0]);
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_sync_delimited(struct guest_agent *agent,
                                                   struct guest_agent_call *call,
                                                   struct json_writer *w)
{
    call->delimit = 1; /* qemu-ga: only this reply, and only on success (qga/main.c) */
    return run_sync(agent, call, w);
}

static enum guest_agent_outcome run_ping(struct guest_agent *agent, struct guest_agent_call *call,
                                         struct json_writer *w)
{
    (void)agent;
    (void)call;
    json_write_object_begin(w);
    json_write_object_end(w);
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_info(struct guest_agent *agent, struct guest_agent_call *call,
                                         struct json_writer *w);

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

static enum guest_agent_outcome done_or_error(struct guest_agent_call *call, const char *error)
{
    return error ? guest_agent_fail(call, error) : GUEST_AGENT_OUTCOME_GONE;
}

static enum guest_agent_outcome run_suspend_disk(struct guest_agent *agent,
                                                 struct guest_agent_call *call,
                                                 struct json_writer *w)
{
    (void)w;
    return done_or_error(call, agent->ops->suspend_disk(agent->context));
}

static enum guest_agent_outcome run_shutdown(struct guest_agent *agent,
                                             struct guest_agent_call *call, struct json_writer *w)
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
            return guest_agent_fail(call,
                                    "mode is invalid (valid values are: halt|powerdown|reboot");
    }
    return done_or_error(call, agent->ops->shutdown(agent->context, mode));
}

static enum guest_agent_outcome run_get_time(struct guest_agent *agent,
                                             struct guest_agent_call *call, struct json_writer *w)
{
    (void)call;
    json_write_int64(w, agent->ops->time_ns(agent->context));
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_set_time(struct guest_agent *agent,
                                             struct guest_agent_call *call, struct json_writer *w)
{
    int64_t ns = call->has[0] ? call->ints[0] : 0;

    if (call->has[0] && (ns < 0 || ns / 1000000000 >= SET_TIME_LIMIT_SECONDS))
        return guest_agent_fail(call, "Invalid time");
    const char *error = agent->ops->set_time(agent->context, call->has[0], ns);
    if (error)
        return guest_agent_fail(call, error);
    return run_ping(agent, call, w);
}

static void write_member(struct json_writer *w, const char *key, const char *value)
{
    if (value) {
        json_write_key(w, key);
        json_write_string(w, value);
    }
}

static enum guest_agent_outcome run_os_info(struct guest_agent *agent,
                                            struct guest_agent_call *call, struct json_writer *w)
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
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_host_name(struct guest_agent *agent,
                                              struct guest_agent_call *call, struct json_writer *w)
{
    const char *name = agent->ops->host_name(agent->context);

    (void)call;
    json_write_object_begin(w);
    json_write_key(w, "host-name");
    json_write_string(w, name ? name : "");
    json_write_object_end(w);
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_timezone(struct guest_agent *agent,
                                             struct guest_agent_call *call, struct json_writer *w)
{
    struct guest_agent_timezone zone = { 0 };

    (void)call;
    agent->ops->timezone(agent->context, &zone);
    json_write_object_begin(w);
    write_member(w, "zone", zone.zone);
    json_write_key(w, "offset");
    json_write_int64(w, zone.offset);
    json_write_object_end(w);
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_vcpus(struct guest_agent *agent, struct guest_agent_call *call,
                                          struct json_writer *w)
{
    struct guest_agent_vcpu *vcpus = agent->facts.vcpus;
    unsigned count = agent->ops->vcpus(agent->context, vcpus, GUEST_AGENT_MAX_VCPUS);

    if (count > GUEST_AGENT_MAX_VCPUS)
        return guest_agent_fail(call, "too many vcpus to list");
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
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_memory_blocks(struct guest_agent *agent,
                                                  struct guest_agent_call *call,
                                                  struct json_writer *w)
{
    struct guest_agent_memory_block *blocks = agent->facts.blocks;
    unsigned count = agent->ops->memory_blocks(agent->context, blocks,
                                               GUEST_AGENT_MAX_MEMORY_BLOCKS);

    if (count > GUEST_AGENT_MAX_MEMORY_BLOCKS)
        return guest_agent_fail(call, "too many memory blocks to list");
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
    return GUEST_AGENT_OUTCOME_VALUE;
}

static enum guest_agent_outcome run_memory_block_info(struct guest_agent *agent,
                                                      struct guest_agent_call *call,
                                                      struct json_writer *w)
{
    (void)call;
    json_write_object_begin(w);
    json_write_key(w, "size");
    json_write_uint64(w, agent->ops->memory_block_size(agent->context));
    json_write_object_end(w);
    return GUEST_AGENT_OUTCOME_VALUE;
}

/* qga/qapi-schema.json: names, arguments and success-response. */
static const struct guest_agent_command commands[] = {
    { "guest-sync-delimited", 1, always, run_sync_delimited,
      { { "id", GUEST_AGENT_PARAMETER_INT, 1 } } },
    { "guest-sync", 1, always, run_sync, { { "id", GUEST_AGENT_PARAMETER_INT, 1 } } },
    { "guest-ping", 1, always, run_ping, { { 0 } } },
    { "guest-info", 1, always, run_info, { { 0 } } },
    { "guest-get-time", 1, has_time_ns, run_get_time, { { 0 } } },
    { "guest-set-time", 1, has_set_time, run_set_time,
      { { "time", GUEST_AGENT_PARAMETER_INT, 0 } } },
    { "guest-shutdown", 0, has_shutdown, run_shutdown,
      { { "mode", GUEST_AGENT_PARAMETER_STRING, 0 } } },
    { "guest-suspend-disk", 0, has_suspend_disk, run_suspend_disk, { { 0 } } },
    { "guest-get-vcpus", 1, has_vcpus, run_vcpus, { { 0 } } },
    { "guest-get-memory-blocks", 1, has_memory_blocks, run_memory_blocks, { { 0 } } },
    { "guest-get-memory-block-info", 1, has_memory_block_size, run_memory_block_info, { { 0 } } },
    { "guest-get-host-name", 1, has_host_name, run_host_name, { { 0 } } },
    { "guest-get-timezone", 1, has_timezone, run_timezone, { { 0 } } },
    { "guest-get-osinfo", 1, has_os_info, run_os_info, { { 0 } } },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static enum guest_agent_outcome run_info(struct guest_agent *agent, struct guest_agent_call *call,
                                         struct json_writer *w)
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
    return GUEST_AGENT_OUTCOME_VALUE;
}

const struct guest_agent_command *guest_agent_command_find(const struct json_document *doc,
                                                           size_t name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (json_string_equals(doc, name, commands[i].name))
            return &commands[i];
    return NULL;
}
