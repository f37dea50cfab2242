/* The version-neutral form of a kvs store (servers/kvs_state.proto) in a
 * buffer, normally a hand-off ICA: struct kvn_hdr, then a packed
 * uksim.kvs.State.
 *
 * A server being replaced by another kvs version exports its store in this
 * form from its replacement hook; the copy baseline exports here for every
 * replacement and snapshot.  The importer builds a store of its own layout
 * from it, so neither version needs to know the other's layout: v1 -> v2
 * gives every key a counter of 1.  v2 -> v1 is refused by the version the
 * form records (kst_check_version): v1 would drop the counters.
 *
 * Export is O(data) by nature (every value is packed); the message points
 * into the store, so the only copy is the packing itself.
 */
#ifndef UKSIM_SERVERS_KVS_NEUTRAL_H
#define UKSIM_SERVERS_KVS_NEUTRAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs_state.h"
#include "kvs_state.pb-c.h"

#define KVN_MAGIC 0x6c7274754e53564bull /* "KVSNutrl" */
#define KVN_FORMAT 1

struct kvn_hdr {
  uint64_t magic;
  uint32_t format; /* KVN_FORMAT */
  uint32_t pad;
  uint64_t len; /* bytes of the packed message that follows */
};

/* A store's export, ready to pack: pointers borrowed from the store. */
struct kvn_image {
  Uksim__Kvs__State msg;
  Uksim__Kvs__Entry *ent, **entp;
  Uksim__Kvs__Held *held, **heldp;
};

/* Describes store s (written by kvs `from_version`) in im. */
void kvn_build(const struct kst *s, uint32_t from_version,
               struct kvn_image *im);

/* Bytes kvn_write() needs: the header and the packed message. */
uint64_t kvn_size(const struct kvn_image *im);

/* Writes the header and the message into buf (kvn_size bytes). */
void kvn_write(const struct kvn_image *im, void *buf);

void kvn_free(struct kvn_image *im);

/* Whether buf starts like the neutral form (the magic). */
bool kvn_is_image(const void *buf, uint64_t len);

/* Loads every entry and held request of the neutral form in buf into dst,
 * an empty store.  0; -EPROTO for a malformed buffer (why says what);
 * -EPROTONOSUPPORT, dst unchanged, when a newer version than dst's layout
 * wrote it (kst_check_version); or an error of kst_load (-ENOSPC: dst is
 * too small). */
int kvn_import(struct kst *dst, const void *buf, uint64_t len, char *why,
               size_t whylen);

#endif /* UKSIM_SERVERS_KVS_NEUTRAL_H */
