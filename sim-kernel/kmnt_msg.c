/* Reading a 9P server's answers for the mount driver (kmnt_msg.h). */
#include "kmnt_msg.h"

#include <errno.h>
#include <string.h>

static uint32_t get32(const uint8_t *p) {
  return p[0] | p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static struct uk_qid qid_of(const p9_qid *q) {
  return (struct uk_qid){.path = q->path, .vers = q->vers, .type = q->type};
}

void kmnt__reply(uint8_t ttype, bool walked, bool bulk, p9_dialect d,
                 const uint8_t *m, size_t cap, struct kmnt_reply *out) {
  p9_fcall f;
  memset(out, 0, sizeof *out);
  out->err = -EIO; /* a server answering garbage fails the call */
  if (cap < 11)
    return;
  uint32_t size = get32(m);
  if (ttype == P9_TREAD && bulk && size == 11 && m[4] == P9_RREAD) {
    out->err = 0; /* bulk: the frame ends after count[4] */
    out->count = get32(m + 7);
    return;
  }
  if (size > cap || p9_decode(m, size, d, &f) < 0)
    return;
  if (f.type == P9_RERROR || f.type == P9_RLERROR) {
    int e = f.type == P9_RERROR ? p9_errno(f.ename) : (int)f.ecode;
    out->err = e > 0 && e < 4096 ? -e : -EIO;
    return;
  }
  if (f.type != ttype + 1)
    return;
  out->err = 0;
  out->qid = qid_of(&f.qid);
  if (ttype == P9_TWALK && walked) {
    if (f.nwqid < 1) {
      out->err = -ENOENT;
      return;
    }
    out->qid = qid_of(&f.wqid[0]);
  }
  if (ttype == P9_TREAD || ttype == P9_TWRITE || ttype == P9_TREADDIR)
    out->count = f.count;
  if (ttype == P9_TVERSION)
    out->count = f.msize;
}

/* A 9P2000.L directory entry as the stat the listing gives: the name and
 * qid, a mode from its type (length and times need a Tgetattr each: a
 * stat of the file gives them). */
static void dirent_stat(const p9_dirent *de, p9_stat *st) {
  memset(st, 0, sizeof *st);
  st->qid = de->qid;
  st->mode = (de->qid.type & P9_QTDIR) ? P9_DMDIR | 0755 : 0644;
  st->name = de->name;
}

int kmnt__list_chunk(bool l, const uint8_t *b, uint32_t n, uint64_t *next,
                     int (*fn)(void *arg, const p9_stat *st), void *arg) {
  int r = 0;
  for (uint32_t at = 0; at < n && r == 0;) {
    p9_stat st;
    p9_dirent de;
    long used = l ? p9_dirent_decode(b + at, n - at, &de)
                  : p9_stat_decode(b + at, n - at, &st);
    if (used <= 0 || (uint64_t)used > n - at)
      return -EIO;
    at += (uint32_t)used;
    if (l) {
      *next = de.offset;
      if (p9_str_eq(de.name, ".") || p9_str_eq(de.name, ".."))
        continue;
      dirent_stat(&de, &st);
    }
    r = fn(arg, &st);
  }
  if (!l)
    *next += n;
  return r;
}
