/* kvsload: the demonstration and load application for the kvs server.
 *
 * It sends a seeded random mix of put, get and delete requests over a key
 * space "PREFIX-0" .. "PREFIX-<K-1>" and checks every answer against a
 * local model of what it stored.  A value is never remembered: its bytes
 * are derived from the key and a per-key version counter that every put
 * bumps, so a get is verified byte for byte by regenerating them, whatever
 * the value size (up to 64 MiB with --big).
 *
 * ICAs: one control ICA serves every request (it comes back with each
 * result).  One spare data ICA is kept: a put fills it and gets it back, a
 * get's answer becomes the next spare, and any other ICA that comes back is
 * released at once.  At exit the process holds no ICA.
 *
 * Under faults (--tolerate-reset) an answer may be -ECONNRESET: the server
 * failed while holding the request, which it may or may not have carried
 * out.  The model then keeps every state the key may be in, and the next
 * successful put, delete or get settles which one it is (a get's answer
 * must be one of them).  Resets are counted and printed.
 *
 * Value sizes: --value-size MIN..MAX draws each put's size from the seeded
 * generator (a single size draws nothing, so a seed gives the same mix as
 * before ranges existed).
 *
 * Value bytes: by default a pseudo-random stream (any byte, NUL included,
 * so every byte is checked).  --text-values makes them printable, so that a
 * person can read or write a server's contents: put number V of key K
 * (V from 1) stores the text "K:vV;" repeated and cut to the value's size
 * (key ap1-3, third put, 9 bytes: "ap1-3:v3;").
 *
 * Pacing: --rate N sends the n-th request of the mix (from 1) no earlier
 * than n/N seconds of the kernel's clock after the start, by sleeping
 * 1/N s (ap_sleep) before each.  The library has no clock to read, so the
 * time a request takes adds to its sleep: N is an upper bound on the rate.
 *
 * Computing: --compute US spins the CPU for US microseconds (of the host's
 * clock, making no call) before each request, so that most of the
 * application's time is spent outside the kernel: the third point of the
 * Orthros paper's evaluation (seed 001 §5.1), an application computing
 * when its OS fails.
 *
 * Final state: --check-state gets every key of the key space after the
 * workload and compares the answer with the model (a key whose state is
 * unknown passes with any of its candidate states).  Every difference is
 * named on stderr.
 *
 * Dump: --dump FILE sends no workload.  It lists every key of the service
 * (anyone's, not only ours), gets each, and writes the service's contents
 * to FILE as key=value lines sorted by key (bytewise), for the scenario
 * expectation `state S equals "FILE"` (scenarios/README.md).  A byte of a
 * key or value is written as itself when it is printable ASCII (space to
 * '~'), except a backslash (written "\\") and, in a key, '=' ("\x3d");
 * every other byte as "\xHH" (two lower-case hex digits).  FILE appears whole
 * or not at all: it is written as FILE.tmp and renamed at the end.
 *
 * Exit status: 0 every request was answered, every answer agreed with the
 * model and (--check-state) the server's final state is the model's, or
 * (--dump) FILE was written; 1 an answer disagreed or a request failed
 * during the run (each is named on stderr), or the dump failed; 2 a usage
 * error; 3 the run agreed but the final state differs.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uksim/ap.h"
#include "uksim/kvs.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"

#define KL_CTL_SIZE 4096  /* one page holds a struct kvs_ctl */
#define KL_PREFIX_MAX 200 /* leaves room for "-<index>" in a key */
#define KL_REPORT_MAX 20  /* messages on stderr before going quiet */
#define KL_GOLDEN 0x9e3779b97f4a7c15ull
#define KL_CAND_MAX 8  /* states a key may be in before "any" */
#define KL_ANY_BACK 64 /* versions an "any" key's value is looked for in */
#define KL_RATE_MAX 1000000000ull    /* one request a nanosecond */
#define KL_COMPUTE_MAX_US 1000000ull /* --compute: a second before each */
#define KL_CHECK_TRIES 3 /* gets of a key in the final check, if reset */

struct kl_opts {
  uint64_t count;                /* requests in the random mix */
  uint32_t keys;                 /* key space */
  uint64_t value_min, value_max; /* bytes per value, drawn in between */
  uint64_t seed;
  char prefix[KL_PREFIX_MAX + 1];
  unsigned mix[3]; /* put, get, delete weights */
  uint64_t big;    /* --big: value bytes, or 0 */
  bool list;
  bool tolerate_reset; /* -ECONNRESET is an unknown outcome, not an error */
  bool check_state;    /* get every key at the end and compare */
  uint64_t rate;       /* requests per second of the kernel's clock; 0 free */
  uint64_t compute_us; /* CPU spun before each request, 0: none */
  bool text_values;    /* printable values (see the top of the file) */
  char service[KABI_NAME_MAX];
  char dump[PATH_MAX]; /* --dump FILE, or "" */
};

/* One state a key may be in on the server. */
struct kl_val {
  uint64_t len;     /* value bytes, when live */
  uint32_t version; /* of the put that stored it; the value derives from it */
  bool live;        /* stored and not deleted */
};

/* What the model knows about one key: the state it is in (ncand 1), or the
 * states it may be in after puts or deletes whose outcome is unknown (a
 * server that failed while holding them answers -ECONNRESET, having done
 * them or not).  The next successful put, delete or get settles it. */
struct kl_key {
  uint32_t version; /* of the last put sent */
  uint32_t ncand;   /* 0: any state at all (too many unknown outcomes) */
  struct kl_val cand[KL_CAND_MAX];
};

struct kl {
  struct kl_opts o;
  uint32_t svc;
  uk_ica ctl;           /* reused for every request */
  uk_ica spare;         /* a data ICA kept for the next put */
  struct kl_key *model; /* keys + 1 entries; the last is the --big key */
  uint64_t rng;
  uint64_t requests, errors, mismatches, resets;
  uint64_t diffs; /* --check-state: keys whose state is not the model's */
  bool checking;  /* in the final check: a mismatch is a state difference */
  bool answered;  /* the last call got a result (not a call-level error) */
  bool stop;      /* the kernel or the service is gone: no answer can come */
};

/* splitmix64's finalizer: a good 64-bit mixer for values and choices. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t next_rand(struct kl *k) {
  k->rng += KL_GOLDEN;
  return mix64(k->rng);
}

/* The seed of a value's byte stream: the key and the version pick it. */
static uint64_t value_seed(const char *key, uint32_t version) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *p = key; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  return mix64(h ^ mix64(version));
}

/* Byte block i (8 bytes) of the stream vseed. */
static uint64_t value_block(uint64_t vseed, uint64_t i) {
  return mix64(vseed + i * KL_GOLDEN);
}

static void fill_stream(unsigned char *buf, uint64_t len, uint64_t vseed) {
  for (uint64_t off = 0; off < len; off += 8) {
    uint64_t w = value_block(vseed, off / 8);
    memcpy(buf + off, &w, len - off < 8 ? len - off : 8);
  }
}

/* Returns the offset of the first byte that differs from the stream vseed,
 * or len if all agree. */
static uint64_t check_stream(const unsigned char *buf, uint64_t len,
                             uint64_t vseed) {
  for (uint64_t off = 0; off < len; off += 8) {
    uint64_t w = value_block(vseed, off / 8);
    uint64_t n = len - off < 8 ? len - off : 8;
    if (memcmp(buf + off, &w, n) != 0) {
      for (uint64_t j = 0; j < n; j++)
        if (buf[off + j] != ((unsigned char *)&w)[j])
          return off + j;
    }
  }
  return len;
}

/* --text-values: the text "KEY:vVERSION;" that a value repeats; its
 * length. */
static size_t text_unit(const char *key, uint32_t version, char *buf,
                        size_t size) {
  int n = snprintf(buf, size, "%s:v%" PRIu32 ";", key, version);
  return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* Fills buf[0..len) with put number version of key. */
static void fill_value(bool text, unsigned char *buf, uint64_t len,
                       const char *key, uint32_t version) {
  char unit[KVS_KEY_MAX + 16];
  if (!text) {
    fill_stream(buf, len, value_seed(key, version));
    return;
  }
  size_t n = text_unit(key, version, unit, sizeof unit);
  for (uint64_t off = 0; off < len; off++)
    buf[off] = (unsigned char)unit[off % n];
}

/* Returns the offset of the first byte of buf[0..len) that differs from put
 * number version of key, or len if all agree. */
static uint64_t check_value(bool text, const unsigned char *buf, uint64_t len,
                            const char *key, uint32_t version) {
  char unit[KVS_KEY_MAX + 16];
  if (!text)
    return check_stream(buf, len, value_seed(key, version));
  size_t n = text_unit(key, version, unit, sizeof unit);
  for (uint64_t off = 0; off < len; off++)
    if (buf[off] != (unsigned char)unit[off % n])
      return off;
  return len;
}

/* Key i's name; index o.keys is the --big key. */
static void key_name(const struct kl *k, uint32_t i, char *buf, size_t size) {
  if (i == k->o.keys)
    snprintf(buf, size, "%s-big", k->o.prefix);
  else
    snprintf(buf, size, "%s-%" PRIu32, k->o.prefix, i);
}

/* Reports on stderr, quietly after KL_REPORT_MAX messages, so a broken
 * server does not bury the first (most telling) failure. */
static void report(struct kl *k, const char *fmt, ...) {
  uint64_t n = k->errors + k->mismatches;
  if (n > KL_REPORT_MAX)
    return;
  va_list ap;
  va_start(ap, fmt);
  fputs("kvsload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (n == KL_REPORT_MAX)
    fputs("kvsload: further messages suppressed\n", stderr);
}

/* An answer the model did not allow for.  In the final check it is a
 * difference of the server's state, each named (the key space bounds them). */
static void mismatch(struct kl *k, const char *op, const char *key,
                     const char *what) {
  if (k->checking) {
    k->diffs++;
    fprintf(stderr, "kvsload: STATE %s: %s\n", key, what);
    return;
  }
  k->mismatches++;
  report(k, "MISMATCH %s %s: %s", op, key, what);
}

/* A request that failed (kernel or server error not in the protocol). */
static void failure(struct kl *k, const char *op, const char *key, int err) {
  k->errors++;
  report(k, "ERROR %s %s: %s", op, key, strerror(-err));
}

static int ensure_ctl(struct kl *k) {
  if (k->ctl.id != KABI_ICA_NONE)
    return 0;
  return ica_create(KL_CTL_SIZE, KABI_ICA_CONTROL, &k->ctl);
}

/* Makes k->spare a data ICA of at least len (> 0) bytes; one that fits
 * the largest normal value, so a range of sizes does not churn ICAs. */
static int ensure_spare(struct kl *k, uint64_t len) {
  if (k->spare.id != KABI_ICA_NONE && k->spare.size >= len)
    return 0;
  ica_release(&k->spare);
  uint64_t size = len > k->o.value_max ? len : k->o.value_max;
  return ica_create(size, KABI_ICA_DATA, &k->spare);
}

/* Takes a data ICA that came back: it becomes the spare if there is none
 * and it fits a normal value; otherwise it goes back to the kernel. */
static void keep_data(struct kl *k, uk_ica *d) {
  if (d->id == KABI_ICA_NONE)
    return;
  if (k->spare.id == KABI_ICA_NONE && d->kind == KABI_ICA_DATA &&
      d->size >= k->o.value_max) {
    k->spare = *d;
    memset(d, 0, sizeof *d);
    return;
  }
  ica_release(d);
}

/* Whether a call-level error means no later request can be answered: the
 * kernel connection is gone, or the service is (-ESRCH: no server and none
 * coming), so carrying on would only repeat the error. */
static bool hopeless(int r) {
  return r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN || r == -EPROTO ||
         r == -ESRCH;
}

/* Sends one request with key and vallen in the control ICA and data (may
 * be NULL) and waits for its result.  Returns the server's status or a
 * kernel error.  The control ICA that comes back is kept in k->ctl; res
 * holds the rest, which the caller must consume. */
static int kl_call(struct kl *k, uint32_t op, const char *key, uint64_t vallen,
                   uk_ica *data, ap_result *res) {
  memset(res, 0, sizeof *res);
  int r = ensure_ctl(k);
  if (r < 0)
    return r;
  struct kvs_ctl *c = k->ctl.base;
  memset(c, 0, sizeof *c);
  c->keylen = (uint32_t)strlen(key);
  memcpy(c->key, key, c->keylen);
  c->vallen = vallen;
  k->requests++;
  r = ap_call(k->svc, op, &k->ctl, data, res);
  k->answered = r == 0;
  if (r < 0) {
    /* Refused before it left (we keep every ICA), or the connection
     * broke; in both cases there is no result to consume. */
    k->stop = hopeless(r);
    memset(res, 0, sizeof *res);
    return r;
  }
  k->ctl = res->ctl;
  memset(&res->ctl, 0, sizeof res->ctl);
  k->stop = res->status == -ESRCH;
  return res->status;
}

/* A request naming key i and carrying no value (get, delete).  key
 * receives the key's name (KVS_KEY_MAX bytes) for messages. */
static int key_call(struct kl *k, uint32_t op, uint32_t i, char *key,
                    ap_result *res) {
  key_name(k, i, key, KVS_KEY_MAX);
  return kl_call(k, op, key, 0, NULL, res);
}

/* The server failed while holding the request (an answer, not a broken
 * connection): its outcome is unknown.  Counted; an error unless
 * --tolerate-reset. */
static bool was_reset(struct kl *k, int st, const char *op, const char *key) {
  if (st != -ECONNRESET || !k->answered)
    return false;
  k->resets++;
  if (!k->o.tolerate_reset)
    failure(k, op, key, st);
  return true;
}

/* After a request with an unknown outcome: the key may also be in state
 * v now. */
static void add_cand(struct kl_key *m, struct kl_val v) {
  if (m->ncand == 0)
    return;
  if (m->ncand == KL_CAND_MAX) {
    m->ncand = 0;
    return;
  }
  m->cand[m->ncand++] = v;
}

static void settle(struct kl_key *m, struct kl_val v) {
  m->cand[0] = v;
  m->ncand = 1;
}

static void do_put(struct kl *k, uint32_t i, uint64_t len) {
  struct kl_key *m = &k->model[i];
  char key[KVS_KEY_MAX];
  ap_result res;
  uk_ica *data = NULL;

  key_name(k, i, key, sizeof key);
  if (len > 0) {
    int r = ensure_spare(k, len);
    if (r < 0) {
      failure(k, "put", key, r);
      return;
    }
    fill_value(k->o.text_values, k->spare.base, len, key, m->version + 1);
    data = &k->spare;
  }
  /* The version moves on even if the put fails, so no two puts of a key
   * ever carry the same bytes. */
  m->version++;
  struct kl_val put = {.len = len, .version = m->version, .live = true};
  int st = kl_call(k, KVS_PUT, key, len, data, &res);
  keep_data(k, &res.data);
  if (st == 0)
    settle(m, put);
  else if (was_reset(k, st, "put", key))
    add_cand(m, put);
  else {
    failure(k, "put", key, st);
    add_cand(m, put);
  }
}

/* Whether a get's answer (vallen bytes in data) is the stored state v;
 * *off gets the first differing byte. */
static bool got_is(const struct kl *k, const char *key, const struct kl_val *v,
                   uint64_t vallen, const uk_ica *data, uint64_t *off) {
  *off = 0;
  if (!v->live || v->len != vallen)
    return false;
  if (vallen > 0 && (data->base == NULL || data->size < vallen))
    return false;
  *off = check_value(k->o.text_values, data->base, vallen, key, v->version);
  return *off == vallen;
}

/* Explains why a get's answer is not the one state the model knows. */
static void explain_get(struct kl *k, const char *key, const struct kl_val *v,
                        int st, uint64_t vallen, const uk_ica *data) {
  char what[128];
  uint64_t off;
  if (st == -ENOENT)
    mismatch(k, "get", key, "-ENOENT, but the key was stored");
  else if (!v->live)
    mismatch(k, "get", key, "found, but the key was deleted or never put");
  else if (vallen != v->len) {
    snprintf(what, sizeof what, "%" PRIu64 " bytes, expected %" PRIu64, vallen,
             v->len);
    mismatch(k, "get", key, what);
  } else if (vallen > 0 && (data->base == NULL || data->size < vallen))
    mismatch(k, "get", key, "no data ICA holding the value");
  else if (!got_is(k, key, v, vallen, data, &off)) {
    snprintf(what, sizeof what,
             "value differs at byte %" PRIu64 " of %" PRIu64 " (version %u)",
             off, vallen, v->version);
    mismatch(k, "get", key, what);
  }
}

/* A key in any state: its value may be that of any recent put. */
static bool find_version(const struct kl *k, const char *key, struct kl_key *m,
                         uint64_t vallen, const uk_ica *data) {
  uint64_t off;
  for (uint32_t back = 0; back < KL_ANY_BACK && back < m->version; back++) {
    struct kl_val v = {vallen, m->version - back, true};
    if (got_is(k, key, &v, vallen, data, &off)) {
      settle(m, v);
      return true;
    }
  }
  return false;
}

/* Settles key m by a get's answer (st 0 or -ENOENT). */
static void check_get(struct kl *k, const char *key, struct kl_key *m, int st,
                      const uk_ica *data) {
  struct kl_val gone = {0, 0, false};
  uint64_t off, vallen = 0;
  if (st == 0 && k->ctl.base == NULL) {
    mismatch(k, "get", key, "the control ICA did not come back");
    return;
  }
  if (st == 0)
    vallen = ((struct kvs_ctl *)k->ctl.base)->vallen;
  for (uint32_t c = 0; c < m->ncand; c++) {
    if (st == -ENOENT ? !m->cand[c].live
                      : got_is(k, key, &m->cand[c], vallen, data, &off)) {
      settle(m, st == -ENOENT ? gone : m->cand[c]);
      return;
    }
  }
  if (m->ncand == 0 && st == -ENOENT)
    settle(m, gone);
  else if (m->ncand == 0 && !find_version(k, key, m, vallen, data))
    mismatch(k, "get", key, "not the value of any recent put");
  else if (m->ncand == 1)
    explain_get(k, key, &m->cand[0], st, vallen, data);
  else if (m->ncand > 1)
    mismatch(k, "get", key, "none of the states an unknown outcome allows");
}

static void do_get(struct kl *k, uint32_t i) {
  char key[KVS_KEY_MAX];
  ap_result res;
  int st = key_call(k, KVS_GET, i, key, &res);
  if (was_reset(k, st, "get", key))
    ; /* changed nothing */
  else if (st != 0 && st != -ENOENT)
    failure(k, "get", key, st);
  else
    check_get(k, key, &k->model[i], st, &res.data);
  keep_data(k, &res.data);
}

/* Whether some state m may be in is (not) live. */
static bool may_be(const struct kl_key *m, bool live) {
  if (m->ncand == 0)
    return true;
  for (uint32_t c = 0; c < m->ncand; c++)
    if (m->cand[c].live == live)
      return true;
  return false;
}

static void do_delete(struct kl *k, uint32_t i) {
  struct kl_key *m = &k->model[i];
  struct kl_val gone = {0, 0, false};
  char key[KVS_KEY_MAX];
  ap_result res;
  int st = key_call(k, KVS_DELETE, i, key, &res);
  keep_data(k, &res.data);
  if (was_reset(k, st, "delete", key)) {
    add_cand(m, gone);
    return;
  }
  if (st != 0 && st != -ENOENT) {
    failure(k, "delete", key, st);
    add_cand(m, gone);
    return;
  }
  if (st == -ENOENT && !may_be(m, false))
    mismatch(k, "delete", key, "-ENOENT, but the key was stored");
  if (st == 0 && !may_be(m, true))
    mismatch(k, "delete", key, "deleted a key that was not stored");
  settle(m, gone);
}

/* Maps a listed key back to its model index, or returns -1 for a key that
 * is not ours (another kvsload's, or not of our shape). */
static long key_index(const struct kl *k, const char *name) {
  size_t plen = strlen(k->o.prefix);
  if (strncmp(name, k->o.prefix, plen) != 0 || name[plen] != '-')
    return -1;
  const char *rest = name + plen + 1;
  if (strcmp(rest, "big") == 0)
    return k->o.keys;
  uint64_t i;
  return num_parse_u64(rest, 0, k->o.keys - 1, 0, &i) == 0 ? (long)i : -1;
}

/* Compares the keys a list answer names with the model: every live key must
 * appear, and no deleted one. */
static void check_listed(struct kl *k, const bool *seen) {
  char key[KVS_KEY_MAX];
  for (uint32_t i = 0; i <= k->o.keys; i++) {
    const struct kl_key *m = &k->model[i];
    if (may_be(m, seen[i]))
      continue;
    key_name(k, i, key, sizeof key);
    mismatch(k, "list", key,
             seen[i] ? "a deleted key is listed" : "a stored key is missing");
  }
}

/* Marks in seen every key of ours that the list answer names. */
static int scan_list(struct kl *k, const uk_ica *data, bool *seen) {
  uint64_t len = k->ctl.base ? ((struct kvs_ctl *)k->ctl.base)->vallen : 0;
  if (len == 0)
    return 0;
  if (data->base == NULL || data->size < len)
    return -EPROTO;
  const char *p = data->base;
  if (p[len - 1] != '\0')
    return -EPROTO;
  for (uint64_t off = 0; off < len; off += strlen(p + off) + 1) {
    long i = key_index(k, p + off);
    if (i >= 0)
      seen[i] = true;
  }
  return 0;
}

static void do_list(struct kl *k) {
  ap_result res;
  bool *seen = xcalloc(k->o.keys + 1, sizeof *seen);
  int st = kl_call(k, KVS_LIST, "", 0, NULL, &res);
  if (was_reset(k, st, "list", "-"))
    ; /* nothing to check */
  else if (st < 0)
    failure(k, "list", "-", st);
  else if (scan_list(k, &res.data, seen) < 0)
    mismatch(k, "list", "-", "malformed answer (length or terminator)");
  else
    check_listed(k, seen);
  ica_release(&res.data);
  free(seen);
}

/* Picks put, get or delete by the --mix weights. */
static int pick_op(struct kl *k) {
  const unsigned *w = k->o.mix;
  uint64_t r = next_rand(k) % (w[0] + w[1] + w[2]);
  if (r < w[0])
    return KVS_PUT;
  return r < (uint64_t)w[0] + w[1] ? KVS_GET : KVS_DELETE;
}

/* A put's value size: drawn only from a range, so that a single size
 * leaves the request mix of a seed as it was. */
static uint64_t pick_size(struct kl *k) {
  uint64_t lo = k->o.value_min, hi = k->o.value_max;
  if (lo == hi)
    return lo;
  return lo + next_rand(k) % (hi - lo + 1);
}

/* n/rate seconds in nanoseconds, without overflow for rate <= KL_RATE_MAX
 * (the result wraps only after 584 years). */
static uint64_t due_ns(uint64_t n, uint64_t rate) {
  return n / rate * 1000000000ull + n % rate * 1000000000ull / rate;
}

/* Before request n (from 1) of the mix: sleeps its share of 1/rate s, the
 * nanoseconds rounded so that n requests sleep n/rate s in all. */
static void pace(struct kl *k, uint64_t n) {
  if (k->o.rate == 0)
    return;
  int r = ap_sleep(due_ns(n, k->o.rate) - due_ns(n - 1, k->o.rate));
  if (r < 0) {
    failure(k, "sleep", "-", r);
    k->o.rate = 0; /* report once; the answers can still be checked */
    k->stop = hopeless(r);
  }
}

static uint64_t host_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --compute: work that makes no call (the kernel does not see it). */
static void compute(const struct kl *k) {
  static volatile uint64_t sink;
  uint64_t end = host_ns() + k->o.compute_us * 1000;
  while (k->o.compute_us && host_ns() < end)
    for (int i = 0; i < 1000; i++)
      sink = sink * 6364136223846793005ull + 1442695040888963407ull;
}

static void run_mix(struct kl *k) {
  for (uint64_t n = 0; n < k->o.count && !k->stop; n++) {
    uint32_t i = (uint32_t)(next_rand(k) % k->o.keys);
    int op = pick_op(k);
    pace(k, n + 1);
    compute(k);
    if (k->stop)
      break;
    switch (op) {
    case KVS_PUT:
      do_put(k, i, pick_size(k));
      break;
    case KVS_GET:
      do_get(k, i);
      break;
    case KVS_DELETE:
      do_delete(k, i);
      break;
    default:
      abort();
    }
  }
}

/* One put of a --big value, then a get compared byte for byte.  The big
 * ICA goes back to the kernel right away rather than staying as spare. */
static void run_big(struct kl *k) {
  do_put(k, k->o.keys, k->o.big);
  ica_release(&k->spare);
  if (!k->stop)
    do_get(k, k->o.keys);
  ica_release(&k->spare);
}

/* Gets key i for the final check.  A reset (the server failed while
 * holding the get, which changes nothing) leaves the key unchecked: ask
 * again, the restarted server answers. */
static void check_key(struct kl *k, uint32_t i) {
  for (int t = 0; t < KL_CHECK_TRIES && !k->stop; t++) {
    uint64_t resets = k->resets;
    do_get(k, i);
    if (k->resets == resets)
      return;
  }
}

/* --check-state: gets every key of ours and compares with the model.
 * A key never put must be absent; the --big key is checked when it was
 * used. */
static void check_state(struct kl *k) {
  uint32_t last = k->o.big > 0 ? k->o.keys : k->o.keys - 1;
  k->checking = true;
  for (uint32_t i = 0; i <= last && !k->stop; i++)
    check_key(k, i);
  k->checking = false;
}

/* --dump ------------------------------------------------------------------ */

/* Writes s[0..len) as the top of the file says: printable ASCII as itself,
 * a backslash doubled, '=' in a key and every other byte as \xHH. */
static void put_escaped(FILE *f, const unsigned char *s, uint64_t len,
                        bool key) {
  for (uint64_t i = 0; i < len; i++) {
    if (s[i] == '\\')
      fputs("\\\\", f);
    else if (s[i] < 0x20 || s[i] > 0x7e || (key && s[i] == '='))
      fprintf(f, "\\x%02x", s[i]);
    else
      fputc(s[i], f);
  }
}

static int cmp_keys(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists every key of the service: *keys gets *n pointers into *buf (both
 * the caller's to free), sorted bytewise.  0 or a negative errno. */
static int list_keys(struct kl *k, char **buf, char ***keys, size_t *n) {
  ap_result res;
  *buf = NULL;
  *keys = NULL;
  *n = 0;
  int st = kl_call(k, KVS_LIST, "", 0, NULL, &res);
  if (st == 0 && k->ctl.base == NULL)
    st = -EPROTO; /* the control ICA did not come back */
  uint64_t len = st == 0 ? ((struct kvs_ctl *)k->ctl.base)->vallen : 0;
  if (st == 0 && len > 0 &&
      (res.data.base == NULL || res.data.size < len ||
       ((char *)res.data.base)[len - 1] != '\0'))
    st = -EPROTO;
  if (st == 0)
    *buf = xmalloc(len + 1);
  if (st == 0 && len > 0)
    memcpy(*buf, res.data.base, len);
  ica_release(&res.data);
  if (st < 0)
    return st;
  for (uint64_t off = 0; off < len; off += strlen(*buf + off) + 1)
    (*n)++;
  *keys = xcalloc(*n + 1, sizeof **keys);
  size_t i = 0;
  for (uint64_t off = 0; off < len; off += strlen(*buf + off) + 1)
    (*keys)[i++] = *buf + off;
  qsort(*keys, *n, sizeof **keys, cmp_keys);
  return 0;
}

/* Gets key and writes its line to f.  A reset (the server failed while
 * holding the get, which changes nothing) is asked again.  0 or a negative
 * errno (-ENOENT: the key went away since the list). */
static int dump_key(struct kl *k, FILE *f, const char *key) {
  ap_result res;
  int st = -ECONNRESET;
  for (int t = 0; t < KL_CHECK_TRIES && st == -ECONNRESET && !k->stop; t++) {
    st = kl_call(k, KVS_GET, key, 0, NULL, &res);
    if (st < 0)
      ica_release(&res.data);
  }
  if (st < 0)
    return st;
  uint64_t vallen = k->ctl.base ? ((struct kvs_ctl *)k->ctl.base)->vallen : 0;
  if (k->ctl.base == NULL ||
      (vallen > 0 && (res.data.base == NULL || res.data.size < vallen)))
    st = -EPROTO;
  else {
    put_escaped(f, (const unsigned char *)key, strlen(key), true);
    fputc('=', f);
    put_escaped(f, res.data.base, vallen, false);
    fputc('\n', f);
  }
  ica_release(&res.data);
  return st;
}

/* Closes f; 0, or -EIO if anything written to it was lost. */
static int close_file(FILE *f) {
  int r = ferror(f) || fflush(f) != 0 ? -EIO : 0;
  return fclose(f) != 0 ? -EIO : r;
}

/* Writes the service's contents to o.dump (see the top of the file).
 * Returns the exit status: 0, or 1 with the reason on stderr. */
static int run_dump(struct kl *k) {
  char tmp[PATH_MAX + 8], **keys = NULL, *buf = NULL;
  const char *what = "create", *key = "";
  size_t n = 0;
  snprintf(tmp, sizeof tmp, "%s.tmp", k->o.dump);
  FILE *f = fopen(tmp, "w");
  int r = f == NULL ? -errno : 0;
  if (r == 0) {
    what = "list";
    r = list_keys(k, &buf, &keys, &n);
  }
  for (size_t i = 0; r == 0 && i < n; i++) {
    what = "get ";
    key = keys[i];
    r = dump_key(k, f, key);
  }
  if (f != NULL) {
    int w = close_file(f);
    if (r == 0 && w == 0 && rename(tmp, k->o.dump) < 0)
      w = -errno;
    if (r == 0 && w < 0) {
      what = "write";
      key = "";
      r = w;
    }
  }
  if (r < 0) {
    fprintf(stderr, "kvsload: dump of %s to %s: %s%s: %s\n", k->o.service,
            k->o.dump, what, key, strerror(-r));
    unlink(tmp);
  } else {
    printf("kvsload: %zu keys of %s written to %s\n", n, k->o.service,
           k->o.dump);
  }
  free(keys);
  free(buf);
  return r < 0 ? 1 : 0;
}

static void usage(FILE *f) {
  fputs("usage: kvsload [options]\n"
        "Sends put/get/delete requests to the kvs server and checks every\n"
        "answer against a local model.  Runs under a uksim kernel.\n"
        "  --count N          requests in the random mix (default 1000)\n"
        "  --keys K           key space size (default 100)\n"
        "  --value-size S     value bytes, or MIN..MAX: each put draws its\n"
        "                     size from the seeded generator (default 64;\n"
        "                     K, M suffixes; at most 64M)\n"
        "  --seed N           seed of the request mix (default 1)\n"
        "  --name PREFIX      key prefix, keys are PREFIX-<i> (default\n"
        "                     kvsload<pid>)\n"
        "  --mix P:G:D        put:get:delete weights (default 50:45:5)\n"
        "  --big BYTES        instead of the mix: one put of BYTES then a get\n"
        "  --list             end with a list, checking every live key\n"
        "  --check-state      after the workload, get every key of the key\n"
        "                     space and compare with the model (exit 3 if\n"
        "                     the server's state differs)\n"
        "  --rate N           requests per second of the kernel's clock: the\n"
        "                     n-th is sent no earlier than n/N s after the\n"
        "                     start (default 0: no pacing)\n"
        "  --compute US       spin the CPU US microseconds before each\n"
        "                     request, calling nothing (at most 1000000)\n"
        "  --service NAME     the service to send to (default " KVS_NAME ")\n"
        "  --text-values      printable values: put number V of key K\n"
        "                     stores \"K:vV;\" repeated, cut to the size\n"
        "  --dump FILE        no workload: write every key=value of the\n"
        "                     service to FILE, sorted by key (bytes that\n"
        "                     are not printable as \\xHH, a backslash as\n"
        "                     \\\\, '=' in a key as \\x3d)\n"
        "  --tolerate-reset   an answer -ECONNRESET (the server failed while\n"
        "                     holding the request) is no error: the key's\n"
        "                     state is unknown until the next put, delete or\n"
        "                     get settles it; the resets are counted\n"
        "  --help             this text\n"
        "Exit status: 0 all answers matched (and the final state, with\n"
        "--check-state; or the dump was written), 1 an error or mismatch\n"
        "during the run (or the dump failed), 2 usage, 3 the final state\n"
        "differs from the model.\n",
        f);
}

/* A number of option opt (as written, "--keys") in [min, max], said on
 * stderr when it is not one; 0 or -EINVAL. */
static int opt_u64(const char *opt, const char *s, uint64_t min, uint64_t max,
                   uint64_t *out) {
  return num_opt_u64("kvsload", opt, s, min, max, 0, out) < 0 ? -EINVAL : 0;
}

/* SIZE or MIN..MAX (MIN <= MAX): bytes with an optional K, M or G suffix
 * (1024, 1024^2, 1024^3), at most KVS_VALUE_MAX; said on stderr when
 * wrong.  0 or -EINVAL. */
static int parse_sizes(const char *opt, const char *s, uint64_t *min,
                       uint64_t *max) {
  char lo[32];
  const char *dots = strstr(s, "..");
  if (dots == NULL) {
    if (num_opt_u64("kvsload", opt, s, 0, KVS_VALUE_MAX, NUM_SIZE, min) < 0)
      return -EINVAL;
    *max = *min;
    return 0;
  }
  if ((size_t)(dots - s) >= sizeof lo) {
    fprintf(stderr, "kvsload: %s: '%.*s' is not a size\n", opt, (int)(dots - s),
            s);
    return -EINVAL;
  }
  memcpy(lo, s, (size_t)(dots - s));
  lo[dots - s] = '\0';
  if (num_opt_u64("kvsload", opt, lo, 0, KVS_VALUE_MAX, NUM_SIZE, min) < 0 ||
      num_opt_u64("kvsload", opt, dots + 2, 0, KVS_VALUE_MAX, NUM_SIZE, max) <
          0)
    return -EINVAL;
  if (*min > *max) {
    fprintf(stderr, "kvsload: %s: '%s': the least size is above the most\n",
            opt, s);
    return -EINVAL;
  }
  return 0;
}

/* Says that arg is not what option opt takes; returns -EINVAL. */
static int bad(const char *opt, const char *arg, const char *what) {
  fprintf(stderr, "kvsload: %s: '%s' is not %s\n", opt, arg, what);
  return -EINVAL;
}

/* A text option that must be 1..max bytes long (what it is: "a service
 * name"), into out. */
static int parse_text(const char *opt, const char *s, size_t max, char *out,
                      const char *what) {
  if (*s == '\0' || strlen(s) > max) {
    fprintf(stderr, "kvsload: %s: '%s' is not %s of 1..%zu bytes\n", opt, s,
            what, max);
    return -EINVAL;
  }
  strcpy(out, s);
  return 0;
}

/* PUT:GET:DELETE weights, each 0..1000000, not all 0. */
static int parse_mix(const char *opt, const char *s, unsigned mix[3]) {
  char part[3][16];
  const char *p = s;
  for (int i = 0; i < 3; i++) {
    size_t len = strcspn(p, ":");
    uint64_t v;
    if (len >= sizeof part[i] || (i < 2 ? p[len] != ':' : p[len] != '\0'))
      return bad(opt, s, "PUT:GET:DELETE (three numbers in 0..1000000)");
    memcpy(part[i], p, len);
    part[i][len] = '\0';
    if (opt_u64(opt, part[i], 0, 1000000, &v) < 0)
      return -EINVAL;
    mix[i] = (unsigned)v;
    p += len + 1;
  }
  if (mix[0] + mix[1] + mix[2] == 0)
    return bad(opt, s, "a mix: the weights are all 0");
  return 0;
}

/* Applies one option (opt: its name as written, for messages); 0, or
 * -EINVAL for a bad value, said on stderr. */
static int set_opt(struct kl_opts *o, int c, const char *opt, const char *arg) {
  uint64_t v;
  int r;
  switch (c) {
  case 'c':
    return opt_u64(opt, arg, 0, UINT64_MAX, &o->count);
  case 'k':
    r = opt_u64(opt, arg, 1, 1u << 24, &v);
    o->keys = (uint32_t)v;
    return r;
  case 's':
    return parse_sizes(opt, arg, &o->value_min, &o->value_max);
  case 'S':
    return opt_u64(opt, arg, 0, UINT64_MAX, &o->seed);
  case 'n':
    return parse_text(opt, arg, KL_PREFIX_MAX, o->prefix, "a key prefix");
  case 'm':
    return parse_mix(opt, arg, o->mix);
  case 'b':
    return opt_u64(opt, arg, 1, KVS_VALUE_MAX, &o->big);
  case 'l':
    o->list = true;
    return 0;
  case 'r':
    o->tolerate_reset = true;
    return 0;
  case 'C':
    o->check_state = true;
    return 0;
  case 'R':
    return opt_u64(opt, arg, 0, KL_RATE_MAX, &o->rate);
  case 'P':
    return opt_u64(opt, arg, 0, KL_COMPUTE_MAX_US, &o->compute_us);
  case 'v':
    return parse_text(opt, arg, KABI_NAME_MAX - 1, o->service,
                      "a service name");
  case 't':
    o->text_values = true;
    return 0;
  case 'D':
    return parse_text(opt, arg, sizeof o->dump - 1, o->dump, "a file name");
  default:
    return -EINVAL;
  }
}

/* Fills o from argv.  Returns 0, 1 for --help, or -EINVAL. */
static int parse_opts(int argc, char **argv, struct kl_opts *o) {
  static const struct option longopts[] = {
      {"count", required_argument, NULL, 'c'},
      {"keys", required_argument, NULL, 'k'},
      {"value-size", required_argument, NULL, 's'},
      {"seed", required_argument, NULL, 'S'},
      {"name", required_argument, NULL, 'n'},
      {"mix", required_argument, NULL, 'm'},
      {"big", required_argument, NULL, 'b'},
      {"list", no_argument, NULL, 'l'},
      {"tolerate-reset", no_argument, NULL, 'r'},
      {"check-state", no_argument, NULL, 'C'},
      {"rate", required_argument, NULL, 'R'},
      {"compute", required_argument, NULL, 'P'},
      {"service", required_argument, NULL, 'v'},
      {"text-values", no_argument, NULL, 't'},
      {"dump", required_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  *o = (struct kl_opts){.count = 1000,
                        .keys = 100,
                        .value_min = 64,
                        .value_max = 64,
                        .seed = 1,
                        .mix = {50, 45, 5},
                        .service = KVS_NAME};
  snprintf(o->prefix, sizeof o->prefix, "kvsload%ld", (long)getpid());
  int c, idx = 0;
  while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
    if (c == 'h')
      return 1;
    /* getopt_long has already complained about '?' */
    char opt[32];
    snprintf(opt, sizeof opt, "--%s", c == '?' ? "?" : longopts[idx].name);
    if (set_opt(o, c, opt, optarg) < 0)
      return -EINVAL;
  }
  return optind == argc ? 0 : -EINVAL;
}

/* Connects and finds the kvs service. */
static int kl_init(struct kl *k) {
  int r = ap_init();
  if (r < 0) {
    fprintf(stderr, "kvsload: not started by a uksim kernel: %s\n",
            strerror(-r));
    return r;
  }
  r = ap_lookup(k->o.service, &k->svc);
  if (r < 0) {
    fprintf(stderr, "kvsload: lookup %s: %s\n", k->o.service, strerror(-r));
    return r;
  }
  k->model = xcalloc(k->o.keys + 1, sizeof *k->model);
  for (uint32_t i = 0; i <= k->o.keys; i++)
    settle(&k->model[i], (struct kl_val){0, 0, false}); /* never put */
  k->rng = k->o.seed;
  return 0;
}

/* Gives back every ICA still held and frees the model. */
static void kl_close(struct kl *k) {
  ica_release(&k->ctl);
  ica_release(&k->spare);
  free(k->model);
}

/* Prints the counts and returns the exit status: a disagreement during the
 * run (1) says more than the final state that follows from it (3). */
static int summary(const struct kl *k) {
  if (k->stop)
    fprintf(stderr,
            "kvsload: stopped early: the kernel or the %s service is gone\n",
            k->o.service);
  printf("kvsload: %" PRIu64 " requests, %" PRIu64 " errors, %" PRIu64
         " mismatches, %" PRIu64 " resets",
         k->requests, k->errors, k->mismatches, k->resets);
  if (k->o.check_state)
    printf(", %" PRIu64 " keys differ from the model", k->diffs);
  putchar('\n');
  if (k->errors > 0 || k->mismatches > 0 || k->stop)
    return 1;
  return k->diffs > 0 ? 3 : 0;
}

int main(int argc, char **argv) {
  struct kl k;
  memset(&k, 0, sizeof k);
  int r = parse_opts(argc, argv, &k.o);
  if (r > 0) {
    usage(stdout);
    return 0;
  }
  if (r < 0) {
    fputs("kvsload: try kvsload --help\n", stderr);
    return 2;
  }
  if (kl_init(&k) < 0) {
    kl_close(&k);
    return 1;
  }
  if (k.o.dump[0] != '\0') {
    r = run_dump(&k);
    kl_close(&k);
    return r;
  }
  if (k.o.big > 0)
    run_big(&k);
  else
    run_mix(&k);
  if (k.o.list && !k.stop)
    do_list(&k);
  if (k.o.check_state && !k.stop)
    check_state(&k);
  kl_close(&k);
  return summary(&k);
}
