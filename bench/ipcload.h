/* The protocol between `uksim bench ipc` and `ipcload -c NAME`: the bench
 * listens on the abstract SEQPACKET socket NAME; ipcload connects, and for
 * each struct ipcload_block it receives makes `warm` unmeasured and then
 * `trips` measured null round trips through the kernel, and answers with one
 * packet of `trips` uint64_t round trip times in ns.  trips == 0, or the
 * socket closing, ends ipcload (exit status 0 after a clean end). */
#ifndef UKSIM_BENCH_IPCLOAD_H
#define UKSIM_BENCH_IPCLOAD_H

#include <stdint.h>

#define IPCLOAD_BLOCK_MAX 1024 /* most trips in one block */

struct ipcload_block {
  uint32_t warm, trips;
};

#endif
