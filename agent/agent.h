/*
 * The guest agent on the virtio-serial port org.qemu.guest_agent.0: the
 * protocol of agent/guest_agent.c over the port's byte stream, its ops
 * bound to the kernel (hibernate, power, the wall clock). libvirt talks
 * to it (docs/libvirt.md, docs/agent.md).
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <stdint.h>

#define AGENT_PORT_NAME "org.qemu.guest_agent.0"

/* Opens the port (now, or when a device announces it) and serves it from
 * a work item woken by the driver. */
void agent_init(void);
/* After a resume: a new host process, so any partial request is gone. */
void agent_resume(void);

enum agent_port_state { AGENT_PORT_ABSENT, AGENT_PORT_CLOSED, AGENT_PORT_OPEN };

struct agent_info {
    enum agent_port_state port;     /* absent: no such port; closed: no host on it */
    uint64_t commands, errors;      /* requests taken, error replies sent */
    uint64_t bytes_in, bytes_out;
    uint64_t dropped_bytes;         /* replies that found the port closed or full */
};

void agent_get_info(struct agent_info *info);
const char *agent_port_state_name(enum agent_port_state state);

#endif
