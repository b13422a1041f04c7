/*
 * 16550 UART driver for COM1 (port 0x3f8, IRQ 4). Output polls the
 * transmit-holding-empty bit; input arrives by interrupt into a
 * single-producer, single-consumer ring.
 */
#include "arch/x86/uart.h"

#include "arch/x86/cpu.h" // inb, outb

#define COM1 0x3f8
#define REG_DATA 0
#define REG_INTERRUPT_ENABLE 1
#define REG_FIFO_CONTROL 2
#define REG_LINE_CONTROL 3
#define REG_MODEM_CONTROL 4
#define REG_LINE_STATUS 5
#define LINE_STATUS_DATA_READY 0x01
#define LINE_STATUS_TRANSMIT_EMPTY 0x20

#define RING_SIZE 1024 /* a power of two */

static char ring[RING_SIZE];
static volatile uint32_t ring_head; /* written by the interrupt handler */
static volatile uint32_t ring_tail; /* written by the reader */
static uint64_t dropped;

void uart_init(void)
{
    outb(COM1 + REG_INTERRUPT_ENABLE, 0);
    outb(COM1 + REG_LINE_CONTROL, 0x80); /* divisor latch */
    outb(COM1 + REG_DATA, 1);            /* 115200 baud */
    outb(COM1 + REG_INTERRUPT_ENABLE, 0);
    outb(COM1 + REG_LINE_CONTROL, 0x03); /* 8 bits, no parity, 1 stop */
    outb(COM1 + REG_FIFO_CONTROL, 0x07); /* enable and clear FIFOs */
    /* OUT2 gates the UART's interrupt line on PC hardware */
    outb(COM1 + REG_MODEM_CONTROL, 0x0b);
}

void uart_putc(char c)
{
    while (!(inb(COM1 + REG_LINE_STATUS) & LINE_STATUS_TRANSMIT_EMPTY))
        cpu_relax();
    outb(COM1 + REG_DATA, (uint8_t)c);
}

void uart_interrupt(struct interrupt_frame *frame, void *context)
{
    (void)frame;
    (void)context;
    while (inb(COM1 + REG_LINE_STATUS) & LINE_STATUS_DATA_READY) {
        char c = (char)inb(COM1 + REG_DATA);
        uint32_t head = ring_head;
        if (head - ring_tail == RING_SIZE) {
            dropped++;
            continue;
        }
        ring[head % RING_SIZE] = c;
        __asm__ volatile("" ::: "memory"); /* the byte before the index */
        ring_head = head + 1;
    }
}

void uart_enable_receive_interrupt(void)
{
    outb(COM1 + REG_INTERRUPT_ENABLE, 0x01); /* received data available */
    /* drain what arrived before, so the line is not stuck asserted */
    while (inb(COM1 + REG_LINE_STATUS) & LINE_STATUS_DATA_READY)
        (void)inb(COM1 + REG_DATA);
}

int uart_getc(char *c)
{
    uint32_t tail = ring_tail;

    if (tail == ring_head)
        return 0;
    *c = ring[tail % RING_SIZE];
    __asm__ volatile("" ::: "memory");
    ring_tail = tail + 1;
    return 1;
}

uint64_t uart_dropped(void)
{
    return dropped;
}
