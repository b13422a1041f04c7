/*
 * The QEMU guest agent protocol (QEMU's qga/qapi-schema.json), free of
 * kernel globals: bytes from the host go in through guest_agent_feed in
 * pieces of any size, replies go out through ops->write, and everything
 * the agent acts on or reports comes from the ops table the kernel fills.
 * docs/agent.md describes the protocol as torpor speaks it.
 *
 * guest_agent.c frames the bytes into requests, guest_agent_dispatch.c
 * checks and answers them, guest_agent_commands.c holds the commands.
 */
#ifndef AGENT_GUEST_AGENT_H
#define AGENT_GUEST_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "agent/json.h"

#define GUEST_AGENT_MAX_REQUEST 4096 /* bytes of one request; libvirt's are under 200 */
#define GUEST_AGENT_MAX_DEPTH 16     /* nesting of one request (a request needs 2, an id more) */
#define GUEST_AGENT_MAX_TOKENS 256   /* JSON values in one request */
#define GUEST_AGENT_MAX_REPLY 16384  /* bytes of one reply, the sentinel and "\n" included */
#define GUEST_AGENT_MAX_VCPUS 128
#define GUEST_AGENT_MAX_MEMORY_BLOCKS 128

#define GUEST_AGENT_SENTINEL 0xFF /* never in UTF-8: guest-sync-delimited's marker */

enum guest_agent_shutdown_mode {
    GUEST_AGENT_SHUTDOWN_POWERDOWN,
    GUEST_AGENT_SHUTDOWN_REBOOT,
    GUEST_AGENT_SHUTDOWN_HALT,
};

/* GuestOSInfo; a NULL member is left out of the reply, as qemu-ga leaves
 * out what os-release(5) does not say. */
struct guest_agent_os_info {
    const char *kernel_release;
    const char *kernel_version;
    const char *machine;
    const char *id;
    const char *name;
    const char *pretty_name;
    const char *version;
    const char *version_id;
    const char *variant;
    const char *variant_id;
};

struct guest_agent_timezone {
    const char *zone;      /* NULL: left out (the schema makes it optional) */
    int64_t offset;        /* seconds east of UTC */
};

struct guest_agent_vcpu {
    int64_t logical_id;
    int online;
    int can_offline;
};

struct guest_agent_memory_block {
    uint64_t phys_index;   /* physical address / block size, as Linux numbers them */
    int online;
    int can_offline;
};

/* Every op but write may be NULL: its commands are then listed by
 * guest-info as disabled and answer as qemu-ga answers a disabled command.
 * An op that returns a const char * returns NULL for success or a short
 * error text, sent to the host as the error's "desc". */
struct guest_agent_ops {
    /* Sends bytes to the host; 0, or -1 when they could not all go. */
    int (*write)(void *context, const void *bytes, size_t length);
    /* Hibernates. It returns after the resume (NULL) or when the
     * hibernation could not start or failed and the machine thawed. */
    const char *(*suspend_disk)(void *context);
    /* Starts the shutdown; NULL means it is under way. */
    const char *(*shutdown)(void *context, enum guest_agent_shutdown_mode mode);
    /* Nanoseconds since 1970-01-01 UTC. */
    int64_t (*time_ns)(void *context);
    /* Sets the clock to ns, or (has_time 0) from the hardware clock. */
    const char *(*set_time)(void *context, int has_time, int64_t ns);
    const char *(*host_name)(void *context);
    void (*os_info)(void *context, struct guest_agent_os_info *info);
    void (*timezone)(void *context, struct guest_agent_timezone *zone);
    /* Fills up to max entries; returns how many there are in all. */
    unsigned (*vcpus)(void *context, struct guest_agent_vcpu *vcpus, unsigned max);
    uint64_t (*memory_block_size)(void *context);
    unsigned (*memory_blocks)(void *context, struct guest_agent_memory_block *blocks,
                              unsigned max);
};

struct guest_agent_stats {
    uint64_t commands;        /* requests received whole (valid or not) */
    uint64_t errors;          /* error replies, those to sentinels excepted */
    uint64_t sentinels;       /* 0xFF bytes from the host (each answered as qemu-ga does) */
    uint64_t stray_bytes;     /* other bytes that fit no JSON text, each answered once */
    uint64_t oversized;       /* requests over GUEST_AGENT_MAX_REQUEST or too deep, skipped */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t write_failures;  /* replies ops->write could not send */
};

/* Where the framer is between two bytes (guest_agent.c's "framing"). */
enum guest_agent_frame {
    GUEST_AGENT_IDLE,         /* between requests */
    GUEST_AGENT_CONTAINER,    /* inside an object or array */
    GUEST_AGENT_STRING,       /* inside a string */
    GUEST_AGENT_ESCAPE,       /* after a backslash inside a string */
    GUEST_AGENT_BARE,         /* a number or keyword outside any container */
    GUEST_AGENT_RECOVERY,     /* after a stray byte: skipping to a new start */
};

struct guest_agent {
    const struct guest_agent_ops *ops;
    void *context;
    const char *version;      /* guest-info's "version" */

    /* framing */
    enum guest_agent_frame frame;
    int skipping;             /* the request is over a limit: track it, keep none */
    uint32_t depth;           /* open containers in the request */
    size_t length;            /* bytes in request[] */
    char request[GUEST_AGENT_MAX_REQUEST];

    /* one request at a time */
    struct json_token tokens[GUEST_AGENT_MAX_TOKENS];
    char reply[GUEST_AGENT_MAX_REPLY];
    char text[GUEST_AGENT_MAX_REQUEST + 128]; /* error descs and decoded strings */
    union {
        struct guest_agent_vcpu vcpus[GUEST_AGENT_MAX_VCPUS];
        struct guest_agent_memory_block blocks[GUEST_AGENT_MAX_MEMORY_BLOCKS];
    } facts;

    struct guest_agent_stats stats;
};

void guest_agent_init(struct guest_agent *agent, const struct guest_agent_ops *ops,
                      void *context, const char *version);
/* Forgets any partial request (the port was closed, or the machine resumed
 * from hibernation); the counters stay. */
void guest_agent_reset(struct guest_agent *agent);
/* Takes the next bytes from the host and answers every request they
 * complete. A request that powers the machine off or hibernates it ends
 * the call: the rest of these bytes belong to a host that is gone. */
void guest_agent_feed(struct guest_agent *agent, const void *bytes, size_t length);

#endif
