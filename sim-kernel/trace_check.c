/* The exactly-one-answer checker (see trace_check.h). */
#include "trace_check.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct req_seen {
  uint8_t sends, receives, results, answers; /* answers: reply or error */
  char client[32];
};

struct checker {
  struct req_seen *req;
  size_t cap;
  char (*exited)[32]; /* actors that exited, in order */
  size_t nexited, capexited;
};

static struct req_seen *slot(struct checker *c, uint64_t n) {
  if (n >= c->cap) {
    size_t cap = c->cap ? c->cap : 1024;
    while (cap <= n)
      cap *= 2;
    struct req_seen *r = realloc(c->req, cap * sizeof *r);
    if (r == NULL)
      return NULL;
    memset(r + c->cap, 0, (cap - c->cap) * sizeof *r);
    c->req = r;
    c->cap = cap;
  }
  return &c->req[n];
}

static bool has_exited(const struct checker *c, const char *who) {
  for (size_t i = 0; i < c->nexited; i++)
    if (strcmp(c->exited[i], who) == 0)
      return true;
  return false;
}

static int note_exit(struct checker *c, const char *who) {
  if (c->nexited == c->capexited) {
    size_t cap = c->capexited ? c->capexited * 2 : 64;
    void *p = realloc(c->exited, cap * sizeof *c->exited);
    if (p == NULL)
      return -ENOMEM;
    c->exited = p;
    c->capexited = cap;
  }
  snprintf(c->exited[c->nexited++], sizeof c->exited[0], "%s", who);
  return 0;
}

/* Applies one event; returns NULL or what is wrong. */
static const char *apply(struct checker *c, const char *ev, const char *actor,
                         uint64_t req) {
  if (strcmp(ev, "exit") == 0)
    return note_exit(c, actor) < 0 ? "out of memory" : NULL;
  bool send = !strcmp(ev, "send"), recv = !strcmp(ev, "receive");
  bool result = !strcmp(ev, "result");
  bool answer = !strcmp(ev, "reply") || !strcmp(ev, "error");
  if (!(send || recv || result || answer))
    return NULL;
  if (req == 0)
    return "a request event without a request number";
  struct req_seen *r = slot(c, req);
  if (r == NULL)
    return "out of memory";
  if (!send && r->sends == 0)
    return "an event for a request never sent";
  if (send && r->sends++)
    return "the request was sent twice";
  if (send)
    snprintf(r->client, sizeof r->client, "%s", actor);
  if (recv && r->receives++)
    return "the request was delivered to a server twice";
  if (answer && r->answers++)
    return "the request was answered twice";
  if (result && r->results++)
    return "the client got two results";
  return NULL;
}

static int finish(struct checker *c, struct trace_stats *st, char *err,
                  size_t len) {
  for (size_t n = 0; n < c->cap; n++) {
    struct req_seen *r = &c->req[n];
    if (r->sends == 0)
      continue;
    st->requests++;
    st->results += r->results;
    if (r->results == 1)
      continue;
    if (has_exited(c, r->client)) {
      st->dropped++;
      continue;
    }
    snprintf(err, len, "request %zu of %s was never answered", n, r->client);
    return -1;
  }
  return 0;
}

int trace_check(const char *path, struct trace_stats *st, char *err,
                size_t len) {
  struct checker c = {0};
  char *line = NULL;
  size_t cap = 0;
  long lineno = 0;
  int rc = 0;
  FILE *f = fopen(path, "re");
  memset(st, 0, sizeof *st);
  if (f == NULL) {
    snprintf(err, len, "%s: %s", path, strerror(errno));
    return -1;
  }
  while (rc == 0 && getline(&line, &cap, f) > 0) {
    json_error_t je;
    const char *ev = NULL, *actor = "kernel", *why;
    json_int_t req = 0;
    lineno++;
    json_t *o = json_loads(line, 0, &je);
    if (o == NULL || json_unpack(o, "{s:s, s?s, s?I}", "ev", &ev, "actor",
                                 &actor, "req", &req) < 0) {
      snprintf(err, len, "%s:%ld: not a trace event", path, lineno);
      rc = -1;
    } else if ((why = apply(&c, ev, actor, (uint64_t)req)) != NULL) {
      snprintf(err, len, "%s:%ld: request %lld: %s", path, lineno,
               (long long)req, why);
      rc = -1;
    }
    st->events++;
    st->errors += ev && !strcmp(ev, "error");
    json_decref(o);
  }
  if (rc == 0)
    rc = finish(&c, st, err, len);
  free(line);
  free(c.req);
  free(c.exited);
  fclose(f);
  return rc;
}
