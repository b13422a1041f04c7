/*
 * HOT_PATH puts a function in .text.hot_path, which link.ld places at the
 * start of a 4 KiB page and the build keeps within that page. Under QEMU's
 * TCG, translated blocks are chained only within one guest page, so a loop
 * whose code straddles a page boundary runs much slower (the page hash at
 * one address took 8.8 us a page, 1.2 us once its loop sat in one page:
 * measured). Code moves with every change elsewhere; in one page the
 * functions every saved or restored page passes through cannot straddle.
 */
#ifndef LIB_HOT_PATH_H
#define LIB_HOT_PATH_H

#define HOT_PATH __attribute__((section(".text.hot_path")))

#endif
