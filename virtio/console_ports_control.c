/*
 * The virtio-console control protocol (virtio 1.2, 5.3.6.2), in QEMU's
 * order: the driver posts control receive buffers and sends DEVICE_READY;
 * the device sends PORT_ADD per port; the driver answers PORT_READY; the
 * device then sends CONSOLE_PORT, PORT_NAME and PORT_OPEN as they apply;
 * the driver opens the ports it wants with PORT_OPEN 1. Every message is
 * checked against the port table before it changes anything.
 */
#include "virtio/console_ports.h"

#include "lib/string.h"                    // memcpy, strcmp, strlen
#include "virtio/console_ports_internal.h" // console_ports_*

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t load16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void post_control_receive(struct console_ports *cp)
{
    for (unsigned i = 0; i < cp->control_rx_count; i++) {
        struct console_buffer *b = &cp->control_rx[i];
        if (b->state != CONSOLE_BUFFER_IDLE)
            continue;
        if (console_ports_post_buffer(cp, CONSOLE_CONTROL_RECEIVE_QUEUE, b, b->bytes, 1) != 0)
            break;
        cp->control_rx_posted++;
        cp->kick_control_rx = 1;
    }
}

/* ---- outgoing control messages ------------------------------------------ */

static void queue_message(struct console_ports *cp, uint32_t id, uint16_t event, uint16_t value)
{
    if (cp->pending_count == CONSOLE_CONTROL_PENDING) {
        cp->stats.control_overflow++;
        return;
    }
    unsigned at = (cp->pending_start + cp->pending_count) % CONSOLE_CONTROL_PENDING;
    cp->pending[at] = (struct console_message){ id, event, value };
    cp->pending_count++;
}

static int is_ready(const struct console_message *m)
{
    return m->event == CONSOLE_PORT_READY && m->value;
}

static int send_message(struct console_ports *cp, const struct console_message *m)
{
    for (unsigned i = 0; i < CONSOLE_CONTROL_TX_SLOTS; i++) {
        struct console_buffer *b = &cp->control_tx[i];
        if (b->state != CONSOLE_BUFFER_IDLE)
            continue;
        uint8_t *p = b->data;
        p[0] = (uint8_t)m->id;
        p[1] = (uint8_t)(m->id >> 8);
        p[2] = (uint8_t)(m->id >> 16);
        p[3] = (uint8_t)(m->id >> 24);
        p[4] = (uint8_t)m->event;
        p[5] = (uint8_t)(m->event >> 8);
        p[6] = (uint8_t)m->value;
        p[7] = (uint8_t)(m->value >> 8);
        if (console_ports_post_buffer(cp, CONSOLE_CONTROL_TRANSMIT_QUEUE, b, CONSOLE_CONTROL_HEADER,
                                      0) != 0)
            return -1;
        b->length = (uint32_t)is_ready(m); /* remembered until the device uses it */
        cp->readies_in_flight += b->length;
        cp->kick_control_tx = 1;
        return 0;
    }
    return -1;
}

/* A PORT_READY 1 makes QEMU send up to three messages at once and drop
 * those that find no receive buffer: it waits until the buffers posted
 * cover every PORT_READY in flight. `allow_ready` is 0 outside a drain,
 * when used receive buffers may be waiting unseen. */
static void send_pending(struct console_ports *cp, int allow_ready)
{
    while (cp->pending_count) {
        const struct console_message *m = &cp->pending[cp->pending_start];
        if (is_ready(m)) {
            unsigned need = (cp->readies_in_flight + 1) * CONSOLE_REPLIES_PER_READY;
            if (!allow_ready)
                break;
            if (need > cp->control_rx_count) {
                /* a queue too small to cover even one: one at a time */
                need = cp->control_rx_count;
                if (cp->readies_in_flight)
                    break;
            }
            if (cp->control_rx_posted < need)
                break;
        }
        if (send_message(cp, m) != 0)
            break; /* every slot busy: the next used one sends more */
        cp->pending_start = (cp->pending_start + 1) % CONSOLE_CONTROL_PENDING;
        cp->pending_count--;
    }
}

void console_ports_kick_all(struct console_ports *cp)
{
    if (cp->kick_control_rx)
        cp->ops->kick(cp->context, CONSOLE_CONTROL_RECEIVE_QUEUE);
    if (cp->kick_control_tx)
        cp->ops->kick(cp->context, CONSOLE_CONTROL_TRANSMIT_QUEUE);
    cp->kick_control_rx = cp->kick_control_tx = 0;
    for (unsigned slot = 0; slot < CONSOLE_DATA_SLOTS; slot++) {
        if (cp->slot_port[slot] >= 0 && cp->data[slot].kick_rx)
            cp->ops->kick(cp->context, console_receive_queue((unsigned)cp->slot_port[slot]));
        cp->data[slot].kick_rx = 0;
    }
}

static void flush(struct console_ports *cp, int allow_ready)
{
    if (!cp->started)
        return;
    post_control_receive(cp);
    send_pending(cp, allow_ready);
    console_ports_kick_all(cp);
}

void console_ports_flush(struct console_ports *cp)
{
    flush(cp, 1);
}

void console_ports_send_device_ready(struct console_ports *cp)
{
    post_control_receive(cp);
    /* the buffers for the PORT_ADD burst are posted first (5.3.5) */
    queue_message(cp, 0, CONSOLE_DEVICE_READY, 1);
    flush(cp, 1);
}

/* ---- ports ----------------------------------------------------------------- */

static void open_port(struct console_ports *cp, unsigned id)
{
    struct console_port *p = &cp->ports[id];

    if (!p->guest_open) {
        p->guest_open = 1;
        queue_message(cp, id, CONSOLE_PORT_OPEN, 1);
    }
    if (p->host_open)
        console_ports_notify(cp, p->handle, CONSOLE_CHANGE_OPENED);
}

static void attach(struct console_ports *cp, int handle, unsigned id)
{
    if (console_ports_claim_slot(cp, id) != 0)
        return; /* the request waits; counted */
    /* receive buffers before PORT_OPEN 1: the host may send at once */
    console_ports_post_data_receive(cp, id);
    cp->ports[id].handle = (int8_t)handle;
    cp->open[handle].port = (int)id;
    open_port(cp, id);
}

void console_ports_detach(struct console_ports *cp, unsigned id)
{
    struct console_port *p = &cp->ports[id];
    int handle = p->handle;

    if (handle < 0)
        return;
    int was_open = p->guest_open && p->host_open;
    p->handle = -1;
    cp->open[handle].port = -1;
    if (was_open)
        console_ports_notify(cp, handle, CONSOLE_CHANGE_CLOSED);
}

/* A port that PORT_ADD announced and we took. */
static struct console_port *usable_port(struct console_ports *cp, uint32_t id)
{
    if (id >= cp->max_ports) {
        cp->stats.bad_id++;
        return 0;
    }
    if (!cp->ports[id].added || cp->ports[id].refused) {
        cp->stats.unknown_port++;
        return 0;
    }
    return &cp->ports[id];
}

static int printable(const uint8_t *bytes, uint32_t length)
{
    for (uint32_t i = 0; i < length; i++)
        if (bytes[i] < 0x21 || bytes[i] > 0x7e)
            return 0;
    return 1;
}

static void port_add(struct console_ports *cp, uint32_t id)
{
    if (id >= cp->max_ports) {
        cp->stats.bad_id++; /* the device must not (5.3.6.2.1) */
        return;
    }
    struct console_port *p = &cp->ports[id];
    if (p->added) {
        cp->stats.duplicate_add++;
        return;
    }
    *p = (struct console_port){ .added = 1, .handle = -1 };
    if (id >= cp->data_ports) {
        p->refused = 1; /* no data queues for it */
        cp->stats.refused_ports++;
        queue_message(cp, id, CONSOLE_PORT_READY, 0);
        return;
    }
    queue_message(cp, id, CONSOLE_PORT_READY, 1);
}

static void port_remove(struct console_ports *cp, uint32_t id)
{
    if (id >= cp->max_ports) {
        cp->stats.bad_id++;
        return;
    }
    if (!cp->ports[id].added) {
        cp->stats.unknown_port++;
        return;
    }
    console_ports_detach(cp, id);
    console_ports_forget_data(cp, id);
    cp->ports[id] = (struct console_port){ .handle = -1 };
}

static void port_name(struct console_ports *cp, struct console_port *p, unsigned id,
                      const uint8_t *bytes, uint32_t length)
{
    uint32_t name_length = 0;

    /* the name ends at a NUL (QEMU adds one) or with the message (5.3.6.2) */
    while (name_length < length && bytes[name_length] != 0)
        name_length++;
    if (name_length == 0 || name_length > CONSOLE_NAME_MAX || !printable(bytes, name_length)) {
        cp->stats.bad_name++;
        return;
    }
    if (p->name_length) {
        cp->stats.duplicate_name++; /* a port keeps its first name */
        return;
    }
    char name[CONSOLE_NAME_MAX + 1];
    memcpy(name, bytes, name_length);
    name[name_length] = 0;
    if (console_ports_find(cp, name) >= 0) {
        cp->stats.duplicate_name++;
        return;
    }
    memcpy(p->name, name, name_length + 1);
    p->name_length = (uint8_t)name_length;
    for (int h = 0; h < CONSOLE_OPEN_MAX; h++)
        if (cp->open[h].in_use && cp->open[h].port < 0 && strcmp(cp->open[h].name, name) == 0)
            attach(cp, h, id);
}

static void host_open(struct console_ports *cp, struct console_port *p, uint16_t value)
{
    int was = p->guest_open && p->host_open;

    p->host_open = value != 0;
    int now = p->guest_open && p->host_open;
    if (now && !was)
        console_ports_notify(cp, p->handle, CONSOLE_CHANGE_OPENED);
    else if (was && !now)
        console_ports_notify(cp, p->handle, CONSOLE_CHANGE_CLOSED);
}

static void control_message(struct console_ports *cp, const uint8_t *bytes, uint32_t length)
{
    struct console_port *p;

    cp->stats.messages++;
    if (length < CONSOLE_CONTROL_HEADER) {
        cp->stats.short_messages++;
        return;
    }
    uint32_t id = load32(bytes);
    uint16_t event = load16(bytes + 4), value = load16(bytes + 6);
    switch (event) {
    case CONSOLE_PORT_ADD:
        port_add(cp, id);
        break;
    case CONSOLE_PORT_REMOVE:
        port_remove(cp, id);
        break;
    case CONSOLE_PORT_NAME:
        if ((p = usable_port(cp, id)))
            port_name(cp, p, id, bytes + CONSOLE_CONTROL_HEADER, length - CONSOLE_CONTROL_HEADER);
        break;
    case CONSOLE_CONSOLE_PORT:
        /* the driver must answer PORT_OPEN 1 (5.3.6.2.2) */
        if ((p = usable_port(cp, id))) {
            p->console = 1;
            open_port(cp, id);
        }
        break;
    case CONSOLE_PORT_OPEN:
        if ((p = usable_port(cp, id)))
            host_open(cp, p, value);
        break;
    case CONSOLE_RESIZE:
        cp->stats.resize++; /* port 0's console size: nothing here shows it */
        break;
    default: /* DEVICE_READY and PORT_READY only go to the device */
        cp->stats.unknown_event++;
        break;
    }
}

/* ---- used buffers ------------------------------------------------------ */

int console_ports_control_received(struct console_ports *cp, void *token, uint32_t length)
{
    int i = console_ports_buffer_index(cp->control_rx, cp->control_rx_count, token);

    if (i < 0 || cp->control_rx[i].state != CONSOLE_BUFFER_POSTED) {
        cp->stats.bad_token++;
        return -1;
    }
    struct console_buffer *b = &cp->control_rx[i];
    b->state = CONSOLE_BUFFER_IDLE;
    cp->control_rx_posted--;
    int result = 0;
    if (length > b->bytes) {
        cp->stats.bad_length++; /* QEMU reports the whole message after truncating it */
        result = -1;
    } else {
        control_message(cp, b->data, length);
    }
    /* posted again at once: QEMU drops what finds no buffer */
    if (console_ports_post_buffer(cp, CONSOLE_CONTROL_RECEIVE_QUEUE, b, b->bytes, 1) == 0) {
        cp->control_rx_posted++;
        cp->kick_control_rx = 1;
    }
    return result;
}

int console_ports_control_sent(struct console_ports *cp, void *token)
{
    int i = console_ports_buffer_index(cp->control_tx, CONSOLE_CONTROL_TX_SLOTS, token);

    if (i < 0 || cp->control_tx[i].state != CONSOLE_BUFFER_POSTED) {
        cp->stats.bad_token++;
        return -1;
    }
    cp->control_tx[i].state = CONSOLE_BUFFER_IDLE;
    cp->readies_in_flight -= cp->control_tx[i].length;
    cp->control_tx[i].length = 0;
    return 0;
}

/* ---- opening and closing by name ---------------------------------------- */

int console_ports_open(struct console_ports *cp, const char *name)
{
    size_t length = strlen(name);
    int free_handle = -1;

    if (length == 0 || length > CONSOLE_NAME_MAX || !printable((const uint8_t *)name, (uint32_t)length))
        return -1;
    for (int h = 0; h < CONSOLE_OPEN_MAX; h++) {
        if (cp->open[h].in_use && strcmp(cp->open[h].name, name) == 0)
            return h; /* asked for already */
        if (!cp->open[h].in_use && free_handle < 0)
            free_handle = h;
    }
    if (free_handle < 0)
        return -1;
    struct console_open_request *r = &cp->open[free_handle];
    r->in_use = 1;
    r->port = -1;
    memcpy(r->name, name, length + 1);
    int id = cp->started ? console_ports_find(cp, name) : -1;
    if (id >= 0 && cp->ports[id].handle < 0) {
        attach(cp, free_handle, (unsigned)id);
        flush(cp, 0);
    }
    return free_handle;
}

void console_ports_close(struct console_ports *cp, int handle)
{
    unsigned id;
    struct console_port *p = console_ports_served_port(cp, handle, &id);

    if (!console_ports_valid_handle(cp, handle))
        return;
    if (p) {
        if (p->guest_open) {
            p->guest_open = 0;
            queue_message(cp, id, CONSOLE_PORT_OPEN, 0);
        }
        p->handle = -1;
        console_ports_forget_data(cp, id);
        console_ports_post_data_receive(cp, id); /* the held buffers go back to the device */
        flush(cp, 0);
    }
    cp->open[handle] = (struct console_open_request){ .port = -1 };
}

