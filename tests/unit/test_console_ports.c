/* Host unit tests for virtio/console_ports*.c: the virtio-console multiport state machine
 * against a fake transport with a small model of QEMU 7.2's virtio-serial-bus (its
 * control message order, dropped messages when no buffer is posted, truncation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/console_ports.h"

#define SIM_PORTS 32
#define QUEUES (2 * SIM_PORTS + 2) /* port 0, control, then a pair per port (5.3.2) */
#define QUEUE_ENTRIES 128
#define HOST_BYTES 65536
#define LOG_MAX 256

/* ---- the fake transport and the simulated device ------------------------- */

struct posted {
    uint8_t *data;
    uint32_t bytes;
    void *token;
};

struct used {
    void *token;
    uint32_t length;
};

struct sim_port {
    int exists;
    char name[300];
    int console;
    int host_connected, guest_connected;
    int refused;                 /* the driver answered PORT_READY 0 */
    uint8_t host_rx[HOST_BYTES]; /* what the guest sent */
    size_t host_rx_count;
};

struct guest_message {
    uint32_t id;
    uint16_t event, value;
};

struct change {
    int handle;
    enum console_port_change change;
};

struct fake {
    struct console_ports cp;
    uint8_t *dma;
    struct posted avail[QUEUES][QUEUE_ENTRIES];
    unsigned avail_count[QUEUES];
    struct used used[QUEUES][QUEUE_ENTRIES];
    unsigned used_count[QUEUES];
    unsigned queue_size[QUEUES];
    unsigned kicks[QUEUES];
    int fail_post;
    int slow;            /* the device does not process the control transmit queue on kick */
    struct sim_port ports[SIM_PORTS];
    unsigned control_dropped; /* control messages lost: no buffer posted */
    struct guest_message log[LOG_MAX]; /* control messages the driver sent, in order */
    unsigned log_count;
    struct change changes[LOG_MAX];
    unsigned change_count;
};

static unsigned rx_queue_of(unsigned port)
{
    return console_receive_queue(port);
}

static int fake_post(void *context, unsigned queue, void *buffer, uint32_t bytes, int device_writes,
                     void *token)
{
    struct fake *f = context;

    assert_true(queue < QUEUES);
    /* receive queues are even: device-writable only, transmit queues readable only (5.3.6.1) */
    assert_int_equal(device_writes, queue % 2 == 0);
    if (queue == CONSOLE_CONTROL_RECEIVE_QUEUE)
        assert_true(bytes >= CONSOLE_CONTROL_BUFFER_BYTES);
    if (f->fail_post || f->avail_count[queue] + f->used_count[queue] >= f->queue_size[queue])
        return -1;
    for (unsigned i = 0; i < f->avail_count[queue]; i++)
        assert_ptr_not_equal(f->avail[queue][i].token, token); /* posted twice */
    f->avail[queue][f->avail_count[queue]++] = (struct posted){ buffer, bytes, token };
    return 0;
}

static int pop(struct fake *f, unsigned queue, struct posted *out)
{
    if (!f->avail_count[queue])
        return 0;
    *out = f->avail[queue][0];
    memmove(&f->avail[queue][0], &f->avail[queue][1], --f->avail_count[queue] * sizeof(*out));
    return 1;
}

static void push(struct fake *f, unsigned queue, void *token, uint32_t length)
{
    assert_true(f->used_count[queue] < QUEUE_ENTRIES);
    f->used[queue][f->used_count[queue]++] = (struct used){ token, length };
}

/* QEMU's send_control_msg: the first posted buffer, or the message is lost;
 * copied as far as the buffer goes, the used length is the whole message. */
static void sim_send(struct fake *f, const void *message, uint32_t length)
{
    struct posted b;

    if (!pop(f, CONSOLE_CONTROL_RECEIVE_QUEUE, &b)) {
        f->control_dropped++;
        return;
    }
    memcpy(b.data, message, length < b.bytes ? length : b.bytes);
    push(f, CONSOLE_CONTROL_RECEIVE_QUEUE, b.token, length);
}

static void sim_event(struct fake *f, uint32_t id, uint16_t event, uint16_t value)
{
    uint8_t m[8];

    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    sim_send(f, m, 8);
}

static void sim_name(struct fake *f, uint32_t id, const char *name)
{
    uint8_t m[400];
    size_t n = strlen(name);

    uint16_t event = CONSOLE_PORT_NAME, value = 1;
    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    memcpy(m + 8, name, n);
    m[8 + n] = 0; /* QEMU appends a NUL */
    sim_send(f, m, (uint32_t)(8 + n + 1));
}

/* QEMU's handle_control_message for what the driver sends */
static void sim_control(struct fake *f, const uint8_t *m, uint32_t length)
{
    struct guest_message g;

    assert_int_equal(length, 8);
    memcpy(&g.id, m, 4);
    memcpy(&g.event, m + 4, 2);
    memcpy(&g.value, m + 6, 2);
    assert_true(f->log_count < LOG_MAX);
    f->log[f->log_count++] = g;
    if (g.event == CONSOLE_DEVICE_READY) {
        assert_int_equal(g.value, 1);
        for (uint32_t id = 0; id < SIM_PORTS; id++)
            if (f->ports[id].exists)
                sim_event(f, id, CONSOLE_PORT_ADD, 1);
        return;
    }
    if (g.id >= SIM_PORTS || !f->ports[g.id].exists)
        return; /* "Unexpected port id" */
    struct sim_port *p = &f->ports[g.id];
    if (g.event == CONSOLE_PORT_READY) {
        if (!g.value) {
            p->refused = 1;
            return;
        }
        if (p->console)
            sim_event(f, g.id, CONSOLE_CONSOLE_PORT, 1);
        if (p->name[0])
            sim_name(f, g.id, p->name);
        if (p->host_connected)
            sim_event(f, g.id, CONSOLE_PORT_OPEN, 1);
    } else if (g.event == CONSOLE_PORT_OPEN) {
        p->guest_connected = g.value;
    }
}

static void sim_control_out(struct fake *f)
{
    struct posted b;

    while (pop(f, CONSOLE_CONTROL_TRANSMIT_QUEUE, &b)) {
        sim_control(f, b.data, b.bytes);
        push(f, CONSOLE_CONTROL_TRANSMIT_QUEUE, b.token, 0);
    }
}

static void sim_data_out(struct fake *f, unsigned queue)
{
    unsigned port = queue == 1 ? 0 : (queue - 3) / 2;
    struct posted b;

    while (pop(f, queue, &b)) {
        struct sim_port *p = &f->ports[port];
        if (p->host_connected) { /* else discarded, as QEMU does */
            assert_true(p->host_rx_count + b.bytes <= HOST_BYTES);
            memcpy(p->host_rx + p->host_rx_count, b.data, b.bytes);
            p->host_rx_count += b.bytes;
        }
        push(f, queue, b.token, 0);
    }
}

static void fake_kick(void *context, unsigned queue)
{
    struct fake *f = context;

    assert_true(queue < QUEUES);
    f->kicks[queue]++;
    if (queue == CONSOLE_CONTROL_TRANSMIT_QUEUE && !f->slow)
        sim_control_out(f);
    else if (queue % 2 == 1 && queue != CONSOLE_CONTROL_TRANSMIT_QUEUE)
        sim_data_out(f, queue);
}

static void fake_changed(void *context, int handle, enum console_port_change change)
{
    struct fake *f = context;

    assert_true(f->change_count < LOG_MAX);
    f->changes[f->change_count++] = (struct change){ handle, change };
}

static const struct console_ports_ops ops = { fake_post, fake_kick, fake_changed };

/* The host writes to a port: only while both sides are open, into posted
 * receive buffers (QEMU's virtio_serial_write). Returns the bytes taken. */
static size_t host_write(struct fake *f, unsigned port, const void *bytes, size_t length)
{
    struct sim_port *p = &f->ports[port];
    const uint8_t *in = bytes;
    size_t done = 0;
    struct posted b;

    if (!p->host_connected || !p->guest_connected)
        return 0;
    while (done < length && pop(f, rx_queue_of(port), &b)) {
        uint32_t n = (uint32_t)(length - done < b.bytes ? length - done : b.bytes);
        memcpy(b.data, in + done, n);
        push(f, rx_queue_of(port), b.token, n);
        done += n;
    }
    return done;
}

/* Hands every used buffer to the driver, transmit queues first, until
 * nothing moves (a flush may make the device answer). */
static void deliver(struct fake *f)
{
    for (int round = 0; round < 100; round++) {
        int moved = 0;
        for (unsigned k = 0; k < QUEUES; k++) {
            /* 3, 2, 1, 0, 5, 4, 7, 6, ...: each transmit queue before its receive queue */
            unsigned q = k < 4 ? 3 - k : k ^ 1;
            struct used taken[QUEUE_ENTRIES];
            unsigned count = f->used_count[q];
            memcpy(taken, f->used[q], count * sizeof(taken[0]));
            f->used_count[q] = 0; /* the driver has them back: room in the ring */
            for (unsigned i = 0; i < count; i++) {
                console_ports_used(&f->cp, q, taken[i].token, taken[i].length);
                moved = 1;
            }
        }
        console_ports_flush(&f->cp);
        for (unsigned q = 0; q < QUEUES; q++)
            moved |= f->used_count[q] != 0; /* the flush made the device answer */
        if (!moved)
            return;
    }
    fail_msg("deliver: no end");
}

/* A device reset: QEMU forgets the rings and closes every guest side. */
static void sim_reset(struct fake *f)
{
    memset(f->avail_count, 0, sizeof(f->avail_count));
    memset(f->used_count, 0, sizeof(f->used_count));
    for (unsigned i = 0; i < SIM_PORTS; i++)
        f->ports[i].guest_connected = 0;
}

static void sim_add_port(struct fake *f, unsigned id, const char *name, int host_connected)
{
    struct sim_port *p = &f->ports[id];

    memset(p, 0, sizeof(*p));
    p->exists = 1;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->host_connected = host_connected;
}

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dma = malloc(CONSOLE_PORTS_DMA_BYTES);
    assert_non_null(f->dma);
    memset(f->dma, 0xa5, CONSOLE_PORTS_DMA_BYTES);
    for (unsigned q = 0; q < QUEUES; q++)
        f->queue_size[q] = q == 2 || q == 3 ? 32 : 128; /* QEMU's sizes */
    console_ports_init(&f->cp, &ops, f, f->dma);
    return f;
}

static void fake_free(struct fake *f)
{
    free(f->dma);
    free(f);
}

static int teardown(void **state)
{
    fake_free(*state);
    return 0;
}

static int setup(void **state)
{
    *state = fake_new();
    return 0;
}

static const char *AGENT = "org.qemu.guest_agent.0";

/* the common case: the agent on port 1, host side connected; a second port */
static void boot(struct fake *f)
{
    sim_add_port(f, 1, AGENT, 1);
    sim_add_port(f, 2, "org.example.other", 0);
    console_ports_start(&f->cp, 31, 3, 32);
    deliver(f);
}

static unsigned count_messages(const struct fake *f, uint32_t id, uint16_t event, uint16_t value)
{
    unsigned n = 0;

    for (unsigned i = 0; i < f->log_count; i++)
        n += f->log[i].id == id && f->log[i].event == event && f->log[i].value == value;
    return n;
}

static unsigned stats_refusals(const struct console_ports_stats *s)
{
    return (unsigned)(s->short_messages + s->bad_length + s->bad_token + s->bad_id + s->unknown_port +
                      s->duplicate_add + s->bad_name + s->duplicate_name + s->unknown_event +
                      s->control_overflow + s->post_failures + s->dropped_bytes);
}

/* ---- the handshake ---------------------------------------------------------- */

static void test_handshake_in_qemu_order(void **state)
{
    struct fake *f = *state;

    int h = console_ports_open(&f->cp, AGENT);
    assert_int_equal(h, 0);
    assert_int_equal(console_ports_handle_port(&f->cp, h), -1);
    boot(f);

    /* DEVICE_READY after the control buffers, PORT_READY per port, then the open */
    assert_int_equal(f->log_count, 4);
    assert_int_equal(f->log[0].event, CONSOLE_DEVICE_READY);
    assert_int_equal(f->log[0].value, 1);
    assert_int_equal(f->log[1].event, CONSOLE_PORT_READY);
    assert_int_equal(f->log[1].id, 1);
    assert_int_equal(f->log[1].value, 1);
    assert_int_equal(f->log[2].event, CONSOLE_PORT_READY);
    assert_int_equal(f->log[2].id, 2);
    assert_int_equal(f->log[3].event, CONSOLE_PORT_OPEN);
    assert_int_equal(f->log[3].id, 1);
    assert_int_equal(f->log[3].value, 1);
    assert_true(f->ports[1].guest_connected);
    assert_false(f->ports[2].guest_connected);

    assert_int_equal(console_ports_handle_port(&f->cp, h), 1);
    assert_true(console_ports_guest_open(&f->cp, h));
    assert_true(console_ports_host_open(&f->cp, h));
    assert_int_equal(console_ports_find(&f->cp, AGENT), 1);
    assert_int_equal(console_ports_find(&f->cp, "org.example.other"), 2);
    assert_int_equal(console_ports_find(&f->cp, "nothing"), -1);
    assert_true(f->cp.ports[2].added && !f->cp.ports[2].guest_open);

    /* every control buffer posted again, nothing lost or refused */
    assert_int_equal(f->cp.control_rx_posted, 32);
    assert_int_equal(f->avail_count[2], 32);
    assert_int_equal(f->control_dropped, 0);
    assert_int_equal(stats_refusals(&f->cp.stats), 0);
    assert_int_equal(f->cp.stats.messages, 2 + 2 + 1); /* 2 ADD, 2 NAME, 1 OPEN */
    /* receive buffers only for the port a handle names (a data slot each) */
    assert_int_equal(f->avail_count[4], CONSOLE_RX_BUFFERS);
    assert_int_equal(f->avail_count[6], 0);
    /* the reader was told once the port opened */
    assert_int_equal(f->change_count, 1);
    assert_int_equal(f->changes[0].handle, h);
    assert_int_equal(f->changes[0].change, CONSOLE_CHANGE_OPENED);
}

static void test_open_after_the_handshake(void **state)
{
    struct fake *f = *state;

    boot(f);
    assert_int_equal(count_messages(f, 2, CONSOLE_PORT_OPEN, 1), 0);
    int h = console_ports_open(&f->cp, "org.example.other");
    assert_true(h >= 0);
    assert_int_equal(console_ports_open(&f->cp, "org.example.other"), h); /* asked twice: one handle */
    assert_int_equal(count_messages(f, 2, CONSOLE_PORT_OPEN, 1), 1);
    assert_true(f->ports[2].guest_connected);
    assert_true(console_ports_guest_open(&f->cp, h));
    assert_false(console_ports_host_open(&f->cp, h));
    assert_int_equal(f->change_count, 0); /* the host side is not open yet */

    /* the host connects, then goes away again */
    sim_event(f, 2, CONSOLE_PORT_OPEN, 1);
    deliver(f);
    assert_true(console_ports_host_open(&f->cp, h));
    sim_event(f, 2, CONSOLE_PORT_OPEN, 0);
    deliver(f);
    assert_false(console_ports_host_open(&f->cp, h));
    assert_int_equal(f->change_count, 2);
    assert_int_equal(f->changes[0].change, CONSOLE_CHANGE_OPENED);
    assert_int_equal(f->changes[1].change, CONSOLE_CHANGE_CLOSED);

    /* written while the host side is closed: gone, as QEMU would discard it */
    assert_int_equal(console_ports_write(&f->cp, h, "lost", 4), 4);
    assert_int_equal(f->cp.stats.host_closed_bytes, 4);
    assert_int_equal(f->ports[2].host_rx_count, 0);
}

static void test_close_sends_port_open_0(void **state)
{
    struct fake *f = *state;

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    console_ports_close(&f->cp, h);
    assert_int_equal(count_messages(f, 1, CONSOLE_PORT_OPEN, 0), 1);
    assert_false(f->ports[1].guest_connected);
    assert_int_equal(console_ports_write(&f->cp, h, "x", 1), -1);
    assert_int_equal(console_ports_handle_port(&f->cp, h), -1);
    /* data the host still had in flight is dropped and counted */
    struct posted b;
    assert_true(pop(f, 4, &b));
    memcpy(b.data, "late", 4);
    push(f, 4, b.token, 4);
    deliver(f);
    assert_int_equal(f->cp.stats.dropped_bytes, 4);
    assert_int_equal(f->avail_count[4], CONSOLE_RX_BUFFERS); /* posted again */
}

static void test_console_port_is_opened(void **state)
{
    struct fake *f = *state;

    sim_add_port(f, 0, "", 1);
    f->ports[0].console = 1;
    console_ports_start(&f->cp, 31, 3, 32);
    deliver(f);
    /* CONSOLE_PORT must be answered with PORT_OPEN 1 (5.3.6.2.2) */
    assert_int_equal(count_messages(f, 0, CONSOLE_PORT_OPEN, 1), 1);
    assert_true(f->cp.ports[0].console);
    assert_true(f->ports[0].guest_connected);
    /* nobody reads it: no receive buffers, so the host keeps its data */
    assert_int_equal(f->avail_count[0], 0);
    assert_int_equal(host_write(f, 0, "abc", 3), 0);
    deliver(f);
    assert_int_equal(f->cp.stats.dropped_bytes, 0);
}

static void test_ports_without_queues_are_refused(void **state)
{
    struct fake *f = *state;

    sim_add_port(f, 1, AGENT, 1);
    sim_add_port(f, 3, "org.example.far", 1);
    console_ports_start(&f->cp, 31, 2, 32); /* queues for ports 0 and 1 only */
    deliver(f);
    assert_int_equal(count_messages(f, 3, CONSOLE_PORT_READY, 0), 1);
    assert_int_equal(count_messages(f, 1, CONSOLE_PORT_READY, 1), 1);
    assert_true(f->ports[3].refused);
    assert_int_equal(f->cp.stats.refused_ports, 1);
    /* a device that names or opens it anyway is not believed */
    sim_name(f, 3, "org.example.far");
    sim_event(f, 3, CONSOLE_PORT_OPEN, 1);
    deliver(f);
    assert_int_equal(f->cp.stats.unknown_port, 2);
    assert_int_equal(console_ports_find(&f->cp, "org.example.far"), -1);
    assert_int_equal(console_ports_open(&f->cp, "org.example.far"), 0);
    assert_int_equal(count_messages(f, 3, CONSOLE_PORT_OPEN, 1), 0);
}

/* 31 ports, every one named and connected: the PORT_ADD burst fills 31 of the
 * 32 buffers, and each PORT_READY makes QEMU send two more messages at once.
 * Pacing the PORT_READYs keeps a buffer for every one of them. */
static void test_many_ports_lose_no_control_message(void **state)
{
    struct fake *f = *state;
    char name[32];

    for (unsigned id = 1; id < 32; id++) {
        snprintf(name, sizeof(name), "port.%u", id);
        sim_add_port(f, id, name, 1);
    }
    console_ports_start(&f->cp, 32, 4, 32);
    deliver(f);
    assert_int_equal(f->control_dropped, 0);
    /* ports 1..3 have data queues; the others are refused, each once */
    for (unsigned id = 1; id < 32; id++) {
        snprintf(name, sizeof(name), "port.%u", id);
        assert_int_equal(console_ports_find(&f->cp, name), id < 4 ? (int)id : -1);
        assert_int_equal(f->cp.ports[id].host_open, id < 4);
        assert_int_equal(count_messages(f, id, CONSOLE_PORT_READY, id < 4), 1);
        assert_int_equal(f->ports[id].refused, id >= 4);
    }
    assert_int_equal(f->cp.stats.refused_ports, 28);
    assert_int_equal(f->cp.stats.messages, 31 + 3 * 2);
    assert_int_equal(f->cp.control_rx_posted, 32);
    assert_int_equal(f->cp.readies_in_flight, 0);
}

static void test_few_control_buffers_are_paced(void **state)
{
    struct fake *f = *state;

    sim_add_port(f, 1, AGENT, 1);
    sim_add_port(f, 2, "org.example.other", 1);
    f->ports[2].console = 1;
    f->queue_size[2] = 3; /* a small control receive queue */
    console_ports_start(&f->cp, 31, 3, 3);
    assert_int_equal(f->cp.control_rx_posted, 3);
    deliver(f);
    assert_int_equal(f->control_dropped, 0);
    assert_int_equal(console_ports_find(&f->cp, AGENT), 1);
    assert_int_equal(console_ports_find(&f->cp, "org.example.other"), 2);
    assert_true(f->cp.ports[1].host_open && f->cp.ports[2].host_open && f->cp.ports[2].console);
}

/* ---- the byte stream ---------------------------------------------------------- */

static void test_echo(void **state)
{
    struct fake *f = *state;
    char buffer[64];

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    assert_int_equal(host_write(f, 1, "ping\n", 5), 5);
    deliver(f);
    assert_int_equal(console_ports_readable(&f->cp, h), 5);
    assert_int_equal(f->changes[f->change_count - 1].change, CONSOLE_CHANGE_READABLE);
    assert_int_equal(console_ports_read(&f->cp, h, buffer, 2), 2);
    assert_int_equal(console_ports_read(&f->cp, h, buffer + 2, sizeof(buffer) - 2), 3);
    assert_memory_equal(buffer, "ping\n", 5);
    assert_int_equal(console_ports_read(&f->cp, h, buffer, sizeof(buffer)), 0);
    assert_int_equal(console_ports_write(&f->cp, h, "pong\n", 5), 5);
    deliver(f);
    assert_int_equal(f->ports[1].host_rx_count, 5);
    assert_memory_equal(f->ports[1].host_rx, "pong\n", 5);
    assert_int_equal(f->cp.stats.received_bytes, 5);
    assert_int_equal(f->cp.stats.read_bytes, 5);
    assert_int_equal(f->cp.stats.written_bytes, 5);
    assert_int_equal(stats_refusals(&f->cp.stats), 0);
}

/* More than the ring and the buffers hold, read in odd pieces: every byte
 * arrives once and in order, and the host is held back, not dropped. */
static void test_ring_wrap_and_backpressure(void **state)
{
    struct fake *f = *state;
    enum { TOTAL = 40000 };
    static uint8_t sent[TOTAL], got[TOTAL];
    size_t written = 0, read = 0;

    for (size_t i = 0; i < TOTAL; i++)
        sent[i] = (uint8_t)(i * 7 + i / 251);
    int h = console_ports_open(&f->cp, AGENT);
    boot(f);

    /* the host fills everything while nobody reads */
    for (int i = 0; i < 20; i++) {
        written += host_write(f, 1, sent + written, TOTAL - written);
        deliver(f);
    }
    size_t stuck = CONSOLE_RX_RING_BYTES + CONSOLE_RX_BUFFERS * CONSOLE_RX_BUFFER_BYTES;
    assert_int_equal(written, stuck);
    assert_int_equal(console_ports_readable(&f->cp, h), CONSOLE_RX_RING_BYTES);
    assert_int_equal(f->avail_count[4], 0);

    for (unsigned step = 0; read < TOTAL && step < 100000; step++) {
        uint32_t want = 1 + (step * 37) % 700;
        read += console_ports_read(&f->cp, h, got + read, want < TOTAL - read ? want : (uint32_t)(TOTAL - read));
        written += host_write(f, 1, sent + written, TOTAL - written);
        deliver(f);
    }
    assert_int_equal(read, TOTAL);
    assert_memory_equal(got, sent, TOTAL);
    assert_int_equal(f->cp.stats.dropped_bytes, 0);
    assert_int_equal(f->avail_count[4], CONSOLE_RX_BUFFERS);
}

static void test_write_is_split_into_buffers(void **state)
{
    struct fake *f = *state;
    static uint8_t big[3000];

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    assert_int_equal(console_ports_write(&f->cp, h, big, 1500), 1500);
    deliver(f);
    assert_int_equal(f->ports[1].host_rx_count, 1500);
    assert_memory_equal(f->ports[1].host_rx, big, 1500);

    /* a device that holds the buffers: only four buffers' worth is taken */
    f->queue_size[5] = 0; /* nothing more fits */
    assert_int_equal(console_ports_write(&f->cp, h, big, 10), 0);
    assert_int_equal(f->cp.stats.post_failures, 1);
    f->queue_size[5] = 128;
    unsigned kicks = f->kicks[5];
    f->ports[1].host_rx_count = 0;
    /* QEMU takes the buffers on the kick; the fake keeps them used until delivery */
    assert_int_equal(console_ports_write(&f->cp, h, big, sizeof(big)),
                     CONSOLE_TX_BUFFERS * CONSOLE_TX_BUFFER_BYTES);
    assert_int_equal(f->kicks[5], kicks + 1);
    assert_int_equal(console_ports_write(&f->cp, h, big, sizeof(big)), 0); /* all in flight */
    unsigned before = f->change_count;
    deliver(f);
    assert_true(f->change_count > before);
    assert_int_equal(f->changes[f->change_count - 1].change, CONSOLE_CHANGE_WRITABLE);
    assert_int_equal(console_ports_write(&f->cp, h, big + 2048, 952), 952);
    deliver(f);
    assert_int_equal(f->ports[1].host_rx_count, 3000);
    assert_memory_equal(f->ports[1].host_rx, big, 3000);
}

/* ---- a lying device --------------------------------------------------------------- */

/* Puts raw bytes into the next control receive buffer, claiming `length`. */
static void raw_control(struct fake *f, const void *bytes, uint32_t copy, uint32_t length)
{
    struct posted b;

    assert_true(pop(f, CONSOLE_CONTROL_RECEIVE_QUEUE, &b));
    memcpy(b.data, bytes, copy < b.bytes ? copy : b.bytes);
    push(f, CONSOLE_CONTROL_RECEIVE_QUEUE, b.token, length);
}

static void raw_event(struct fake *f, uint32_t id, uint16_t event, uint16_t value)
{
    uint8_t m[8];

    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    raw_control(f, m, 8, 8);
}

static void raw_name(struct fake *f, uint32_t id, const void *name, uint32_t name_bytes, uint32_t length)
{
    uint8_t m[600];
    uint16_t event = CONSOLE_PORT_NAME, value = 1;

    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    memcpy(m + 8, name, name_bytes);
    raw_control(f, m, 8 + name_bytes, length);
}

static void test_lying_control_messages(void **state)
{
    struct fake *f = *state;
    char name[600];

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    struct console_port before[CONSOLE_PORTS_MAX];
    memcpy(before, f->cp.ports, sizeof(before));
    unsigned log_before = f->log_count;

    raw_control(f, "\x01\x00\x00\x00", 4, 4);                 /* shorter than the header */
    raw_control(f, "", 0, 0);
    raw_event(f, 31, CONSOLE_PORT_ADD, 1);                     /* max_nr_ports is 31 */
    raw_event(f, 0xffffffffu, CONSOLE_PORT_OPEN, 1);
    raw_event(f, 1000, CONSOLE_PORT_REMOVE, 1);
    raw_event(f, 1, CONSOLE_PORT_ADD, 1);                      /* added already */
    raw_event(f, 5, CONSOLE_PORT_OPEN, 1);                     /* never added */
    raw_event(f, 5, CONSOLE_PORT_REMOVE, 1);
    raw_event(f, 5, CONSOLE_CONSOLE_PORT, 1);
    raw_name(f, 5, "x", 2, 10);
    raw_event(f, 1, CONSOLE_DEVICE_READY, 1);                  /* only drivers send these */
    raw_event(f, 1, CONSOLE_PORT_READY, 1);
    raw_event(f, 1, 99, 1);
    raw_event(f, 1, CONSOLE_RESIZE, 1);                        /* ignored, counted */
    /* names: renamed, empty, not printable, oversized (truncated by QEMU:
     * the used length is beyond the buffer), no end within the buffer */
    raw_name(f, 1, "org.evil\0", 9, 17);
    raw_name(f, 2, "\0", 1, 9);
    raw_name(f, 2, "", 0, 8);
    raw_name(f, 2, "a\nb\0", 4, 12);
    memset(name, 'n', sizeof(name));
    raw_name(f, 2, name, 400, 8 + 400);
    raw_name(f, 2, name, CONSOLE_NAME_MAX + 1, CONSOLE_CONTROL_BUFFER_BYTES);
    raw_event(f, 1, CONSOLE_PORT_OPEN, 1);                     /* a true one among them */
    deliver(f);

    const struct console_ports_stats *s = &f->cp.stats;
    assert_int_equal(s->short_messages, 2);
    assert_int_equal(s->bad_id, 3);
    assert_int_equal(s->duplicate_add, 1);
    assert_int_equal(s->unknown_port, 4);
    assert_int_equal(s->unknown_event, 3);
    assert_int_equal(s->resize, 1);
    assert_int_equal(s->duplicate_name, 1);
    assert_int_equal(s->bad_name, 4);
    assert_int_equal(s->bad_length, 1);
    /* nothing changed, nothing answered, every buffer posted again */
    assert_memory_equal(before, f->cp.ports, sizeof(before));
    assert_int_equal(f->log_count, log_before);
    assert_int_equal(f->cp.control_rx_posted, 32);
    assert_string_equal(f->cp.ports[1].name, AGENT);
    assert_int_equal(console_ports_handle_port(&f->cp, h), 1);
    assert_int_equal(f->cp.ports[2].name_length, strlen("org.example.other"));
}

static void test_a_name_of_the_longest_length_is_taken(void **state)
{
    struct fake *f = *state;
    char name[CONSOLE_NAME_MAX + 2];

    sim_add_port(f, 1, "", 1);
    console_ports_start(&f->cp, 31, 3, 32);
    deliver(f);
    memset(name, 'q', sizeof(name));
    name[CONSOLE_NAME_MAX] = 0;
    /* the name without a NUL (as 5.3.6.2 describes it) ends with the message */
    raw_name(f, 1, name, CONSOLE_NAME_MAX, CONSOLE_CONTROL_HEADER + CONSOLE_NAME_MAX);
    deliver(f);
    assert_int_equal(console_ports_find(&f->cp, name), 1);
    assert_int_equal(f->cp.stats.bad_name, 0);
}

/* libvirt numbers ports itself: the agent can sit on any of QEMU's 31 */
static void check_high_port(struct fake *f, unsigned port)
{
    const char *other = "com.redhat.spice.0";

    sim_add_port(f, 1, other, 1);
    sim_add_port(f, port, AGENT, 1);
    int h = console_ports_open(&f->cp, AGENT);
    console_ports_start(&f->cp, 31, 31, 32); /* queues for every port, as QEMU's max_ports=31 */
    deliver(f);
    assert_int_equal(console_ports_handle_port(&f->cp, h), (int)port);
    assert_int_equal(count_messages(f, port, CONSOLE_PORT_READY, 1), 1);
    assert_int_equal(count_messages(f, port, CONSOLE_PORT_OPEN, 1), 1);
    assert_int_equal(count_messages(f, 1, CONSOLE_PORT_OPEN, 1), 0);
    assert_true(f->ports[port].guest_connected);
    assert_true(console_ports_host_open(&f->cp, h));
    /* the receive buffers are on the port's own queue (2N+2), none on port 1's */
    assert_int_equal(f->avail_count[2 * port + 2], CONSOLE_RX_BUFFERS);
    assert_int_equal(f->avail_count[4], 0);

    /* both ways, through the queues 2N+2 and 2N+3 */
    const char *command = "{\"execute\":\"guest-ping\"}\n";
    assert_int_equal(host_write(f, port, command, strlen(command)), strlen(command));
    deliver(f);
    char got[64] = { 0 };
    assert_int_equal(console_ports_read(&f->cp, h, got, sizeof(got)), strlen(command));
    assert_string_equal(got, command);
    assert_int_equal(console_ports_write(&f->cp, h, "{\"return\":{}}\n", 14), 14);
    deliver(f);
    assert_int_equal(f->ports[port].host_rx_count, 14);
    assert_memory_equal(f->ports[port].host_rx, "{\"return\":{}}\n", 14);
    assert_int_equal(f->ports[1].host_rx_count, 0);
    assert_int_equal(stats_refusals(&f->cp.stats), 0);
    assert_int_equal(f->cp.stats.refused_ports, 0);
}

static void test_agent_on_port_7(void **state) { check_high_port(*state, 7); }
static void test_agent_on_port_30(void **state) { check_high_port(*state, 30); }

/* A data slot stays with its port until the device is reset (its receive
 * buffers stay posted on that port's queue): a name that moves to another
 * port while every slot is bound waits, counted, and the reset frees it. */
static void test_data_slots_run_out_until_the_reset(void **state)
{
    struct fake *f = *state;
    static const char *names[] = { "org.example.a", "org.example.b", "org.example.c" };
    int handles[3];

    sim_add_port(f, 5, AGENT, 1);
    for (unsigned i = 0; i < 3; i++)
        sim_add_port(f, 10 + i, names[i], 1);
    int h = console_ports_open(&f->cp, AGENT);
    for (unsigned i = 0; i < 3; i++)
        handles[i] = console_ports_open(&f->cp, names[i]);
    console_ports_start(&f->cp, 31, 31, 32);
    deliver(f);
    assert_int_equal(console_ports_handle_port(&f->cp, h), 5);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(console_ports_handle_port(&f->cp, handles[i]), (int)(10 + i));

    /* the agent's port is unplugged and comes back as port 20 */
    f->ports[5].exists = 0;
    sim_event(f, 5, CONSOLE_PORT_REMOVE, 1);
    sim_add_port(f, 20, AGENT, 1);
    sim_event(f, 20, CONSOLE_PORT_ADD, 1);
    deliver(f);
    assert_int_equal(console_ports_find(&f->cp, AGENT), 20);
    assert_int_equal(console_ports_handle_port(&f->cp, h), -1);
    assert_int_equal(f->cp.stats.no_data_slot, 1);
    assert_int_equal(f->avail_count[42], 0);
    assert_int_equal(count_messages(f, 20, CONSOLE_PORT_OPEN, 1), 0);

    /* a reset (thaw) gives every slot back: the agent is served on port 20 */
    console_ports_reset(&f->cp);
    sim_reset(f);
    console_ports_start(&f->cp, 31, 31, 32);
    deliver(f);
    assert_int_equal(console_ports_handle_port(&f->cp, h), 20);
    assert_int_equal(f->avail_count[42], CONSOLE_RX_BUFFERS);
    assert_true(f->ports[20].guest_connected);
    assert_int_equal(host_write(f, 20, "x", 1), 1);
    deliver(f);
    assert_int_equal(console_ports_readable(&f->cp, h), 1);
}

static void test_lying_used_buffers(void **state)
{
    struct fake *f = *state;
    static uint8_t elsewhere[64];
    struct posted b;

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    /* tokens that were never posted, or not on that queue, or twice */
    assert_int_equal(console_ports_used(&f->cp, 2, elsewhere, 8), -1);
    assert_int_equal(console_ports_used(&f->cp, 4, &f->cp.control_rx[0], 8), -1);
    assert_int_equal(console_ports_used(&f->cp, 3, &f->cp.control_tx[0], 0), -1); /* not in flight */
    assert_int_equal(console_ports_used(&f->cp, 4, (uint8_t *)&f->cp.data[1].rx[0] + 1, 1), -1);
    assert_int_equal(console_ports_used(&f->cp, 8, &f->cp.data[3].rx[0], 1), -1); /* port 3: no queues */
    assert_int_equal(console_ports_used(&f->cp, 40, &f->cp.data[1].rx[0], 1), -1);
    assert_int_equal(f->cp.stats.bad_token, 6);

    /* a used length beyond the buffer: refused, the buffer goes back */
    assert_true(pop(f, 4, &b));
    push(f, 4, b.token, CONSOLE_RX_BUFFER_BYTES + 1);
    assert_true(pop(f, 4, &b));
    push(f, 4, b.token, UINT32_MAX);
    deliver(f);
    assert_int_equal(f->cp.stats.bad_length, 2);
    assert_int_equal(console_ports_readable(&f->cp, h), 0);
    assert_int_equal(f->avail_count[4], CONSOLE_RX_BUFFERS);
    assert_true(pop(f, 4, &b));
    memcpy(b.data, "ok", 2);
    assert_int_equal(console_ports_used(&f->cp, 4, b.token, 2), 0);
    assert_int_equal(console_ports_readable(&f->cp, h), 2);
    /* a transmit buffer reported twice: the second is refused */
    assert_int_equal(console_ports_write(&f->cp, h, "hi", 2), 2);
    assert_int_equal(f->used_count[5], 1);
    void *sent = f->used[5][0].token;
    deliver(f);
    assert_int_equal(console_ports_used(&f->cp, 5, sent, 0), -1);
    /* a port the driver has not opened has no buffers: anything used there is a lie */
    assert_int_equal(f->avail_count[6], 0);
    assert_int_equal(console_ports_used(&f->cp, 6, &f->cp.data[1].rx[0], 100), -1);
    assert_int_equal(console_ports_used(&f->cp, 6, &f->cp.data[0].rx[0], 100), -1); /* port 1's */
    assert_int_equal(f->cp.stats.dropped_bytes, 0);
    assert_int_equal(f->cp.stats.bad_token, 9);
    /* a control buffer the device claims is longer than itself */
    assert_true(pop(f, 2, &b));
    assert_int_equal(console_ports_used(&f->cp, 2, b.token, CONSOLE_CONTROL_BUFFER_BYTES + 1), -1);
    console_ports_flush(&f->cp);
    assert_int_equal(f->cp.stats.bad_length, 3);
    assert_int_equal(f->cp.control_rx_posted, 32);
    /* before start nothing is taken */
    console_ports_reset(&f->cp);
    assert_int_equal(console_ports_used(&f->cp, 2, &f->cp.control_rx[0], 8), -1);
}

static void test_post_failures_are_retried(void **state)
{
    struct fake *f = *state;

    sim_add_port(f, 1, AGENT, 1);
    f->fail_post = 1;
    console_ports_start(&f->cp, 31, 3, 32);
    assert_int_equal(f->cp.control_rx_posted, 0);
    assert_true(f->cp.stats.post_failures >= 1);
    assert_int_equal(f->log_count, 0);
    f->fail_post = 0;
    deliver(f);
    assert_int_equal(f->cp.control_rx_posted, 32);
    assert_int_equal(console_ports_find(&f->cp, AGENT), 1);
}

static void test_pending_messages_overflow_is_counted(void **state)
{
    struct fake *f = *state;

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    f->slow = 1; /* the device sits on the control transmit queue */
    for (int i = 0; i < 50; i++) {
        console_ports_close(&f->cp, h);
        h = console_ports_open(&f->cp, AGENT);
    }
    /* 100 messages: 16 in slots, 64 waiting, 20 lost */
    assert_int_equal(f->cp.stats.control_overflow, 20);
    f->slow = 0;
    sim_control_out(f);
    deliver(f);
    assert_int_equal(f->cp.pending_count, 0);
    assert_int_equal(count_messages(f, 1, CONSOLE_PORT_OPEN, 0) + count_messages(f, 1, CONSOLE_PORT_OPEN, 1),
                     80 + 1);
}


/* A device that speaks out of QEMU's order: the host side opens before the
 * name comes, a name before its PORT_ADD, a port removed before the driver
 * answered it. */
static void test_out_of_order_device(void **state)
{
    struct fake *f = *state;
    char buffer[8];

    int h = console_ports_open(&f->cp, AGENT);
    console_ports_start(&f->cp, 31, 3, 32); /* the simulated device has no ports */
    deliver(f);
    assert_int_equal(f->log_count, 1);

    raw_event(f, 1, CONSOLE_PORT_ADD, 1);
    raw_event(f, 1, CONSOLE_PORT_OPEN, 1); /* before the name */
    raw_name(f, 2, "org.example.early\0", 18, 8 + 18); /* before its PORT_ADD */
    raw_event(f, 2, CONSOLE_PORT_ADD, 1);
    raw_event(f, 2, CONSOLE_PORT_REMOVE, 1); /* before the driver's answer went out */
    deliver(f);
    assert_int_equal(f->cp.stats.unknown_port, 1);
    assert_false(f->cp.ports[2].added);
    assert_int_equal(console_ports_find(&f->cp, "org.example.early"), -1);
    assert_true(f->cp.ports[1].host_open);
    assert_int_equal(console_ports_handle_port(&f->cp, h), -1);
    assert_int_equal(f->change_count, 0);

    raw_name(f, 1, AGENT, (uint32_t)strlen(AGENT), 8 + (uint32_t)strlen(AGENT));
    deliver(f);
    assert_int_equal(console_ports_handle_port(&f->cp, h), 1);
    assert_int_equal(count_messages(f, 1, CONSOLE_PORT_OPEN, 1), 1);
    /* both sides open: the reader hears it once */
    assert_int_equal(f->change_count, 1);
    assert_int_equal(f->changes[0].change, CONSOLE_CHANGE_OPENED);
    /* the PORT_READY answers went out in the order the ports were added */
    assert_int_equal(f->log[1].event, CONSOLE_PORT_READY);
    assert_int_equal(f->log[1].id, 1);
    assert_int_equal(f->log[2].event, CONSOLE_PORT_READY);
    assert_int_equal(f->log[2].id, 2);

    /* the port works, on the buffers posted at its PORT_ADD */
    struct posted b;
    assert_true(pop(f, 4, &b));
    memcpy(b.data, "hey", 3);
    push(f, 4, b.token, 3);
    deliver(f);
    assert_int_equal(console_ports_read(&f->cp, h, buffer, sizeof(buffer)), 3);
    assert_memory_equal(buffer, "hey", 3);
}

/* ---- hot plug, freeze, thaw, restore ----------------------------------------------- */

static void test_port_remove_and_add_again(void **state)
{
    struct fake *f = *state;
    char buffer[8];

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    assert_int_equal(host_write(f, 1, "old", 3), 3);
    deliver(f);
    f->ports[1].exists = 0;
    sim_event(f, 1, CONSOLE_PORT_REMOVE, 1);
    deliver(f);
    assert_int_equal(console_ports_handle_port(&f->cp, h), -1);
    assert_int_equal(console_ports_find(&f->cp, AGENT), -1);
    assert_int_equal(f->changes[f->change_count - 1].change, CONSOLE_CHANGE_CLOSED);
    assert_int_equal(console_ports_read(&f->cp, h, buffer, sizeof(buffer)), 0);
    assert_int_equal(console_ports_write(&f->cp, h, "x", 1), -1);

    /* plugged in again: announced, named, and opened with no one asking */
    sim_add_port(f, 1, AGENT, 1);
    sim_event(f, 1, CONSOLE_PORT_ADD, 1);
    deliver(f);
    assert_int_equal(console_ports_handle_port(&f->cp, h), 1);
    assert_true(f->ports[1].guest_connected);
    assert_int_equal(count_messages(f, 1, CONSOLE_PORT_OPEN, 1), 2);
    assert_int_equal(host_write(f, 1, "new", 3), 3);
    deliver(f);
    assert_int_equal(console_ports_read(&f->cp, h, buffer, sizeof(buffer)), 3);
    assert_memory_equal(buffer, "new", 3); /* the old bytes went with the old port */
    assert_int_equal(f->avail_count[4], CONSOLE_RX_BUFFERS);
}

/* Thaw: the same QEMU, reset by the freeze, announces the same ports again. */
static void test_thaw_reopens(void **state)
{
    struct fake *f = *state;
    char buffer[8];

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    assert_int_equal(host_write(f, 1, "stale", 5), 5);
    deliver(f);
    sim_reset(f);
    console_ports_reset(&f->cp);
    assert_int_equal(console_ports_handle_port(&f->cp, h), -1);
    assert_int_equal(f->changes[f->change_count - 1].change, CONSOLE_CHANGE_CLOSED);
    assert_false(f->ports[1].guest_connected);

    f->log_count = 0;
    console_ports_start(&f->cp, 31, 3, 32);
    deliver(f);
    assert_int_equal(f->log[0].event, CONSOLE_DEVICE_READY);
    assert_int_equal(count_messages(f, 1, CONSOLE_PORT_OPEN, 1), 1);
    assert_true(f->ports[1].guest_connected);
    assert_int_equal(console_ports_handle_port(&f->cp, h), 1);
    assert_int_equal(console_ports_read(&f->cp, h, buffer, sizeof(buffer)), 0); /* forgotten */
    assert_int_equal(f->cp.stats.resets, 1);
    assert_int_equal(f->control_dropped, 0);
}

/* Restore: a new QEMU process, whose ports need not sit where they did. */
static void test_restore_reopens_by_name(void **state)
{
    struct fake *f = *state;
    char buffer[16];

    int h = console_ports_open(&f->cp, AGENT);
    boot(f);
    console_ports_reset(&f->cp);
    /* the new host: the agent on port 2, another port on 1, not yet connected */
    memset(f->ports, 0, sizeof(f->ports));
    sim_reset(f);
    sim_add_port(f, 1, "org.example.other", 0);
    sim_add_port(f, 2, AGENT, 0);
    f->change_count = 0;
    console_ports_start(&f->cp, 31, 3, 32);
    deliver(f);
    assert_int_equal(console_ports_handle_port(&f->cp, h), 2);
    assert_true(f->ports[2].guest_connected); /* what QMP reports as VSERPORT_CHANGE open */
    assert_false(f->ports[1].guest_connected);
    assert_int_equal(f->change_count, 0);
    /* libvirt connects */
    f->ports[2].host_connected = 1;
    sim_event(f, 2, CONSOLE_PORT_OPEN, 1);
    deliver(f);
    assert_int_equal(f->changes[0].change, CONSOLE_CHANGE_OPENED);
    assert_int_equal(host_write(f, 2, "{}\n", 3), 3);
    deliver(f);
    assert_int_equal(console_ports_read(&f->cp, h, buffer, sizeof(buffer)), 3);
    assert_int_equal(console_ports_write(&f->cp, h, "{}\n", 3), 3);
    deliver(f);
    assert_int_equal(f->ports[2].host_rx_count, 3);
    assert_int_equal(stats_refusals(&f->cp.stats), 0);
}

static void test_open_refuses_bad_names_and_runs_out(void **state)
{
    struct fake *f = *state;
    char name[CONSOLE_NAME_MAX + 2];

    assert_int_equal(console_ports_open(&f->cp, ""), -1);
    assert_int_equal(console_ports_open(&f->cp, "with space"), -1);
    memset(name, 'a', sizeof(name));
    name[CONSOLE_NAME_MAX + 1] = 0;
    assert_int_equal(console_ports_open(&f->cp, name), -1);
    name[CONSOLE_NAME_MAX] = 0;
    assert_true(console_ports_open(&f->cp, name) >= 0);
    for (int i = 1; i < CONSOLE_OPEN_MAX; i++) {
        char other[16];
        snprintf(other, sizeof(other), "n%d", i);
        assert_int_equal(console_ports_open(&f->cp, other), i);
    }
    assert_int_equal(console_ports_open(&f->cp, "one.more"), -1);
    console_ports_close(&f->cp, 2);
    assert_int_equal(console_ports_open(&f->cp, "one.more"), 2);
    /* handles that are not ours */
    assert_int_equal(console_ports_write(&f->cp, -1, "x", 1), -1);
    assert_int_equal(console_ports_read(&f->cp, CONSOLE_OPEN_MAX, name, 1), 0);
    console_ports_close(&f->cp, 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_in_qemu_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_after_the_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_sends_port_open_0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_port_is_opened, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ports_without_queues_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_ports_lose_no_control_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_few_control_buffers_are_paced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_wrap_and_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_is_split_into_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lying_control_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_name_of_the_longest_length_is_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_on_port_7, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_on_port_30, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_slots_run_out_until_the_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lying_used_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_failures_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_messages_overflow_is_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_remove_and_add_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thaw_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_reopens_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_bad_names_and_runs_out, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
