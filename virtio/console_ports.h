/*
 * The virtio-console (virtio-serial, VIRTIO_CONSOLE_F_MULTIPORT) state
 * machine, free of device and allocator details so the host tests can drive
 * it through a fake transport: the control protocol (virtio 1.2, 5.3.6.2),
 * ports by name, the control receive buffers QEMU needs, and a byte stream
 * per port. Nothing the device says is trusted: a bad message is refused
 * and counted, never written outside this struct's own arrays.
 *
 * console_ports_setup.c sets the state up and routes used buffers,
 * console_ports_control.c speaks the control protocol, console_ports_data.c
 * moves the bytes.
 */
#ifndef VIRTIO_CONSOLE_PORTS_H
#define VIRTIO_CONSOLE_PORTS_H

#include <stdint.h>

#define CONSOLE_PORTS_MAX 32       /* ports tracked (QEMU's max_ports default: 31) */
/* Data buffers and a byte ring for this many ports at once: one per open
 * handle, bound to a port when its name matches, so any port number the
 * device has queues for can carry data without buffers for every port. */
#define CONSOLE_DATA_SLOTS 4
#define CONSOLE_NAME_MAX 127       /* longest accepted port name, without its NUL */
#define CONSOLE_CONTROL_HEADER 8   /* struct virtio_console_control */
/* one control message with the longest name and QEMU's NUL after it */
#define CONSOLE_CONTROL_BUFFER_BYTES (CONSOLE_CONTROL_HEADER + CONSOLE_NAME_MAX + 1)
#define CONSOLE_CONTROL_RX_BUFFERS 32 /* QEMU's control queues hold 32 */
#define CONSOLE_CONTROL_TX_SLOTS 16
#define CONSOLE_CONTROL_PENDING 64  /* messages waiting for a transmit slot */
#define CONSOLE_RX_BUFFERS 4        /* per data port */
#define CONSOLE_RX_BUFFER_BYTES 512
#define CONSOLE_TX_BUFFERS 4
#define CONSOLE_TX_BUFFER_BYTES 512
#define CONSOLE_RX_RING_BYTES 4096  /* what arrived and was not read yet, per port */
#define CONSOLE_OPEN_MAX 4          /* ports the kernel asks for by name */
/* the most host messages one PORT_READY can cause (QEMU: CONSOLE_PORT,
 * PORT_NAME, PORT_OPEN): that many receive buffers are kept for each */
#define CONSOLE_REPLIES_PER_READY 3

/* control events (5.3.6.2) */
enum console_event {
    CONSOLE_DEVICE_READY = 0,
    CONSOLE_PORT_ADD = 1,
    CONSOLE_PORT_REMOVE = 2,
    CONSOLE_PORT_READY = 3,
    CONSOLE_CONSOLE_PORT = 4,
    CONSOLE_RESIZE = 5,
    CONSOLE_PORT_OPEN = 6,
    CONSOLE_PORT_NAME = 7,
};

/* queue indexes (5.3.2) */
#define CONSOLE_CONTROL_RECEIVE_QUEUE 2
#define CONSOLE_CONTROL_TRANSMIT_QUEUE 3

static inline unsigned console_receive_queue(unsigned port)
{
    return port == 0 ? 0 : 2 * port + 2;
}

static inline unsigned console_transmit_queue(unsigned port)
{
    return port == 0 ? 1 : 2 * port + 3;
}

/* What changed on a port, for whoever waits on it. */
enum console_port_change {
    CONSOLE_CHANGE_OPENED,   /* both sides open: data can flow */
    CONSOLE_CHANGE_CLOSED,   /* either side closed, or the port went away */
    CONSOLE_CHANGE_READABLE, /* bytes arrived */
    CONSOLE_CHANGE_WRITABLE, /* transmit buffers came back */
};

struct console_ports_ops {
    /* Makes `bytes` at `buffer` available on `queue` as one descriptor,
     * device-writable for receive queues, device-readable for transmit
     * queues. 0, or -1 when the ring has no room. No kick. */
    int (*post)(void *context, unsigned queue, void *buffer, uint32_t bytes, int device_writes,
                void *token);
    void (*kick)(void *context, unsigned queue);
    /* optional: a port that a handle names changed (see console_ports_open) */
    void (*changed)(void *context, int handle, enum console_port_change change);
};

/* Everything refused or dropped, one counter per kind. */
struct console_ports_stats {
    uint64_t messages;          /* control messages received */
    uint64_t short_messages;    /* shorter than the header */
    uint64_t bad_length;        /* used length beyond the buffer */
    uint64_t bad_token;         /* a used buffer that was not posted on that queue */
    uint64_t bad_id;            /* port id beyond max_nr_ports */
    uint64_t unknown_port;      /* a port never added (or removed) */
    uint64_t duplicate_add;
    uint64_t refused_ports;     /* PORT_READY 0 answered */
    uint64_t bad_name;          /* no end, empty, too long or not printable */
    uint64_t duplicate_name;    /* renamed, or a name another port has */
    uint64_t unknown_event;     /* events only drivers send, or no event at all */
    uint64_t resize;            /* ignored */
    uint64_t control_overflow;  /* outgoing messages lost: the pending queue was full */
    uint64_t post_failures;     /* a ring refused a buffer */
    uint64_t received_bytes, read_bytes, written_bytes;
    uint64_t dropped_bytes;     /* data for a closed or unknown port */
    uint64_t host_closed_bytes; /* written while the host side was closed */
    uint64_t resets;            /* console_ports_reset calls */
    uint64_t no_data_slot;      /* a named port matched but every data slot was bound */
};

enum console_buffer_state { CONSOLE_BUFFER_IDLE, CONSOLE_BUFFER_POSTED, CONSOLE_BUFFER_HELD };

struct console_buffer {
    uint8_t *data;       /* DMA memory */
    uint32_t bytes;      /* its size */
    uint32_t length;     /* held: bytes the device wrote */
    uint32_t offset;     /* held: bytes already moved to the ring */
    uint8_t state;       /* enum console_buffer_state */
    uint8_t next_held;   /* held: the next held buffer, or 0xff */
};

struct console_port {
    uint8_t added;       /* PORT_ADD seen */
    uint8_t refused;     /* answered PORT_READY 0: nothing else for it is taken */
    uint8_t console;     /* CONSOLE_PORT seen */
    uint8_t guest_open;  /* we sent PORT_OPEN 1 */
    uint8_t host_open;   /* the device's last PORT_OPEN value */
    int8_t handle;       /* the open handle it serves, or -1 */
    uint8_t name_length; /* 0: no name yet */
    char name[CONSOLE_NAME_MAX + 1];
};

struct console_data_port {
    struct console_buffer rx[CONSOLE_RX_BUFFERS];
    struct console_buffer tx[CONSOLE_TX_BUFFERS];
    uint8_t held_head, held_tail; /* used receive buffers not yet moved to the ring, 0xff: none */
    uint8_t kick_rx;              /* receive buffers posted since the last kick */
    uint32_t ring_start, ring_count;
    uint8_t ring[CONSOLE_RX_RING_BYTES];
};

struct console_message {
    uint32_t id;
    uint16_t event, value;
};

struct console_open_request {
    int in_use;
    int port;            /* the port serving it now, or -1 */
    char name[CONSOLE_NAME_MAX + 1];
};

struct console_ports {
    const struct console_ports_ops *ops;
    void *context;
    uint32_t max_ports;  /* from the config, capped at CONSOLE_PORTS_MAX */
    uint32_t data_ports; /* ports 0..data_ports-1 have data queues set up */
    /* the port each data slot serves, -1: free. A slot stays with its port
     * until the device is reset: its receive buffers stay on that port's
     * queue (posted buffers come back only with a reset). */
    int8_t slot_port[CONSOLE_DATA_SLOTS];
    unsigned control_rx_count; /* control receive buffers in use */
    int started;
    struct console_buffer control_rx[CONSOLE_CONTROL_RX_BUFFERS];
    unsigned control_rx_posted;
    struct console_buffer control_tx[CONSOLE_CONTROL_TX_SLOTS];
    unsigned readies_in_flight; /* PORT_READY 1 sent, not yet used by the device */
    struct console_message pending[CONSOLE_CONTROL_PENDING];
    unsigned pending_start, pending_count;
    int kick_control_rx, kick_control_tx;
    struct console_port ports[CONSOLE_PORTS_MAX];
    struct console_data_port data[CONSOLE_DATA_SLOTS];
    struct console_open_request open[CONSOLE_OPEN_MAX];
    struct console_ports_stats stats;
};

/* DMA memory console_ports_init carves its buffers from. */
#define CONSOLE_PORTS_DMA_BYTES                                                        \
    (CONSOLE_CONTROL_RX_BUFFERS * CONSOLE_CONTROL_BUFFER_BYTES +                       \
     CONSOLE_CONTROL_TX_SLOTS * CONSOLE_CONTROL_HEADER +                               \
     CONSOLE_DATA_SLOTS * (CONSOLE_RX_BUFFERS * CONSOLE_RX_BUFFER_BYTES +          \
                               CONSOLE_TX_BUFFERS * CONSOLE_TX_BUFFER_BYTES))

void console_ports_init(struct console_ports *cp, const struct console_ports_ops *ops,
                        void *context, uint8_t *dma_memory);

/* After DRIVER_OK and with the queues set up: posts the control receive
 * buffers (at most control_rx_count, what the queue takes) and sends
 * DEVICE_READY. max_ports: the config's max_nr_ports; data_ports: ports
 * 0..data_ports-1 have their data queues set up (others are refused).
 * Receive buffers go only to ports an open handle names. */
void console_ports_start(struct console_ports *cp, uint32_t max_ports, uint32_t data_ports,
                         unsigned control_rx_count);

/* A used buffer from `queue` with the device's used length (UINT32_MAX
 * when the virtqueue itself found the length bad). Returns 0, or -1 when
 * refused (counted). After taking every used buffer, call
 * console_ports_flush; take the control transmit queue's before the
 * control receive queue's, so the replies to a PORT_READY are seen by the
 * time its buffer is (QEMU answers before it returns the buffer). */
int console_ports_used(struct console_ports *cp, unsigned queue, void *token, uint32_t length);

/* Sends what waits for a transmit slot, paced so the device always has a
 * receive buffer for its answers; kicks the queues that got buffers. */
void console_ports_flush(struct console_ports *cp);

/* Device reset (freeze, thaw, restore): every port, buffer and message is
 * forgotten; the names asked for stay and are opened again when the
 * device announces them after the next console_ports_start. */
void console_ports_reset(struct console_ports *cp);

/* Asks for the port named `name` (opened now, or when it appears, and
 * again after every reset). Returns a handle, or -1 (no room, bad name). */
int console_ports_open(struct console_ports *cp, const char *name);
/* Sends PORT_OPEN 0 and gives the handle up. */
void console_ports_close(struct console_ports *cp, int handle);
/* Bytes that arrived, up to `length`; 0 when none. */
uint32_t console_ports_read(struct console_ports *cp, int handle, void *buffer, uint32_t length);
/* Bytes queued for the device (split into transmit buffers): fewer than
 * `length` when the buffers are busy, -1 when the port is not open. */
int32_t console_ports_write(struct console_ports *cp, int handle, const void *buffer,
                            uint32_t length);
uint32_t console_ports_readable(const struct console_ports *cp, int handle);
/* the port's id, or -1 while the named port is absent */
int console_ports_handle_port(const struct console_ports *cp, int handle);
int console_ports_guest_open(const struct console_ports *cp, int handle);
int console_ports_host_open(const struct console_ports *cp, int handle);

/* The port with that name, or -1. */
int console_ports_find(const struct console_ports *cp, const char *name);

#endif
