/* Shared by the API harnesses (api_common.c). */
#ifndef EMBER_FUZZ_API_COMMON_H
#define EMBER_FUZZ_API_COMMON_H

#include <ev.h>

extern struct ev_loop *fuzz_loop; /* made by LLVMFuzzerInitialize */

#endif
