/*
 * Parsing of console input: splitting a line into words and reading
 * numbers, with every malformed case reported rather than guessed.
 */
#ifndef LIB_PARSE_H
#define LIB_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Splits line in place at spaces/tabs; returns the word count, or -1 when
 * there are more than max_words words. */
int parse_words(char *line, char **words, int max_words);

/* Decimal, or hex with a 0x prefix. Returns 0 on success, -1 when the text
 * is empty, has a stray character or overflows 64 bits. */
int parse_u64(const char *text, uint64_t *value);

#endif
