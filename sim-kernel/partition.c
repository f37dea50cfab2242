/* The machine's partition (partition.h has the model, the state machine
 * and the invariants).  Owners are kept in plain arrays indexed by core,
 * block and device; an OS is found by its number in the two live records. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition.h"

#define BSP 0u /* the core with local APIC id 0 */

static const char *const dev_names[PART_DEV_COUNT] = {"boot-a", "boot-b",
                                                      "user", "nic0", "nic1"};

/* Layout ------------------------------------------------------------------- */

static uint32_t slots_start(const struct part *p) {
  return p->c.first_blocks;
}

static uint32_t general_start(const struct part *p) {
  return p->c.first_blocks + PART_SLOTS * p->c.slot_blocks;
}

enum part_region part_block_region(const struct part *p, uint32_t block) {
  if (block < slots_start(p))
    return PART_REGION_FIRST;
  return block < general_start(p) ? PART_REGION_SLOT : PART_REGION_GENERAL;
}

static uint32_t slot_of_block(const struct part *p, uint32_t block) {
  return (block - slots_start(p)) / p->c.slot_blocks;
}

/* Configuration ------------------------------------------------------------ */

void part_config_default(struct part_config *c, uint32_t os1_blocks,
                         uint64_t block_size, uint16_t nic_base) {
  memset(c, 0, sizeof *c);
  c->cores = PART_CORES_DEFAULT;
  c->nhost = 1;
  c->block_size = block_size;
  c->os1_blocks = os1_blocks;
  c->first_blocks = PART_FIRST_BLOCKS_DEFAULT;
  c->slot_blocks = PART_SLOT_BLOCKS_DEFAULT;
  c->hw_default = true;
  c->nic_port[0] = nic_base;
  c->nic_port[1] = (uint16_t)(nic_base + PART_NIC_PORTS);
}

/* One "N" or "N-M" of a block list; 0, or -EINVAL. */
static int parse_range(const char *s, const char *end, uint32_t *lo,
                       uint32_t *hi) {
  char *e;
  unsigned long a, b;
  if (s == end || *s < '0' || *s > '9')
    return -EINVAL;
  a = strtoul(s, &e, 10);
  b = a;
  if (e < end && *e == '-') {
    if (e + 1 == end || e[1] < '0' || e[1] > '9')
      return -EINVAL;
    b = strtoul(e + 1, &e, 10);
  }
  if (e != end || a > b || b >= PART_BLOCKS_MAX)
    return -EINVAL;
  *lo = (uint32_t)a;
  *hi = (uint32_t)b;
  return 0;
}

int part_config_hw(struct part_config *c, const char *list) {
  uint32_t n = 0, lo, hi;
  uint32_t hw[PART_HW_MAX];
  if (strlen(list) >= PART_LIST_TEXT_MAX)
    return -EINVAL;
  for (const char *s = list; *s;) {
    const char *end = strchr(s, ',');
    if (end == NULL)
      end = s + strlen(s);
    if (parse_range(s, end, &lo, &hi) < 0)
      return -EINVAL;
    for (uint32_t b = lo; b <= hi; b++) {
      if (n == PART_HW_MAX)
        return -E2BIG;
      hw[n++] = b;
    }
    s = *end ? end + 1 : end;
    if (*end && *s == '\0')
      return -EINVAL; /* a trailing comma */
  }
  memcpy(c->hw, hw, n * sizeof hw[0]);
  c->nhw = n;
  c->hw_default = false;
  return 0;
}

/* Says why in err[len] (when there is one) and returns ret. */
static int why(int ret, char *err, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err && len)
    vsnprintf(err, len, fmt, ap);
  va_end(ap);
  return ret;
}

static int check_config(const struct part_config *c, char *err, size_t len) {
  if (c->cores < PART_CORES_MIN || c->cores > PART_CORES_MAX)
    return why(-EINVAL, err, len, "cores: %u is not in %u..%u", c->cores,
               PART_CORES_MIN, PART_CORES_MAX);
  if (c->nhost < 1 || c->nhost > PART_CORES_MAX)
    return why(-EINVAL, err, len, "host cpus: %u is not in 1..%u", c->nhost,
               PART_CORES_MAX);
  if (c->block_size == 0 || c->slot_blocks == 0 || c->os1_blocks == 0)
    return why(-EINVAL, err, len, "a block, a slot and the 1st OS need memory");
  if (c->first_blocks > c->os1_blocks)
    return why(-EINVAL, err, len,
               "the 1st OS's region (%u blocks) is larger than "
               "its memory (%u blocks)",
               c->first_blocks, c->os1_blocks);
  uint64_t total = (uint64_t)c->os1_blocks + PART_SLOTS * c->slot_blocks;
  if (total > PART_BLOCKS_MAX)
    return why(-EINVAL, err, len, "%llu blocks: at most %u",
               (unsigned long long)total, PART_BLOCKS_MAX);
  if (c->nhw > PART_HW_MAX)
    return why(-EINVAL, err, len, "at most %u hardware blocks", PART_HW_MAX);
  return 0;
}

/* The hardware blocks: the list, checked, or the default. */
static int mark_hw(struct part *p, char *err, size_t len) {
  uint32_t g = general_start(p), ng = p->total_blocks - g;
  if (p->c.hw_default) {
    uint32_t n = ng > PART_HW_BLOCKS_DEFAULT ? PART_HW_BLOCKS_DEFAULT
                 : ng > 0                    ? ng - 1
                                             : 0;
    for (uint32_t i = 0; i < n; i++)
      p->block_hw[g + i] = true;
    return 0;
  }
  for (uint32_t i = 0; i < p->c.nhw; i++) {
    uint32_t b = p->c.hw[i];
    if (b >= p->total_blocks)
      return why(-EINVAL, err, len,
                 "hardware block %u: the machine has blocks "
                 "0..%u",
                 b, p->total_blocks - 1);
    if (part_block_region(p, b) == PART_REGION_SLOT)
      return why(-EINVAL, err, len,
                 "hardware block %u is in a slot (blocks %u..%u): "
                 "an OS boots there",
                 b, slots_start(p), g - 1);
    if (p->block_hw[b])
      return why(-EINVAL, err, len, "hardware block %u is listed twice", b);
    p->block_hw[b] = true;
  }
  return 0;
}

int part_init(struct part *p, const struct part_config *c, char *err,
              size_t errlen) {
  int r = check_config(c, err, errlen);
  if (r < 0)
    return r;
  memset(p, 0, sizeof *p);
  p->c = *c;
  p->state = PART_EMPTY;
  p->total_blocks = c->os1_blocks + PART_SLOTS * c->slot_blocks;
  p->last_slot = -1;
  return mark_hw(p, err, errlen);
}

/* Records ------------------------------------------------------------------ */

static struct part_os *os_find(struct part *p, uint32_t number) {
  for (int i = 0; number != 0 && i < PART_LIVE_MAX; i++)
    if (p->os[i].number == number)
      return &p->os[i];
  return NULL;
}

const struct part_os *part_os_lookup(const struct part *p, uint32_t number) {
  return os_find((struct part *)p, number);
}

static uint32_t with_role(const struct part *p, enum part_role r) {
  for (int i = 0; i < PART_LIVE_MAX; i++)
    if (p->os[i].number != 0 && p->os[i].role == r)
      return p->os[i].number;
  return 0;
}

uint32_t part_active(const struct part *p) {
  return with_role(p, PART_ROLE_ACTIVE);
}

uint32_t part_backup(const struct part *p) {
  return with_role(p, PART_ROLE_BACKUP);
}

static struct part_os *os_new(struct part *p, uint32_t number,
                              enum part_role role, uint32_t boot, int slot) {
  struct part_os *o = NULL;
  for (int i = 0; o == NULL && i < PART_LIVE_MAX; i++)
    if (p->os[i].number == 0)
      o = &p->os[i];
  *o = (struct part_os){number, role, boot, slot};
  p->last_number = number;
  return o;
}

/* Gives device d to `to` (PART_FREE: detaches it): a reset either way,
 * since its next owner initializes it afresh (§4.2.3). */
static void dev_give(struct part *p, enum part_dev d, uint32_t to) {
  p->dev_owner[d] = to;
  p->dev_resets[d]++;
}

static enum part_dev boot_disk(uint32_t number) {
  return number % 2 ? PART_DEV_BOOT_A : PART_DEV_BOOT_B;
}

/* Transitions -------------------------------------------------------------- */

int part_boot_first(struct part *p) {
  if (p->state != PART_EMPTY)
    return -EALREADY;
  for (uint32_t i = 0; i + 1 < p->c.cores; i++)
    p->core_owner[i] = 1; /* the last core waits for the 1st backup */
  for (uint32_t b = 0; b < p->total_blocks; b++)
    if (part_block_region(p, b) != PART_REGION_SLOT)
      p->block_owner[b] = 1;
  dev_give(p, PART_DEV_BOOT_A, 1);
  dev_give(p, PART_DEV_USER, 1);
  dev_give(p, PART_DEV_NIC0, 1);
  os_new(p, 1, PART_ROLE_ACTIVE, BSP, -1);
  p->state = PART_ALONE;
  return 0;
}

/* The next backup's number: above every one so far, of the other parity
 * than the active OS's (their boot disks differ). */
static uint32_t next_number(const struct part *p) {
  uint32_t n = p->last_number + 1;
  if (n % 2 == part_active(p) % 2)
    n++;
  return n;
}

/* The free core a backup boots on: never the BSP; the lowest local APIC id
 * among the free ones; -1 when none. */
static int free_core(const struct part *p) {
  for (uint32_t i = 0; i < p->c.cores; i++)
    if (i != BSP && p->core_owner[i] == PART_FREE)
      return (int)i;
  return -1;
}

static bool slot_free(const struct part *p, int s) {
  uint32_t b0 = slots_start(p) + (uint32_t)s * p->c.slot_blocks;
  for (uint32_t b = b0; b < b0 + p->c.slot_blocks; b++)
    if (p->block_owner[b] != PART_FREE)
      return false;
  return true;
}

/* The next free slot in rotation after the last one taken; -1 when none. */
static int free_slot(const struct part *p) {
  for (int k = 1; k <= PART_SLOTS; k++) {
    int s = (p->last_slot + k) % PART_SLOTS;
    if (slot_free(p, s))
      return s;
  }
  return -1;
}

static void give_slot(struct part *p, int s, uint32_t to) {
  uint32_t b0 = slots_start(p) + (uint32_t)s * p->c.slot_blocks;
  for (uint32_t b = b0; b < b0 + p->c.slot_blocks; b++)
    p->block_owner[b] = to;
}

int part_boot_backup(struct part *p, uint32_t *number) {
  if (p->state != PART_ALONE)
    return p->state == PART_EMPTY ? -ESRCH : -EALREADY;
  uint32_t n = next_number(p);
  int core = free_core(p), slot = free_slot(p);
  if (core < 0 || slot < 0)
    return -EBUSY;
  if (p->dev_owner[boot_disk(n)] != PART_FREE ||
      p->dev_owner[PART_DEV_NIC1] != PART_FREE)
    return -EBUSY;
  p->core_owner[core] = n;
  give_slot(p, slot, n);
  p->last_slot = slot;
  dev_give(p, boot_disk(n), n);
  dev_give(p, PART_DEV_NIC1, n);
  os_new(p, n, PART_ROLE_BACKUP, (uint32_t)core, slot);
  p->state = PART_PAIRED;
  if (number)
    *number = n;
  return 0;
}

/* Everything `number` owns goes to nobody (devices through a reset). */
static void release_all(struct part *p, uint32_t number) {
  for (uint32_t i = 0; i < p->c.cores; i++)
    if (p->core_owner[i] == number)
      p->core_owner[i] = PART_FREE;
  for (uint32_t b = 0; b < p->total_blocks; b++)
    if (p->block_owner[b] == number)
      p->block_owner[b] = PART_FREE;
  for (int d = 0; d < PART_DEV_COUNT; d++)
    if (p->dev_owner[d] == number)
      dev_give(p, (enum part_dev)d, PART_FREE);
}

int part_backup_lost(struct part *p, uint32_t backup) {
  if (p->state != PART_PAIRED)
    return -EINVAL;
  struct part_os *o = os_find(p, backup);
  if (o == NULL || o->role != PART_ROLE_BACKUP)
    return -ESRCH;
  release_all(p, backup);
  *o = (struct part_os){0};
  p->state = PART_ALONE;
  return 0;
}

int part_devices_migrate(struct part *p, uint32_t dead, uint32_t to) {
  if (p->state != PART_PAIRED)
    return -EINVAL;
  struct part_os *d = os_find(p, dead), *b = os_find(p, to);
  if (d == NULL || b == NULL || d->role != PART_ROLE_ACTIVE ||
      b->role != PART_ROLE_BACKUP)
    return -ESRCH;
  d->role = PART_ROLE_DEAD;
  dev_give(p, PART_DEV_USER, to);
  dev_give(p, PART_DEV_NIC0, to);
  p->state = PART_MIGRATED;
  return 0;
}

/* The core the dead OS leaves for the next backup: not the BSP (the new
 * active's boot core is not among the dead's); the lowest local APIC id;
 * -1 when the dead OS had no other (a 2-core machine). */
static int reserve_core(const struct part *p, uint32_t dead) {
  for (uint32_t i = 0; i < p->c.cores; i++)
    if (i != BSP && p->core_owner[i] == dead)
      return (int)i;
  return -1;
}

static void repartition_cores(struct part *p, uint32_t dead, uint32_t to) {
  int keep = reserve_core(p, dead);
  for (uint32_t i = 0; i < p->c.cores; i++)
    if (p->core_owner[i] == dead)
      p->core_owner[i] = (int)i == keep ? PART_FREE : to;
}

/* General blocks hot-plug can add go to the new active; hardware blocks
 * to nobody, for good; region 1 and the dead OS's slot are freed. */
static void repartition_blocks(struct part *p, uint32_t dead, uint32_t to) {
  for (uint32_t b = 0; b < p->total_blocks; b++) {
    if (p->block_owner[b] != dead)
      continue;
    if (p->block_hw[b])
      p->block_owner[b] = PART_HW;
    else if (part_block_region(p, b) == PART_REGION_GENERAL)
      p->block_owner[b] = to;
    else
      p->block_owner[b] = PART_FREE;
  }
}

int part_repartition(struct part *p, uint32_t dead, uint32_t new_active) {
  if (p->state != PART_MIGRATED)
    return -EINVAL;
  struct part_os *d = os_find(p, dead), *n = os_find(p, new_active);
  if (d == NULL || n == NULL || d->role != PART_ROLE_DEAD ||
      n->role != PART_ROLE_BACKUP)
    return -ESRCH;
  repartition_cores(p, dead, new_active);
  repartition_blocks(p, dead, new_active);
  for (int i = 0; i < PART_DEV_COUNT; i++)
    if (p->dev_owner[i] == dead)
      dev_give(p, (enum part_dev)i, PART_FREE); /* its boot disk */
  dev_give(p, PART_DEV_NIC1, PART_FREE); /* PCI-detach: the next backup's */
  n->role = PART_ROLE_ACTIVE;
  *d = (struct part_os){0};
  p->state = PART_ALONE;
  return 0;
}

/* Queries ------------------------------------------------------------------ */

uint32_t part_blocks_of(const struct part *p, uint32_t number,
                        enum part_region r) {
  uint32_t n = 0;
  for (uint32_t b = 0; b < p->total_blocks; b++)
    if (p->block_owner[b] == number && part_block_region(p, b) == r)
      n++;
  return n;
}

uint64_t part_usable_bytes(const struct part *p, uint32_t number) {
  if (os_find((struct part *)p, number) == NULL)
    return 0;
  uint64_t n = 0;
  for (uint32_t b = 0; b < p->total_blocks; b++)
    n += p->block_owner[b] == number;
  return n * p->c.block_size;
}

int part_cpuset(const struct part *p, uint32_t number, cpu_set_t *set) {
  CPU_ZERO(set);
  if (os_find((struct part *)p, number) == NULL)
    return -ESRCH;
  for (uint32_t i = 0; i < p->c.cores; i++)
    if (p->core_owner[i] == number)
      CPU_SET(part_core_host_cpu(p, i), set);
  return 0;
}

uint32_t part_core_owner(const struct part *p, uint32_t core) {
  return core < p->c.cores ? p->core_owner[core] : PART_FREE;
}

uint32_t part_block_owner(const struct part *p, uint32_t block) {
  return block < p->total_blocks ? p->block_owner[block] : PART_FREE;
}

uint32_t part_dev_owner(const struct part *p, enum part_dev d) {
  return (unsigned)d < PART_DEV_COUNT ? p->dev_owner[d] : PART_FREE;
}

uint32_t part_devs_of(const struct part *p, uint32_t number) {
  uint32_t bits = 0;
  for (int d = 0; number != PART_FREE && d < PART_DEV_COUNT; d++)
    if (p->dev_owner[d] == number)
      bits |= 1u << d;
  return bits;
}

uint32_t part_core_hw_id(uint32_t core) {
  return 2 * core;
}

uint32_t part_core_number_from(uint32_t boot, uint32_t core) {
  if (core == boot)
    return 0;
  return core < boot ? core + 1 : core;
}

int part_core_number(const struct part *p, uint32_t number, uint32_t core) {
  const struct part_os *o = part_os_lookup(p, number);
  if (o == NULL || core >= p->c.cores)
    return -1;
  return (int)part_core_number_from(o->boot_core, core);
}

/* Cores are indexed in ascending local APIC id, so the index is the rank. */
uint64_t part_core_logical_id(const struct part *p, uint32_t core) {
  return core < p->c.cores ? 1ull << core : 0;
}

uint32_t part_core_host_cpu(const struct part *p, uint32_t core) {
  return p->c.host_cpu[core % p->c.nhost];
}

bool part_excluded(uint32_t number, enum part_dev d) {
  if (number == 0 || (unsigned)d >= PART_DEV_COUNT)
    return true;
  if (number == 1)
    return d == PART_DEV_BOOT_B || d == PART_DEV_NIC1;
  return d == (number % 2 ? PART_DEV_BOOT_B : PART_DEV_BOOT_A);
}

bool part_may_open(const struct part *p, uint32_t number, enum part_dev d) {
  return !part_excluded(number, d) && part_dev_owner(p, d) == number;
}

/* A name from a table of n, "?" past its end. */
static const char *name_of(const char *const *names, unsigned n, unsigned i) {
  return i < n ? names[i] : "?";
}

const char *part_dev_name(enum part_dev d) {
  return name_of(dev_names, PART_DEV_COUNT, d);
}

const char *part_role_name(enum part_role r) {
  static const char *const names[] = {"active", "backup", "dead"};
  return name_of(names, 3, r);
}

const char *part_state_name(enum part_state s) {
  static const char *const names[] = {"empty", "alone", "paired", "migrated"};
  return name_of(names, 4, s);
}

const char *part_region_name(enum part_region r) {
  static const char *const names[] = {"first", "slot", "general"};
  return name_of(names, 3, r);
}

/* Text --------------------------------------------------------------------- */

/* snprintf that appends at *at and keeps counting past the end. */
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(*at < len ? buf + *at : NULL, *at < len ? len - *at : 0,
                    fmt, ap);
  va_end(ap);
  if (n > 0)
    *at += (size_t)n;
}

/* Which blocks a range text lists: those of `owner` in region r, or with
 * hw set the hardware blocks, whoever owns them. */
struct sel {
  uint32_t owner;
  enum part_region r;
  bool hw;
};

static bool in_sel(const struct part *p, uint32_t b, const struct sel *s) {
  if (b >= p->total_blocks)
    return false;
  if (s->hw)
    return p->block_hw[b];
  return p->block_owner[b] == s->owner && part_block_region(p, b) == s->r;
}

static size_t ranges_text(const struct part *p, const struct sel *s, char *buf,
                          size_t len) {
  size_t at = 0;
  if (len)
    buf[0] = '\0';
  for (uint32_t b = 0; b < p->total_blocks; b++) {
    if (!in_sel(p, b, s))
      continue;
    uint32_t e = b;
    while (in_sel(p, e + 1, s))
      e++;
    put(buf, len, &at, at ? ",%u" : "%u", b);
    if (e > b)
      put(buf, len, &at, "-%u", e);
    b = e;
  }
  if (at == 0)
    put(buf, len, &at, "-");
  return at;
}

size_t part_blocks_text(const struct part *p, uint32_t owner,
                        enum part_region r, char *buf, size_t len) {
  struct sel s = {owner, r, false};
  return ranges_text(p, &s, buf, len);
}

size_t part_hw_text(const struct part *p, char *buf, size_t len) {
  struct sel s = {PART_FREE, PART_REGION_FIRST, true};
  return ranges_text(p, &s, buf, len);
}

size_t part_cores_text(const struct part *p, uint32_t owner, char *buf,
                       size_t len) {
  size_t at = 0;
  if (len)
    buf[0] = '\0';
  for (uint32_t i = 0; i < p->c.cores; i++)
    if (p->core_owner[i] == owner)
      put(buf, len, &at, at ? " %u" : "%u", part_core_hw_id(i));
  if (at == 0)
    put(buf, len, &at, "-");
  return at;
}

static void dump_os(const struct part *p, const struct part_os *o, char *buf,
                    size_t len, size_t *at) {
  char first[64], slot[64], gen[128];
  part_blocks_text(p, o->number, PART_REGION_FIRST, first, sizeof first);
  part_blocks_text(p, o->number, PART_REGION_SLOT, slot, sizeof slot);
  part_blocks_text(p, o->number, PART_REGION_GENERAL, gen, sizeof gen);
  char cores[PART_CORES_MAX * 4];
  part_cores_text(p, o->number, cores, sizeof cores);
  put(buf, len, at, "os %u %s boot-core %u cores %s", o->number,
      part_role_name(o->role), part_core_hw_id(o->boot_core), cores);
  put(buf, len, at,
      " blocks first %s slot %s general %s usable %llu MiB "
      "devices",
      first, slot, gen,
      (unsigned long long)(part_usable_bytes(p, o->number) >> 20));
  for (int d = 0; d < PART_DEV_COUNT; d++)
    if (p->dev_owner[d] == o->number)
      put(buf, len, at, " %s", dev_names[d]);
  put(buf, len, at, "\n");
}

size_t part_dump(const struct part *p, char *buf, size_t len) {
  size_t at = 0;
  char b[PART_CORES_MAX * 4];
  if (len)
    buf[0] = '\0';
  put(buf, len, &at, "partition %s: %u cores, %u blocks of %llu MiB\n",
      part_state_name(p->state), p->c.cores, p->total_blocks,
      (unsigned long long)(p->c.block_size >> 20));
  for (int i = 0; i < PART_LIVE_MAX; i++)
    if (p->os[i].number)
      dump_os(p, &p->os[i], buf, len, &at);
  part_cores_text(p, PART_FREE, b, sizeof b);
  put(buf, len, &at, "free cores %s", b);
  part_blocks_text(p, PART_FREE, PART_REGION_SLOT, b, sizeof b);
  put(buf, len, &at, " slot blocks %s", b);
  part_hw_text(p, b, sizeof b);
  put(buf, len, &at, " hardware %s devices", b);
  for (int d = 0; d < PART_DEV_COUNT; d++)
    if (p->dev_owner[d] == PART_FREE)
      put(buf, len, &at, " %s", dev_names[d]);
  put(buf, len, &at, "\n");
  return at;
}

/* Invariants --------------------------------------------------------------- */

static bool live(const struct part *p, uint32_t owner) {
  return part_os_lookup(p, owner) != NULL;
}

static enum part_role role_of(const struct part *p, uint32_t number) {
  return part_os_lookup(p, number)->role;
}

static int check_records(const struct part *p, char *err, size_t len) {
  int roles[3] = {0};
  for (int i = 0; i < PART_LIVE_MAX; i++)
    if (p->os[i].number)
      roles[p->os[i].role]++;
  static const int want[][3] = {[PART_EMPTY] = {0, 0, 0},
                                [PART_ALONE] = {1, 0, 0},
                                [PART_PAIRED] = {1, 1, 0},
                                [PART_MIGRATED] = {0, 1, 1}};
  if (memcmp(roles, want[p->state], sizeof roles) != 0)
    return why(-EPROTO, err, len, "state %s with %d active, %d backup, %d dead",
               part_state_name(p->state), roles[0], roles[1], roles[2]);
  return 0;
}

static int check_cores(const struct part *p, char *err, size_t len) {
  for (uint32_t i = 0; i < p->c.cores; i++) {
    uint32_t o = p->core_owner[i];
    if (o != PART_FREE && !live(p, o))
      return why(-EPROTO, err, len, "core %u owned by os %u, not alive",
                 part_core_hw_id(i), o);
    if (i == BSP && o != PART_FREE && role_of(p, o) == PART_ROLE_BACKUP)
      return why(-EPROTO, err, len, "the BSP belongs to backup os %u", o);
  }
  return 0;
}

static int check_block(const struct part *p, uint32_t b, char *err,
                       size_t len) {
  uint32_t o = p->block_owner[b];
  enum part_region r = part_block_region(p, b);
  if (o == PART_FREE)
    return 0;
  if (o == PART_HW)
    return p->block_hw[b]
               ? 0
               : why(-EPROTO, err, len, "block %u is not hardware", b);
  if (!live(p, o))
    return why(-EPROTO, err, len, "block %u owned by os %u, not alive", b, o);
  const struct part_os *os = part_os_lookup(p, o);
  if (r == PART_REGION_FIRST && o != 1)
    return why(-EPROTO, err, len, "block %u of region 1 owned by os %u", b, o);
  if (r == PART_REGION_SLOT && (int)slot_of_block(p, b) != os->slot)
    return why(-EPROTO, err, len, "block %u of slot %u owned by os %u", b,
               slot_of_block(p, b), o);
  if (r == PART_REGION_GENERAL && os->role == PART_ROLE_BACKUP)
    return why(-EPROTO, err, len, "general block %u owned by backup os %u", b,
               o);
  if (r == PART_REGION_GENERAL && p->block_hw[b] && o != 1)
    return why(-EPROTO, err, len, "hardware block %u hot-added to os %u", b, o);
  return 0;
}

static int check_devices(const struct part *p, char *err, size_t len) {
  for (int d = 0; d < PART_DEV_COUNT; d++) {
    uint32_t o = p->dev_owner[d];
    if (o == PART_FREE)
      continue;
    if (!live(p, o))
      return why(-EPROTO, err, len, "%s owned by os %u, not alive",
                 dev_names[d], o);
    if (part_excluded(o, (enum part_dev)d))
      return why(-EPROTO, err, len, "%s owned by os %u, which excludes it",
                 dev_names[d], o);
  }
  if (p->state != PART_EMPTY && (p->dev_owner[PART_DEV_USER] == PART_FREE ||
                                 p->dev_owner[PART_DEV_NIC0] == PART_FREE))
    return why(-EPROTO, err, len, "the user disk or nic0 has no owner");
  return 0;
}

int part_check(const struct part *p, char *err, size_t errlen) {
  int r = check_records(p, err, errlen);
  if (r == 0)
    r = check_cores(p, err, errlen);
  for (uint32_t b = 0; r == 0 && b < p->total_blocks; b++)
    r = check_block(p, b, err, errlen);
  return r == 0 ? check_devices(p, err, errlen) : r;
}
