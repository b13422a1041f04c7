/*
 * virtio-console multiport state machine (virtio 1.2, 5.3.6.2), in QEMU's
 * order: the driver posts control receive buffers and sends DEVICE_READY;
 * the device sends PORT_ADD per port; the driver answers PORT_READY; the
 * device then sends CONSOLE_PORT, PORT_NAME and PORT_OPEN as they apply;
 * the driver opens the ports it wants with PORT_OPEN 1.
 */
#include "virtio/console_ports.h"

#include "lib/string.h" // memcpy, memset, strcmp, strlen

#define NONE 0xff /* end of a held-buffer list */

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t load16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void notify(struct console_ports *cp, int handle, enum console_port_change change)
{
    if (handle >= 0 && cp->ops->changed)
        cp->ops->changed(cp->context, handle, change);
}

/* ---- buffers ------------------------------------------------------------ */

static int post(struct console_ports *cp, unsigned queue, struct console_buffer *b,
                uint32_t bytes, int device_writes)
{
    if (cp->ops->post(cp->context, queue, b->data, bytes, device_writes, b) != 0) {
        cp->stats.post_failures++;
        return -1;
    }
    b->state = CONSOLE_BUFFER_POSTED;
    return 0;
}

static void post_control_receive(struct console_ports *cp)
{
    for (unsigned i = 0; i < cp->control_rx_count; i++) {
        struct console_buffer *b = &cp->control_rx[i];
        if (b->state != CONSOLE_BUFFER_IDLE)
            continue;
        if (post(cp, CONSOLE_CONTROL_RECEIVE_QUEUE, b, b->bytes, 1) != 0)
            break;
        cp->control_rx_posted++;
        cp->kick_control_rx = 1;
    }
}

static void post_data_receive(struct console_ports *cp, unsigned port)
{
    struct console_data_port *d = &cp->data[port];

    for (unsigned i = 0; i < CONSOLE_RX_BUFFERS; i++) {
        struct console_buffer *b = &d->rx[i];
        if (b->state != CONSOLE_BUFFER_IDLE)
            continue;
        if (post(cp, console_receive_queue(port), b, b->bytes, 1) != 0)
            break;
        d->kick_rx = 1;
    }
}

/* The index of `token` in `array` of `count`, or -1: a token is only ever
 * compared, never followed, until it is known to be one of ours. */
static int buffer_index(const struct console_buffer *array, unsigned count, const void *token)
{
    for (unsigned i = 0; i < count; i++)
        if (token == &array[i])
            return (int)i;
    return -1;
}

/* ---- the byte stream ------------------------------------------------------ */

static uint32_t ring_put(struct console_data_port *d, const uint8_t *bytes, uint32_t length)
{
    uint32_t room = CONSOLE_RX_RING_BYTES - d->ring_count;
    uint32_t n = length < room ? length : room;

    for (uint32_t i = 0; i < n; i++)
        d->ring[(d->ring_start + d->ring_count + i) % CONSOLE_RX_RING_BYTES] = bytes[i];
    d->ring_count += n;
    return n;
}

static void held_append(struct console_data_port *d, unsigned index)
{
    d->rx[index].next_held = NONE;
    if (d->held_head == NONE)
        d->held_head = (uint8_t)index;
    else
        d->rx[d->held_tail].next_held = (uint8_t)index;
    d->held_tail = (uint8_t)index;
}

/* Moves held buffers into the ring in arrival order; a buffer emptied is
 * posted again. Returns the bytes moved. */
static uint32_t drain_held(struct console_ports *cp, unsigned port, int repost)
{
    struct console_data_port *d = &cp->data[port];
    uint32_t moved = 0;

    while (d->held_head != NONE) {
        struct console_buffer *b = &d->rx[d->held_head];
        uint32_t n = ring_put(d, b->data + b->offset, b->length - b->offset);
        moved += n;
        b->offset += n;
        if (b->offset < b->length)
            break; /* the ring is full */
        d->held_head = b->next_held;
        b->state = CONSOLE_BUFFER_IDLE;
    }
    if (repost)
        post_data_receive(cp, port);
    return moved;
}

static void forget_data(struct console_ports *cp, unsigned port)
{
    struct console_data_port *d = &cp->data[port];

    /* held buffers are ours again; posted ones stay with the device */
    for (unsigned i = 0; i < CONSOLE_RX_BUFFERS; i++)
        if (d->rx[i].state == CONSOLE_BUFFER_HELD)
            d->rx[i].state = CONSOLE_BUFFER_IDLE;
    d->held_head = d->held_tail = NONE;
    d->ring_start = d->ring_count = 0;
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
        if (post(cp, CONSOLE_CONTROL_TRANSMIT_QUEUE, b, CONSOLE_CONTROL_HEADER, 0) != 0)
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

static void kick_all(struct console_ports *cp)
{
    if (cp->kick_control_rx)
        cp->ops->kick(cp->context, CONSOLE_CONTROL_RECEIVE_QUEUE);
    if (cp->kick_control_tx)
        cp->ops->kick(cp->context, CONSOLE_CONTROL_TRANSMIT_QUEUE);
    cp->kick_control_rx = cp->kick_control_tx = 0;
    for (unsigned port = 0; port < cp->data_ports; port++) {
        if (cp->data[port].kick_rx)
            cp->ops->kick(cp->context, console_receive_queue(port));
        cp->data[port].kick_rx = 0;
    }
}

static void flush(struct console_ports *cp, int allow_ready)
{
    if (!cp->started)
        return;
    post_control_receive(cp);
    send_pending(cp, allow_ready);
    kick_all(cp);
}

void console_ports_flush(struct console_ports *cp)
{
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
        notify(cp, p->handle, CONSOLE_CHANGE_OPENED);
}

static void attach(struct console_ports *cp, int handle, unsigned id)
{
    cp->ports[id].handle = (int8_t)handle;
    cp->open[handle].port = (int)id;
    open_port(cp, id);
}

static void detach(struct console_ports *cp, unsigned id)
{
    struct console_port *p = &cp->ports[id];
    int handle = p->handle;

    if (handle < 0)
        return;
    int was_open = p->guest_open && p->host_open;
    p->handle = -1;
    cp->open[handle].port = -1;
    if (was_open)
        notify(cp, handle, CONSOLE_CHANGE_CLOSED);
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
    post_data_receive(cp, id); /* before PORT_READY: the port may open at once */
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
    detach(cp, id);
    if (id < cp->data_ports)
        forget_data(cp, id);
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
        notify(cp, p->handle, CONSOLE_CHANGE_OPENED);
    else if (was && !now)
        notify(cp, p->handle, CONSOLE_CHANGE_CLOSED);
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

static int control_received(struct console_ports *cp, void *token, uint32_t length)
{
    int i = buffer_index(cp->control_rx, cp->control_rx_count, token);

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
    if (post(cp, CONSOLE_CONTROL_RECEIVE_QUEUE, b, b->bytes, 1) == 0) {
        cp->control_rx_posted++;
        cp->kick_control_rx = 1;
    }
    return result;
}

static int control_sent(struct console_ports *cp, void *token)
{
    int i = buffer_index(cp->control_tx, CONSOLE_CONTROL_TX_SLOTS, token);

    if (i < 0 || cp->control_tx[i].state != CONSOLE_BUFFER_POSTED) {
        cp->stats.bad_token++;
        return -1;
    }
    cp->control_tx[i].state = CONSOLE_BUFFER_IDLE;
    cp->readies_in_flight -= cp->control_tx[i].length;
    cp->control_tx[i].length = 0;
    return 0;
}

static int data_received(struct console_ports *cp, unsigned port, void *token, uint32_t length)
{
    struct console_data_port *d = &cp->data[port];
    struct console_port *p = &cp->ports[port];
    int i = buffer_index(d->rx, CONSOLE_RX_BUFFERS, token);

    if (i < 0 || d->rx[i].state != CONSOLE_BUFFER_POSTED) {
        cp->stats.bad_token++;
        return -1;
    }
    struct console_buffer *b = &d->rx[i];
    b->state = CONSOLE_BUFFER_IDLE;
    int usable = p->added && !p->refused;
    if (length > b->bytes) {
        cp->stats.bad_length++;
        if (usable)
            post_data_receive(cp, port);
        return -1;
    }
    if (!usable || !p->guest_open || p->handle < 0 || length == 0) {
        cp->stats.dropped_bytes += length;
        if (usable)
            post_data_receive(cp, port);
        return length ? -1 : 0;
    }
    cp->stats.received_bytes += length;
    b->state = CONSOLE_BUFFER_HELD;
    b->length = length;
    b->offset = 0;
    held_append(d, (unsigned)i);
    if (drain_held(cp, port, 1))
        notify(cp, p->handle, CONSOLE_CHANGE_READABLE);
    return 0;
}

static int data_sent(struct console_ports *cp, unsigned port, void *token)
{
    struct console_data_port *d = &cp->data[port];
    int i = buffer_index(d->tx, CONSOLE_TX_BUFFERS, token);

    if (i < 0 || d->tx[i].state != CONSOLE_BUFFER_POSTED) {
        cp->stats.bad_token++;
        return -1;
    }
    d->tx[i].state = CONSOLE_BUFFER_IDLE;
    notify(cp, cp->ports[port].handle, CONSOLE_CHANGE_WRITABLE);
    return 0;
}

int console_ports_used(struct console_ports *cp, unsigned queue, void *token, uint32_t length)
{
    if (!cp->started) {
        cp->stats.bad_token++;
        return -1;
    }
    if (queue == CONSOLE_CONTROL_RECEIVE_QUEUE)
        return control_received(cp, token, length);
    if (queue == CONSOLE_CONTROL_TRANSMIT_QUEUE)
        return control_sent(cp, token); /* the length means nothing (5.3.6.3) */
    unsigned port = queue < 2 ? 0 : (queue - 2) / 2;
    if (port >= cp->data_ports) {
        cp->stats.bad_token++;
        return -1;
    }
    return queue % 2 == 0 ? data_received(cp, port, token, length) : data_sent(cp, port, token);
}

/* ---- setup and reset ------------------------------------------------------- */

static void forget_all(struct console_ports *cp)
{
    for (unsigned i = 0; i < CONSOLE_PORTS_MAX; i++) {
        if (cp->ports[i].added)
            detach(cp, i);
        cp->ports[i] = (struct console_port){ .handle = -1 };
    }
    for (unsigned i = 0; i < CONSOLE_CONTROL_RX_BUFFERS; i++)
        cp->control_rx[i].state = CONSOLE_BUFFER_IDLE;
    for (unsigned i = 0; i < CONSOLE_CONTROL_TX_SLOTS; i++) {
        cp->control_tx[i].state = CONSOLE_BUFFER_IDLE;
        cp->control_tx[i].length = 0;
    }
    for (unsigned port = 0; port < CONSOLE_DATA_PORTS_MAX; port++) {
        struct console_data_port *d = &cp->data[port];
        for (unsigned i = 0; i < CONSOLE_RX_BUFFERS; i++)
            d->rx[i].state = CONSOLE_BUFFER_IDLE;
        for (unsigned i = 0; i < CONSOLE_TX_BUFFERS; i++)
            d->tx[i].state = CONSOLE_BUFFER_IDLE;
        forget_data(cp, port);
        d->kick_rx = 0;
    }
    cp->control_rx_posted = cp->readies_in_flight = 0;
    cp->pending_start = cp->pending_count = 0;
    cp->kick_control_rx = cp->kick_control_tx = 0;
    cp->started = 0;
}

static void carve(struct console_buffer *array, unsigned count, uint32_t bytes, uint8_t **memory)
{
    for (unsigned i = 0; i < count; i++) {
        array[i] = (struct console_buffer){ .data = *memory, .bytes = bytes, .next_held = NONE };
        *memory += bytes;
    }
}

void console_ports_init(struct console_ports *cp, const struct console_ports_ops *ops,
                        void *context, uint8_t *dma_memory)
{
    memset(cp, 0, sizeof(*cp));
    cp->ops = ops;
    cp->context = context;
    carve(cp->control_rx, CONSOLE_CONTROL_RX_BUFFERS, CONSOLE_CONTROL_BUFFER_BYTES, &dma_memory);
    carve(cp->control_tx, CONSOLE_CONTROL_TX_SLOTS, CONSOLE_CONTROL_HEADER, &dma_memory);
    for (unsigned port = 0; port < CONSOLE_DATA_PORTS_MAX; port++) {
        carve(cp->data[port].rx, CONSOLE_RX_BUFFERS, CONSOLE_RX_BUFFER_BYTES, &dma_memory);
        carve(cp->data[port].tx, CONSOLE_TX_BUFFERS, CONSOLE_TX_BUFFER_BYTES, &dma_memory);
    }
    for (unsigned h = 0; h < CONSOLE_OPEN_MAX; h++)
        cp->open[h].port = -1;
    forget_all(cp);
}

void console_ports_start(struct console_ports *cp, uint32_t max_ports, uint32_t data_ports,
                         unsigned control_rx_count)
{
    forget_all(cp);
    cp->max_ports = max_ports < CONSOLE_PORTS_MAX ? max_ports : CONSOLE_PORTS_MAX;
    cp->data_ports = data_ports;
    if (cp->data_ports > CONSOLE_DATA_PORTS_MAX)
        cp->data_ports = CONSOLE_DATA_PORTS_MAX;
    if (cp->data_ports > cp->max_ports)
        cp->data_ports = cp->max_ports;
    cp->control_rx_count = control_rx_count < CONSOLE_CONTROL_RX_BUFFERS ? control_rx_count
                                                                        : CONSOLE_CONTROL_RX_BUFFERS;
    cp->started = 1;
    post_control_receive(cp);
    /* the buffers for the PORT_ADD burst are posted first (5.3.5) */
    queue_message(cp, 0, CONSOLE_DEVICE_READY, 1);
    flush(cp, 1);
}

void console_ports_reset(struct console_ports *cp)
{
    forget_all(cp);
    cp->stats.resets++;
}

/* ---- the kernel's side ----------------------------------------------------- */

int console_ports_find(const struct console_ports *cp, const char *name)
{
    for (unsigned i = 0; i < cp->max_ports && i < CONSOLE_PORTS_MAX; i++)
        if (cp->ports[i].added && cp->ports[i].name_length && strcmp(cp->ports[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int valid_handle(const struct console_ports *cp, int handle)
{
    return handle >= 0 && handle < CONSOLE_OPEN_MAX && cp->open[handle].in_use;
}

/* The port a handle is served by, or NULL. */
static struct console_port *handle_port(struct console_ports *cp, int handle, unsigned *id)
{
    if (!valid_handle(cp, handle) || cp->open[handle].port < 0)
        return 0;
    *id = (unsigned)cp->open[handle].port;
    return &cp->ports[*id];
}

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
    struct console_port *p = handle_port(cp, handle, &id);

    if (!valid_handle(cp, handle))
        return;
    if (p) {
        if (p->guest_open) {
            p->guest_open = 0;
            queue_message(cp, id, CONSOLE_PORT_OPEN, 0);
        }
        p->handle = -1;
        forget_data(cp, id);
        post_data_receive(cp, id); /* the held buffers go back to the device */
        flush(cp, 0);
    }
    cp->open[handle] = (struct console_open_request){ .port = -1 };
}

uint32_t console_ports_read(struct console_ports *cp, int handle, void *buffer, uint32_t length)
{
    unsigned id;
    struct console_port *p = handle_port(cp, handle, &id);
    uint8_t *out = buffer;
    uint32_t done = 0;

    if (!p)
        return 0;
    struct console_data_port *d = &cp->data[id];
    for (;;) {
        while (done < length && d->ring_count) {
            out[done++] = d->ring[d->ring_start];
            d->ring_start = (d->ring_start + 1) % CONSOLE_RX_RING_BYTES;
            d->ring_count--;
        }
        /* the room just made takes what waits in held buffers */
        if (drain_held(cp, id, 0) == 0 || done == length)
            break;
    }
    post_data_receive(cp, id);
    cp->stats.read_bytes += done;
    kick_all(cp);
    return done;
}

int32_t console_ports_write(struct console_ports *cp, int handle, const void *buffer,
                            uint32_t length)
{
    unsigned id;
    struct console_port *p = handle_port(cp, handle, &id);
    const uint8_t *in = buffer;
    uint32_t done = 0;
    int sent = 0;

    if (!p || !p->guest_open)
        return -1;
    if (length > INT32_MAX)
        length = INT32_MAX;
    if (!p->host_open) {
        /* QEMU discards what a port without a host side sends */
        cp->stats.host_closed_bytes += length;
        return (int32_t)length;
    }
    struct console_data_port *d = &cp->data[id];
    for (unsigned i = 0; i < CONSOLE_TX_BUFFERS && done < length; i++) {
        struct console_buffer *b = &d->tx[i];
        if (b->state != CONSOLE_BUFFER_IDLE)
            continue;
        uint32_t n = length - done < b->bytes ? length - done : b->bytes;
        memcpy(b->data, in + done, n);
        if (post(cp, console_transmit_queue(id), b, n, 0) != 0)
            break;
        done += n;
        sent = 1;
    }
    if (sent)
        cp->ops->kick(cp->context, console_transmit_queue(id));
    cp->stats.written_bytes += done;
    return (int32_t)done;
}

uint32_t console_ports_readable(const struct console_ports *cp, int handle)
{
    if (!valid_handle(cp, handle) || cp->open[handle].port < 0)
        return 0;
    return cp->data[cp->open[handle].port].ring_count;
}

int console_ports_handle_port(const struct console_ports *cp, int handle)
{
    return valid_handle(cp, handle) ? cp->open[handle].port : -1;
}

int console_ports_guest_open(const struct console_ports *cp, int handle)
{
    int id = console_ports_handle_port(cp, handle);
    return id >= 0 && cp->ports[id].guest_open;
}

int console_ports_host_open(const struct console_ports *cp, int handle)
{
    int id = console_ports_handle_port(cp, handle);
    return id >= 0 && cp->ports[id].host_open;
}
