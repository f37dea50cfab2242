/* The fixture the vfs tests share: a freshly initialised kernel-data region
 * per test (kern_kdata_init, the kernel's own, so the tests also show that
 * the vfs tables start empty without any init of their own), helpers that
 * make chans and check that a refused call changed nothing.  The fini
 * checks every vfs invariant.  Include once per test file. */
#ifndef TESTS_VFS_VFS_FIXTURE_H
#define TESTS_VFS_VFS_FIXTURE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ktab.h"
#include "vfs.h"

static struct uk_kdata *kd;
static struct uk_kdata *snap; /* the region before a call expected to fail */

static inline void assert_vfs_ok(void) {
  char why[200];
  int r = vfs_check(kd, why, sizeof why);
  cr_assert_eq(r, 0, "vfs_check: %s", why);
}

static void kd_new(void) {
  kd = malloc(sizeof *kd);
  snap = malloc(sizeof *snap);
  cr_assert(kd && snap);
  kern_kdata_init(kd, 1234, 7, 1ull << 30);
  assert_vfs_ok();
}

static void kd_free(void) {
  assert_vfs_ok();
  free(kd);
  free(snap);
  kd = snap = NULL;
}

static inline void snap_take(void) {
  memcpy(snap, kd, sizeof *kd);
}

static inline void snap_same(void) {
  cr_assert(memcmp(snap, kd, sizeof *kd) == 0,
            "a refused call changed the region");
}

/* A new chan (one reference, the test's) of servant type, named (dev,
 * path), a directory if dir. */
static inline uint32_t chan_of(uint8_t type, uint32_t dev, uint64_t path,
                               bool dir) {
  struct uk_qid q = {.path = path, .type = dir ? UK_QTDIR : 0};
  uint32_t id = UK_VFS_NONE;
  cr_assert_eq(vfs_chan_new(kd, type, dev, &q, &id), 0);
  cr_assert_neq(id, UK_VFS_NONE);
  return id;
}

static inline uint32_t dir_chan(uint64_t path) {
  return chan_of('/', 0, path, true);
}
static inline uint32_t file_chan(uint64_t path) {
  return chan_of('/', 0, path, false);
}
static inline uint32_t mnt_chan(uint32_t link, uint64_t path) {
  return chan_of(UK_CHAN_MNT, link, path, true);
}

static inline uint32_t ref_of(uint32_t id) {
  int i = vfs_chan_lookup(kd, id);
  cr_assert_geq(i, 0, "chan %#x not live", id);
  return kd->vfs.chan[i].ref;
}

static inline uint32_t ns_new_ok(void) {
  uint32_t ns = UK_VFS_NONE;
  cr_assert_eq(vfs_ns_new(kd, &ns), 0);
  cr_assert_neq(ns, UK_VFS_NONE);
  return ns;
}

#endif /* TESTS_VFS_VFS_FIXTURE_H */
