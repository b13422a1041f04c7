/*
 * The guest agent's kernel side (see agent/agent.h). Requests arrive on
 * the port and are fed to the protocol core in the work item; replies go
 * into an output ring the same work item drains as the port's transmit
 * buffers come back, so no reply waits on the device inside the core.
 */
#include "agent/agent.h"

#include "agent/guest_agent.h"     // guest_agent_*
#include "arch/x86/cpu.h"          // cpu_halt_forever
#include "console/console.h"       // console_printf
#include "kernel/wall_clock.h"     // wall_clock_*
#include "kernel/work.h"           // struct work, work_*
#include "mm/page.h"               // PAGE_SIZE
#include "mm/page_alloc.h"         // page_alloc_zone
#include "pm/hibernate.h"          // hibernate
#include "pm/power.h"              // power_off, power_reboot
#include "virtio/virtio_console.h" // virtio_console_*

#define OUTPUT_BYTES 32768 /* two whole replies at the core's limit */
#define READ_CHUNK 512
#define MEMORY_BLOCK_BYTES (128ull << 20) /* Linux's block size on x86_64 */

static struct {
    struct guest_agent core; /* 33 KiB: not on a stack */
    int handle;              /* the port's, -1 until init */
    int host_was_open;
    struct work work;
    char output[OUTPUT_BYTES];
    uint32_t output_head, output_tail; /* ring: head - tail bytes waiting */
    uint64_t dropped_bytes;
} agent = { .handle = -1 };

/* ---- the output ring --------------------------------------------------- */

static void flush_output(void)
{
    while (agent.output_head != agent.output_tail) {
        uint32_t at = agent.output_tail % OUTPUT_BYTES;
        uint32_t run = agent.output_head - agent.output_tail;
        if (run > OUTPUT_BYTES - at)
            run = OUTPUT_BYTES - at;
        int32_t sent = virtio_console_write(agent.handle, agent.output + at, run);
        /* not open on our side yet (the port is announced again after a
         * thaw), or its transmit buffers are busy: the waiter runs us
         * again when that changes */
        if (sent <= 0)
            return;
        agent.output_tail += (uint32_t)sent;
    }
}

static int write_reply(void *context, const void *bytes, size_t length)
{
    (void)context;
    if (length > OUTPUT_BYTES - (agent.output_head - agent.output_tail)) {
        agent.dropped_bytes += length;
        return -1;
    }
    for (size_t i = 0; i < length; i++)
        agent.output[(agent.output_head + i) % OUTPUT_BYTES] = ((const char *)bytes)[i];
    agent.output_head += (uint32_t)length;
    flush_output();
    return 0;
}

/* ---- what the agent does and says --------------------------------------- */

static const char *suspend_disk(void *context)
{
    (void)context;
    /* the same hibernation as the console's and the power button's; a
     * failure thaws and comes back here with its reason */
    const char *failed = hibernate();
    return failed ? failed : 0;
}

static const char *shutdown(void *context, enum guest_agent_shutdown_mode mode)
{
    (void)context;
    switch (mode) {
    case GUEST_AGENT_SHUTDOWN_REBOOT:
        console_printf("reboot\n");
        power_reboot();
    case GUEST_AGENT_SHUTDOWN_HALT:
        console_printf("halt\n");
        cpu_halt_forever(); /* stopped, not powered off (as `shutdown -H`) */
    default:
        console_printf("poweroff\n");
        power_off();
    }
}

static int64_t time_ns(void *context)
{
    (void)context;
    return wall_clock_ns();
}

static const char *set_time(void *context, int has_time, int64_t ns)
{
    (void)context;
    if (!has_time)
        return wall_clock_from_hardware() == 0 ? 0 : "the hardware clock reads no valid date";
    wall_clock_set_ns(ns);
    return 0;
}

static const char *host_name(void *context)
{
    (void)context;
    return "torpor";
}

static void os_info(void *context, struct guest_agent_os_info *info)
{
    (void)context;
    *info = (struct guest_agent_os_info){
        .kernel_release = TORPOR_VERSION,
        .kernel_version = TORPOR_REVISION,
        .machine = "x86_64",
        .id = "torpor",
        .name = "torpor",
        .pretty_name = "torpor " TORPOR_VERSION,
        .version = TORPOR_VERSION,
        .version_id = TORPOR_VERSION,
    };
}

static void timezone(void *context, struct guest_agent_timezone *zone)
{
    (void)context;
    *zone = (struct guest_agent_timezone){ "UTC", 0 }; /* torpor keeps UTC */
}

static unsigned vcpus(void *context, struct guest_agent_vcpu *list, unsigned max)
{
    (void)context;
    if (max)
        list[0] = (struct guest_agent_vcpu){ 0, 1, 0 }; /* the boot CPU, the only one */
    return 1;
}

static uint64_t memory_block_size(void *context)
{
    (void)context;
    return MEMORY_BLOCK_BYTES;
}

/* The 128 MiB blocks that hold RAM, as Linux numbers them; none can go
 * offline (torpor has no memory hotplug). */
static unsigned memory_blocks(void *context, struct guest_agent_memory_block *list, unsigned max)
{
    uint64_t last = ~0ull;
    unsigned count = 0;

    (void)context;
    for (unsigned z = 0; page_alloc_zone(z); z++) {
        const struct buddy_zone *zone = page_alloc_zone(z);
        uint64_t first = zone->base_pfn * PAGE_SIZE / MEMORY_BLOCK_BYTES;
        uint64_t end = ((zone->base_pfn + zone->page_count) * PAGE_SIZE - 1) / MEMORY_BLOCK_BYTES;
        for (uint64_t block = first; block <= end; block++) {
            if (block == last)
                continue; /* two zones in one block */
            if (count < max)
                list[count] = (struct guest_agent_memory_block){ block, 1, 0 };
            count++;
            last = block;
        }
    }
    return count;
}

static const struct guest_agent_ops ops = {
    .write = write_reply,
    .suspend_disk = suspend_disk,
    .shutdown = shutdown,
    .time_ns = time_ns,
    .set_time = set_time,
    .host_name = host_name,
    .os_info = os_info,
    .timezone = timezone,
    .vcpus = vcpus,
    .memory_block_size = memory_block_size,
    .memory_blocks = memory_blocks,
};

/* ---- the work item ----------------------------------------------------- */

static void serve(void *context)
{
    struct virtio_console_port_info port;
    char bytes[READ_CHUNK];

    (void)context;
    if (virtio_console_get_port_info(agent.handle, &port) != 0)
        return;
    int host_open = port.port >= 0 && port.host_open;
    /* a client (re)connects: nothing half said carries over. Replies not
     * yet sent stay: after a thaw the port is announced again and its host
     * side opens a moment later, and the reply to the failed
     * guest-suspend-disk must still reach libvirt, which waits for it (a
     * new client skips stale replies anyway: it syncs first) */
    if (host_open && !agent.host_was_open)
        guest_agent_reset(&agent.core);
    agent.host_was_open = host_open;
    flush_output();
    for (;;) {
        uint32_t got = virtio_console_read(agent.handle, bytes, sizeof(bytes));
        if (!got)
            break;
        guest_agent_feed(&agent.core, bytes, got);
    }
}

void agent_init(void)
{
    guest_agent_init(&agent.core, &ops, 0, TORPOR_VERSION);
    agent.work.run = serve;
    work_register(&agent.work);
    agent.handle = virtio_console_open(AGENT_PORT_NAME);
    if (agent.handle >= 0)
        virtio_console_set_waiter(agent.handle, &agent.work);
    wall_clock_from_hardware();
}

void agent_resume(void)
{
    /* the host that sent anything half-way is another process now */
    guest_agent_reset(&agent.core);
    agent.output_head = agent.output_tail = 0;
    agent.host_was_open = 0;
    wall_clock_from_hardware(); /* time went on while the image slept */
    work_schedule(&agent.work);
}

void agent_get_info(struct agent_info *info)
{
    struct virtio_console_port_info port;
    enum agent_port_state state = AGENT_PORT_ABSENT;

    if (agent.handle >= 0 && virtio_console_get_port_info(agent.handle, &port) == 0 && port.port >= 0)
        state = port.guest_open && port.host_open ? AGENT_PORT_OPEN : AGENT_PORT_CLOSED;
    *info = (struct agent_info){
        .port = state,
        .commands = agent.core.stats.commands,
        .errors = agent.core.stats.errors,
        .bytes_in = agent.core.stats.bytes_in,
        .bytes_out = agent.core.stats.bytes_out,
        .dropped_bytes = agent.dropped_bytes + agent.core.stats.write_failures,
    };
}

const char *agent_port_state_name(enum agent_port_state state)
{
    return state == AGENT_PORT_OPEN ? "open" : state == AGENT_PORT_CLOSED ? "closed" : "absent";
}
