/* Unit tests for version-neutral process images (sim-kernel/kimage.h):
 * hand-built layout-1 tables, extracted by the layout-1 extractor, built
 * by the layout-v2 builder into a v2 region and extracted again from it
 * by the v2 extractor, must give the same image; what an image cannot
 * carry, a conflict and bad input leave the target untouched. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kd_fixture.h"
#include "kimage.h"
#include "kimage.pb-c.h"

TestSuite(kimage, .init = kd_new, .fini = kd_free);

static void *v2_region(void) {
  void *r = malloc(kimg_v2_region_size());
  cr_assert_not_null(r);
  kimg_v2_region_init(r, 2);
  return r;
}

static uint32_t live_chan(uint32_t i, char type, uint32_t dev, const char *p) {
  struct uk_chan *c = &kd->vfs.chan[i];
  c->gen = 3;
  c->state = UK_CHAN_LIVE;
  c->type = (uint8_t)type;
  c->dev = dev;
  c->ref = 1;
  c->qid.path = 100 + i;
  c->flags = UK_CHAN_F_OPEN;
  c->offset = 7 * i;
  strcpy(c->path, p);
  return UK_VFS_ID(i, 3);
}

/* The generation of the pipe below: 0 is a fresh kernel's first pipe in
 * a slot, the generation an empty region's slots have too. */
static uint16_t pipe_gen = 5;

/* A pipe at index 2 whose ring 0 wraps around its end. */
static uint32_t pipe_with_bytes(void) {
  struct uk_pipe *p = &kd->vfs.pipe[2];
  p->gen = pipe_gen;
  p->ring[0].head = UK_PIPE_BUF - 3;
  p->ring[0].len = 6;
  memcpy(&p->ring[0].buf[UK_PIPE_BUF - 3], "abc", 3);
  memcpy(p->ring[0].buf, "def", 3);
  return UK_VFS_ID(2, pipe_gen);
}

/* Process `name` with two ICAs, one answered result carrying an ICA, a
 * namespace (root, a mount, fd 3 on the pipe's end `end`) and a TCP
 * conversation. */
static uint32_t make_proc(const char *name, uint32_t ns_index, uint32_t end) {
  int p = kern_proc_alloc(kd, name, 4000);
  cr_assert_geq(p, 0);
  uint32_t ica, rid;
  cr_assert_eq(kern_ica_alloc(kd, KABI_ICA_DATA, 8192, (uint32_t)p, &ica), 0);
  cr_assert_eq(kern_ica_alloc(kd, KABI_ICA_CONTROL, 4096, (uint32_t)p, &ica),
               0);
  int ri = kern_req_alloc(kd, &rid);
  cr_assert_geq(ri, 0);
  struct uk_req *r = &kd->req[ri];
  r->state = UK_REQ_ANSWERED;
  r->client = (uint32_t)p;
  r->status = 42;
  r->tag = 99;
  kern_ica_move(kd, ica, UK_HOLD_REQUEST, (uint32_t)ri);
  r->data = ica;
  uk_psched_t *s = uk_psched(kd, (uint32_t)p);
  kern_q_push(kd, &s->res_head, &s->res_tail, &s->res_len, (uint32_t)ri);
  s->outstanding = 1;
  s->call_seq = s->answered_seq = 12;
  struct uk_nsgroup *g = &kd->vfs.ns[ns_index];
  g->gen = 1;
  g->state = UK_NS_LIVE;
  g->ref = 1;
  g->nmount = 1;
  g->mount[0].from = live_chan(10 + ns_index, '/', 0, "/n");
  g->mount[0].n = 1;
  g->mount[0].member[0] = live_chan(20 + ns_index, 's', 0, "#s");
  struct uk_vproc *v = &kd->vfs.vproc[p];
  v->attached = 1;
  v->ns = UK_VFS_ID(ns_index, 1);
  v->root = v->cwd = live_chan(30 + ns_index, '/', 0, "/");
  v->fd[3] = live_chan(40 + ns_index, '|', pipe_with_bytes(), "#|/data");
  kd->vfs.chan[40 + ns_index].qid.path = end;
  struct uk_conv *c = &kd->vfs.nic.conv[ns_index];
  c->gen = 2;
  c->state = UK_CONV_CONNECTED;
  c->port = 7001;
  c->rport = 50000;
  c->raddr = 0x7f000001;
  c->owner = (uint32_t)p;
  return (uint32_t)p;
}

static Uksim__Kimage__Image *unpack(const uint8_t *b, size_t n) {
  Uksim__Kimage__Image *i = uksim__kimage__image__unpack(NULL, n, b);
  cr_assert_not_null(i);
  return i;
}

/* The two images equal but for the layout and OS they were read from. */
static void assert_same(const uint8_t *a, size_t na, const uint8_t *b,
                        size_t nb) {
  Uksim__Kimage__Image *x = unpack(a, na), *y = unpack(b, nb);
  cr_assert_neq(x->from_layout, y->from_layout);
  y->from_layout = x->from_layout;
  y->from_os = x->from_os;
  size_t nx = uksim__kimage__image__get_packed_size(x);
  size_t ny = uksim__kimage__image__get_packed_size(y);
  cr_assert_eq(nx, ny);
  uint8_t *px = malloc(nx), *py = malloc(ny);
  uksim__kimage__image__pack(x, px);
  uksim__kimage__image__pack(y, py);
  cr_assert_eq(memcmp(px, py, nx), 0);
  free(px);
  free(py);
  uksim__kimage__image__free_unpacked(x, NULL);
  uksim__kimage__image__free_unpacked(y, NULL);
}

Test(kimage, layouts_really_differ, .timeout = 10) {
  cr_assert_neq(kimg_v1_region_size(), kimg_v2_region_size());
}

Test(kimage, extracts_what_the_process_holds, .timeout = 10) {
  uint32_t p = make_proc("app", 1, 1);
  uint8_t *b;
  size_t n;
  cr_assert_eq(kimg_v1_extract(kd, sizeof *kd, p, &b, &n), 0);
  Uksim__Kimage__Image *i = unpack(b, n);
  cr_assert_eq(i->version, KIMG_VERSION);
  cr_assert_eq(i->from_layout, UK_KDATA_LAYOUT);
  cr_assert_str_eq(i->proc->name, "app");
  cr_assert_eq(i->n_icas, 2); /* one held, one carried by the result */
  cr_assert_eq(i->n_results, 1);
  cr_assert_eq(i->results[0]->status, 42);
  cr_assert_eq(i->n_fds, 1);
  cr_assert_eq(i->ns->n_mounts, 1);
  cr_assert_eq(i->n_chans, 4); /* root = cwd, mount from and member, fd */
  cr_assert_eq(i->n_pipes, 1);
  cr_assert_eq(i->pipes[0]->unread0.len, 6);
  cr_assert_eq(memcmp(i->pipes[0]->unread0.data, "abcdef", 6), 0);
  cr_assert_eq(i->n_convs, 1);
  cr_assert_eq(i->convs[0]->state, UKSIM__KIMAGE__CONV_STATE__CONNECTED);
  cr_assert_eq(i->n_cannot_carry, 0);
  uksim__kimage__image__free_unpacked(i, NULL);
  free(b);
}

Test(kimage, round_trips_from_layout_1_to_v2, .timeout = 10) {
  uint32_t p = make_proc("app", 1, 1);
  uint8_t *a, *b;
  size_t na, nb;
  cr_assert_eq(kimg_v1_extract(kd, sizeof *kd, p, &a, &na), 0);
  void *v2 = v2_region();
  cr_assert_eq(kimg_v2_build(v2, kimg_v2_region_size(), a, na), (int)p);
  cr_assert_eq(kimg_v2_extract(v2, kimg_v2_region_size(), p, &b, &nb), 0);
  assert_same(a, na, b, nb);
  free(a);
  free(b);
  free(v2);
}

static void pipe_between_two_processes_keeps_its_bytes(void) {
  uint32_t p = make_proc("writer", 1, 1), q = make_proc("reader", 2, 2);
  uint8_t *a[2], *b[2];
  size_t na[2], nb[2];
  uint32_t slot[2] = {p, q};
  void *v2 = v2_region();
  for (int k = 0; k < 2; k++) {
    cr_assert_eq(kimg_v1_extract(kd, sizeof *kd, slot[k], &a[k], &na[k]), 0);
    cr_assert_eq(kimg_v2_build(v2, kimg_v2_region_size(), a[k], na[k]),
                 (int)slot[k]);
  }
  for (int k = 0; k < 2; k++) {
    cr_assert_eq(
        kimg_v2_extract(v2, kimg_v2_region_size(), slot[k], &b[k], &nb[k]), 0);
    assert_same(a[k], na[k], b[k], nb[k]); /* the bytes are there once */
    free(a[k]);
    free(b[k]);
  }
  free(v2);
}

Test(kimage, a_pipe_between_two_processes_keeps_its_bytes, .timeout = 10) {
  pipe_between_two_processes_keeps_its_bytes();
}

/* The new region's pipe slots are at generation 0 too: its first pipe is
 * built all the same, not taken for one already built from its other
 * end's image. */
Test(kimage, a_pipe_of_generation_0_keeps_its_bytes, .timeout = 10) {
  pipe_gen = 0;
  pipe_between_two_processes_keeps_its_bytes();
}

Test(kimage, what_it_cannot_carry_fails_cleanly, .timeout = 10) {
  uint32_t p = make_proc("app", 1, 1);
  kd->vfs.vproc[p].fd[4] = live_chan(50, UK_CHAN_MNT, UK_SVC_MAX + 1, "/net");
  uint8_t *a;
  size_t na;
  cr_assert_eq(kimg_v1_extract(kd, sizeof *kd, p, &a, &na), 0);
  Uksim__Kimage__Image *i = unpack(a, na);
  cr_assert_eq(i->n_cannot_carry, 1);
  cr_assert(strstr(i->cannot_carry[0], "netlink") != NULL);
  uksim__kimage__image__free_unpacked(i, NULL);
  void *v2 = v2_region();
  void *before = malloc(kimg_v2_region_size());
  memcpy(before, v2, kimg_v2_region_size());
  cr_assert_eq(kimg_v2_build(v2, kimg_v2_region_size(), a, na), -EXDEV);
  cr_assert_eq(memcmp(before, v2, kimg_v2_region_size()), 0);
  free(before);
  free(v2);
  free(a);
}

Test(kimage, a_conflict_writes_nothing, .timeout = 10) {
  uint32_t p = make_proc("app", 1, 1);
  uint8_t *a;
  size_t na;
  cr_assert_eq(kimg_v1_extract(kd, sizeof *kd, p, &a, &na), 0);
  void *v2 = v2_region();
  cr_assert_eq(kimg_v2_build(v2, kimg_v2_region_size(), a, na), (int)p);
  void *before = malloc(kimg_v2_region_size());
  memcpy(before, v2, kimg_v2_region_size());
  cr_assert_eq(kimg_v2_build(v2, kimg_v2_region_size(), a, na), -EEXIST);
  cr_assert_eq(memcmp(before, v2, kimg_v2_region_size()), 0);
  free(before);
  free(v2);
  free(a);
}

Test(kimage, bad_input_is_refused, .timeout = 10) {
  uint8_t *a;
  size_t na;
  uint8_t junk[64];
  memset(junk, 0xa5, sizeof junk);
  cr_assert_eq(kimg_v1_extract(kd, sizeof *kd, 3, &a, &na), -ESRCH);
  cr_assert_eq(kimg_v1_extract(kd, sizeof *kd, UK_PROC_MAX, &a, &na), -ESRCH);
  void *v2 = v2_region();
  /* A v2 region is not a layout-1 region, whatever its size. */
  cr_assert_eq(kimg_v1_extract(v2, kimg_v2_region_size(), 0, &a, &na), -EPROTO);
  cr_assert_eq(kimg_v1_build(v2, kimg_v2_region_size(), junk, sizeof junk),
               -EPROTO);
  cr_assert_eq(kimg_v2_build(v2, kimg_v2_region_size(), junk, sizeof junk),
               -EBADMSG);
  cr_assert_eq(kimg_v2_extract(kd, 16, 0, &a, &na), -EPROTO);
  free(v2);
}
