/* The kvs service protocol: a key-value store server (servers/kvs.c).
 *
 * The control ICA holds a struct kvs_ctl.  Values travel in data ICAs:
 *   put:    key in ctl, value in the data ICA (vallen bytes; no data ICA for
 *           an empty value).  The data ICA comes back to the client.
 *   get:    key in ctl; answered with vallen and a data ICA holding the
 *           value (none if empty).  -ENOENT if the key is absent.
 *   delete: key in ctl; -ENOENT if absent.
 *   list:   answered with a data ICA of NUL-separated keys, vallen bytes.
 *   flush:  answered once every put the server holds has been applied and
 *           answered (a caching server, kvs --cache); no key.
 * Limits: keys 1..KVS_KEY_MAX-1 bytes, values up to KVS_VALUE_MAX bytes.
 *
 * Version 2 of the server keeps a counter per key, bumped by every put; put
 * and get answer it in ctl.counter.  Version 1 answers 0 there.
 */
#ifndef UKSIM_KVS_H
#define UKSIM_KVS_H

#include <stdint.h>

#define KVS_NAME "kvs"
#define KVS_OPNAMES "put,get,delete,list,flush"
#define KVS_KEY_MAX 256
#define KVS_VALUE_MAX (64ull << 20)

enum kvs_op { KVS_PUT = 0, KVS_GET, KVS_DELETE, KVS_LIST, KVS_FLUSH };

struct kvs_ctl {
  uint32_t keylen;
  uint32_t counter; /* answer of put and get, version 2 (wraps at 2^32) */
  uint64_t vallen;
  char key[KVS_KEY_MAX];
};

#endif /* UKSIM_KVS_H */
