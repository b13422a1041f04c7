/*
 * virtio-console glue: queues, configuration, interrupts and memory around
 * the state machine of console_ports*.c. Interrupt handlers only schedule
 * the driver's work item; every ring and port operation happens there or
 * in the caller of the virtio_console_* functions, never inside
 * interrupted code.
 */
#include "virtio/virtio_console.h"

#include "console/log.h"          // klog
#include "kernel/options.h"       // options_line
#include "kernel/work.h"          // work_*
#include "lib/string.h"           // memcpy, strlen, strncmp
#include "mm/page_alloc.h"        // page_alloc, page_order_for
#include "virtio/console_ports.h" // console_ports_*
#include "virtio/virtio.h"        // virtio_*

#define VIRTIO_TYPE_CONSOLE 3

/* feature bits (5.3.3) */
#define CONSOLE_F_SIZE 0
#define CONSOLE_F_MULTIPORT 1
#define CONSOLE_F_EMERG_WRITE 2

/* The device configuration (5.3.4). */
struct virtio_console_config {
    uint16_t cols, rows;   /* CONSOLE_F_SIZE */
    uint32_t max_nr_ports; /* CONSOLE_F_MULTIPORT */
    uint32_t emerg_wr;     /* CONSOLE_F_EMERG_WRITE */
} __attribute__((packed));

#define ECHO_BYTES 1024

static struct {
    struct virtio_device *device;
    struct console_ports *core;  /* page_alloc'd, with its DMA memory beside it */
    uint32_t max_ports, data_ports;
    int frozen;
    struct work work;
    struct work *waiters[CONSOLE_OPEN_MAX];
    uint64_t interrupts, work_runs, opened;
    /* test only (vconsole_echo=NAME): what was read and not yet written back */
    int echo_handle;
    uint8_t echo[ECHO_BYTES];
    uint32_t echo_start, echo_length;
} console = { .echo_handle = -1 };

static const struct virtio_feature_name console_feature_names[] = {
    { CONSOLE_F_SIZE, "size" }, { CONSOLE_F_MULTIPORT, "multiport" },
    { CONSOLE_F_EMERG_WRITE, "emerg_write" }, { 0, 0 },
};

/* ---- the state machine's view of the world ---------------------------- */

static int post(void *context, unsigned queue, void *buffer, uint32_t bytes, int device_writes,
                void *token)
{
    struct virtqueue *vq = console.device ? virtio_queue(console.device, queue) : 0;
    struct vq_buffer b = { (uint64_t)(uintptr_t)buffer, bytes, device_writes };

    (void)context;
    return vq && vq_add_chain(vq, &b, 1, token) == 0 ? 0 : -1;
}

static void kick(void *context, unsigned queue)
{
    (void)context;
    if (console.device && virtio_queue(console.device, queue))
        virtio_notify(console.device, queue);
}

static void changed(void *context, int handle, enum console_port_change change)
{
    (void)context;
    /* no log line: it would land in the middle of a console command */
    if (change == CONSOLE_CHANGE_OPENED)
        console.opened++;
    if (handle == console.echo_handle)
        work_schedule(&console.work);
    if (handle >= 0 && handle < CONSOLE_OPEN_MAX && console.waiters[handle])
        work_schedule(console.waiters[handle]);
}

static const struct console_ports_ops ops = { post, kick, changed };

/* The state machine and its buffers: one block, allocated on first use so
 * a port can be asked for before the device is found. */
static int ensure_core(void)
{
    if (console.core)
        return 0;
    uint64_t core = page_alloc(page_order_for(sizeof(struct console_ports)), PAGE_TAG_KERNEL);
    uint64_t dma = page_alloc(page_order_for(CONSOLE_PORTS_DMA_BYTES), PAGE_TAG_KERNEL);
    if (!core || !dma) {
        if (core)
            page_free(core);
        if (dma)
            page_free(dma);
        return -1;
    }
    console.core = (struct console_ports *)(uintptr_t)core;
    console_ports_init(console.core, &ops, 0, (uint8_t *)(uintptr_t)dma);
    return 0;
}

/* ---- the work item ---------------------------------------------------- */

static void drain_queue(unsigned queue)
{
    struct virtqueue *vq = virtio_queue(console.device, queue);
    void *token;
    uint32_t length;
    enum vq_used_status status;

    while (vq && (status = vq_get_used(vq, &token, &length)) != VQ_USED_NONE)
        console_ports_used(console.core, queue, token,
                           status == VQ_USED_BAD_LENGTH ? UINT32_MAX : length);
}

/* Test only: writes back what the echo port read, keeping what the
 * transmit buffers cannot take yet for the next run. */
static void echo(void)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        if (console.echo_length == 0) {
            console.echo_start = 0;
            console.echo_length = console_ports_read(console.core, console.echo_handle,
                                                     console.echo, ECHO_BYTES);
            if (console.echo_length == 0)
                return;
        }
        int32_t written = console_ports_write(console.core, console.echo_handle,
                                              console.echo + console.echo_start, console.echo_length);
        if (written < 0) {
            console.echo_length = 0; /* the port closed: nobody to echo to */
            return;
        }
        if (written == 0)
            return; /* the transmit buffers coming back schedule us again */
        console.echo_start += (uint32_t)written;
        console.echo_length -= (uint32_t)written;
    }
    work_schedule(&console.work); /* more waits: later, after other work */
}

static void console_work(void *context)
{
    (void)context;
    if (console.frozen || !console.device)
        return;
    console.work_runs++;
    /* the control transmit queue before the control receive queue: once
     * QEMU returns a PORT_READY its answers are in the receive queue */
    drain_queue(CONSOLE_CONTROL_TRANSMIT_QUEUE);
    drain_queue(CONSOLE_CONTROL_RECEIVE_QUEUE);
    /* only ports with a data slot have buffers posted */
    for (unsigned slot = 0; slot < CONSOLE_DATA_SLOTS; slot++) {
        int port = console.core->slot_port[slot];
        if (port < 0)
            continue;
        drain_queue(console_transmit_queue((unsigned)port));
        drain_queue(console_receive_queue((unsigned)port));
    }
    console_ports_flush(console.core);
    if (console.echo_handle >= 0)
        echo();
}

static void queue_interrupt(struct virtio_device *device, unsigned queue)
{
    (void)device;
    (void)queue;
    console.interrupts++;
    work_schedule(&console.work);
}

/* ---- probe and power management --------------------------------------- */

/* Data queues are small: a port has CONSOLE_RX_BUFFERS receive and
 * CONSOLE_TX_BUFFERS transmit buffers in flight, one descriptor each. */
#define DATA_QUEUE_SIZE 8

static int start(struct virtio_device *device)
{
    struct virtio_queue_request requests[VIRTIO_MAX_QUEUES];
    /* queues 0/1 (port 0), 2/3 (control), then a pair per port (5.3.2):
     * every port the config and the core allow, as far as the device has
     * queues (QEMU gives 2 * max_ports + 2) */
    uint32_t ports = console.max_ports < CONSOLE_PORTS_MAX ? console.max_ports : CONSOLE_PORTS_MAX;
    unsigned count = 2 * ports + 2, present = virtio_queue_count(device);

    if (count > present)
        count = present;
    count &= ~1u;
    if (count < 4) {
        device->error = "no control queues";
        return -1;
    }
    for (unsigned i = 0; i < count; i++) {
        int control = i == CONSOLE_CONTROL_RECEIVE_QUEUE || i == CONSOLE_CONTROL_TRANSMIT_QUEUE;
        /* control queues as big as the device makes them: CONSOLE_CONTROL_RX_BUFFERS */
        requests[i] = (struct virtio_queue_request){ control ? 0 : DATA_QUEUE_SIZE, 0, queue_interrupt };
    }
    if (virtio_setup_queues(device, count, requests) != 0)
        return -1;
    console.data_ports = count / 2 - 1;
    console.frozen = 0;
    virtio_device_ready(device);
    /* after DRIVER_OK: no notification before it (3.1.1) */
    struct virtqueue *control = virtio_queue(device, CONSOLE_CONTROL_RECEIVE_QUEUE);
    console_ports_start(console.core, console.max_ports, console.data_ports, control->config.size);
    work_schedule(&console.work);
    return 0;
}

static int console_probe(struct virtio_device *device)
{
    if (console.device) {
        device->error = "only one console device is driven";
        return -1;
    }
    if (!virtio_has_feature(device, CONSOLE_F_MULTIPORT)) {
        device->error = "no multiport: no named ports";
        return -1;
    }
    if (ensure_core() != 0) {
        device->error = "no memory";
        return -1;
    }
    console.max_ports = (uint32_t)VIRTIO_READ_CONFIG(device, struct virtio_console_config, max_nr_ports);
    if (console.max_ports < 1) {
        device->error = "max_nr_ports is 0";
        return -1;
    }
    console.device = device;
    if (start(device) != 0) {
        console.device = 0;
        return -1;
    }
    klog("vconsole: max_nr_ports=%u, data queues for ports 0-%u", console.max_ports,
         console.data_ports - 1);
    return 0;
}

/* The reset stops the device; QEMU closes the guest side of every port. */
static int console_freeze(struct virtio_device *device)
{
    console.frozen = 1; /* the work item stays out of the way */
    virtio_delete_queues(device);
    return 0;
}

/* Thaw (the same QEMU) and restore (a new one) alike: the device announces
 * its ports again and the ports asked for are opened again by name. */
static int console_restart(struct virtio_device *device)
{
    if (!console.frozen)
        return 0;
    console_ports_reset(console.core);
    console.echo_length = 0;
    if (virtio_reinitialize(device) != 0)
        return -1;
    console.max_ports = (uint32_t)VIRTIO_READ_CONFIG(device, struct virtio_console_config, max_nr_ports);
    return start(device);
}

static void console_remove(struct virtio_device *device)
{
    (void)device;
    console.frozen = 1;
    console_ports_reset(console.core);
    console.device = 0;
    klog("vconsole: device gone");
}

static const struct virtio_driver console_driver = {
    .name = "virtio-console",
    .device_type = VIRTIO_TYPE_CONSOLE,
    .features = 1ull << CONSOLE_F_MULTIPORT,
    .feature_names = console_feature_names,
    .probe = console_probe,
    .freeze = console_freeze,
    .thaw = console_restart,
    .restore = console_restart,
    .remove = console_remove,
};

/* ---- the kernel's side --------------------------------------------------- */

int virtio_console_open(const char *name)
{
    if (ensure_core() != 0)
        return -1;
    return console_ports_open(console.core, name);
}

void virtio_console_close(int handle)
{
    if (!console.core)
        return;
    if (handle >= 0 && handle < CONSOLE_OPEN_MAX)
        console.waiters[handle] = 0;
    console_ports_close(console.core, handle);
}

uint32_t virtio_console_read(int handle, void *buffer, uint32_t length)
{
    return console.core && !console.frozen ? console_ports_read(console.core, handle, buffer, length)
                                           : 0;
}

int32_t virtio_console_write(int handle, const void *buffer, uint32_t length)
{
    if (!console.core || console.frozen)
        return -1;
    return console_ports_write(console.core, handle, buffer, length);
}

void virtio_console_set_waiter(int handle, struct work *waiter)
{
    if (handle >= 0 && handle < CONSOLE_OPEN_MAX)
        console.waiters[handle] = waiter;
}

void virtio_console_get_info(struct virtio_console_info *info)
{
    *info = (struct virtio_console_info){
        .present = console.device != 0,
        .max_ports = console.max_ports,
        .data_ports = console.data_ports,
        .interrupts = console.interrupts,
        .work_runs = console.work_runs,
        .opened = console.opened,
    };
    if (!console.core)
        return;
    info->stats = console.core->stats;
    for (unsigned i = 0; i < CONSOLE_PORTS_MAX; i++) {
        info->ports_added += console.core->ports[i].added;
        info->ports_named += console.core->ports[i].name_length != 0;
    }
}

int virtio_console_get_port_info(int handle, struct virtio_console_port_info *info)
{
    if (!console.core || handle < 0 || handle >= CONSOLE_OPEN_MAX || !console.core->open[handle].in_use)
        return -1;
    *info = (struct virtio_console_port_info){
        .port = console_ports_handle_port(console.core, handle),
        .guest_open = console_ports_guest_open(console.core, handle),
        .host_open = console_ports_host_open(console.core, handle),
        .readable = console_ports_readable(console.core, handle),
    };
    return 0;
}

/* The value of the last `name=` among the boot options (a later word
 * wins, docs/console.md), copied into `value`. */
static int option_string(const char *name, char *value, unsigned size)
{
    const char *line = options_line();
    unsigned length = (unsigned)strlen(name);
    int found = -1;

    for (const char *p = line; *p; p++) {
        if ((p != line && p[-1] != ' ') || strncmp(p, name, length) != 0 || p[length] != '=')
            continue;
        const char *word = p + length + 1;
        unsigned n = 0;
        while (word[n] && word[n] != ' ' && n + 1 < size)
            n++;
        memcpy(value, word, n);
        value[n] = 0;
        found = n ? 0 : -1;
    }
    return found;
}

void virtio_console_register(void)
{
    char name[CONSOLE_NAME_MAX + 1];

    console.work.run = console_work;
    work_register(&console.work);
    virtio_register_driver(&console_driver);
    if (option_string("vconsole_echo", name, sizeof(name)) == 0) {
        console.echo_handle = virtio_console_open(name);
        klog("vconsole: test echo on port '%s'%s", name, console.echo_handle < 0 ? " refused" : "");
    }
}
