/*
 * fcall.c: the 9P2000 / 9P2000.L codec.
 *
 * Every message layout is a list of fields (kind + offset into p9_fcall),
 * so one size/encode/decode walker serves all 60-odd messages and cannot
 * disagree with itself.  Decoding checks each length against the bytes
 * left before reading, and a message must be consumed exactly: a count or
 * string that runs past the end, or trailing bytes, is -EBADMSG.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <uksim/9p.h>

#include "p9_impl.h"

enum kind {
  K_END,
  K_U8,
  K_U16,
  K_U32,
  K_U64,
  K_STR,
  K_QID,
  K_DATA,  /* count[4] data[count] */
  K_STAT,  /* n[2] stat[n] */
  K_WNAME, /* nwname[2] nwname*wname[s] */
  K_WQID,  /* nwqid[2] nwqid*qid[13] */
  K_OPT32  /* u32 present only if bytes remain (Tfsync datasync) */
};

struct field {
  uint8_t kind;
  uint16_t off;
};

#define F(k, m)                                                                \
  { k, offsetof(p9_fcall, m) }
#define END                                                                    \
  { K_END, 0 }

static const struct field f_none[] = {END};
static const struct field f_fid[] = {F(K_U32, fid), END};
static const struct field f_qid[] = {F(K_QID, qid), END};
static const struct field f_qidio[] = {F(K_QID, qid), F(K_U32, iounit), END};
static const struct field f_version[] = {F(K_U32, msize), F(K_STR, version),
                                         END};
static const struct field f_tauth[] = {F(K_U32, afid), F(K_STR, uname),
                                       F(K_STR, aname), END};
static const struct field f_tauth_l[] = {
    F(K_U32, afid), F(K_STR, uname), F(K_STR, aname), F(K_U32, n_uname), END};
static const struct field f_tattach[] = {F(K_U32, fid), F(K_U32, afid),
                                         F(K_STR, uname), F(K_STR, aname), END};
static const struct field f_tattach_l[] = {F(K_U32, fid),     F(K_U32, afid),
                                           F(K_STR, uname),   F(K_STR, aname),
                                           F(K_U32, n_uname), END};
static const struct field f_rerror[] = {F(K_STR, ename), END};
static const struct field f_rlerror[] = {F(K_U32, ecode), END};
static const struct field f_tflush[] = {F(K_U16, oldtag), END};
static const struct field f_twalk[] = {F(K_U32, fid), F(K_U32, newfid),
                                       F(K_WNAME, nwname), END};
static const struct field f_rwalk[] = {F(K_WQID, nwqid), END};
static const struct field f_topen[] = {F(K_U32, fid), F(K_U8, mode), END};
static const struct field f_tcreate[] = {F(K_U32, fid), F(K_STR, name),
                                         F(K_U32, perm), F(K_U8, mode), END};
static const struct field f_tread[] = {F(K_U32, fid), F(K_U64, offset),
                                       F(K_U32, count), END};
static const struct field f_data[] = {F(K_DATA, count), END};
static const struct field f_twrite[] = {F(K_U32, fid), F(K_U64, offset),
                                        F(K_DATA, count), END};
static const struct field f_count[] = {F(K_U32, count), END};
static const struct field f_rstat[] = {F(K_STAT, stat), END};
static const struct field f_twstat[] = {F(K_U32, fid), F(K_STAT, stat), END};
static const struct field f_rstatfs[] = {
    F(K_U32, statfs.type),    F(K_U32, statfs.bsize),
    F(K_U64, statfs.blocks),  F(K_U64, statfs.bfree),
    F(K_U64, statfs.bavail),  F(K_U64, statfs.files),
    F(K_U64, statfs.ffree),   F(K_U64, statfs.fsid),
    F(K_U32, statfs.namelen), END};
static const struct field f_tlopen[] = {F(K_U32, fid), F(K_U32, flags), END};
static const struct field f_tlcreate[] = {F(K_U32, fid),   F(K_STR, name),
                                          F(K_U32, flags), F(K_U32, lmode),
                                          F(K_U32, gid),   END};
static const struct field f_tsymlink[] = {F(K_U32, fid), F(K_STR, name),
                                          F(K_STR, symtgt), F(K_U32, gid), END};
static const struct field f_tmknod[] = {F(K_U32, dfid),
                                        F(K_STR, name),
                                        F(K_U32, lmode),
                                        F(K_U32, major),
                                        F(K_U32, minor),
                                        F(K_U32, gid),
                                        END};
static const struct field f_trename[] = {F(K_U32, fid), F(K_U32, dfid),
                                         F(K_STR, name), END};
static const struct field f_rreadlink[] = {F(K_STR, symtgt), END};
static const struct field f_tgetattr[] = {F(K_U32, fid), F(K_U64, request_mask),
                                          END};
static const struct field f_rgetattr[] = {F(K_U64, attr.valid),
                                          F(K_QID, attr.qid),
                                          F(K_U32, attr.mode),
                                          F(K_U32, attr.uid),
                                          F(K_U32, attr.gid),
                                          F(K_U64, attr.nlink),
                                          F(K_U64, attr.rdev),
                                          F(K_U64, attr.size),
                                          F(K_U64, attr.blksize),
                                          F(K_U64, attr.blocks),
                                          F(K_U64, attr.atime_sec),
                                          F(K_U64, attr.atime_nsec),
                                          F(K_U64, attr.mtime_sec),
                                          F(K_U64, attr.mtime_nsec),
                                          F(K_U64, attr.ctime_sec),
                                          F(K_U64, attr.ctime_nsec),
                                          F(K_U64, attr.btime_sec),
                                          F(K_U64, attr.btime_nsec),
                                          F(K_U64, attr.gen),
                                          F(K_U64, attr.data_version),
                                          END};
/* Tsetattr's valid is 4 bytes on the wire; the codec widens it. */
static const struct field f_tsetattr[] = {
    F(K_U32, fid),
    F(K_U32, flags), /* valid, see fix_setattr */
    F(K_U32, attr.mode),
    F(K_U32, attr.uid),
    F(K_U32, attr.gid),
    F(K_U64, attr.size),
    F(K_U64, attr.atime_sec),
    F(K_U64, attr.atime_nsec),
    F(K_U64, attr.mtime_sec),
    F(K_U64, attr.mtime_nsec),
    END};
static const struct field f_txattrwalk[] = {F(K_U32, fid), F(K_U32, newfid),
                                            F(K_STR, name), END};
static const struct field f_rxattrwalk[] = {F(K_U64, xsize), END};
static const struct field f_txattrcreate[] = {
    F(K_U32, fid), F(K_STR, name), F(K_U64, xsize), F(K_U32, flags), END};
static const struct field f_treaddir[] = {F(K_U32, fid), F(K_U64, offset),
                                          F(K_U32, count), END};
static const struct field f_tfsync[] = {F(K_U32, fid), F(K_OPT32, datasync),
                                        END};
static const struct field f_tlock[] = {
    F(K_U32, fid),     F(K_U8, ltype),    F(K_U32, flags),     F(K_U64, lstart),
    F(K_U64, llength), F(K_U32, proc_id), F(K_STR, client_id), END};
static const struct field f_rlock[] = {F(K_U8, lstatus), END};
static const struct field f_tgetlock[] = {F(K_U32, fid),
                                          F(K_U8, ltype),
                                          F(K_U64, lstart),
                                          F(K_U64, llength),
                                          F(K_U32, proc_id),
                                          F(K_STR, client_id),
                                          END};
static const struct field f_rgetlock[] = {
    F(K_U8, ltype),    F(K_U64, lstart),    F(K_U64, llength),
    F(K_U32, proc_id), F(K_STR, client_id), END};
static const struct field f_tlink[] = {F(K_U32, dfid), F(K_U32, fid),
                                       F(K_STR, name), END};
static const struct field f_tmkdir[] = {F(K_U32, dfid), F(K_STR, name),
                                        F(K_U32, lmode), F(K_U32, gid), END};
static const struct field f_trenameat[] = {
    F(K_U32, fid), F(K_STR, name), F(K_U32, dfid), F(K_STR, newname), END};
static const struct field f_tunlinkat[] = {F(K_U32, fid), F(K_STR, name),
                                           F(K_U32, flags), END};

struct msgdef {
  const char *name;
  const struct field *f;  /* layout in 9P2000 (NULL: not in 9P2000) */
  const struct field *fl; /* layout in 9P2000.L (NULL: not in .L) */
};

#define BOTH(n, l)                                                             \
  { n, l, l }
#define LONLY(n, l)                                                            \
  { n, NULL, l }
#define CLASSIC(n, l)                                                          \
  { n, l, NULL }

static const struct msgdef defs[256] = {
    [P9_TLERROR] = {"Tlerror", NULL, NULL},
    [P9_RLERROR] = LONLY("Rlerror", f_rlerror),
    [P9_TSTATFS] = LONLY("Tstatfs", f_fid),
    [P9_RSTATFS] = LONLY("Rstatfs", f_rstatfs),
    [P9_TLOPEN] = LONLY("Tlopen", f_tlopen),
    [P9_RLOPEN] = LONLY("Rlopen", f_qidio),
    [P9_TLCREATE] = LONLY("Tlcreate", f_tlcreate),
    [P9_RLCREATE] = LONLY("Rlcreate", f_qidio),
    [P9_TSYMLINK] = LONLY("Tsymlink", f_tsymlink),
    [P9_RSYMLINK] = LONLY("Rsymlink", f_qid),
    [P9_TMKNOD] = LONLY("Tmknod", f_tmknod),
    [P9_RMKNOD] = LONLY("Rmknod", f_qid),
    [P9_TRENAME] = LONLY("Trename", f_trename),
    [P9_RRENAME] = LONLY("Rrename", f_none),
    [P9_TREADLINK] = LONLY("Treadlink", f_fid),
    [P9_RREADLINK] = LONLY("Rreadlink", f_rreadlink),
    [P9_TGETATTR] = LONLY("Tgetattr", f_tgetattr),
    [P9_RGETATTR] = LONLY("Rgetattr", f_rgetattr),
    [P9_TSETATTR] = LONLY("Tsetattr", f_tsetattr),
    [P9_RSETATTR] = LONLY("Rsetattr", f_none),
    [P9_TXATTRWALK] = LONLY("Txattrwalk", f_txattrwalk),
    [P9_RXATTRWALK] = LONLY("Rxattrwalk", f_rxattrwalk),
    [P9_TXATTRCREATE] = LONLY("Txattrcreate", f_txattrcreate),
    [P9_RXATTRCREATE] = LONLY("Rxattrcreate", f_none),
    [P9_TREADDIR] = LONLY("Treaddir", f_treaddir),
    [P9_RREADDIR] = LONLY("Rreaddir", f_data),
    [P9_TFSYNC] = LONLY("Tfsync", f_tfsync),
    [P9_RFSYNC] = LONLY("Rfsync", f_none),
    [P9_TLOCK] = LONLY("Tlock", f_tlock),
    [P9_RLOCK] = LONLY("Rlock", f_rlock),
    [P9_TGETLOCK] = LONLY("Tgetlock", f_tgetlock),
    [P9_RGETLOCK] = LONLY("Rgetlock", f_rgetlock),
    [P9_TLINK] = LONLY("Tlink", f_tlink),
    [P9_RLINK] = LONLY("Rlink", f_none),
    [P9_TMKDIR] = LONLY("Tmkdir", f_tmkdir),
    [P9_RMKDIR] = LONLY("Rmkdir", f_qid),
    [P9_TRENAMEAT] = LONLY("Trenameat", f_trenameat),
    [P9_RRENAMEAT] = LONLY("Rrenameat", f_none),
    [P9_TUNLINKAT] = LONLY("Tunlinkat", f_tunlinkat),
    [P9_RUNLINKAT] = LONLY("Runlinkat", f_none),
    [P9_TVERSION] = BOTH("Tversion", f_version),
    [P9_RVERSION] = BOTH("Rversion", f_version),
    [P9_TAUTH] = {"Tauth", f_tauth, f_tauth_l},
    [P9_RAUTH] = BOTH("Rauth", f_qid),
    [P9_TATTACH] = {"Tattach", f_tattach, f_tattach_l},
    [P9_RATTACH] = BOTH("Rattach", f_qid),
    [P9_TERROR] = {"Terror", NULL, NULL},
    [P9_RERROR] = CLASSIC("Rerror", f_rerror),
    [P9_TFLUSH] = BOTH("Tflush", f_tflush),
    [P9_RFLUSH] = BOTH("Rflush", f_none),
    [P9_TWALK] = BOTH("Twalk", f_twalk),
    [P9_RWALK] = BOTH("Rwalk", f_rwalk),
    [P9_TOPEN] = CLASSIC("Topen", f_topen),
    [P9_ROPEN] = CLASSIC("Ropen", f_qidio),
    [P9_TCREATE] = CLASSIC("Tcreate", f_tcreate),
    [P9_RCREATE] = CLASSIC("Rcreate", f_qidio),
    [P9_TREAD] = BOTH("Tread", f_tread),
    [P9_RREAD] = BOTH("Rread", f_data),
    [P9_TWRITE] = BOTH("Twrite", f_twrite),
    [P9_RWRITE] = BOTH("Rwrite", f_count),
    [P9_TCLUNK] = BOTH("Tclunk", f_fid),
    [P9_RCLUNK] = BOTH("Rclunk", f_none),
    [P9_TREMOVE] = BOTH("Tremove", f_fid),
    [P9_RREMOVE] = BOTH("Rremove", f_none),
    [P9_TSTAT] = CLASSIC("Tstat", f_fid),
    [P9_RSTAT] = CLASSIC("Rstat", f_rstat),
    [P9_TWSTAT] = CLASSIC("Twstat", f_twstat),
    [P9_RWSTAT] = CLASSIC("Rwstat", f_none),
};

const char *p9_msgname(unsigned type) {
  return type < 256 ? defs[type].name : NULL;
}

static const struct field *layout(unsigned type, p9_dialect d) {
  if (type >= 256)
    return NULL;
  return d == P9_2000L ? defs[type].fl : defs[type].f;
}

/* --- little-endian cursor --------------------------------------------- */

struct cur {
  uint8_t *p;       /* encode: write position */
  const uint8_t *r; /* decode: read position */
  size_t left;
  bool bad;
};

static void put(struct cur *c, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    *c->p++ = (uint8_t)(v >> (8 * i));
}

static uint64_t get(struct cur *c, int n) {
  uint64_t v = 0;
  if (c->left < (size_t)n) {
    c->bad = true;
    c->left = 0;
    return 0;
  }
  for (int i = 0; i < n; i++)
    v |= (uint64_t)c->r[i] << (8 * i);
  c->r += n;
  c->left -= n;
  return v;
}

static void put_str(struct cur *c, p9_str s) {
  put(c, s.len, 2);
  if (s.len)
    memcpy(c->p, s.s, s.len);
  c->p += s.len;
}

static p9_str get_str(struct cur *c) {
  p9_str s = {"", 0};
  uint16_t n = (uint16_t)get(c, 2);
  if (c->bad || n > c->left) {
    c->bad = true;
    return s;
  }
  s.s = (const char *)c->r;
  s.len = n;
  c->r += n;
  c->left -= n;
  return s;
}

static void put_qid(struct cur *c, const p9_qid *q) {
  put(c, q->type, 1);
  put(c, q->vers, 4);
  put(c, q->path, 8);
}

static void get_qid(struct cur *c, p9_qid *q) {
  q->type = (uint8_t)get(c, 1);
  q->vers = (uint32_t)get(c, 4);
  q->path = get(c, 8);
}

/* --- stat and dirent -------------------------------------------------- */

size_t p9_stat_size(const p9_stat *st) {
  return P9_STATFIXSZ + st->name.len + st->uid.len + st->gid.len + st->muid.len;
}

static void put_stat(struct cur *c, const p9_stat *st) {
  put(c, p9_stat_size(st) - 2, 2);
  put(c, st->type, 2);
  put(c, st->dev, 4);
  put_qid(c, &st->qid);
  put(c, st->mode, 4);
  put(c, st->atime, 4);
  put(c, st->mtime, 4);
  put(c, st->length, 8);
  put_str(c, st->name);
  put_str(c, st->uid);
  put_str(c, st->gid);
  put_str(c, st->muid);
}

/* Decodes one stat whose size[2] must account for exactly its bytes. */
static void get_stat(struct cur *c, p9_stat *st) {
  size_t n = (size_t)get(c, 2), before;
  if (c->bad || n > c->left) {
    c->bad = true;
    return;
  }
  before = c->left;
  st->type = (uint16_t)get(c, 2);
  st->dev = (uint32_t)get(c, 4);
  get_qid(c, &st->qid);
  st->mode = (uint32_t)get(c, 4);
  st->atime = (uint32_t)get(c, 4);
  st->mtime = (uint32_t)get(c, 4);
  st->length = get(c, 8);
  st->name = get_str(c);
  st->uid = get_str(c);
  st->gid = get_str(c);
  st->muid = get_str(c);
  if (before - c->left != n)
    c->bad = true;
}

long p9_stat_encode(const p9_stat *st, uint8_t *buf, size_t cap) {
  size_t n = p9_stat_size(st);
  struct cur c = {.p = buf};
  if (n > cap || n - 2 > 0xffff)
    return -EMSGSIZE;
  put_stat(&c, st);
  return (long)n;
}

long p9_stat_decode(const uint8_t *buf, size_t len, p9_stat *st) {
  struct cur c = {.r = buf, .left = len};
  get_stat(&c, st);
  return c.bad ? -EBADMSG : (long)(len - c.left);
}

void p9_stat_null(p9_stat *st) {
  memset(st, 0xff, sizeof(*st));
  st->name = st->uid = st->gid = st->muid = (p9_str){"", 0};
}

long p9_dirent_encode(const p9_dirent *de, uint8_t *buf, size_t cap) {
  size_t n = P9_QIDSZ + 8 + 1 + 2 + de->name.len;
  struct cur c = {.p = buf};
  if (n > cap)
    return -EMSGSIZE;
  put_qid(&c, &de->qid);
  put(&c, de->offset, 8);
  put(&c, de->type, 1);
  put_str(&c, de->name);
  return (long)n;
}

long p9_dirent_decode(const uint8_t *buf, size_t len, p9_dirent *de) {
  struct cur c = {.r = buf, .left = len};
  get_qid(&c, &de->qid);
  de->offset = get(&c, 8);
  de->type = (uint8_t)get(&c, 1);
  de->name = get_str(&c);
  return c.bad ? -EBADMSG : (long)(len - c.left);
}

/* --- the walker ------------------------------------------------------- */

#define AT(f, off, T) ((T *)((char *)(f) + (off)))
#define CAT(f, off, T) ((const T *)((const char *)(f) + (off)))

static long field_size(const struct field *fd, const p9_fcall *f) {
  switch (fd->kind) {
  case K_U8:
    return 1;
  case K_U16:
    return 2;
  case K_U32:
  case K_OPT32:
    return 4;
  case K_U64:
    return 8;
  case K_STR:
    return 2 + CAT(f, fd->off, p9_str)->len;
  case K_QID:
    return P9_QIDSZ;
  case K_DATA:
    return 4 + (long)f->count;
  case K_STAT:
    return 2 + (long)p9_stat_size(&f->stat);
  case K_WNAME: {
    long n = 2;
    if (f->nwname > P9_MAXWELEM)
      return -EPROTO;
    for (int i = 0; i < f->nwname; i++)
      n += 2 + f->wname[i].len;
    return n;
  }
  case K_WQID:
    if (f->nwqid > P9_MAXWELEM)
      return -EPROTO;
    return 2 + P9_QIDSZ * f->nwqid;
  }
  return -EPROTO;
}

long p9_fcall_size(const p9_fcall *f, p9_dialect d) {
  const struct field *fd = layout(f->type, d);
  long n = 7;
  if (!fd)
    return -EPROTO;
  for (; fd->kind != K_END; fd++) {
    long k = field_size(fd, f);
    if (k < 0)
      return k;
    n += k;
  }
  return n;
}

static void put_field(struct cur *c, const struct field *fd,
                      const p9_fcall *f) {
  switch (fd->kind) {
  case K_U8:
    put(c, *CAT(f, fd->off, uint8_t), 1);
    break;
  case K_U16:
    put(c, *CAT(f, fd->off, uint16_t), 2);
    break;
  case K_U32:
  case K_OPT32:
    put(c, *CAT(f, fd->off, uint32_t), 4);
    break;
  case K_U64:
    put(c, *CAT(f, fd->off, uint64_t), 8);
    break;
  case K_STR:
    put_str(c, *CAT(f, fd->off, p9_str));
    break;
  case K_QID:
    put_qid(c, CAT(f, fd->off, p9_qid));
    break;
  case K_DATA:
    put(c, f->count, 4);
    /* Zero-copy Rread: the op already wrote the data in place. */
    if (f->count && f->data != c->p)
      memmove(c->p, f->data, f->count);
    c->p += f->count;
    break;
  case K_STAT:
    put(c, p9_stat_size(&f->stat), 2);
    put_stat(c, &f->stat);
    break;
  case K_WNAME:
    put(c, f->nwname, 2);
    for (int i = 0; i < f->nwname; i++)
      put_str(c, f->wname[i]);
    break;
  case K_WQID:
    put(c, f->nwqid, 2);
    for (int i = 0; i < f->nwqid; i++)
      put_qid(c, &f->wqid[i]);
    break;
  }
}

long p9_encode(const p9_fcall *f, p9_dialect d, uint8_t *buf, size_t cap) {
  long n = p9_fcall_size(f, d);
  struct cur c = {.p = buf};
  const struct field *fd = layout(f->type, d);
  if (n < 0)
    return n;
  if ((size_t)n > cap)
    return -EMSGSIZE;
  put(&c, (uint64_t)n, 4);
  put(&c, f->type, 1);
  put(&c, f->tag, 2);
  for (; fd->kind != K_END; fd++)
    put_field(&c, fd, f);
  if (f->type == P9_TSETATTR) /* valid[4] travels in `flags`' slot */
    put(&(struct cur){.p = buf + 11}, f->attr.valid, 4);
  return n;
}

static void get_field(struct cur *c, const struct field *fd, p9_fcall *f) {
  switch (fd->kind) {
  case K_U8:
    *AT(f, fd->off, uint8_t) = (uint8_t)get(c, 1);
    break;
  case K_U16:
    *AT(f, fd->off, uint16_t) = (uint16_t)get(c, 2);
    break;
  case K_U32:
    *AT(f, fd->off, uint32_t) = (uint32_t)get(c, 4);
    break;
  case K_OPT32:
    if (c->left)
      *AT(f, fd->off, uint32_t) = (uint32_t)get(c, 4);
    break;
  case K_U64:
    *AT(f, fd->off, uint64_t) = get(c, 8);
    break;
  case K_STR:
    *AT(f, fd->off, p9_str) = get_str(c);
    break;
  case K_QID:
    get_qid(c, AT(f, fd->off, p9_qid));
    break;
  case K_DATA:
    f->count = (uint32_t)get(c, 4);
    if (c->bad || f->count > c->left) {
      c->bad = true;
      break;
    }
    f->data = c->r;
    c->r += f->count;
    c->left -= f->count;
    break;
  case K_STAT: {
    size_t n = (size_t)get(c, 2), before = c->left;
    if (c->bad || n > c->left) {
      c->bad = true;
      break;
    }
    get_stat(c, &f->stat);
    if (before - c->left != n)
      c->bad = true;
    break;
  }
  case K_WNAME:
    f->nwname = (uint16_t)get(c, 2);
    if (f->nwname > P9_MAXWELEM) {
      c->bad = true;
      break;
    }
    for (int i = 0; i < f->nwname && !c->bad; i++)
      f->wname[i] = get_str(c);
    break;
  case K_WQID:
    f->nwqid = (uint16_t)get(c, 2);
    if (f->nwqid > P9_MAXWELEM) {
      c->bad = true;
      break;
    }
    for (int i = 0; i < f->nwqid && !c->bad; i++)
      get_qid(c, &f->wqid[i]);
    break;
  }
}

int p9_decode(const uint8_t *buf, size_t len, p9_dialect d, p9_fcall *f) {
  struct cur c = {.r = buf, .left = len};
  const struct field *fd;
  memset(f, 0, sizeof(*f));
  if (len < 7 || get(&c, 4) != len)
    return -EBADMSG;
  f->type = (uint8_t)get(&c, 1);
  f->tag = (uint16_t)get(&c, 2);
  fd = layout(f->type, d);
  if (!fd)
    return -ENOSYS;
  for (; fd->kind != K_END && !c.bad; fd++)
    get_field(&c, fd, f);
  if (f->type == P9_TSETATTR) {
    f->attr.valid = f->flags;
    f->flags = 0;
  }
  return c.bad || c.left ? -EBADMSG : 0;
}

/* --- strings ---------------------------------------------------------- */

p9_str p9_str_c(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return (p9_str){s ? s : "", (uint16_t)(n > 0xffff ? 0xffff : n)};
}

int p9_str_eq(p9_str a, const char *s) {
  return strlen(s) == a.len && memcmp(a.s, s, a.len) == 0;
}

char *p9_str_dup(p9_str a) {
  char *s = xmalloc((size_t)a.len + 1);
  if (a.len)
    memcpy(s, a.s, a.len);
  s[a.len] = 0;
  return s;
}
