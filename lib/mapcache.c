/* Mappings of small ICAs kept across hand-offs (see mapcache.h).
 *
 * A control ICA typically goes AP -> server -> AP -> server ...: every hop
 * used to cost the receiver an mmap, a page fault on first touch and, when
 * it passed the ICA on, an munmap with its TLB shoot-down -- together more
 * than the socket hops themselves (uksim bench ipc).  Here a process keeps
 * the mapping of a small ICA it passed on, and when the same memfd comes
 * back (same device, inode and size, told by fstat on the descriptor that
 * arrives) it reuses the mapping.
 *
 * Better still, the library tells the kernel it keeps the mapping
 * (KABI_KEEP_* in the call that passes the ICA on, when uk__map_kept() says
 * so); the kernel then sends no descriptor when the same ICA comes back,
 * and the mapping is found by the ICA's id (uk__map_reuse).  An id names one
 * ICA for its whole life (the generation changes when its table slot is
 * reused), and the kernel forgets a kept mapping when the ICA is freed, so
 * the slot found by id maps the ICA the process now holds.  A slot is
 * recorded under an id only when a descriptor of that ICA arrives, and any
 * idle slot of another memfd under the same id (a generation wrapped round)
 * is unmapped then.  When the slot was evicted meanwhile, the caller asks the
 * kernel for the descriptor again (conn.c).
 *
 * Idle mappings are not the holder's to use: uk_ica.base is cleared when an
 * ICA is passed on, and with UKSIM_ICA_GUARD=1 idle mappings are also made
 * inaccessible (PROT_NONE), so a stale pointer faults at once -- slower
 * (two mprotect calls per hop) and meant for debugging.
 *
 * Limits: only ICAs of at most UK_MAPCACHE_BYTES are kept, at most
 * UK_MAPCACHE_SLOTS mappings are tracked per process; the least recently
 * idled one is unmapped when a slot is needed, or when the idle ones'
 * bytes pass UK_MAPCACHE_IDLE_BYTES.  An idle mapping keeps its memfd's
 * pages alive after the ICA is released elsewhere, so a process may keep
 * up to UK_MAPCACHE_IDLE_BYTES (2 MiB) of freed ICA memory until it is
 * evicted or the process exits.
 *
 * The slots are the process's, shared by its threads: every entry point
 * below holds the library's lock (lock.c) while it looks at them. */
#include "mapcache.h"
#include "lock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct slot {
  void *base; /* NULL: slot free */
  uint64_t size;
  dev_t dev;
  ino_t ino;
  uint32_t id;    /* the ICA whose descriptor it was mapped from (0: none) */
  int busy;       /* attached to a uk_ica of this process */
  uint64_t idled; /* when it last became idle: eviction order */
};

static struct slot slots[UK_MAPCACHE_SLOTS];
static uint64_t clock_ticks;
static uint64_t idle_bytes; /* of the idle slots' mappings */
static int guard = -1;

static int guarded(void) {
  if (guard < 0) {
    const char *g = getenv("UKSIM_ICA_GUARD");
    guard = g != NULL && strcmp(g, "1") == 0;
  }
  return guard;
}

/* Maps fd and closes it, keeping mmap's errno. */
static void *map_fd(int fd, uint64_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd);
  errno = e;
  return p == MAP_FAILED ? NULL : p;
}

static struct slot *find_idle(dev_t dev, ino_t ino, uint64_t size) {
  for (int i = 0; i < UK_MAPCACHE_SLOTS; i++) {
    struct slot *s = &slots[i];
    if (s->base && !s->busy && s->dev == dev && s->ino == ino &&
        s->size == size)
      return s;
  }
  return NULL;
}

static struct slot *find_base(const void *base) {
  for (int i = 0; i < UK_MAPCACHE_SLOTS; i++)
    if (slots[i].base == base)
      return &slots[i];
  return NULL;
}

/* Unmaps the mapping of slot s and empties it. */
static void empty(struct slot *s) {
  if (!s->busy)
    idle_bytes -= s->size;
  munmap(s->base, s->size);
  memset(s, 0, sizeof *s);
}

/* The least recently idled slot, or NULL when every slot is attached;
 * *free a free slot if one is seen first (then NULL is returned). */
static struct slot *oldest_idle(struct slot **free) {
  struct slot *victim = NULL;
  for (int i = 0; i < UK_MAPCACHE_SLOTS; i++) {
    struct slot *s = &slots[i];
    if (s->base == NULL && free) {
      *free = s;
      return NULL;
    }
    if (s->base && !s->busy && (victim == NULL || s->idled < victim->idled))
      victim = s;
  }
  return victim;
}

/* A free slot, or the least recently idled one emptied; NULL when every
 * slot is attached. */
static struct slot *free_slot(void) {
  struct slot *free = NULL, *victim = oldest_idle(&free);
  if (free)
    return free;
  if (victim)
    empty(victim);
  return victim;
}

/* Idle slot s becomes its holder's again. */
static void *wake(struct slot *s) {
  if (guarded() && mprotect(s->base, s->size, PROT_READ | PROT_WRITE) < 0)
    return NULL;
  s->busy = 1;
  idle_bytes -= s->size;
  return s->base;
}

/* Unmaps idle slots recorded under id that map another memfd: stale. */
static void drop_stale(uint32_t id, dev_t dev, ino_t ino) {
  for (int i = 0; id != 0 && i < UK_MAPCACHE_SLOTS; i++) {
    struct slot *s = &slots[i];
    if (s->base && !s->busy && s->id == id && (s->dev != dev || s->ino != ino))
      empty(s);
  }
}

static void *attach(int fd, uint64_t size, uint32_t id) {
  struct stat st;
  if (size > UK_MAPCACHE_BYTES || fstat(fd, &st) < 0) {
    return map_fd(fd, size);
  }
  drop_stale(id, st.st_dev, st.st_ino);
  struct slot *s = find_idle(st.st_dev, st.st_ino, size);
  void *p = s ? wake(s) : NULL;
  if (p) {
    close(fd);
    s->id = id;
    return p;
  }
  p = map_fd(fd, size);
  if (p && (s = free_slot()) != NULL)
    *s = (struct slot){.base = p,
                       .size = size,
                       .dev = st.st_dev,
                       .ino = st.st_ino,
                       .id = id,
                       .busy = 1};
  return p;
}

static void *reuse(uint32_t id, uint64_t size) {
  for (int i = 0; id != 0 && i < UK_MAPCACHE_SLOTS; i++) {
    struct slot *s = &slots[i];
    if (s->base && !s->busy && s->id == id && s->size == size)
      return wake(s);
  }
  return NULL;
}

static bool kept(const void *base) {
  return base != NULL && find_base(base) != NULL;
}

static void drop(void *base, uint64_t size) {
  struct slot *s = find_base(base);
  if (s && !s->busy)
    idle_bytes -= s->size;
  if (s)
    memset(s, 0, sizeof *s);
  munmap(base, size);
}

static void detach(void *base, uint64_t size) {
  struct slot *s = find_base(base);
  if (s == NULL || (guarded() && mprotect(base, size, PROT_NONE) < 0)) {
    drop(base, size);
    return;
  }
  s->busy = 0;
  s->idled = ++clock_ticks;
  idle_bytes += s->size;
  struct slot *old;
  while (idle_bytes > UK_MAPCACHE_IDLE_BYTES && (old = oldest_idle(NULL)))
    empty(old);
}

void *uk__map_attach(int fd, uint64_t size, uint32_t id) {
  uk__lock();
  void *r = attach(fd, size, id);
  uk__unlock();
  return r;
}

void *uk__map_reuse(uint32_t id, uint64_t size) {
  uk__lock();
  void *r = reuse(id, size);
  uk__unlock();
  return r;
}

bool uk__map_kept(const void *base) {
  uk__lock();
  bool r = kept(base);
  uk__unlock();
  return r;
}

void uk__map_detach(void *base, uint64_t size) {
  uk__lock();
  detach(base, size);
  uk__unlock();
}

void uk__map_drop(void *base, uint64_t size) {
  uk__lock();
  drop(base, size);
  uk__unlock();
}
