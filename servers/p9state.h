/* p9state.h: the state of a 9P file server (p9host.c) as pure functions
 * over memory: the state area (a header page and two halves, one image
 * published at a time by one word) and the memfs and hostfs trees in
 * their protobuf-c form (p9_state.proto).  No kernel calls: the unit
 * tests (tests/servers/test_p9state.c) run them over plain buffers.
 */
#ifndef SERVERS_P9STATE_H
#define SERVERS_P9STATE_H

#include <stddef.h>
#include <stdint.h>

#include "p9_state.pb-c.h"
#include "uksim/9p.h"

#define P9S_HDR_SIZE 4096u

/* Bytes of an area whose halves hold slot_cap bytes each. */
uint64_t p9s_area_size(uint64_t slot_cap);
/* Makes base (p9s_area_size(slot_cap) bytes, zeroed) an area with no
 * image published yet. */
void p9s_area_init(void *base, uint64_t slot_cap);
/* What one half holds. */
uint64_t p9s_slot_cap(const void *base);
/* Packs st (len bytes packed) into the half not published, then
 * publishes it with one release store: a crash at any instruction leaves
 * the image published before or the one after.  -ENOSPC if len is
 * larger than a half. */
int p9s_publish(void *base, const Uksim__P9s__State *st, size_t len);
/* The published image of the size-byte area at base, unpacked (free
 * with uksim__p9s__state__free_unpacked), or NULL with why: no magic, a
 * header out of range, nothing published, an image that does not parse. */
Uksim__P9s__State *p9s_unpack(const void *base, uint64_t size,
                              const char **why);

/* A qid into its protobuf-c form (q is initialised here), and back (a
 * missing one is all zeros). */
void p9s_qid_to_pb(p9_qid qid, Uksim__P9s__Qid *q);
p9_qid p9s_qid_from_pb(const Uksim__P9s__Qid *q);

/* The trees.  describe puts fs into st, borrowing strings and data from
 * it; described frees what describe allocated, once st has been packed.
 * load rebuilds a tree from st, or NULL with *err and why. */
void p9s_memfs_describe(p9_memfs *fs, Uksim__P9s__State *st);
void p9s_memfs_described(Uksim__P9s__State *st);
p9_memfs *p9s_memfs_load(const Uksim__P9s__State *st, int *err, char *why,
                         size_t whylen);
void p9s_hostfs_describe(p9_hostfs *fs, Uksim__P9s__State *st);
void p9s_hostfs_described(Uksim__P9s__State *st);
/* The state must be of directory dir (a successor given another refuses). */
p9_hostfs *p9s_hostfs_load(const char *dir, const Uksim__P9s__State *st,
                           int *err, char *why, size_t whylen);

#endif
