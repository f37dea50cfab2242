/*
 * uksim/9p.h: the 9P2000 and 9P2000.L protocol library (net9p).
 *
 * Four layers, each usable on its own:
 *
 *   codec      p9_fcall <-> wire bytes, bounds-checked (p9_encode/p9_decode)
 *   transport  moves whole messages (size[4] framing); the stream transport
 *              runs on a libuv loop over unix or TCP sockets, other
 *              transports (an ICA queue) plug in through p9_transport
 *   server     a table of callbacks (p9_srv_ops), like Plan 9's lib9p Srv:
 *              the library validates every request first and each request
 *              ends in exactly one p9_respond(), possibly later
 *   client     a blocking API (p9_client_*) and a libuv asynchronous API
 *              (p9_aclient_*)
 *
 * Conventions: functions return 0 or a negative errno; constructors return
 * NULL and put the error in an out-parameter.  Strings in messages are
 * counted (p9_str), never NUL-terminated on the wire.  See net9p/README.md.
 */
#ifndef UKSIM_9P_H
#define UKSIM_9P_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol constants. */
enum {
  P9_NOTAG = 0xffff,
  P9_NOFID = 0xffffffffu,
  P9_MAXWELEM = 16,   /* names in one Twalk (walk(5)) */
  P9_IOHDRSZ = 24,    /* room for a Tread/Twrite header: iounit = msize-24 */
  P9_MINMSIZE = 4096, /* smallest msize a server of ours accepts */
  P9_MAXMSIZE = 8u << 20,
  P9_DEFMSIZE = 1u << 20,
  P9_QIDSZ = 13,
  P9_STATFIXSZ = 49 /* a stat entry without its four strings' bytes */
};

typedef enum p9_dialect {
  P9_UNKNOWN = 0,
  P9_2000 = 1, /* "9P2000" (Plan 9) */
  P9_2000L = 2 /* "9P2000.L" (Linux v9fs, diod, QEMU) */
} p9_dialect;

/* Message types.  9P2000.L reuses the 9P2000 numbers >= 100. */
enum p9_msgtype {
  P9_TLERROR = 6,
  P9_RLERROR,
  P9_TSTATFS = 8,
  P9_RSTATFS,
  P9_TLOPEN = 12,
  P9_RLOPEN,
  P9_TLCREATE = 14,
  P9_RLCREATE,
  P9_TSYMLINK = 16,
  P9_RSYMLINK,
  P9_TMKNOD = 18,
  P9_RMKNOD,
  P9_TRENAME = 20,
  P9_RRENAME,
  P9_TREADLINK = 22,
  P9_RREADLINK,
  P9_TGETATTR = 24,
  P9_RGETATTR,
  P9_TSETATTR = 26,
  P9_RSETATTR,
  P9_TXATTRWALK = 30,
  P9_RXATTRWALK,
  P9_TXATTRCREATE = 32,
  P9_RXATTRCREATE,
  P9_TREADDIR = 40,
  P9_RREADDIR,
  P9_TFSYNC = 50,
  P9_RFSYNC,
  P9_TLOCK = 52,
  P9_RLOCK,
  P9_TGETLOCK = 54,
  P9_RGETLOCK,
  P9_TLINK = 70,
  P9_RLINK,
  P9_TMKDIR = 72,
  P9_RMKDIR,
  P9_TRENAMEAT = 74,
  P9_RRENAMEAT,
  P9_TUNLINKAT = 76,
  P9_RUNLINKAT,
  P9_TVERSION = 100,
  P9_RVERSION,
  P9_TAUTH = 102,
  P9_RAUTH,
  P9_TATTACH = 104,
  P9_RATTACH,
  P9_TERROR = 106,
  P9_RERROR,
  P9_TFLUSH = 108,
  P9_RFLUSH,
  P9_TWALK = 110,
  P9_RWALK,
  P9_TOPEN = 112,
  P9_ROPEN,
  P9_TCREATE = 114,
  P9_RCREATE,
  P9_TREAD = 116,
  P9_RREAD,
  P9_TWRITE = 118,
  P9_RWRITE,
  P9_TCLUNK = 120,
  P9_RCLUNK,
  P9_TREMOVE = 122,
  P9_RREMOVE,
  P9_TSTAT = 124,
  P9_RSTAT,
  P9_TWSTAT = 126,
  P9_RWSTAT
};

/* Open modes (open(5)) and qid types / permission bits (stat(5)). */
enum {
  P9_OREAD = 0,
  P9_OWRITE = 1,
  P9_ORDWR = 2,
  P9_OEXEC = 3,
  P9_OTRUNC = 0x10,
  P9_ORCLOSE = 0x40,
  P9_OEXCL = 0x1000,
  P9_ONONE = 0xff, /* fid not open (p9_fid.omode) */
  P9_QTDIR = 0x80,
  P9_QTAPPEND = 0x40,
  P9_QTEXCL = 0x20,
  P9_QTAUTH = 0x08,
  P9_QTFILE = 0x00
};
#define P9_DMDIR 0x80000000u
#define P9_DMAPPEND 0x40000000u
#define P9_DMEXCL 0x20000000u
#define P9_DMAUTH 0x08000000u

/* Tgetattr request_mask / Rgetattr valid bits (9P2000.L). */
#define P9_GETATTR_BASIC 0x7ffull
/* Tsetattr valid bits (9P2000.L). */
enum {
  P9_SETATTR_MODE = 0x1,
  P9_SETATTR_UID = 0x2,
  P9_SETATTR_GID = 0x4,
  P9_SETATTR_SIZE = 0x8,
  P9_SETATTR_ATIME = 0x10,
  P9_SETATTR_MTIME = 0x20,
  P9_SETATTR_CTIME = 0x40,
  P9_SETATTR_ATIME_SET = 0x80,
  P9_SETATTR_MTIME_SET = 0x100
};

/* A counted string; s need not be NUL-terminated. */
typedef struct p9_str {
  const char *s;
  uint16_t len;
} p9_str;

/* p9_str for a C string (which must be shorter than 64 KiB). */
p9_str p9_str_c(const char *s);
/* 1 if the counted string equals the C string. */
int p9_str_eq(p9_str a, const char *s);
/* A malloc'd NUL-terminated copy (aborts on out-of-memory). */
char *p9_str_dup(p9_str a);

typedef struct p9_qid {
  uint8_t type;
  uint32_t vers;
  uint64_t path;
} p9_qid;

/* A 9P2000 stat entry (stat(5)); ~0 fields mean "don't touch" in Twstat. */
typedef struct p9_stat {
  uint16_t type;
  uint32_t dev;
  p9_qid qid;
  uint32_t mode;
  uint32_t atime, mtime;
  uint64_t length;
  p9_str name, uid, gid, muid;
} p9_stat;

/* 9P2000.L attributes: Rgetattr uses every field, Tsetattr the first few
 * (valid, mode, uid, gid, size, atime, mtime). */
typedef struct p9_attr {
  uint64_t valid;
  p9_qid qid;
  uint32_t mode, uid, gid;
  uint64_t nlink, rdev, size, blksize, blocks;
  uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec;
  uint64_t ctime_sec, ctime_nsec, btime_sec, btime_nsec;
  uint64_t gen, data_version;
} p9_attr;

typedef struct p9_statfs {
  uint32_t type, bsize;
  uint64_t blocks, bfree, bavail, files, ffree, fsid;
  uint32_t namelen;
} p9_statfs;

/*
 * One message of either dialect, flat like Plan 9's Fcall: each message
 * type uses the fields its layout names (see p9_fcall_fmt for which).
 * After p9_decode, strings and data point into the decoded buffer.
 */
typedef struct p9_fcall {
  uint8_t type;
  uint16_t tag;
  uint32_t fid;
  uint32_t msize;      /* Tversion Rversion */
  p9_str version;      /* Tversion Rversion */
  uint16_t oldtag;     /* Tflush */
  p9_str ename;        /* Rerror */
  uint32_t ecode;      /* Rlerror (a Linux errno) */
  uint32_t afid;       /* Tauth Tattach */
  p9_str uname, aname; /* Tauth Tattach */
  uint32_t n_uname;    /* Tauth Tattach (9P2000.L numeric uid) */
  p9_qid qid;          /* Rauth Rattach Ropen Rcreate Rlopen Rlcreate ... */
  uint32_t iounit;     /* Ropen Rcreate Rlopen Rlcreate */
  uint32_t newfid;     /* Twalk Txattrwalk */
  uint16_t nwname;     /* Twalk */
  p9_str wname[P9_MAXWELEM];
  uint16_t nwqid; /* Rwalk */
  p9_qid wqid[P9_MAXWELEM];
  uint8_t mode;             /* Topen Tcreate: 9P2000 open mode */
  uint32_t perm;            /* Tcreate */
  p9_str name;              /* Tcreate Tlcreate Tmkdir Tunlinkat Tsymlink ... */
  uint64_t offset;          /* Tread Twrite Treaddir */
  uint32_t count;           /* Tread Rread Twrite Rwrite Treaddir Rreaddir */
  const uint8_t *data;      /* Rread Twrite Rreaddir */
  p9_stat stat;             /* Rstat Twstat */
  uint32_t flags;           /* Tlopen Tlcreate Tunlinkat Txattrcreate Tlock */
  uint32_t lmode;           /* Tlcreate Tmkdir Tmknod: Linux mode bits */
  uint32_t gid;             /* Tlcreate Tmkdir Tsymlink Tmknod */
  uint32_t dfid;            /* Tmkdir Tmknod Trename Tlink Trenameat(new dir) */
  p9_str symtgt;            /* Tsymlink Rreadlink */
  uint32_t major, minor;    /* Tmknod */
  p9_str newname;           /* Trenameat */
  uint64_t request_mask;    /* Tgetattr */
  p9_attr attr;             /* Rgetattr Tsetattr */
  p9_statfs statfs;         /* Rstatfs */
  uint64_t xsize;           /* Rxattrwalk Txattrcreate */
  uint32_t datasync;        /* Tfsync (optional on the wire) */
  uint8_t ltype;            /* Tlock Tgetlock Rgetlock */
  uint8_t lstatus;          /* Rlock */
  uint64_t lstart, llength; /* Tlock Tgetlock Rgetlock */
  uint32_t proc_id;         /* Tlock Tgetlock Rgetlock */
  p9_str client_id;         /* Tlock Tgetlock Rgetlock */
} p9_fcall;

/* --- codec ------------------------------------------------------------ */

/* Bytes p9_encode needs for f (size[4] included), or -EPROTO if the type
 * does not exist in the dialect or a field is out of range. */
long p9_fcall_size(const p9_fcall *f, p9_dialect d);
/* Encodes f with its size[4] into buf[0..cap); returns the length, or
 * -EMSGSIZE if it does not fit, or -EPROTO.  If f->data already points at
 * its place in buf, nothing is copied (zero-copy Rread). */
long p9_encode(const p9_fcall *f, p9_dialect d, uint8_t *buf, size_t cap);
/* Decodes one whole message buf[0..len) (size[4] included).  Returns 0, or
 * -EBADMSG if any length or count does not fit the message exactly, or
 * -ENOSYS for a type unknown in the dialect (f->type and f->tag are still
 * set when len >= 7). */
int p9_decode(const uint8_t *buf, size_t len, p9_dialect d, p9_fcall *f);
/* Name of a message type ("Twalk"), or NULL. */
const char *p9_msgname(unsigned type);
/* Offset in the encoded message where Rread/Rreaddir data starts. */
#define P9_RREAD_DATA_OFF 11u

/* Stat entries as stored in directory reads (size[2] included). */
size_t p9_stat_size(const p9_stat *st);
long p9_stat_encode(const p9_stat *st, uint8_t *buf, size_t cap);
/* Decodes one entry from buf[0..len); returns bytes consumed or -EBADMSG. */
long p9_stat_decode(const uint8_t *buf, size_t len, p9_stat *st);
/* A stat whose every field is "don't touch" (for Twstat). */
void p9_stat_null(p9_stat *st);

/* One 9P2000.L directory entry (Rreaddir data). */
typedef struct p9_dirent {
  p9_qid qid;
  uint64_t offset;
  uint8_t type;
  p9_str name;
} p9_dirent;
long p9_dirent_encode(const p9_dirent *de, uint8_t *buf, size_t cap);
long p9_dirent_decode(const uint8_t *buf, size_t len, p9_dirent *de);

/* Formats f on one line like Plan 9's %F ("Twalk tag 3 fid 1 newfid 2
 * nwname 1 0:x"); returns the length snprintf would. */
int p9_fcall_fmt(char *buf, size_t cap, const p9_fcall *f);

/* --- errors ----------------------------------------------------------- */

/* The one table of 9P error strings: errno -> text (for Rerror) and
 * text -> errno (for Rlerror and for clients reading Rerror).  Text maps
 * from Plan 9's spellings and from Linux's strerror texts, exactly, then
 * ignoring case, then by the longest known text it contains ("'x' file
 * does not exist"); unknown text is EIO, an unknown errno "i/o error". */
const char *p9_strerror(int err);
int p9_errno(p9_str ename);

/* --- addresses -------------------------------------------------------- */

/* A Plan 9 dial string: "tcp!HOST!PORT" (HOST may be "*" for every
 * interface; "localhost" and names resolve), or "unix!/path". */
typedef struct p9_addr {
  int is_unix;
  char host[256];
  char port[16];
  char path[108];
} p9_addr;
int p9_addr_parse(const char *s, p9_addr *a);
/* 1 if the address only reaches this host (unix, 127/8, ::1, localhost). */
int p9_addr_is_loopback(const p9_addr *a);

/* --- transports ------------------------------------------------------- */

typedef struct p9_transport p9_transport;

struct p9_transport_ops {
  /* Queues one whole message (size[4] included) for the peer; takes
   * ownership of buf, which the transport free()s. */
  int (*send)(p9_transport *t, uint8_t *buf, size_t len);
  /* Stops delivery and closes; `closed` runs once, maybe later. */
  void (*close)(p9_transport *t);
  /* Optional: queues one whole message gathered from iov[0..n) (n <= 4),
   * which the transport only borrows for the call: it copies whatever it
   * cannot hand to the peer at once.  When present the server sends every
   * answer through it, an Rread's data straight from where the op left
   * it. */
  int (*sendv)(p9_transport *t, const struct iovec *iov, int n);
  /* Optional, with sendv: where the bytes of the Rread answering the
   * Tread being delivered now (by recv) should go, count bytes the peer
   * will read in place (the ICA transport's data ICA), or NULL for the
   * library's buffer.  A file's read op that fills r->buf then reads
   * straight there, and sendv is handed the bytes where they are. */
  uint8_t *(*rbuf)(p9_transport *t, size_t count);
};

struct p9_transport {
  /* public: set by the transport */
  const struct p9_transport_ops *ops;
  char peer[64]; /* for logs: "tcp!1.2.3.4!5" or "unix" */
  /* public: set by the upper layer (server connection or client) */
  void (*recv)(p9_transport *t, const uint8_t *msg, size_t len);
  void (*closed)(p9_transport *t, int err);
  void *upper;
  uint32_t max_msg; /* messages larger than this close the transport */
};

/* Starts the stream transport on an accepted or connected libuv stream
 * (uv_tcp_t or uv_pipe_t allocated with malloc, already initialised; the
 * transport owns and frees it). */
p9_transport *p9_stream_new(uv_stream_t *s, int *err);

/* --- server ----------------------------------------------------------- */

typedef struct p9_srv p9_srv;
typedef struct p9_conn p9_conn;
typedef struct p9_req p9_req;

/*
 * A fid as the server sees it.  The table holding these is an array
 * addressed by index (p9_fid never points anywhere), so it can later live
 * in a state ICA.  Ops may keep their own state in `aux` (an index or a
 * handle, never a pointer if the table is to survive replacement).
 */
typedef struct p9_fid {
  /* public */
  uint32_t num;      /* the client's fid number */
  p9_qid qid;        /* current file */
  uint8_t omode;     /* P9_ONONE, or the 9P2000 mode it was opened with */
  uint64_t aux;      /* server's handle for the file */
  uint32_t uid;      /* server's handle for the attaching user: the attach
                        op sets it, a walk's newfid inherits it */
  uint64_t dirindex; /* next directory entry the read op returns */
  /* private */
  uint64_t diroffset;
  uint32_t ref, next, flags, idx;
} p9_fid;

/*
 * The ops table.  Every op receives a validated request and must end it
 * with exactly one p9_respond*(r), now or later.  Missing ops get these
 * defaults: attach -> "operation not supported"; walk with no names clones
 * without calling the op; open/lopen -> success; create/lcreate/mkdir ->
 * "create prohibited"; remove/unlinkat -> "remove prohibited"; wstat/
 * setattr -> "wstat prohibited"; read, write, stat, renameat, symlink,
 * readlink, mknod, link, rename -> "operation not supported"; fsync ->
 * success; statfs -> zeros with namelen 255; lock -> success; getlock ->
 * unlocked; xattrwalk/xattrcreate -> always "operation not supported".
 *
 * 9P2000.L messages that have a 9P2000 equivalent are translated onto the
 * same op: Tlopen -> open (ifcall.mode set), Tlcreate -> create (ifcall.perm
 * and mode set), Tgetattr -> stat, Tsetattr -> wstat (ifcall.stat with
 * untouched fields ~0), Treaddir -> read on a directory (the library turns
 * the stat entries into dirents).
 */
struct p9_srv_ops {
  /* Fill ofcall.qid; set r->fid->aux (and r->fid->uid for the user, if
   * the server tells users apart).  r->afid is the proven auth fid. */
  void (*attach)(p9_req *r);
  /* Walk r->fid through ifcall.wname[0..nwname); fill ofcall.nwqid/wqid
   * and, only if every name was walked, r->newaux (aux for newfid). */
  void (*walk)(p9_req *r);
  /* Open r->fid with ifcall.mode; fill ofcall.qid (and iounit if not
   * msize-24).  OTRUNC handling belongs to the op. */
  void (*open)(p9_req *r);
  /* Create ifcall.name in directory r->fid with ifcall.perm and open it
   * with ifcall.mode; fill ofcall.qid and set r->fid->aux to the new file. */
  void (*create)(p9_req *r);
  /* Read ifcall.count bytes at ifcall.offset into r->buf (room for
   * ifcall.count bytes) and set ofcall.count.  A file's read may instead
   * point ofcall.data at the bytes where they live, valid until
   * p9_respond returns (the library sends them without copying).
   * Directories: put whole entries with p9_dirread_put from
   * r->fid->dirindex on (the library checks offsets). */
  void (*read)(p9_req *r);
  /* Write ifcall.data; set ofcall.count. */
  void (*write)(p9_req *r);
  /* Remove r->fid's file; the library clunks the fid whatever happens.
   * Also called for Tclunk of a fid opened with ORCLOSE. */
  void (*remove)(p9_req *r);
  /* Fill ofcall.stat (strings must stay valid until p9_respond). */
  void (*stat)(p9_req *r);
  /* Apply ifcall.stat (fields equal to ~0 or empty names: unchanged). */
  void (*wstat)(p9_req *r);
  /* r->oldreq is pending and being flushed: make it respond soon.  The
   * library sends Rflush after oldreq's response. */
  void (*flush)(p9_req *r);
  /* A fid's last reference is gone (clunk, remove, connection close). */
  void (*destroyfid)(p9_srv *srv, p9_fid *fid);
  /* Optional: the aux for a new fid a walk of no names copied from fid
   * (which is not open).  Without it the copy shares fid's aux, which
   * suits an aux that names a file; a server whose aux is a handle each
   * fid owns (and destroyfid frees) gives the copy a handle of its own. */
  uint64_t (*clonefid)(p9_srv *srv, const p9_fid *fid);
  /* 9P2000.L-only operations (see the message layouts in p9_fcall). */
  void (*mkdir)(p9_req *r);    /* ifcall.name in dir r->dfid; fill qid */
  void (*unlinkat)(p9_req *r); /* ifcall.name in dir r->fid */
  void (*renameat)(p9_req *r); /* r->fid/name -> r->dfid/newname */
  void (*rename)(p9_req *r);   /* r->fid -> r->dfid/name */
  void (*symlink)(p9_req *r);
  void (*readlink)(p9_req *r);
  void (*mknod)(p9_req *r);
  void (*link)(p9_req *r);
  void (*statfs)(p9_req *r);
  void (*fsync)(p9_req *r);
  void (*lock)(p9_req *r);
  void (*getlock)(p9_req *r);
};

struct p9_req {
  /* public */
  p9_fcall ifcall; /* the request (strings valid until p9_respond) */
  p9_fcall ofcall; /* the response being built by the op */
  p9_fid *fid;     /* ifcall.fid (Tattach: the new fid) */
  p9_fid *newfid;  /* Twalk newfid (== fid when they are equal) */
  p9_fid *afid;    /* Tattach: the authenticated afid, or NULL */
  p9_fid *dfid;    /* ifcall.dfid when the message has one */
  p9_req *oldreq;  /* Tflush: the request being flushed */
  uint8_t *buf;    /* Tread/Treaddir: where the op puts the data */
  uint64_t newaux; /* Twalk: aux for newfid after a full walk */
  p9_srv *srv;
  p9_conn *conn;
  void *aux; /* free for the op */
  /* private: see net9p/srv.c */
  struct p9__req_priv *priv;
};

/* p9_respond: ends r, now or later (an op may keep r and respond from a
 * callback).  err is 0 (send r->ofcall) or a negative errno (sent as
 * Rerror text from the one error table, or as Rlerror).  Every request
 * ends in exactly one p9_respond or p9_respond_error.  No errors.
 * Example (an op of a file server, memfs-like):
 *   static void fs_stat(p9_req *r) {
 *     struct file *f = (struct file *)r->fid->aux;
 *     if (f == NULL) {
 *       p9_respond(r, -ENOENT);
 *       return;
 *     }
 *     file_stat(f, &r->ofcall.stat);
 *     p9_respond(r, 0);
 *   } */
void p9_respond(p9_req *r, int err);
/* p9_respond_error: ends r with a Plan 9 error string (errno for
 * 9P2000.L via p9_errno); NULL is "i/o error", never success.  No errors.
 * Example:
 *   p9_respond_error(r, "file is read-only"); */
void p9_respond_error(p9_req *r, const char *ename);
/* p9_dirread_put: appends one stat entry to a directory read and
 * advances r->fid->dirindex.
 * Errors: -ENOSPC (it does not fit: the read ends there, the entry comes
 * first in the next one).
 * Example (the read op on a directory):
 *   for (uint64_t i = r->fid->dirindex; i < dir->n; i++)
 *     if (p9_dirread_put(r, &dir->entry[i].stat) < 0)
 *       break;
 *   p9_respond(r, 0); */
int p9_dirread_put(p9_req *r, const p9_stat *st);

typedef struct p9_srv_config {
  uint32_t msize;     /* largest msize offered; 0: P9_DEFMSIZE */
  uint32_t max_fids;  /* per connection; 0: 4096 */
  uint32_t max_tags;  /* outstanding requests per connection; 0: 256 */
  const uint8_t *key; /* 32-byte shared key: attach needs a proven afid */
  FILE *log;          /* refusals and errors; NULL: stderr */
  int trace;          /* print every message to log (p9_fcall_fmt) */
  /* After answering a loopback TCP client that sent from another cpu,
   * poll this long for its next request, and send large answers in two
   * writes (net9p/stream.c says why): 0 means 100 us; negative, never. */
  int poll_us;
  /* Limits against hostile clients (net9p/README.md, "Limits").
   * Connections served at once, counting closed ones whose requests are
   * still running; p9_srv_serve refuses one more: 0 means 64. */
  uint32_t max_conns;
  /* A frame whose first bytes arrived must be whole this many ms later,
   * or its connection is closed (an idle connection between frames is
   * never closed): 0 means 10000; negative, never. */
  int frame_timeout_ms;
  /* Bytes the stream transport's frame buffers may hold, all connections
   * together; a connection whose frame needs more is closed: 0 means
   * 64 MiB. */
  size_t max_buffered;
} p9_srv_config;

/* What the limits did, for tests and operators. */
typedef struct p9_srv_stats {
  unsigned conns;     /* live now (p9_srv_nconns) */
  uint64_t refused;   /* connections beyond max_conns, closed at once */
  uint64_t oversize;  /* closed: a frame larger than msize (or, before
                         Tversion, than P9_MINMSIZE) */
  uint64_t timed_out; /* closed: a frame not whole within frame_timeout_ms */
  uint64_t no_buffer; /* closed: frame buffers at max_buffered */
  size_t buffered;    /* bytes in the frame buffers now */
} p9_srv_stats;

/* p9_srv_new: creates a server over the ops table (ops and aux are
 * borrowed and must outlive it); cfg may be NULL for every default.
 * Errors (in *err, NULL returned): -EINVAL (cfg->msize outside
 * P9_MINMSIZE..P9_MAXMSIZE), -EIO (libsodium, for authentication, failed
 * to start).
 * Example (servers/ramfs.c through servers/p9host.c):
 *   int err;
 *   p9_srv *srv = p9_srv_new(p9_memfs_ops(), fs, NULL, &err);
 *   if (srv == NULL)
 *     fprintf(stderr, "ramfs: %s\n", strerror(-err));
 * p9_srv_free: frees the server; call after every connection and listener
 * closed.  p9_srv_aux: the aux given to p9_srv_new (an op reaches it as
 * p9_srv_aux(r->srv)).  No errors. */
p9_srv *p9_srv_new(const struct p9_srv_ops *ops, void *aux,
                   const p9_srv_config *cfg, int *err);
void p9_srv_free(p9_srv *srv);
void *p9_srv_aux(p9_srv *srv);
/* p9_srv_serve: serves one connection over t (any transport).  The
 * connection lives until the transport closes and every pending request
 * has responded.
 * Errors: -EMFILE (max_conns connections are live: t is then not served,
 * no upcall is set, and the caller closes it).
 * Example (a stream accepted on a libuv loop):
 *   p9_transport *t = p9_stream_new((uv_stream_t *)client, &err);
 *   if (t && p9_srv_serve(srv, t) < 0)
 *     t->ops->close(t); */
int p9_srv_serve(p9_srv *srv, p9_transport *t);
/* Closes every connection's transport (for shutdown); each connection
 * is freed once its pending requests have responded. */
void p9_srv_close_conns(p9_srv *srv);
/* Number of live connections (for tests and clean shutdown). */
unsigned p9_srv_nconns(p9_srv *srv);
/* The limits' counters so far. */
void p9_srv_read_stats(p9_srv *srv, p9_srv_stats *st);

/*
 * Sessions as server state.  A server that must keep its clients' open
 * fids across its own replacement or restart (servers/ramfs.c) reads a
 * connection's session out, keeps it, and puts it back into a fresh
 * connection of its successor.  Auth fids are not part of a session: a
 * restored client attaches with the fids it had.
 */
typedef struct p9_session_fid {
  uint32_t num;
  p9_qid qid;
  uint8_t omode;
  uint64_t aux, dirindex, diroffset;
  uint32_t uid;
} p9_session_fid;

typedef struct p9_session {
  p9_dialect dialect; /* P9_UNKNOWN: no Tversion yet (no fids then) */
  uint32_t msize;
  uint32_t nfid;
  p9_session_fid *fid; /* p9_srv_session_get: malloc'd, the caller frees */
} p9_session;

/* The session of the connection p9_srv_serve started on t. */
int p9_srv_session_get(p9_transport *t, p9_session *s);
/* Puts a session into the connection on t, which must be fresh (no
 * message yet): -EINVAL for a dialect or msize the server would not have
 * agreed to, -EBADF for a fid number twice or NOFID, -ENFILE beyond
 * max_fids; the connection is left fresh then. */
int p9_srv_session_set(p9_transport *t, const p9_session *s);
/* One live fid of the connection on t, or -EBADF. */
int p9_srv_session_fid(p9_transport *t, uint32_t num, p9_session_fid *out);

typedef struct p9_listener p9_listener;
/* p9_listen: listens on a dial address with the stream transport and
 * serves every connection (p9_srv_serve).  For unix sockets the parent
 * directory must be 0700 (it is created if missing).  "tcp!127.0.0.1!0"
 * picks a free port: see p9_listener_addr.
 * Errors (in *err, NULL returned): -EPERM (a non-loopback address and no
 * key), -EINVAL (not a dial address), and bind/listen's own.
 * Example:
 *   p9_listener *l = p9_listen(srv, uv_default_loop(), "tcp!127.0.0.1!0",
 *                              &err);
 *   if (l)
 *     printf("serving on %s\n", p9_listener_addr(l)); */
p9_listener *p9_listen(p9_srv *srv, uv_loop_t *loop, const char *addr,
                       int *err);
/* The bound address in dial form. */
const char *p9_listener_addr(p9_listener *l);
/* Stops listening; existing connections go on. */
void p9_listener_close(p9_listener *l);

/* --- the ICA transport ---------------------------------------------- */

/*
 * The ICA transport (uksim/p9ica.h): one 9P session of one client of a
 * uksim OS server, whose requests carry a T-message in a control ICA and
 * bulk Twrite/Rread data in an optional data ICA.  It knows nothing of the
 * kernel: the server takes a request (srv_receive) and passes the ICAs'
 * mappings to p9_icat_call, which hands the message to the server library
 * and returns once the answer is in place.  An op that answers later runs
 * on `loop` (p9_icat_new), which the call runs until it has.
 *
 * The session's library msize is the server's (p9_srv_config.msize):
 * frames in the control ICA are bounded by its size, and bulk counts by the
 * data ICA and that msize.  The Rversion tells the client the smaller of
 * its own msize and the server's.
 */
typedef struct p9_icat p9_icat;
/* A transport served by srv (p9_srv_serve), answering asynchronous ops
 * on loop (may be NULL when every op answers at once). */
p9_icat *p9_icat_new(p9_srv *srv, uv_loop_t *loop, int *err);
/* Closes the session (the library clunks its fids) and frees t. */
void p9_icat_free(p9_icat *t);
/* The transport, for p9_srv_session_get/set. */
p9_transport *p9_icat_transport(p9_icat *t);
/* Serves one request: ctl[0..ctl_size) holds the T-message, data the bulk
 * bytes (NULL: no data ICA).  Returns 0 with the R-message (maybe an
 * Rerror) at ctl[0] and an Rread's bytes in data, or -EPROTO (no
 * well-formed T-message, a Twrite's bulk count beyond the data ICA or with
 * no data ICA), -EMSGSIZE (the answer does not fit the control ICA), -EIO
 * (the op never answered). */
int p9_icat_call(p9_icat *t, uint8_t *ctl, size_t ctl_size, uint8_t *data,
                 size_t data_size);
/* Answers the transport dropped: to a request that already had one, or
 * sent after p9_icat_call returned (an op answering a flushed request). */
uint64_t p9_icat_dropped(const p9_icat *t);

/* --- in-memory file tree ---------------------------------------------- */

/* A server-side tree kept in memory (what `uksim 9p serve` exports). */
typedef struct p9_memfs p9_memfs;
p9_memfs *p9_memfs_new(void);
void p9_memfs_free(p9_memfs *fs);
const struct p9_srv_ops *p9_memfs_ops(void);
/* Caps the bytes all files may hold (0: no cap); writes beyond get
 * "no space left on device". */
void p9_memfs_set_limit(p9_memfs *fs, uint64_t bytes);
/* Creates or replaces a file (parents must exist), or a directory when
 * data is NULL and len is (size_t)-1.  For tests and preloading. */
int p9_memfs_put(p9_memfs *fs, const char *path, const void *data, size_t len);

/*
 * The tree as an image, for a server that keeps it across its own
 * replacement (servers/ramfs.c).  Slot i is node i: a fid's aux names a
 * slot and its generation, so an image keeps every slot, free ones too,
 * and the links between them as they are (directory order included).
 * Slot 0 is the root.  Strings and data are borrowed from the tree (get)
 * or from the caller (load), which copies them.
 */
typedef struct p9_memfs_slot {
  bool used;
  uint32_t gen;
  uint32_t parent, child, sibling; /* slot indices; 0xffffffff: none */
  const char *name;
  uint32_t mode, uid, gid, muid; /* uid, gid, muid: indices into user[] */
  uint32_t nopen;                /* fids open on it */
  p9_qid qid;
  const uint8_t *data;
  uint64_t len;
  uint32_t atime, mtime;
} p9_memfs_slot;

typedef struct p9_memfs_image {
  uint32_t nuser;
  const char **user; /* user[0] is the tree's own user */
  uint32_t nslot;
  p9_memfs_slot *slot;
  uint64_t nextpath; /* the next qid.path a new file gets */
  uint64_t limit;    /* p9_memfs_set_limit */
} p9_memfs_image;

/* Describes fs in img (arrays malloc'd, freed by p9_memfs_image_free;
 * strings and data stay fs's until it changes). */
void p9_memfs_image_get(p9_memfs *fs, p9_memfs_image *img);
void p9_memfs_image_free(p9_memfs_image *img);
/* A tree rebuilt from img, or NULL with -EINVAL when img is not one
 * (a link out of range or to a free slot, a node reached twice or never,
 * a file with children, a user index out of range, a bad name). */
p9_memfs *p9_memfs_load(const p9_memfs_image *img, int *err);

/* --- a host directory ------------------------------------------------- */

/* A host directory served as it is (net9p/hostfs.c; `uksim 9p serve
 * --dir`, servers/hostfs): no path leaves it ('..' stops at it, symbolic
 * links are neither followed nor listed), files are accessed with the
 * server process's own permissions. */
typedef struct p9_hostfs p9_hostfs;
/* Serves dir (a directory that exists), or NULL with -errno. */
p9_hostfs *p9_hostfs_new(const char *dir, int *err);
void p9_hostfs_free(p9_hostfs *fs);
const struct p9_srv_ops *p9_hostfs_ops(void);
const char *p9_hostfs_dir(const p9_hostfs *fs);

/* Its fids' handles as an image (slot i is handle i, the fid's aux names
 * it), for a server that keeps them across its own replacement: a path
 * relative to the directory and the mode its fid opened it with. */
typedef struct p9_hostfs_handle {
  bool used;
  uint32_t gen;
  const char *path;
  uint8_t omode; /* P9_ONONE: not open */
} p9_hostfs_handle;

typedef struct p9_hostfs_image {
  uint32_t nhandle;
  p9_hostfs_handle *handle;
} p9_hostfs_image;

void p9_hostfs_image_get(p9_hostfs *fs, p9_hostfs_image *img);
void p9_hostfs_image_free(p9_hostfs_image *img);
/* Serves dir with img's handles, each open one opened again as its fid
 * had it (without truncating; a file gone since reads as removed);
 * -EINVAL for a path with an empty, "." or ".." name. */
p9_hostfs *p9_hostfs_load(const char *dir, const p9_hostfs_image *img,
                          int *err);

/* --- keys ------------------------------------------------------------- */

enum { P9_KEYLEN = 32, P9_CHALLEN = 32, P9_MACLEN = 32 };
/* Reads a key file; the key is the BLAKE2b-256 hash of its contents. */
int p9_key_load(const char *path, uint8_t key[P9_KEYLEN]);
/* The response to an auth challenge: a MAC (crypto_auth) of
 * challenge || uname || 0 || aname under key. */
void p9_auth_mac(const uint8_t key[P9_KEYLEN], const uint8_t *chal,
                 p9_str uname, p9_str aname, uint8_t mac[P9_MACLEN]);

/* --- blocking client -------------------------------------------------- */

typedef struct p9_client p9_client;
typedef struct p9_cfid p9_cfid;

/* Client-side fid: public fields may be read. */
struct p9_cfid {
  p9_client *c;
  uint32_t fid;
  p9_qid qid;
  uint32_t iounit;
  uint8_t omode; /* P9_ONONE until opened */
};

/* A directory entry or stat, the same for both dialects. */
typedef struct p9_dir {
  char name[256];
  p9_qid qid;
  uint32_t mode; /* 9P2000 mode: permission bits | P9_DMDIR ... */
  uint64_t length;
  uint32_t mtime;
} p9_dir;

/* Dials addr, negotiates version (offering `version`, e.g. "9P2000.L";
 * NULL means 9P2000.L) and msize.  Blocking sockets, TCP_NODELAY. */
p9_client *p9_client_dial(const char *addr, uint32_t msize, const char *version,
                          int *err);
/* The same over a stream someone else connected (and perhaps
 * authenticated, as a Plan 9 cpu connection is before its 9P begins); the
 * client owns fd from then on, and closes it even when this fails. */
p9_client *p9_client_fdopen(int fd, uint32_t msize, const char *version,
                            int *err);
/* Closes the connection and frees the client (fids become invalid). */
void p9_client_close(p9_client *c);
p9_dialect p9_client_dialect(p9_client *c);
uint32_t p9_client_msize(p9_client *c);
/* The last Rerror text (or strerror of the Rlerror code). */
const char *p9_client_errstr(p9_client *c);

/* Attaches; with key non-NULL, first proves it through Tauth/afid. */
p9_cfid *p9_attach(p9_client *c, const char *uname, const char *aname,
                   const uint8_t *key, int *err);
/* Walks a slash-separated path (any number of names; "" clones). */
p9_cfid *p9_walk(p9_cfid *f, const char *path, int *err);
/* Opens with a 9P2000 mode (Tlopen with converted flags on 9P2000.L). */
int p9_open(p9_cfid *f, uint8_t mode);
/* Creates name in directory f; f becomes the new open file. */
int p9_create(p9_cfid *f, const char *name, uint32_t perm, uint8_t mode);
/* Creates a directory (Tcreate DMDIR + clunk, or Tmkdir). */
int p9_mkdir(p9_cfid *dir, const char *name, uint32_t perm);
/* Reads/writes up to n bytes at off, split by msize; returns bytes or
 * a negative errno.  A read returns less only at end of file. */
long p9_pread(p9_cfid *f, void *buf, size_t n, uint64_t off);
long p9_pwrite(p9_cfid *f, const void *buf, size_t n, uint64_t off);
/* Lists an open directory: calls fn for every entry, in order. */
int p9_readdir(p9_cfid *f, int (*fn)(const p9_dir *d, void *arg), void *arg);
int p9_fstat(p9_cfid *f, p9_dir *d);
/* Changes length (if != ~0) and/or mode (if != ~0). */
int p9_fwstat(p9_cfid *f, uint64_t length, uint32_t mode);
/* Clunks and frees f (even on error). */
int p9_clunk(p9_cfid *f);
/* Removes f's file and frees f (even on error). */
int p9_remove(p9_cfid *f);
/* Sends one raw request and waits for its answer (for tests and tools):
 * rx strings point into the client's buffer until the next call.
 * Returns 0, or the negative errno of an Rerror/Rlerror. */
int p9_client_rpc(p9_client *c, p9_fcall *tx, p9_fcall *rx);

/* --- asynchronous client (libuv) -------------------------------------- */

typedef struct p9_aclient p9_aclient;
typedef void (*p9_aclient_cb)(p9_aclient *c, int err, const p9_fcall *rx,
                              void *arg);
/* Dials addr on loop and negotiates the version; cb runs once with
 * rx = the Rversion (or err < 0 and c NULL). */
int p9_aclient_connect(uv_loop_t *loop, const char *addr, uint32_t msize,
                       const char *version, p9_aclient_cb cb, void *arg);
/* Sends tx (its tag is assigned); cb runs once with the answer (err is
 * the negative errno of an Rerror/Rlerror, -EPROTO for an answer of the
 * wrong type), or with rx NULL and -ECONNRESET when the connection died
 * (-ECANCELED after p9_aclient_close).  rx NULL tells the connection's
 * end from a server that answered ECONNRESET.  Any number of requests
 * may be outstanding. */
int p9_aclient_rpc(p9_aclient *c, p9_fcall *tx, p9_aclient_cb cb, void *arg);
/* A fid number not in use on this connection, and its release. */
uint32_t p9_aclient_fid(p9_aclient *c);
void p9_aclient_fid_put(p9_aclient *c, uint32_t fid);
p9_dialect p9_aclient_dialect(p9_aclient *c);
uint32_t p9_aclient_msize(p9_aclient *c);
/* Closes; outstanding callbacks run with -ECANCELED, then done (if not
 * NULL) runs and c is freed. */
void p9_aclient_close(p9_aclient *c, void (*done)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
