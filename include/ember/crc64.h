/* CRC-64/Jones, the state file's trailer (src/util/crc64.c). */
#ifndef EMBER_CRC64_H
#define EMBER_CRC64_H

#include <stddef.h>
#include <stdint.h>

/* CRC-64/Jones (poly 0xad93d23594c935a9, i.e. 0x95ac9329ac4bc9b5 bit-reversed, reflected
 * in and out, init 0, xorout 0): the check value of "123456789" is 0xe9c6d914c4b8d9ca.
 * Incremental: pass the previous result as crc (0 to start). */
uint64_t crc64_jones(uint64_t crc, const void *data, size_t len);

#endif
