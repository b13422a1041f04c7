/*
 * libFuzzer target for virtio/console_ports*.c: a device that says anything.
 *
 * Input: one byte each for max_nr_ports, the data ports and the control
 * receive buffers, then a script of operations, one byte each plus
 * arguments (OP_* below): control messages with arbitrary bytes and
 * claimed used lengths, well-formed ones (PORT_ADD, PORT_NAME, PORT_OPEN,
 * ... with any id and value), data on any queue, transmit completions,
 * tokens that were never posted, and the kernel's side: open, close, read,
 * write, reset and start again, post failures.
 *
 * Properties, beyond no ASan/UBSan report:
 *   - a used buffer the fake device does not hold on that queue is refused
 *     and changes no buffer's state;
 *   - the buffers the state machine thinks posted are exactly those the
 *     fake device holds, queue by queue, each once; control_rx_posted and
 *     readies_in_flight agree with them;
 *   - every port name is NUL-terminated, printable, of its recorded length
 *     and unique; handles and ports point at each other;
 *   - the receive rings and held lists stay within their bounds;
 *   - a read never returns more than arrived.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_check.h"
#include "virtio/console_ports.h"

#define QUEUES (2 * CONSOLE_PORTS_MAX + 2)
#define QUEUE_ENTRIES 128
#define MAX_OPS 1024

struct held_by_device {
    uint8_t *data;
    uint32_t bytes;
    void *token;
};

static struct {
    struct console_ports cp;
    uint8_t *dma;
    struct held_by_device held[QUEUES][QUEUE_ENTRIES];
    unsigned count[QUEUES];
    int fail_post;
    uint64_t arrived[CONSOLE_OPEN_MAX], read[CONSOLE_OPEN_MAX];
} h;

struct input {
    const uint8_t *p;
    size_t left;
};

static uint8_t u8(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static uint16_t u16(struct input *in)
{
    uint16_t low = u8(in);
    return (uint16_t)(low | (uint16_t)u8(in) << 8);
}

static uint32_t u32(struct input *in)
{
    uint32_t low = u16(in);
    return low | (uint32_t)u16(in) << 16;
}

HARNESS static int fake_post(void *context, unsigned queue, void *buffer, uint32_t bytes,
                             int device_writes, void *token)
{
    (void)context;
    CHECK(queue < QUEUES);
    CHECK(device_writes == (queue % 2 == 0));
    CHECK(bytes > 0);
    if (h.fail_post || h.count[queue] == QUEUE_ENTRIES)
        return -1;
    for (unsigned i = 0; i < h.count[queue]; i++)
        CHECK(h.held[queue][i].token != token);
    h.held[queue][h.count[queue]++] = (struct held_by_device){ buffer, bytes, token };
    return 0;
}

HARNESS static void fake_kick(void *context, unsigned queue)
{
    (void)context;
    CHECK(queue < QUEUES);
}

HARNESS static void fake_changed(void *context, int handle, enum console_port_change change)
{
    (void)context;
    CHECK(handle >= 0 && handle < CONSOLE_OPEN_MAX);
    CHECK(change <= CONSOLE_CHANGE_WRITABLE);
}

static const struct console_ports_ops ops = { fake_post, fake_kick, fake_changed };

/* ---- the checks -------------------------------------------------------------- */

HARNESS static int device_holds(unsigned queue, const void *token)
{
    for (unsigned i = 0; i < h.count[queue]; i++)
        if (h.held[queue][i].token == token)
            return 1;
    return 0;
}

HARNESS static void check_buffers(const struct console_buffer *array, unsigned count, unsigned queue,
                                  unsigned *posted)
{
    for (unsigned i = 0; i < count; i++) {
        const struct console_buffer *b = &array[i];
        CHECK(b->state <= CONSOLE_BUFFER_HELD);
        CHECK((b->state == CONSOLE_BUFFER_POSTED) == device_holds(queue, b));
        *posted += b->state == CONSOLE_BUFFER_POSTED;
        if (b->state == CONSOLE_BUFFER_HELD)
            CHECK(b->offset < b->length && b->length <= b->bytes);
    }
}

HARNESS static void check(void)
{
    const struct console_ports *cp = &h.cp;
    unsigned posted[QUEUES] = { 0 };

    check_buffers(cp->control_rx, CONSOLE_CONTROL_RX_BUFFERS, CONSOLE_CONTROL_RECEIVE_QUEUE,
                  &posted[CONSOLE_CONTROL_RECEIVE_QUEUE]);
    CHECK(posted[CONSOLE_CONTROL_RECEIVE_QUEUE] == cp->control_rx_posted);
    CHECK(cp->control_rx_posted <= cp->control_rx_count);
    check_buffers(cp->control_tx, CONSOLE_CONTROL_TX_SLOTS, CONSOLE_CONTROL_TRANSMIT_QUEUE,
                  &posted[CONSOLE_CONTROL_TRANSMIT_QUEUE]);
    unsigned readies = 0;
    for (unsigned i = 0; i < CONSOLE_CONTROL_TX_SLOTS; i++)
        readies += cp->control_tx[i].state == CONSOLE_BUFFER_POSTED && cp->control_tx[i].length;
    CHECK(readies == cp->readies_in_flight);
    CHECK(cp->pending_count <= CONSOLE_CONTROL_PENDING && cp->pending_start < CONSOLE_CONTROL_PENDING);
    CHECK(cp->data_ports <= cp->max_ports && cp->max_ports <= CONSOLE_PORTS_MAX);

    for (unsigned slot = 0; slot < CONSOLE_DATA_SLOTS; slot++) {
        const struct console_data_port *d = &cp->data[slot];
        int port = cp->slot_port[slot];
        if (port < 0) { /* a free slot has nothing with the device */
            for (unsigned i = 0; i < CONSOLE_RX_BUFFERS; i++)
                CHECK(d->rx[i].state == CONSOLE_BUFFER_IDLE);
            for (unsigned i = 0; i < CONSOLE_TX_BUFFERS; i++)
                CHECK(d->tx[i].state == CONSOLE_BUFFER_IDLE);
            continue;
        }
        CHECK((unsigned)port < cp->data_ports);
        for (unsigned other = 0; other < slot; other++)
            CHECK(cp->slot_port[other] != port);
        unsigned rx = console_receive_queue((unsigned)port), tx = console_transmit_queue((unsigned)port);
        check_buffers(d->rx, CONSOLE_RX_BUFFERS, rx, &posted[rx]);
        check_buffers(d->tx, CONSOLE_TX_BUFFERS, tx, &posted[tx]);
        CHECK(d->ring_count <= CONSOLE_RX_RING_BYTES && d->ring_start < CONSOLE_RX_RING_BYTES);
        unsigned held = 0, states = 0;
        for (uint8_t i = d->held_head; i != 0xff; i = d->rx[i].next_held) {
            CHECK(i < CONSOLE_RX_BUFFERS && held < CONSOLE_RX_BUFFERS);
            CHECK(d->rx[i].state == CONSOLE_BUFFER_HELD);
            held++;
        }
        for (unsigned i = 0; i < CONSOLE_RX_BUFFERS; i++)
            states += d->rx[i].state == CONSOLE_BUFFER_HELD;
        CHECK(held == states);
        if (held)
            CHECK(d->ring_count == CONSOLE_RX_RING_BYTES); /* held only while the ring is full */
    }
    for (unsigned q = 0; q < QUEUES; q++)
        CHECK(posted[q] == h.count[q]);

    for (unsigned i = 0; i < CONSOLE_PORTS_MAX; i++) {
        const struct console_port *p = &cp->ports[i];
        CHECK(p->name_length <= CONSOLE_NAME_MAX);
        if (!p->added) {
            CHECK(p->handle == -1 && p->name_length == 0);
            continue;
        }
        CHECK(i < cp->max_ports);
        CHECK(strlen(p->name) == p->name_length);
        for (unsigned k = 0; k < p->name_length; k++)
            CHECK(p->name[k] > 0x20 && p->name[k] < 0x7f);
        if (p->name_length)
            CHECK(console_ports_find(cp, p->name) == (int)i);
        if (p->refused)
            CHECK(p->name_length == 0 && !p->guest_open && p->handle == -1 && i >= cp->data_ports);
        if (p->handle >= 0) {
            CHECK(p->handle < CONSOLE_OPEN_MAX && cp->open[p->handle].in_use);
            CHECK(cp->open[p->handle].port == (int)i);
            CHECK(strcmp(cp->open[p->handle].name, p->name) == 0);
        }
    }
    for (int k = 0; k < CONSOLE_OPEN_MAX; k++) {
        const struct console_open_request *r = &cp->open[k];
        if (!r->in_use) {
            CHECK(r->port == -1);
            continue;
        }
        if (r->port >= 0) {
            CHECK(r->port < (int)cp->data_ports && cp->ports[r->port].handle == k);
            int slots = 0; /* an attached port has its data slot */
            for (unsigned slot = 0; slot < CONSOLE_DATA_SLOTS; slot++)
                slots += cp->slot_port[slot] == r->port;
            CHECK(slots == 1);
        }
        CHECK(h.read[k] <= h.arrived[k]);
    }
}

/* ---- operations ---------------------------------------------------------------- */

enum op {
    OP_RAW_CONTROL, /* arbitrary bytes into a posted control buffer, any claimed length */
    OP_EVENT,       /* a well-formed control message */
    OP_NAME,        /* PORT_NAME with arbitrary name bytes */
    OP_DATA,        /* a used data receive buffer */
    OP_COMPLETE,    /* the device gives back some transmit buffers */
    OP_BAD_TOKEN,   /* a token the device does not hold */
    OP_OPEN,
    OP_CLOSE,
    OP_READ,
    OP_WRITE,
    OP_FLUSH,
    OP_RESET,       /* freeze: the device forgets; then start again */
    OP_FAIL_POST,
    OP_COUNT,
};

static const char *const names[] = {
    "org.qemu.guest_agent.0", "com.redhat.spice.0", "a", "port.3",
};

/* Takes the k-th buffer the device holds on `queue`; 0 when it holds none. */
HARNESS static int take(unsigned queue, unsigned k, struct held_by_device *out)
{
    if (!h.count[queue])
        return 0;
    k %= h.count[queue];
    *out = h.held[queue][k];
    h.held[queue][k] = h.held[queue][--h.count[queue]];
    return 1;
}

static uint32_t pick_length(struct input *in, uint32_t honest, uint32_t bytes)
{
    uint8_t how = u8(in);

    switch (how % 8) {
    case 0: return bytes;
    case 1: return bytes + 1;
    case 2: return UINT32_MAX;
    case 3: return u32(in);
    case 4: return how >> 3; /* short */
    default: return honest;
    }
}

static void used(unsigned queue, void *token, uint32_t length)
{
    (void)console_ports_used(&h.cp, queue, token, length);
}

/* Every operation reads all its arguments before it looks at the state,
 * so a seed means the same thing whatever the device holds. */
static void op_raw_control(struct input *in)
{
    struct held_by_device b;
    uint8_t k = u8(in), copy = u8(in), bytes[255];

    for (unsigned i = 0; i < copy; i++)
        bytes[i] = u8(in);
    uint32_t length = pick_length(in, copy, CONSOLE_CONTROL_BUFFER_BYTES);
    if (!take(CONSOLE_CONTROL_RECEIVE_QUEUE, k, &b))
        return;
    memcpy(b.data, bytes, copy < b.bytes ? copy : b.bytes);
    used(CONSOLE_CONTROL_RECEIVE_QUEUE, b.token, length);
}

static uint32_t pick_id(struct input *in)
{
    uint8_t how = u8(in);
    return how < 0xf0 ? how % 36u : u32(in);
}

static void put_header(uint8_t *p, uint32_t id, uint16_t event, uint16_t value)
{
    memcpy(p, &id, 4);
    memcpy(p + 4, &event, 2);
    memcpy(p + 6, &value, 2);
}

static void op_event(struct input *in)
{
    struct held_by_device b;
    uint32_t id = pick_id(in);
    uint16_t event = u8(in) % 10, value = u8(in) % 3;

    if (!take(CONSOLE_CONTROL_RECEIVE_QUEUE, 0, &b))
        return;
    put_header(b.data, id, event, value);
    used(CONSOLE_CONTROL_RECEIVE_QUEUE, b.token, 8);
}

static void op_name(struct input *in)
{
    struct held_by_device b;
    uint32_t id = pick_id(in);
    uint8_t how = u8(in), name[CONSOLE_CONTROL_BUFFER_BYTES];
    uint32_t n;

    if (how < 0x80) { /* one of the usual names, as QEMU sends it */
        n = (uint32_t)strlen(names[how % 4]) + 1;
        memcpy(name, names[how % 4], n);
    } else {
        n = u8(in) % (CONSOLE_CONTROL_BUFFER_BYTES - 8 + 1);
        for (uint32_t i = 0; i < n; i++)
            name[i] = u8(in);
    }
    uint32_t length = pick_length(in, 8 + n, CONSOLE_CONTROL_BUFFER_BYTES);
    if (!take(CONSOLE_CONTROL_RECEIVE_QUEUE, 0, &b))
        return;
    put_header(b.data, id, CONSOLE_PORT_NAME, 1);
    memcpy(b.data + 8, name, n);
    used(CONSOLE_CONTROL_RECEIVE_QUEUE, b.token, length);
}

static void op_data(struct input *in)
{
    struct held_by_device b;
    unsigned port = u8(in) % CONSOLE_PORTS_MAX;
    unsigned queue = console_receive_queue(port);
    uint32_t n = u16(in) % (CONSOLE_RX_BUFFER_BYTES + 1);
    uint32_t length = pick_length(in, n, CONSOLE_RX_BUFFER_BYTES);

    if (!take(queue, 0, &b))
        return;
    for (uint32_t i = 0; i < n; i++)
        b.data[i] = (uint8_t)i;
    int handle = h.cp.ports[port].handle;
    uint64_t before = h.cp.stats.received_bytes;
    used(queue, b.token, length);
    if (handle >= 0)
        h.arrived[handle] += h.cp.stats.received_bytes - before;
}

static void op_complete(struct input *in)
{
    uint8_t which = u8(in), count = u8(in) % 8, length = u8(in);
    unsigned queue = which % 2 ? CONSOLE_CONTROL_TRANSMIT_QUEUE
                               : console_transmit_queue((which >> 1) % CONSOLE_PORTS_MAX);
    struct held_by_device b;

    for (unsigned i = 0; i < count && take(queue, which >> 3, &b); i++)
        used(queue, b.token, length); /* means nothing on a transmit queue */
}

static void op_bad_token(struct input *in)
{
    uint8_t how = u8(in);
    unsigned queue = u8(in) % (QUEUES + 2);
    uint32_t offset = u16(in) % sizeof(h.cp);
    void *token;

    if (how % 3 == 0) /* anywhere inside the state machine */
        token = (uint8_t *)&h.cp + offset;
    else if (how % 3 == 1) /* a buffer of another queue, or one not posted */
        token = &h.cp.data[offset % CONSOLE_DATA_SLOTS].rx[offset % CONSOLE_RX_BUFFERS];
    else
        token = &h.cp.control_rx[offset % CONSOLE_CONTROL_RX_BUFFERS];
    if (queue < QUEUES && device_holds(queue, token))
        return; /* that would be a true completion */
    struct console_ports before = h.cp;
    CHECK(console_ports_used(&h.cp, queue, token, u32(in)) == -1);
    CHECK(memcmp(&before.ports, &h.cp.ports, sizeof(before.ports)) == 0);
    CHECK(before.control_rx_posted == h.cp.control_rx_posted);
}

static void op_read(struct input *in)
{
    uint8_t buffer[8192];
    int handle = u8(in) % (CONSOLE_OPEN_MAX + 1);
    uint32_t want = u16(in) % sizeof(buffer);
    uint32_t readable = console_ports_readable(&h.cp, handle);
    uint32_t got = console_ports_read(&h.cp, handle, buffer, want);

    CHECK(got <= want);
    CHECK(got >= (want < readable ? want : readable)); /* held data may follow */
    if (handle < CONSOLE_OPEN_MAX)
        h.read[handle] += got;
}

static void op_write(struct input *in)
{
    static uint8_t bytes[4096];
    int handle = u8(in) % (CONSOLE_OPEN_MAX + 1);
    uint32_t n = u16(in) % sizeof(bytes);
    int32_t written = console_ports_write(&h.cp, handle, bytes, n);

    CHECK(written == -1 || (written >= 0 && (uint32_t)written <= n));
}

static void op_reset(struct input *in)
{
    uint8_t max_ports = u8(in), data_ports = u8(in), control = u8(in);

    console_ports_reset(&h.cp);
    memset(h.count, 0, sizeof(h.count)); /* the device reset took every buffer back */
    console_ports_start(&h.cp, max_ports % 40, data_ports % (CONSOLE_PORTS_MAX + 3), control % 40);
}

static void run(struct input *in)
{
    for (unsigned ops_done = 0; ops_done < MAX_OPS && in->left; ops_done++) {
        switch (u8(in) % OP_COUNT) {
        case OP_RAW_CONTROL: op_raw_control(in); break;
        case OP_EVENT: op_event(in); break;
        case OP_NAME: op_name(in); break;
        case OP_DATA: op_data(in); break;
        case OP_COMPLETE: op_complete(in); break;
        case OP_BAD_TOKEN: op_bad_token(in); break;
        case OP_OPEN: {
            uint8_t which = u8(in);
            int handle = console_ports_open(&h.cp, names[which % 4]);
            CHECK(handle >= -1 && handle < CONSOLE_OPEN_MAX);
            break;
        }
        case OP_CLOSE: {
            int handle = u8(in) % (CONSOLE_OPEN_MAX + 1);
            console_ports_close(&h.cp, handle);
            if (handle < CONSOLE_OPEN_MAX)
                h.arrived[handle] = h.read[handle] = 0;
            break;
        }
        case OP_READ: op_read(in); break;
        case OP_WRITE: op_write(in); break;
        case OP_FLUSH: console_ports_flush(&h.cp); break;
        case OP_RESET: op_reset(in); break;
        default: h.fail_post = u8(in) & 1; break;
        }
        check();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = { data, size };
    uint8_t max_ports = u8(&in), data_ports = u8(&in), control = u8(&in);

    memset(&h, 0, sizeof(h));
    h.dma = malloc(CONSOLE_PORTS_DMA_BYTES);
    if (!h.dma)
        abort();
    memset(h.dma, 0xa5, CONSOLE_PORTS_DMA_BYTES);
    console_ports_init(&h.cp, &ops, 0, h.dma);
    console_ports_start(&h.cp, max_ports % 40, data_ports % (CONSOLE_PORTS_MAX + 3), control % 40);
    check();
    run(&in);
    free(h.dma);
    return 0;
}
