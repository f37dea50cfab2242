/*
 * bgsrv.h: end-to-end test helpers: an in-memory 9P server on its own
 * libuv loop and thread, so a blocking client (or an external tool) in the
 * test can talk to it, and a shell runner.
 */
#ifndef TESTS_NET9P_BGSRV_H
#define TESTS_NET9P_BGSRV_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

typedef struct bgsrv {
  uv_loop_t loop;
  uv_async_t stop, snap; /* snap: copy the server's stats on its thread */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool snapped;
  p9_srv_stats stats;
  pthread_t th;
  p9_srv *srv;
  p9_memfs *fs;
  p9_listener *l;
  char addr[300];
} bgsrv;

static void bg_on_stop(uv_async_t *a) {
  bgsrv *b = a->data;
  p9_listener_close(b->l);
  p9_srv_close_conns(b->srv);
  uv_close((uv_handle_t *)a, NULL);
  uv_close((uv_handle_t *)&b->snap, NULL);
}

static void bg_on_snap(uv_async_t *a) {
  bgsrv *b = a->data;
  pthread_mutex_lock(&b->mu);
  p9_srv_read_stats(b->srv, &b->stats);
  b->snapped = true;
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

/* The server's stats now, read on its loop's thread. */
static inline p9_srv_stats bg_stats(bgsrv *b) {
  p9_srv_stats st;
  pthread_mutex_lock(&b->mu);
  b->snapped = false;
  cr_assert_eq(uv_async_send(&b->snap), 0);
  while (!b->snapped)
    pthread_cond_wait(&b->cv, &b->mu);
  st = b->stats;
  pthread_mutex_unlock(&b->mu);
  return st;
}

static void *bg_run(void *arg) {
  bgsrv *b = arg;
  uv_run(&b->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Listens on addr (e.g. "tcp!127.0.0.1!0") with ops over a fresh memfs
 * (ops must keep the memfs as the server's aux); returns 0 or the error. */
static inline int bg_start_ops(bgsrv *b, const char *addr,
                               const p9_srv_config *cfg,
                               const struct p9_srv_ops *ops) {
  int err;
  memset(b, 0, sizeof(*b));
  uv_loop_init(&b->loop);
  b->fs = p9_memfs_new();
  b->srv = p9_srv_new(ops, b->fs, cfg, &err);
  cr_assert_not_null(b->srv);
  if (!(b->l = p9_listen(b->srv, &b->loop, addr, &err))) {
    p9_srv_free(b->srv);
    p9_memfs_free(b->fs);
    uv_run(&b->loop, UV_RUN_NOWAIT);
    uv_loop_close(&b->loop);
    return err;
  }
  snprintf(b->addr, sizeof(b->addr), "%s", p9_listener_addr(b->l));
  cr_assert_eq(uv_async_init(&b->loop, &b->stop, bg_on_stop), 0);
  cr_assert_eq(uv_async_init(&b->loop, &b->snap, bg_on_snap), 0);
  b->stop.data = b->snap.data = b;
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  pthread_create(&b->th, NULL, bg_run, b);
  return 0;
}

/* The in-memory server as `uksim 9p serve` runs it. */
static inline int bg_start(bgsrv *b, const char *addr,
                           const p9_srv_config *cfg) {
  return bg_start_ops(b, addr, cfg, p9_memfs_ops());
}

static inline void bg_stop(bgsrv *b) {
  uv_async_send(&b->stop);
  pthread_join(b->th, NULL);
  cr_assert_eq(p9_srv_nconns(b->srv), 0, "connections left behind");
  cr_assert_eq(uv_loop_close(&b->loop), 0, "handles left open");
  p9_srv_read_stats(b->srv, &b->stats); /* the loop has stopped */
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  p9_srv_free(b->srv);
  p9_memfs_free(b->fs);
}

/* "tcp!127.0.0.1!PORT" -> "127.0.0.1:PORT" for diod's tools. */
static inline void bg_hostport(const bgsrv *b, char *out, size_t cap) {
  p9_addr a;
  p9_addr_parse(b->addr, &a);
  snprintf(out, cap, "%s:%s", a.host, a.port);
}

/* Runs a shell command, keeps its standard output; the wait status. */
static inline int sh(char *out, size_t cap, const char *fmt, ...) {
  char cmd[1024];
  va_list ap;
  FILE *p;
  size_t n;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  p = popen(cmd, "r");
  cr_assert_not_null(p);
  n = fread(out, 1, cap - 1, p);
  out[n] = 0;
  return pclose(p);
}

#endif
