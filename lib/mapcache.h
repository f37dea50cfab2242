/* libuksim internal: mappings of small ICAs kept while they travel, so an
 * ICA that comes back costs no mmap (design and limits in mapcache.c). */
#ifndef UKSIM_LIB_MAPCACHE_H
#define UKSIM_LIB_MAPCACHE_H

#include <stdint.h>

#define UK_MAPCACHE_SLOTS 32
#define UK_MAPCACHE_BYTES (64u << 10)

/* Maps the ICA behind fd (read-write, shared), reusing an idle mapping of
 * the same memfd when there is one.  Always closes fd.  NULL on failure
 * (errno set). */
void *uk__map_attach(int fd, uint64_t size);

/* The ICA mapped at base was passed on: its mapping becomes idle (or goes,
 * when it is not cached). */
void uk__map_detach(void *base, uint64_t size);

/* The ICA mapped at base is gone for good (released): unmap it now. */
void uk__map_drop(void *base, uint64_t size);

#endif /* UKSIM_LIB_MAPCACHE_H */
