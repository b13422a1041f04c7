/*
 * virtio interrupt routing, for the core (virtio.c): sets a device's
 * MSI-X or INTx up and services its ISR when polled.
 */
#ifndef VIRTIO_VIRTIO_INTERRUPT_H
#define VIRTIO_VIRTIO_INTERRUPT_H

#include "virtio/virtio_device.h" // struct virtio_device

/* Picks MSI-X or INTx for a device with `queues` queues and installs the
 * handlers; vectors are allocated once per device and reprogrammed on
 * every call, since resume starts from firmware state. 0 or -1. */
int virtio_setup_interrupts(struct virtio_device *device, unsigned queues);

/* Reads the ISR (which deasserts INTx, 4.1.4.5) and runs what it says:
 * the queue callbacks, the config-change hook. */
void virtio_service_isr(struct virtio_device *device);

#endif
