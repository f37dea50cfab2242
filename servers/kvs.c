/* The kvs server: service "kvs", version 1, protocol in uksim/kvs.h.
 *
 * Two parts.  The store (kvs_store_*) is a chained hash table of string keys
 * with values copied into heap memory; all of its state sits in one struct
 * kvs_store so that a later version can move it into a state ICA and hand
 * it to a replacement server.  The request side (do_*) validates each
 * request and moves bytes between ICAs and the store.
 *
 * Every request comes from an untrusted client: a missing or short control
 * ICA, a bad key or value length, or an unknown op is answered with an
 * error (-EINVAL, -EFBIG, -ENOSYS), never a crash.  Field values are copied
 * out of the control ICA once, before they are checked, so a client that
 * still maps the memfd cannot change them between check and use.
 *
 * Load: keys up to KVS_KEY_MAX-1 bytes, values up to KVS_VALUE_MAX (64 MiB),
 * as many as memory allows; the table doubles when it holds more entries
 * than buckets, so lookups stay O(1) on average.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/kvs.h"
#include "uksim/server.h"

#define KVS_VERSION 1
#define KVS_BUCKETS_MIN 64 /* a power of two */

struct kvs_entry {
  struct kvs_entry *next; /* in the same bucket */
  uint64_t hash;
  uint64_t vallen;
  void *val;       /* vallen bytes; NULL when vallen is 0 */
  uint32_t keylen; /* without the NUL */
  char key[];      /* NUL-terminated */
};

struct kvs_store {
  struct kvs_entry **bucket;
  size_t nbucket; /* a power of two */
  size_t count;
  uint64_t keybytes; /* sum of keylen + 1: the size of a list answer */
};

/* FNV-1a: short keys, no adversary worth a keyed hash in a laboratory. */
static uint64_t hash_key(const char *key, size_t keylen) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < keylen; i++)
    h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
  return h;
}

/* Initializes an empty store.  0 or -ENOMEM. */
static int kvs_store_init(struct kvs_store *s) {
  memset(s, 0, sizeof *s);
  s->bucket = calloc(KVS_BUCKETS_MIN, sizeof *s->bucket);
  if (s->bucket == NULL)
    return -ENOMEM;
  s->nbucket = KVS_BUCKETS_MIN;
  return 0;
}

/* Frees every entry and the table. */
static void kvs_store_close(struct kvs_store *s) {
  for (size_t b = 0; b < s->nbucket; b++) {
    struct kvs_entry *e = s->bucket[b], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      free(e->val);
      free(e);
    }
  }
  free(s->bucket);
  memset(s, 0, sizeof *s);
}

/* Returns the link that points at the entry for key, or the NULL link at
 * the end of its bucket's chain if the key is absent. */
static struct kvs_entry **find_link(struct kvs_store *s, const char *key,
                                    size_t keylen, uint64_t hash) {
  struct kvs_entry **l = &s->bucket[hash & (s->nbucket - 1)];
  for (; *l != NULL; l = &(*l)->next) {
    struct kvs_entry *e = *l;
    if (e->hash == hash && e->keylen == keylen &&
        memcmp(e->key, key, keylen) == 0)
      break;
  }
  return l;
}

/* Doubles the bucket array.  Failure is harmless (chains just get longer),
 * so it is not reported. */
static void grow(struct kvs_store *s) {
  size_t n = s->nbucket * 2;
  struct kvs_entry **nb = calloc(n, sizeof *nb);
  if (nb == NULL)
    return;
  for (size_t b = 0; b < s->nbucket; b++) {
    struct kvs_entry *e = s->bucket[b], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      e->next = nb[e->hash & (n - 1)];
      nb[e->hash & (n - 1)] = e;
    }
  }
  free(s->bucket);
  s->bucket = nb;
  s->nbucket = n;
}

/* Adds a new entry at link l, taking ownership of val. */
static int add_entry(struct kvs_store *s, struct kvs_entry **l, const char *key,
                     size_t keylen, uint64_t hash, void *val, uint64_t vallen) {
  struct kvs_entry *e = malloc(sizeof *e + keylen + 1);
  if (e == NULL)
    return -ENOMEM;
  e->next = NULL;
  e->hash = hash;
  e->val = val;
  e->vallen = vallen;
  e->keylen = (uint32_t)keylen;
  memcpy(e->key, key, keylen);
  e->key[keylen] = '\0';
  *l = e;
  s->count++;
  s->keybytes += keylen + 1;
  if (s->count > s->nbucket)
    grow(s);
  return 0;
}

/* Stores a copy of val (vallen bytes) under key, replacing any old value.
 * key must hold no NUL.  0 or -ENOMEM (the store is then unchanged). */
static int kvs_store_put(struct kvs_store *s, const char *key, size_t keylen,
                         const void *val, uint64_t vallen) {
  void *copy = NULL;
  if (vallen > 0) {
    copy = malloc(vallen);
    if (copy == NULL)
      return -ENOMEM;
    memcpy(copy, val, vallen);
  }
  uint64_t hash = hash_key(key, keylen);
  struct kvs_entry **l = find_link(s, key, keylen, hash);
  if (*l != NULL) {
    free((*l)->val);
    (*l)->val = copy;
    (*l)->vallen = vallen;
    return 0;
  }
  int r = add_entry(s, l, key, keylen, hash, copy, vallen);
  if (r < 0)
    free(copy);
  return r;
}

/* Finds key's value.  An exception to the _get verb: *val is borrowed from
 * the store and valid until the next put or delete.  0 or -ENOENT. */
static int kvs_store_get(struct kvs_store *s, const char *key, size_t keylen,
                         const void **val, uint64_t *vallen) {
  struct kvs_entry *e = *find_link(s, key, keylen, hash_key(key, keylen));
  if (e == NULL)
    return -ENOENT;
  *val = e->val;
  *vallen = e->vallen;
  return 0;
}

/* Removes key and frees its value.  0 or -ENOENT. */
static int kvs_store_del(struct kvs_store *s, const char *key, size_t keylen) {
  struct kvs_entry **l = find_link(s, key, keylen, hash_key(key, keylen));
  struct kvs_entry *e = *l;
  if (e == NULL)
    return -ENOENT;
  *l = e->next;
  s->count--;
  s->keybytes -= e->keylen + 1;
  free(e->val);
  free(e);
  return 0;
}

/* Writes every key, each followed by a NUL, into buf, which must hold
 * s->keybytes bytes.  Returns the bytes written (s->keybytes). */
static uint64_t kvs_store_list(const struct kvs_store *s, char *buf) {
  uint64_t off = 0;
  for (size_t b = 0; b < s->nbucket; b++) {
    for (struct kvs_entry *e = s->bucket[b]; e != NULL; e = e->next) {
      memcpy(buf + off, e->key, e->keylen + 1);
      off += e->keylen + 1;
    }
  }
  return off;
}

/* Copies the request's control block into c, checking that it is there and
 * whole.  The key is NUL-terminated in c when keylen is in range. */
static int read_ctl(const srv_req *r, struct kvs_ctl *c) {
  if (r->ctl.base == NULL || r->ctl.size < sizeof *c)
    return -EINVAL;
  memcpy(c, r->ctl.base, sizeof *c);
  if (c->keylen < KVS_KEY_MAX)
    c->key[c->keylen] = '\0';
  return 0;
}

/* Keys are 1..KVS_KEY_MAX-1 bytes without NUL (list separates them by
 * NUL, so a NUL inside a key would make list answers ambiguous). */
static int check_key(const struct kvs_ctl *c) {
  if (c->keylen == 0 || c->keylen >= KVS_KEY_MAX)
    return -EINVAL;
  if (memchr(c->key, '\0', c->keylen) != NULL)
    return -EINVAL;
  return 0;
}

/* Tells the client how many value (or list) bytes the data ICA holds. */
static void set_vallen(srv_req *r, uint64_t vallen) {
  struct kvs_ctl *out = r->ctl.base;
  out->vallen = vallen;
}

/* Makes r->data an attached data ICA of at least len (> 0) bytes for the
 * answer: the client's own one if it sent one big enough, otherwise a new
 * one, and the client's is released.  On failure r->data is unchanged. */
static int answer_ica(srv_req *r, uint64_t len) {
  if (r->data.base != NULL && r->data.kind == KABI_ICA_DATA &&
      r->data.size >= len)
    return 0;
  uk_ica fresh;
  int err = ica_create(len, KABI_ICA_DATA, &fresh);
  if (err < 0)
    return err;
  err = ica_release(&r->data);
  if (err < 0) {
    ica_release(&fresh);
    return err;
  }
  r->data = fresh;
  return 0;
}

/* put: the value is copied from the data ICA into the store (the store must
 * outlive the ICA, which goes back to the client). */
static int do_put(struct kvs_store *s, srv_req *r, const struct kvs_ctl *c) {
  if (c->vallen > KVS_VALUE_MAX)
    return -EFBIG;
  if (c->vallen > 0 && (r->data.base == NULL || r->data.size < c->vallen))
    return -EINVAL;
  return kvs_store_put(s, c->key, c->keylen, r->data.base, c->vallen);
}

static int do_get(struct kvs_store *s, srv_req *r, const struct kvs_ctl *c) {
  const void *val;
  uint64_t vallen;
  int err = kvs_store_get(s, c->key, c->keylen, &val, &vallen);
  if (err < 0)
    return err;
  if (vallen > 0) {
    err = answer_ica(r, vallen);
    if (err < 0)
      return err;
    memcpy(r->data.base, val, vallen);
  }
  set_vallen(r, vallen);
  return 0;
}

static int do_list(struct kvs_store *s, srv_req *r) {
  uint64_t len = s->keybytes;
  if (len > 0) {
    int err = answer_ica(r, len);
    if (err < 0)
      return err;
    kvs_store_list(s, r->data.base);
  }
  set_vallen(r, len);
  return 0;
}

/* Checks and performs one request; returns the status for the client. */
static int dispatch(struct kvs_store *s, srv_req *r) {
  struct kvs_ctl c;
  if (r->op > KVS_LIST)
    return -ENOSYS;
  int err = read_ctl(r, &c);
  if (err == 0 && r->op != KVS_LIST)
    err = check_key(&c);
  if (err < 0)
    return err;
  switch (r->op) {
  case KVS_PUT:
    return do_put(s, r, &c);
  case KVS_GET:
    return do_get(s, r, &c);
  case KVS_DELETE:
    return kvs_store_del(s, c.key, c.keylen);
  case KVS_LIST:
    return do_list(s, r);
  default:
    abort(); /* ops were range-checked above */
  }
}

/* Serves until the kernel closes the connection, which is how it ends a
 * server; returns 0 then, or the error that stopped the loop. */
static int serve(struct kvs_store *s) {
  srv_req req;
  int r = srv_receive(&req);
  while (r == 0)
    r = srv_reply_receive(&req, dispatch(s, &req));
  if (r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN)
    return 0;
  return r;
}

int main(void) {
  struct kvs_store store;
  int how;
  int r = kvs_store_init(&store);
  if (r == 0)
    r = srv_register(KVS_NAME, KVS_VERSION, KVS_OPNAMES, &how);
  /* Version 1 keeps its state in this process only: a replacement or a
   * restart starts empty.  Say so, since a client will notice. */
  if (r == 0 && how != KABI_REG_FRESH)
    fprintf(stderr, "kvs: taking over the service with an empty store\n");
  if (r == 0)
    r = serve(&store);
  kvs_store_close(&store);
  if (r < 0) {
    fprintf(stderr, "kvs: %s\n", strerror(-r));
    return 1;
  }
  return 0;
}
