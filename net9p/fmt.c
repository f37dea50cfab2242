/*
 * fmt.c: one-line message formatter (Plan 9's %F), used by the trace
 * switch of servers and by tools.
 */
#include <stdarg.h>
#include <stdio.h>

#include <uksim/9p.h>

struct out {
  char *buf;
  size_t cap;
  int n;
};

static void pr(struct out *o, const char *fmt, ...) {
  va_list ap;
  size_t at = (size_t)o->n < o->cap ? (size_t)o->n : o->cap;
  va_start(ap, fmt);
  o->n += vsnprintf(o->buf + at, o->cap - at, fmt, ap);
  va_end(ap);
}

static void qid(struct out *o, const p9_qid *q) {
  pr(o, " (%llx %u %x)", (unsigned long long)q->path, q->vers, q->type);
}

static void str(struct out *o, const char *what, p9_str s) {
  pr(o, " %s '%.*s'", what, (int)s.len, s.s);
}

static void walk(struct out *o, const p9_fcall *f) {
  pr(o, " fid %u newfid %u nwname %u", f->fid, f->newfid, f->nwname);
  for (int i = 0; i < f->nwname && i < P9_MAXWELEM; i++)
    pr(o, " %d:%.*s", i, (int)f->wname[i].len, f->wname[i].s);
}

static void body(struct out *o, const p9_fcall *f) {
  switch (f->type) {
  case P9_TVERSION:
  case P9_RVERSION:
    pr(o, " msize %u", f->msize);
    str(o, "version", f->version);
    break;
  case P9_TAUTH:
    pr(o, " afid %u", f->afid);
    str(o, "uname", f->uname);
    str(o, "aname", f->aname);
    break;
  case P9_TATTACH:
    pr(o, " fid %u afid %u", f->fid, f->afid);
    str(o, "uname", f->uname);
    str(o, "aname", f->aname);
    break;
  case P9_RERROR:
    str(o, "ename", f->ename);
    break;
  case P9_RLERROR:
    pr(o, " ecode %u", f->ecode);
    break;
  case P9_TFLUSH:
    pr(o, " oldtag %u", f->oldtag);
    break;
  case P9_TWALK:
    walk(o, f);
    break;
  case P9_RWALK:
    pr(o, " nwqid %u", f->nwqid);
    for (int i = 0; i < f->nwqid && i < P9_MAXWELEM; i++)
      qid(o, &f->wqid[i]);
    break;
  case P9_TOPEN:
    pr(o, " fid %u mode %u", f->fid, f->mode);
    break;
  case P9_TCREATE:
    pr(o, " fid %u", f->fid);
    str(o, "name", f->name);
    pr(o, " perm %o mode %u", f->perm, f->mode);
    break;
  case P9_TREAD:
  case P9_TREADDIR:
    pr(o, " fid %u offset %llu count %u", f->fid, (unsigned long long)f->offset,
       f->count);
    break;
  case P9_TWRITE:
    pr(o, " fid %u offset %llu count %u", f->fid, (unsigned long long)f->offset,
       f->count);
    break;
  case P9_RREAD:
  case P9_RWRITE:
  case P9_RREADDIR:
    pr(o, " count %u", f->count);
    break;
  case P9_RAUTH:
  case P9_RATTACH:
  case P9_ROPEN:
  case P9_RCREATE:
  case P9_RLOPEN:
  case P9_RLCREATE:
  case P9_RMKDIR:
    qid(o, &f->qid);
    break;
  case P9_TWSTAT:
    pr(o, " fid %u", f->fid);
    /* fall through */
  case P9_RSTAT:
    str(o, "name", f->stat.name);
    pr(o, " mode %o length %llu", f->stat.mode,
       (unsigned long long)f->stat.length);
    break;
  case P9_TLOPEN:
    pr(o, " fid %u flags 0%o", f->fid, f->flags);
    break;
  case P9_TLCREATE:
  case P9_TMKDIR:
  case P9_TUNLINKAT:
    pr(o, " fid %u dfid %u", f->fid, f->dfid);
    str(o, "name", f->name);
    break;
  default: /* T-messages have even types; the rest carry a fid */
    if (!(f->type & 1))
      pr(o, " fid %u", f->fid);
    break;
  }
}

int p9_fcall_fmt(char *buf, size_t cap, const p9_fcall *f) {
  struct out o = {buf, cap, 0};
  const char *name = p9_msgname(f->type);
  if (cap)
    buf[0] = 0;
  if (name)
    pr(&o, "%s tag %u", name, f->tag);
  else
    pr(&o, "type %u tag %u", f->type, f->tag);
  if (name)
    body(&o, f);
  return o.n;
}
