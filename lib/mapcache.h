/* libuksim internal: mappings of small ICAs kept while they travel, so an
 * ICA that comes back costs no mmap (design and limits in mapcache.c). */
#ifndef UKSIM_LIB_MAPCACHE_H
#define UKSIM_LIB_MAPCACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Mappings tracked per process: one for each process a server may serve
 * (UK_PROC_MAX), each bringing its own control ICA.  With fewer, a server
 * of more clients than slots, serving them in turn, evicted the mapping it
 * would need next every time (LRU on a cycle longer than the cache), and
 * each request cost an ICA_ATTACH round trip, an mmap and an munmap more:
 * a failover's backlog through one counter server (uksim bench failover,
 * 200 clients) was 32 slots. */
#define UK_MAPCACHE_SLOTS 256
#define UK_MAPCACHE_BYTES (64u << 10) /* larger ICAs are never kept */
/* Idle mappings' bytes kept at most: the memory of ICAs freed elsewhere
 * a process may keep alive (512 control ICAs of 4 KiB). */
#define UK_MAPCACHE_IDLE_BYTES (2u << 20)

/* Maps ICA id behind fd (read-write, shared), reusing an idle mapping of
 * the same memfd when there is one, and records the mapping under id (0:
 * under none).  Always closes fd.  NULL on failure (errno set). */
void *uk__map_attach(int fd, uint64_t size, uint32_t id);

/* The idle mapping recorded under ICA id, of that size, attached again; NULL
 * if there is none (evicted).  For an ICA that came back without a
 * descriptor (KABI_REF_MAPPED). */
void *uk__map_reuse(uint32_t id, uint64_t size);

/* Whether the mapping at base stays cached when it is detached: the call
 * passing its ICA on may say so to the kernel (KABI_KEEP_*). */
bool uk__map_kept(const void *base);

/* The ICA mapped at base was passed on: its mapping becomes idle (or goes,
 * when it is not cached). */
void uk__map_detach(void *base, uint64_t size);

/* The ICA mapped at base is gone for good (released): unmap it now. */
void uk__map_drop(void *base, uint64_t size);

#endif /* UKSIM_LIB_MAPCACHE_H */
