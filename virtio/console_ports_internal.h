/*
 * What the pieces of the virtio-console state machine share
 * (virtio/console_ports.h is the interface): console_ports_setup.c (setup,
 * used-buffer routing, lookups), console_ports_control.c (the control
 * protocol) and console_ports_data.c (the data path).
 */
#ifndef VIRTIO_CONSOLE_PORTS_INTERNAL_H
#define VIRTIO_CONSOLE_PORTS_INTERNAL_H

#include <stdint.h>

#include "virtio/console_ports.h" // struct console_ports, struct console_buffer

#define CONSOLE_HELD_NONE 0xff /* end of a held-buffer list */

/* ---- console_ports_setup.c ---------------------------------------------- */

/* Tells the ops a handle's port changed (no handle: nobody to tell). */
void console_ports_notify(struct console_ports *cp, int handle, enum console_port_change change);
/* Posts b's first bytes on queue; 0, or -1 (counted) when the ring is full. */
int console_ports_post_buffer(struct console_ports *cp, unsigned queue, struct console_buffer *b,
                              uint32_t bytes, int device_writes);
/* The index of `token` in `array` of `count`, or -1: a token is only ever
 * compared, never followed, until it is known to be one of ours. */
int console_ports_buffer_index(const struct console_buffer *array, unsigned count,
                               const void *token);
int console_ports_valid_handle(const struct console_ports *cp, int handle);
/* The port a handle is served by (its id in *id), or NULL. */
struct console_port *console_ports_served_port(struct console_ports *cp, int handle,
                                               unsigned *id);

/* The data slot serving `port`, or NULL. */
struct console_data_port *console_ports_data(struct console_ports *cp, unsigned port);
/* Binds a free data slot to `port` (kept if it has one); 0, or -1 (counted). */
int console_ports_claim_slot(struct console_ports *cp, unsigned port);

/* ---- console_ports_control.c -------------------------------------------- */

/* Posts the control receive buffers and sends DEVICE_READY. */
void console_ports_send_device_ready(struct console_ports *cp);
/* Kicks every queue that got buffers since the last kick. */
void console_ports_kick_all(struct console_ports *cp);
/* The port's handle lets it go (the port is removed or forgotten). */
void console_ports_detach(struct console_ports *cp, unsigned id);
/* Used buffers of the control queues; 0, or -1 when refused (counted). */
int console_ports_control_received(struct console_ports *cp, void *token, uint32_t length);
int console_ports_control_sent(struct console_ports *cp, void *token);

/* ---- console_ports_data.c ----------------------------------------------- */

/* Posts every idle receive buffer of the port. */
void console_ports_post_data_receive(struct console_ports *cp, unsigned port);
/* Drops what the port received and did not read. */
void console_ports_forget_data(struct console_ports *cp, unsigned port);
/* Used buffers of a data port's queues; 0, or -1 when refused (counted). */
int console_ports_data_received(struct console_ports *cp, unsigned port, void *token,
                                uint32_t length);
int console_ports_data_sent(struct console_ports *cp, unsigned port, void *token);

#endif
