/* replload: the application process of `uksim bench replace`.
 *
 *   replload --fill BYTES --value-size V --name P
 *       puts keys P-0, P-1, ... of V bytes each (the last may be shorter)
 *       until BYTES of values are stored: the state the replacement moves.
 *   replload --verify BYTES --value-size V --name P
 *       gets the same keys and checks every byte: the state survived.
 *   replload --load --name P --out FILE
 *       until SIGUSR1: puts a 64-byte value to one of 16 keys and gets it
 *       back, checking it, over and over.  Writes to FILE one line per
 *       request, "START_NS LATENCY_NS" (CLOCK_MONOTONIC, the kernel's
 *       clock), after a first line "requests N errors E".
 *
 * Values are never stored here: their bytes derive from the key and a
 * version that each put bumps, so a get is checked by regenerating them.
 * Nothing is tolerated: any error or wrong byte counts, and the exit
 * status is 1 if there was one (0 otherwise, 2 for bad usage). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uksim/ap.h"
#include "uksim/kvs.h"
#include "uksim/num.h"
#include "uksim/xalloc.h"
#include "stats.h"

#define RL_LOAD_KEYS 16
#define RL_LOAD_VALUE 64
#define RL_CTL_SIZE 4096

struct rl {
  uint32_t svc;
  uk_ica ctl, data; /* reused by every request */
  uint64_t data_size;
  const char *prefix;
  uint64_t requests, errors;
};

/* One timed request of the load. */
struct rl_sample {
  uint64_t start, lat;
};

static volatile sig_atomic_t stop;

static void on_usr1(int sig) {
  (void)sig;
  stop = 1;
}

/* splitmix64's finalizer: cheap, and every bit depends on every bit. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t word(uint64_t i, uint64_t version, uint64_t j) {
  return mix64((i << 32 ^ version) * 0x9e3779b97f4a7c15ull + j);
}

/* Value of key i at version, len bytes (a multiple of 8 is not needed). */
static void fill(unsigned char *p, uint64_t len, uint64_t i, uint64_t ver) {
  for (uint64_t off = 0; off < len; off += 8) {
    uint64_t w = word(i, ver, off / 8);
    memcpy(p + off, &w, len - off < 8 ? len - off : 8);
  }
}

static bool same(const unsigned char *p, uint64_t len, uint64_t i,
                 uint64_t ver) {
  for (uint64_t off = 0; off < len; off += 8) {
    uint64_t w = word(i, ver, off / 8);
    if (memcmp(p + off, &w, len - off < 8 ? len - off : 8) != 0)
      return false;
  }
  return true;
}

/* A server may answer without giving back an ICA (a get of nothing):
 * make sure we hold both before a request. */
static int ensure_icas(struct rl *r) {
  int e = 0;
  if (r->ctl.id == KABI_ICA_NONE)
    e = ica_create(RL_CTL_SIZE, KABI_ICA_CONTROL, &r->ctl);
  if (e == 0 && r->data.id == KABI_ICA_NONE)
    e = ica_create(r->data_size, KABI_ICA_DATA, &r->data);
  return e;
}

/* Sends op on key i with our data ICA (the value of a put, room for the
 * answer of a get).  Both ICAs come back; a new data ICA the server chose
 * to answer with replaces ours.  Returns the server's status or a kernel
 * error; *vallen gets the answer's length. */
static int call(struct rl *r, uint32_t op, uint64_t i, uint64_t len,
                uint64_t *vallen) {
  ap_result res;
  int e = ensure_icas(r);
  if (e < 0)
    return e;
  struct kvs_ctl *c = r->ctl.base;
  memset(c, 0, sizeof *c);
  c->keylen = (uint32_t)snprintf(c->key, sizeof c->key, "%s-%llu", r->prefix,
                                 (unsigned long long)i);
  c->vallen = len;
  r->requests++;
  e = ap_call(r->svc, op, &r->ctl, &r->data, &res);
  if (e < 0)
    return e;
  r->ctl = res.ctl;
  if (res.data.id != KABI_ICA_NONE) {
    ica_release(&r->data); /* only if the server kept ours */
    r->data = res.data;
  }
  *vallen = r->ctl.base ? ((struct kvs_ctl *)r->ctl.base)->vallen : 0;
  return res.status;
}

static void fail(struct rl *r, const char *what, uint64_t i, int e) {
  if (r->errors++ < 10)
    fprintf(stderr, "replload: %s %s-%llu: %s\n", what, r->prefix,
            (unsigned long long)i, e ? strerror(-e) : "wrong value");
}

static void put(struct rl *r, uint64_t i, uint64_t len, uint64_t ver) {
  uint64_t n;
  int e = ensure_icas(r);
  if (e < 0) {
    fail(r, "put", i, e);
    return;
  }
  fill(r->data.base, len, i, ver);
  e = call(r, KVS_PUT, i, len, &n);
  if (e < 0)
    fail(r, "put", i, e);
}

static void get(struct rl *r, uint64_t i, uint64_t len, uint64_t ver) {
  uint64_t n = 0;
  int e = call(r, KVS_GET, i, 0, &n);
  if (e < 0)
    fail(r, "get", i, e);
  else if (n != len || r->data.base == NULL || r->data.size < len ||
           !same(r->data.base, len, i, ver))
    fail(r, "get", i, 0);
}

/* The keys of --fill and --verify: BYTES of values in keys of v bytes. */
static void fill_keys(struct rl *r, uint64_t bytes, uint64_t v, bool check) {
  for (uint64_t i = 0; i * v < bytes && !r->errors; i++) {
    uint64_t len = bytes - i * v < v ? bytes - i * v : v;
    if (check)
      get(r, i, len, 1);
    else
      put(r, i, len, 1);
  }
}

/* Puts and gets until SIGUSR1, timing each request. */
static struct rl_sample *load(struct rl *r, size_t *n) {
  uint64_t ver[RL_LOAD_KEYS] = {0};
  size_t cap = 1 << 16;
  struct rl_sample *s = xreallocarray(NULL, cap, sizeof *s);
  for (uint64_t k = 0; !stop; k++) {
    uint64_t i = k / 2 % RL_LOAD_KEYS;
    uint64_t t0 = stats_now_ns();
    if (k % 2 == 0)
      put(r, i, RL_LOAD_VALUE, ++ver[i]);
    else
      get(r, i, RL_LOAD_VALUE, ver[i]);
    if (*n == cap)
      s = xreallocarray(s, cap *= 2, sizeof *s);
    s[(*n)++] = (struct rl_sample){t0, stats_now_ns() - t0};
  }
  return s;
}

static int write_samples(const struct rl *r, const char *out,
                         const struct rl_sample *s, size_t n) {
  FILE *f = fopen(out, "w");
  if (f == NULL)
    return -errno;
  fprintf(f, "requests %llu errors %llu\n", (unsigned long long)r->requests,
          (unsigned long long)r->errors);
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%llu %llu\n", (unsigned long long)s[i].start,
            (unsigned long long)s[i].lat);
  return fclose(f) == 0 ? 0 : -EIO;
}

static int run_load(struct rl *r, const char *out) {
  size_t n = 0;
  struct rl_sample *s = load(r, &n);
  int e = write_samples(r, out, s, n);
  free(s);
  return e;
}

static int setup(struct rl *r, uint64_t value_size) {
  struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
  sigaction(SIGUSR1, &sa, NULL);
  r->data_size = value_size;
  int e = ap_lookup(KVS_NAME, &r->svc);
  return e < 0 ? e : ensure_icas(r);
}

static void usage(FILE *f) {
  fputs("usage: replload --fill|--verify BYTES --value-size V --name P\n"
        "       replload --load --name P --out FILE   (until SIGUSR1)\n",
        f);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"fill", required_argument, NULL, 'f'},
      {"verify", required_argument, NULL, 'v'},
      {"value-size", required_argument, NULL, 's'},
      {"load", no_argument, NULL, 'l'},
      {"name", required_argument, NULL, 'n'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct rl r = {.prefix = NULL};
  uint64_t bytes = 0, vsize = RL_LOAD_VALUE;
  const char *out = NULL;
  int mode = 0, c, idx = 0;
  while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
    char opt[16];
    snprintf(opt, sizeof opt, "--%s", opts[idx].name);
    if (c == 'f' || c == 'v') {
      mode = c;
      if (num_opt_u64("replload", opt, optarg, 0, UINT64_MAX, NUM_SIZE,
                      &bytes) < 0)
        return 2;
    } else if (c == 's') {
      if (num_opt_u64("replload", opt, optarg, 1, KVS_VALUE_MAX, NUM_SIZE,
                      &vsize) < 0)
        return 2;
    } else if (c == 'l')
      mode = c;
    else if (c == 'n')
      r.prefix = optarg;
    else if (c == 'o')
      out = optarg;
    else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (mode == 0 || r.prefix == NULL || strlen(r.prefix) > 200 || vsize == 0 ||
      vsize > KVS_VALUE_MAX || (mode == 'l' && out == NULL)) {
    usage(stderr);
    return 2;
  }
  int e = setup(&r, vsize);
  if (e < 0)
    fprintf(stderr, "replload: setup: %s\n", strerror(-e));
  else if (mode == 'l')
    e = run_load(&r, out);
  else
    fill_keys(&r, bytes, vsize, mode == 'v');
  ica_release(&r.ctl);
  ica_release(&r.data);
  return e < 0 || r.errors ? 1 : 0;
}
