/* Unit tests for the mapping cache (lib/mapcache.c) as a server uses it:
 * one control ICA per client, the clients served in turn, and the bound
 * on the idle mappings' bytes.
 *
 * A server of more clients than slots, serving them in turn, used to
 * evict the mapping it would need next every time (LRU over a longer
 * cycle): each request then came back without a descriptor
 * (KABI_REF_MAPPED) and found no mapping, and cost an ICA_ATTACH round
 * trip, an mmap and an munmap (uksim bench failover's backlog, 200
 * clients and 32 slots). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mapcache.h"
#include "uksim/kdata.h"

#define SMALL 4096u
/* The bench's clients of one counter server. */
#define CLIENTS 200
_Static_assert(CLIENTS <= UK_MAPCACHE_SLOTS, "every client's ICA is kept");
_Static_assert(UK_MAPCACHE_SLOTS >= UK_PROC_MAX, "a slot per process");

static int new_memfd(uint64_t size) {
  int fd = memfd_create("ica", MFD_CLOEXEC);
  cr_assert(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
  return fd;
}

/* ICA id's memfd arriving with a descriptor, as the kernel sends it. */
static char *arrive(int memfd, uint64_t size, uint32_t id) {
  int fd = dup(memfd);
  cr_assert(fd >= 0);
  char *p = uk__map_attach(fd, size, id);
  cr_assert_not_null(p);
  return p;
}

/* Whether address p is mapped, from /proc/self/maps. */
static bool mapped(const void *p) {
  FILE *f = fopen("/proc/self/maps", "r");
  unsigned long lo, hi, a = (unsigned long)p;
  char line[512];
  bool found = false;
  cr_assert_not_null(f);
  while (!found && fgets(line, sizeof line, f))
    found = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi;
  fclose(f);
  return found;
}

static uint32_t client_id(int i) {
  return 0x10000u + (uint32_t)i;
}

Test(mapcache_clients, every_client_ica_comes_back_mapped_round_after_round,
     .timeout = 30) {
  char *at[CLIENTS];
  int fd[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    fd[i] = new_memfd(SMALL);
    at[i] = arrive(fd[i], SMALL, client_id(i));
    cr_assert(uk__map_kept(at[i]), "the reply may say it keeps it");
    uk__map_detach(at[i], SMALL);
  }
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < CLIENTS; i++) {
      char v = (char)(round * 7 + i);
      cr_assert(pwrite(fd[i], &v, 1, 0) == 1); /* the client writes */
      char *p = uk__map_reuse(client_id(i), SMALL);
      cr_assert_eq(p, at[i], "round %d: client %d's mapping was evicted", round,
                   i);
      cr_assert_eq(p[0], v);
      uk__map_detach(p, SMALL);
    }
}

Test(mapcache_clients, idle_bytes_past_the_bound_evict_the_oldest,
     .timeout = 30) {
  enum { FIT = UK_MAPCACHE_IDLE_BYTES / UK_MAPCACHE_BYTES };
  char *at[FIT + 1];
  for (int i = 0; i <= FIT; i++) {
    int m = new_memfd(UK_MAPCACHE_BYTES);
    at[i] = arrive(m, UK_MAPCACHE_BYTES, client_id(i));
    uk__map_detach(at[i], UK_MAPCACHE_BYTES);
    close(m);
  }
  cr_expect(!mapped(at[0]), "the oldest idle mapping went");
  cr_expect_null(uk__map_reuse(client_id(0), UK_MAPCACHE_BYTES));
  for (int i = 1; i <= FIT; i++)
    cr_expect(mapped(at[i]), "mapping %d stays", i);
}

Test(mapcache_clients, attached_mappings_are_not_bounded_by_the_idle_bytes,
     .timeout = 30) {
  enum { FIT = UK_MAPCACHE_IDLE_BYTES / UK_MAPCACHE_BYTES, MORE = FIT + 8 };
  char *at[MORE];
  for (int i = 0; i < MORE; i++) {
    at[i] =
        arrive(new_memfd(UK_MAPCACHE_BYTES), UK_MAPCACHE_BYTES, client_id(i));
    at[i][0] = 1; /* attached: ours to use */
  }
  for (int i = 0; i < MORE; i++)
    cr_expect(mapped(at[i]), "attached mapping %d stays", i);
  for (int i = 0; i < MORE; i++)
    uk__map_detach(at[i], UK_MAPCACHE_BYTES);
  for (int i = 0; i < MORE - FIT; i++)
    cr_expect(!mapped(at[i]), "idle mapping %d went past the bound", i);
  for (int i = MORE - FIT; i < MORE; i++)
    cr_expect(mapped(at[i]), "idle mapping %d stays", i);
}
