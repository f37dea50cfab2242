/* Version-neutral process images (issue 15, kernel update method A; seed
 * 003 "intermediate data structure").
 *
 * kimage.c is built once per kernel-data layout: against layout 1 its
 * functions are kimg_v1_*, against layout v2 (UK_KDATA_V2) kimg_v2_*.
 * Neither build sees the other's structs; what crosses is a packed
 * uksim.kimage.Image (kimage.proto).  So a layout-1 extractor reads an
 * old kernel's region from outside (the kernel does nothing for it and
 * may be hung), and a layout-v2 kernel builds its own tables from the
 * bytes.
 *
 * extract: reads process `slot` from a region that another process may
 * be writing (a torn view): magic, layout and size are checked and every
 * index is bounds-checked before it is followed.  Returns 0 and a packed
 * image in *buf (xmalloc'd; the caller frees it), -EPROTO for a region
 * of another layout, -ESRCH for a slot with no live process.  State the
 * image cannot carry is named in Image.cannot_carry; the image is still
 * written, so the caller can report it.
 *
 * build: makes the process of a packed image in a region of this build's
 * layout, all or nothing.  Ids the process names (its slot, ICAs, result
 * requests) and those other processes may share (chans, its namespace
 * group, pipes, TCP conversations) keep their index and generation: an
 * entry already built from another image with the same id is shared, a
 * different live entry there is a conflict.  Returns the slot, or -EXDEV
 * (cannot_carry is not empty), -EBADMSG (not an image), -EPROTO (a newer
 * image version), -EEXIST (a conflict; nothing written), -EINVAL (an id
 * out of range).
 *
 * extract_kernel / build_kernel: the same for the kernel-wide part
 * (kimage.proto Kernel: services and the requests queued or in service,
 * with their ICAs, and the /srv entries that name the services, so that
 * a restarted file server is reached by its old name), built before the
 * process images.  build_kernel
 * returns 0 or the errors above.
 *
 * extract_cache / build_cache (kimage_cache.c): the same for the disk's
 * buffer cache (kimage.proto Cache): its segments by ICA id and its dirty
 * entries, never a block's bytes (they stay in the segments' ICAs, which
 * the machine hands over).  build_cache writes the segment table, the
 * segments' ICA entries and the dirty entries into a region of this
 * build's layout, for the new kernel to adopt as a dead kernel's cache of
 * its own version (bcache_adopt).  Returns 0 or the errors above (-EEXIST
 * also when the region has a cache already).  cache_dirty: the dirty
 * entries a region of this layout holds (0 for another layout).
 *
 * Limits: KIMG_MAX_BYTES per packed process image, KIMG_KERNEL_MAX_BYTES
 * per packed kernel part, KIMG_CACHE_MAX_BYTES per packed cache.
 */
#ifndef UKSIM_KIMAGE_H
#define UKSIM_KIMAGE_H

#include <stddef.h>
#include <stdint.h>

/* The image version this tree writes (Image.version); a builder refuses a
 * newer one. */
#define KIMG_VERSION 1
/* Largest packed image a builder accepts (two full pipe rings, 64 fds,
 * 1024 ICAs and 256 results fit in far less). */
#define KIMG_MAX_BYTES (1u << 20)
/* Largest packed kernel part a builder accepts (UK_REQ_MAX requests and
 * UK_SVC_MAX services with their programs fit in well under it). */
#define KIMG_KERNEL_MAX_BYTES (8u << 20)
/* Largest packed cache a builder accepts: UK_BCACHE_MAX dirty entries of
 * at most 36 bytes each (tags and lengths included) and UK_BCACHE_SEGS_MAX
 * segment ids fit in it (test_kimage_cache checks a full cache). */
#define KIMG_CACHE_MAX_BYTES (1u << 20)

int kimg_v1_extract(const void *region, size_t len, uint32_t slot,
                    uint8_t **buf, size_t *n);
int kimg_v1_build(void *region, size_t len, const uint8_t *buf, size_t n);
size_t kimg_v1_region_size(void);
void kimg_v1_region_init(void *region, uint32_t os_id);
int kimg_v1_extract_kernel(const void *region, size_t len, uint8_t **buf,
                           size_t *n);
int kimg_v1_build_kernel(void *region, size_t len, const uint8_t *buf,
                         size_t n);
int kimg_v1_extract_cache(const void *region, size_t len, uint8_t **buf,
                          size_t *n);
int kimg_v1_build_cache(void *region, size_t len, const uint8_t *buf, size_t n);
uint32_t kimg_v1_cache_dirty(const void *region, size_t len);

int kimg_v2_extract(const void *region, size_t len, uint32_t slot,
                    uint8_t **buf, size_t *n);
int kimg_v2_build(void *region, size_t len, const uint8_t *buf, size_t n);
size_t kimg_v2_region_size(void);
void kimg_v2_region_init(void *region, uint32_t os_id);
int kimg_v2_extract_kernel(const void *region, size_t len, uint8_t **buf,
                           size_t *n);
int kimg_v2_build_kernel(void *region, size_t len, const uint8_t *buf,
                         size_t n);
int kimg_v2_extract_cache(const void *region, size_t len, uint8_t **buf,
                          size_t *n);
int kimg_v2_build_cache(void *region, size_t len, const uint8_t *buf, size_t n);
uint32_t kimg_v2_cache_dirty(const void *region, size_t len);

#endif /* UKSIM_KIMAGE_H */
