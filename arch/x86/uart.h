/*
 * The 16550 UART on COM1: polled output, interrupt-driven input into a
 * ring the console reads.
 */
#ifndef ARCH_X86_UART_H
#define ARCH_X86_UART_H

#include <stdint.h>

#define UART_COM1_IRQ 4

void uart_init(void);
void uart_putc(char c);
struct interrupt_frame;

/* The receive interrupt's handler: the bring-up installs it on a vector
 * and routes UART_COM1_IRQ there, then enables the interrupt. */
void uart_interrupt(struct interrupt_frame *frame, void *context);
void uart_enable_receive_interrupt(void);
/* Takes one received byte; returns 0 when the ring is empty. */
int uart_getc(char *c);
/* Bytes dropped because the ring was full. */
uint64_t uart_dropped(void);

#endif
