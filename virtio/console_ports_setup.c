/*
 * The virtio-console state set up and down (see virtio/console_ports.h):
 * buffers carved from DMA memory, start and reset, each used buffer sent
 * to its queue's handler, and the lookups the pieces share.
 */
#include "virtio/console_ports.h"

#include "lib/string.h"                    // memset, strcmp
#include "virtio/console_ports_internal.h" // console_ports_*

void console_ports_notify(struct console_ports *cp, int handle, enum console_port_change change)
{
    if (handle >= 0 && cp->ops->changed)
        cp->ops->changed(cp->context, handle, change);
}

/* ---- buffers ------------------------------------------------------------ */

int console_ports_post_buffer(struct console_ports *cp, unsigned queue, struct console_buffer *b,
                              uint32_t bytes, int device_writes)
{
    if (cp->ops->post(cp->context, queue, b->data, bytes, device_writes, b) != 0) {
        cp->stats.post_failures++;
        return -1;
    }
    b->state = CONSOLE_BUFFER_POSTED;
    return 0;
}

int console_ports_buffer_index(const struct console_buffer *array, unsigned count,
                               const void *token)
{
    for (unsigned i = 0; i < count; i++)
        if (token == &array[i])
            return (int)i;
    return -1;
}

/* ---- data slots --------------------------------------------------------- */

static int slot_of(const struct console_ports *cp, unsigned port)
{
    for (int s = 0; s < CONSOLE_DATA_SLOTS; s++)
        if (cp->slot_port[s] == (int)port)
            return s;
    return -1;
}

struct console_data_port *console_ports_data(struct console_ports *cp, unsigned port)
{
    int s = slot_of(cp, port);

    return s < 0 ? 0 : &cp->data[s];
}

int console_ports_claim_slot(struct console_ports *cp, unsigned port)
{
    if (slot_of(cp, port) >= 0)
        return 0;
    for (int s = 0; s < CONSOLE_DATA_SLOTS; s++) {
        if (cp->slot_port[s] < 0) {
            cp->slot_port[s] = (int8_t)port;
            return 0;
        }
    }
    cp->stats.no_data_slot++;
    return -1;
}

/* ---- used buffers ------------------------------------------------------ */

int console_ports_used(struct console_ports *cp, unsigned queue, void *token, uint32_t length)
{
    if (!cp->started) {
        cp->stats.bad_token++;
        return -1;
    }
    if (queue == CONSOLE_CONTROL_RECEIVE_QUEUE)
        return console_ports_control_received(cp, token, length);
    if (queue == CONSOLE_CONTROL_TRANSMIT_QUEUE)
        return console_ports_control_sent(cp, token); /* the length means nothing (5.3.6.3) */
    unsigned port = queue < 2 ? 0 : (queue - 2) / 2;
    if (port >= cp->data_ports || !console_ports_data(cp, port)) {
        cp->stats.bad_token++; /* nothing was ever posted there */
        return -1;
    }
    return queue % 2 == 0 ? console_ports_data_received(cp, port, token, length)
                          : console_ports_data_sent(cp, port, token);
}

/* ---- setup and reset ------------------------------------------------------- */

static void forget_all(struct console_ports *cp)
{
    for (unsigned i = 0; i < CONSOLE_PORTS_MAX; i++) {
        if (cp->ports[i].added)
            console_ports_detach(cp, i);
        cp->ports[i] = (struct console_port){ .handle = -1 };
    }
    for (unsigned i = 0; i < CONSOLE_CONTROL_RX_BUFFERS; i++)
        cp->control_rx[i].state = CONSOLE_BUFFER_IDLE;
    for (unsigned i = 0; i < CONSOLE_CONTROL_TX_SLOTS; i++) {
        cp->control_tx[i].state = CONSOLE_BUFFER_IDLE;
        cp->control_tx[i].length = 0;
    }
    /* the device forgot every buffer: each slot is free again */
    for (unsigned slot = 0; slot < CONSOLE_DATA_SLOTS; slot++) {
        struct console_data_port *d = &cp->data[slot];
        for (unsigned i = 0; i < CONSOLE_RX_BUFFERS; i++)
            d->rx[i].state = CONSOLE_BUFFER_IDLE;
        for (unsigned i = 0; i < CONSOLE_TX_BUFFERS; i++)
            d->tx[i].state = CONSOLE_BUFFER_IDLE;
        d->held_head = d->held_tail = CONSOLE_HELD_NONE;
        d->ring_start = d->ring_count = 0;
        d->kick_rx = 0;
        cp->slot_port[slot] = -1;
    }
    cp->control_rx_posted = cp->readies_in_flight = 0;
    cp->pending_start = cp->pending_count = 0;
    cp->kick_control_rx = cp->kick_control_tx = 0;
    cp->started = 0;
}

static void carve(struct console_buffer *array, unsigned count, uint32_t bytes, uint8_t **memory)
{
    for (unsigned i = 0; i < count; i++) {
        array[i] = (struct console_buffer){ .data = *memory, .bytes = bytes,
                                            .next_held = CONSOLE_HELD_NONE };
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
    for (unsigned slot = 0; slot < CONSOLE_DATA_SLOTS; slot++) {
        carve(cp->data[slot].rx, CONSOLE_RX_BUFFERS, CONSOLE_RX_BUFFER_BYTES, &dma_memory);
        carve(cp->data[slot].tx, CONSOLE_TX_BUFFERS, CONSOLE_TX_BUFFER_BYTES, &dma_memory);
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
    if (cp->data_ports > cp->max_ports)
        cp->data_ports = cp->max_ports;
    cp->control_rx_count = control_rx_count < CONSOLE_CONTROL_RX_BUFFERS ? control_rx_count
                                                                        : CONSOLE_CONTROL_RX_BUFFERS;
    cp->started = 1;
    console_ports_send_device_ready(cp);
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

int console_ports_valid_handle(const struct console_ports *cp, int handle)
{
    return handle >= 0 && handle < CONSOLE_OPEN_MAX && cp->open[handle].in_use;
}

struct console_port *console_ports_served_port(struct console_ports *cp, int handle, unsigned *id)
{
    if (!console_ports_valid_handle(cp, handle) || cp->open[handle].port < 0)
        return 0;
    *id = (unsigned)cp->open[handle].port;
    return &cp->ports[*id];
}

int console_ports_handle_port(const struct console_ports *cp, int handle)
{
    return console_ports_valid_handle(cp, handle) ? cp->open[handle].port : -1;
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
