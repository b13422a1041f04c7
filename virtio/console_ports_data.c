/*
 * The virtio-console data path: receive buffers that fill a byte ring per
 * port in arrival order, and writes split into transmit buffers.
 */
#include "virtio/console_ports.h"

#include "lib/string.h"                    // memcpy
#include "virtio/console_ports_internal.h" // console_ports_*

/* ---- receive buffers ---------------------------------------------------- */

void console_ports_post_data_receive(struct console_ports *cp, unsigned port)
{
    struct console_data_port *d = console_ports_data(cp, port);

    for (unsigned i = 0; d && i < CONSOLE_RX_BUFFERS; i++) {
        struct console_buffer *b = &d->rx[i];
        if (b->state != CONSOLE_BUFFER_IDLE)
            continue;
        if (console_ports_post_buffer(cp, console_receive_queue(port), b, b->bytes, 1) != 0)
            break;
        d->kick_rx = 1;
    }
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
    d->rx[index].next_held = CONSOLE_HELD_NONE;
    if (d->held_head == CONSOLE_HELD_NONE)
        d->held_head = (uint8_t)index;
    else
        d->rx[d->held_tail].next_held = (uint8_t)index;
    d->held_tail = (uint8_t)index;
}

/* Moves held buffers into the ring in arrival order; a buffer emptied is
 * posted again. Returns the bytes moved. */
static uint32_t drain_held(struct console_ports *cp, unsigned port, int repost)
{
    struct console_data_port *d = console_ports_data(cp, port);
    uint32_t moved = 0;

    while (d && d->held_head != CONSOLE_HELD_NONE) {
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
        console_ports_post_data_receive(cp, port);
    return moved;
}

void console_ports_forget_data(struct console_ports *cp, unsigned port)
{
    struct console_data_port *d = console_ports_data(cp, port);

    if (!d)
        return;
    /* held buffers are ours again; posted ones stay with the device */
    for (unsigned i = 0; i < CONSOLE_RX_BUFFERS; i++)
        if (d->rx[i].state == CONSOLE_BUFFER_HELD)
            d->rx[i].state = CONSOLE_BUFFER_IDLE;
    d->held_head = d->held_tail = CONSOLE_HELD_NONE;
    d->ring_start = d->ring_count = 0;
}

int console_ports_data_received(struct console_ports *cp, unsigned port, void *token,
                                uint32_t length)
{
    struct console_data_port *d = console_ports_data(cp, port); /* the caller checked */
    struct console_port *p = &cp->ports[port];
    int i = console_ports_buffer_index(d->rx, CONSOLE_RX_BUFFERS, token);

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
            console_ports_post_data_receive(cp, port);
        return -1;
    }
    if (!usable || !p->guest_open || p->handle < 0 || length == 0) {
        cp->stats.dropped_bytes += length;
        if (usable)
            console_ports_post_data_receive(cp, port);
        return length ? -1 : 0;
    }
    cp->stats.received_bytes += length;
    b->state = CONSOLE_BUFFER_HELD;
    b->length = length;
    b->offset = 0;
    held_append(d, (unsigned)i);
    if (drain_held(cp, port, 1))
        console_ports_notify(cp, p->handle, CONSOLE_CHANGE_READABLE);
    return 0;
}

int console_ports_data_sent(struct console_ports *cp, unsigned port, void *token)
{
    struct console_data_port *d = console_ports_data(cp, port); /* the caller checked */
    int i = console_ports_buffer_index(d->tx, CONSOLE_TX_BUFFERS, token);

    if (i < 0 || d->tx[i].state != CONSOLE_BUFFER_POSTED) {
        cp->stats.bad_token++;
        return -1;
    }
    d->tx[i].state = CONSOLE_BUFFER_IDLE;
    console_ports_notify(cp, cp->ports[port].handle, CONSOLE_CHANGE_WRITABLE);
    return 0;
}

uint32_t console_ports_read(struct console_ports *cp, int handle, void *buffer, uint32_t length)
{
    unsigned id;
    struct console_port *p = console_ports_served_port(cp, handle, &id);
    uint8_t *out = buffer;
    uint32_t done = 0;

    struct console_data_port *d = p ? console_ports_data(cp, id) : 0;
    if (!d)
        return 0;
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
    console_ports_post_data_receive(cp, id);
    cp->stats.read_bytes += done;
    console_ports_kick_all(cp);
    return done;
}

int32_t console_ports_write(struct console_ports *cp, int handle, const void *buffer,
                            uint32_t length)
{
    unsigned id;
    struct console_port *p = console_ports_served_port(cp, handle, &id);
    const uint8_t *in = buffer;
    uint32_t done = 0;
    int sent = 0;

    struct console_data_port *d = p ? console_ports_data(cp, id) : 0;
    if (!d || !p->guest_open)
        return -1;
    if (length > INT32_MAX)
        length = INT32_MAX;
    if (!p->host_open) {
        /* QEMU discards what a port without a host side sends */
        cp->stats.host_closed_bytes += length;
        return (int32_t)length;
    }
    for (unsigned i = 0; i < CONSOLE_TX_BUFFERS && done < length; i++) {
        struct console_buffer *b = &d->tx[i];
        if (b->state != CONSOLE_BUFFER_IDLE)
            continue;
        uint32_t n = length - done < b->bytes ? length - done : b->bytes;
        memcpy(b->data, in + done, n);
        if (console_ports_post_buffer(cp, console_transmit_queue(id), b, n, 0) != 0)
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
    if (!console_ports_valid_handle(cp, handle) || cp->open[handle].port < 0)
        return 0;
    for (unsigned s = 0; s < CONSOLE_DATA_SLOTS; s++)
        if (cp->slot_port[s] == cp->open[handle].port)
            return cp->data[s].ring_count;
    return 0;
}

