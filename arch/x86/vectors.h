/*
 * The interrupt vectors torpor uses: 0-31 are CPU exceptions, 0x20-0x2f
 * the masked 8259's (spurious only), devices and the timer from 0x30 up.
 * A leaf, so interrupt controllers can name vectors without the
 * dispatcher.
 */
#ifndef ARCH_X86_VECTORS_H
#define ARCH_X86_VECTORS_H

#define VECTOR_PIC_BASE 0x20
#define VECTOR_UART 0x30
#define VECTOR_SCI 0x31
#define VECTOR_DEVICE_FIRST 0x38 /* later drivers allocate from here */
#define VECTOR_TIMER 0xf0
#define VECTOR_SPURIOUS 0xff

#endif
