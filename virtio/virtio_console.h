/*
 * The virtio-console driver (virtio 1.2, 5.3) with VIRTIO_CONSOLE_F_MULTIPORT:
 * named ports as byte streams for the rest of the kernel (the guest agent's
 * org.qemu.guest_agent.0), driven by interrupts through a work item, opened
 * again by name after every thaw and restore.
 */
#ifndef VIRTIO_VIRTIO_CONSOLE_H
#define VIRTIO_VIRTIO_CONSOLE_H

#include <stdint.h>

#include "virtio/console_ports.h" // struct console_ports_stats

struct work;

/* Registers the driver. Test only: the boot option vconsole_echo=NAME
 * opens port NAME and writes back every byte it reads from it. */
void virtio_console_register(void);

/* Asks for the port `name`: opened now or as soon as the device announces
 * it, and again after every resume. Returns a handle, or -1. */
int virtio_console_open(const char *name);
void virtio_console_close(int handle);
/* What arrived, up to `length` bytes; 0 when nothing did. Never waits. */
uint32_t virtio_console_read(int handle, void *buffer, uint32_t length);
/* Bytes taken (fewer when the transmit buffers are busy: wait for the
 * waiter and write the rest), or -1 while the port is not open. */
int32_t virtio_console_write(int handle, const void *buffer, uint32_t length);
/* `waiter` is scheduled when bytes arrive, the port opens or closes, or
 * transmit buffers come back. NULL stops it. */
void virtio_console_set_waiter(int handle, struct work *waiter);

struct virtio_console_port_info {
    int port;           /* the device's port id, or -1 while absent */
    int guest_open, host_open;
    uint32_t readable;  /* bytes waiting to be read */
};

struct virtio_console_info {
    int present;        /* a device is driven */
    uint32_t max_ports; /* the device's max_nr_ports */
    uint32_t data_ports;/* ports with data queues set up (0..data_ports-1) */
    unsigned ports_added, ports_named;
    uint64_t interrupts, work_runs;
    uint64_t opened;    /* times a port asked for became open on both sides */
    struct console_ports_stats stats;
};

void virtio_console_get_info(struct virtio_console_info *info);
/* 0 and the port's state, or -1 for a handle not in use. */
int virtio_console_get_port_info(int handle, struct virtio_console_port_info *info);

#endif
