/* The kernel ABI: what crosses a process's one SOCK_SEQPACKET connection to
 * its kernel.
 *
 * A message is one packet: a fixed 24-byte little-endian header, a payload
 * whose shape depends on the op, and up to KABI_MAX_FDS file descriptors
 * passed with SCM_RIGHTS (ICA memfds travelling to their new holder).
 *
 * Every call from a process gets exactly one answer from the kernel, carrying
 * the call's sequence number.  Answers to RECEIVE, AWAIT and CALL may come
 * much later (the kernel defers them until a request or a result exists);
 * while a process waits, it sends nothing else, so a process has at most one
 * call outstanding.  The answer's status is 0 or a negative errno.
 *
 * ICAs are named by id (index in the ICA table plus a generation, so a stale
 * id is refused).  A process names only ICAs it holds; the kernel refuses any
 * other id with -EPERM and changes nothing.  Passing an ICA moves it: the
 * sender's library unmaps it, the receiver's maps it; contents never copied.
 *
 * A sender may instead keep its mapping idle (KABI_KEEP_CTL/KABI_KEEP_DATA
 * in the call's hdr.flags): the kernel records that, per ICA and process,
 * and when that very ICA (same id, so same generation) comes back to the
 * process it sends no descriptor, only the reference marked KABI_REF_MAPPED.
 * The record is dropped when the ICA is freed, when the process passes it on
 * without keeping it, and when the process ends, so a process is never told
 * to use a mapping of anything but the ICA it now holds.  A library that no
 * longer has the mapping asks for the descriptor with ICA_ATTACH.
 *
 * The hot path is this fixed binary format.  Everything that crosses a
 * version or host boundary (control, state images, traces) is protobuf-c.
 */
#ifndef UKSIM_KABI_H
#define UKSIM_KABI_H

#include <stdint.h>

#define KABI_VERSION 2
#define KABI_MAGIC 0x554b    /* "UK" */
#define KABI_MAX_FDS 2       /* a control ICA and a data ICA */
#define KABI_MAX_MSG 512     /* header + the largest payload */
#define KABI_NAME_MAX 32     /* service and process names, with NUL */
#define KABI_OPNAMES_MAX 200 /* comma-separated op names given to register */

/* An ICA id: low 16 bits index the ICA table, high 16 bits a generation. */
#define KABI_ICA_NONE 0u
#define KABI_ICA_INDEX(id) ((id)&0xffffu)
#define KABI_ICA_GEN(id) ((id) >> 16)
#define KABI_ICA_ID(index, gen) (((uint32_t)(gen) << 16) | (index))

enum kabi_op {
  KABI_ICA_CREATE = 1, /* ica_create_args -> ica_ans + fd */
  KABI_ICA_RELEASE,    /* ica_args -> - */
  KABI_LOOKUP,         /* lookup_args -> lookup_ans */
  KABI_SEND,           /* send_args -> send_ans: request queued */
  KABI_AWAIT,          /* await_args -> result (deferred) */
  KABI_CALL,           /* send_args -> result (SEND then AWAIT that one) */
  KABI_REGISTER,       /* register_args -> register_ans */
  KABI_RECEIVE,        /* - -> request (deferred) */
  KABI_REPLY,          /* reply_args -> - */
  KABI_REPLY_RECEIVE,  /* reply_args -> request (deferred): one round trip */
  KABI_PANIC,          /* panic_args -> - (the kernel then ends the server) */
  KABI_STATE_REGISTER, /* ica_args -> -: the service's state ICA (frees the
                          previous one); while preparing a hand-off, the
                          ICA the successor gets instead (see prepare_msg) */
  KABI_STATE_GET,      /* - -> ica_ans + fd (deferred while the old server
                          of a replacement is still handing over) */
  KABI_ICA_ATTACH,     /* ica_args -> ica_ans + fd: an ICA held, or held by
                          the server being replaced */
  KABI_KEEP,           /* keep_args -> -: the server keeps the request in
                          its state; if it fails, its successor gets it */
  KABI_SLEEP,          /* sleep_args -> - (deferred): the kernel's clock,
                          virtual under the lock-step scheduler */
  KABI_NS,             /* ns_args -> ns_ans (deferred while a servant or a
                          mounted server makes it wait): the namespace
                          calls of seed 002, below */
  KABI_REPLAY_DONE,    /* replay_done_args -> -: this process has replayed
                          its journal after a KABI_ANS_REPLAY (kernel
                          update method B, sim-kernel/kreplay.c) */
  KABI_REPLY_MANY_RECEIVE, /* reply_many_args -> up to KABI_BATCH_MAX
                              requests (deferred): see reply_many_args */
  KABI_OP_MAX
};

/* Answers the kernel sends that are not a plain status. */
enum kabi_ans {
  KABI_ANS_STATUS = 0x100, /* header only */
  KABI_ANS_ICA,            /* ica_ans (+ fd) */
  KABI_ANS_LOOKUP,
  KABI_ANS_SEND,
  KABI_ANS_RESULT,  /* result_msg (+ fds) */
  KABI_ANS_REQUEST, /* request_msg (+ fds) */
  KABI_ANS_REGISTER,
  KABI_ANS_PREPARE, /* prepare_msg: to RECEIVE of a server being replaced */
  KABI_ANS_NS,      /* ns_ans */
  /* Header only: send the same call again.  A kernel that took the
   * process over from a dead one (Orthros failover, seed 001 §2.6) found
   * this call read and not finished, with nothing of it done yet; the
   * library resends it, so the program never sees it. */
  KABI_ANS_RESTART,
  /* Header only: this kernel took the process over by replay (kernel
   * update method B, sim-kernel/kreplay.c) and has not run the call.  The
   * library replays its journal (uksim/journal.h) against this kernel,
   * says so with KABI_REPLAY_DONE, then sends the call again. */
  KABI_ANS_REPLAY,
};

/* How register() answers a server (seed 000 §5.2). */
enum kabi_reg_how {
  KABI_REG_FRESH = 0,  /* first server of this service */
  KABI_REG_REPLACING,  /* taking over from a live server (extension time) */
  KABI_REG_RESTARTING, /* taking over after a fault */
};

struct kabi_hdr {
  uint16_t magic; /* KABI_MAGIC */
  uint16_t op;    /* enum kabi_op, or enum kabi_ans in answers */
  uint32_t len;   /* payload bytes after the header */
  uint32_t seq;   /* the call's sequence number; answers echo it */
  int32_t status; /* answers: 0 or -errno */
  uint32_t nfds;  /* descriptors attached with SCM_RIGHTS */
  uint32_t flags; /* KABI_KEEP_* (calls passing ICAs); KABI_CPU_SHIFT */
};

/* hdr.flags of SEND, CALL, REPLY and REPLY_RECEIVE: the caller keeps its
 * mapping of the control (data) ICA it passes on, so the kernel sends no
 * descriptor when that ICA comes back to it.  Ignored for an ICA not named. */
#define KABI_KEEP_CTL 1u
#define KABI_KEEP_DATA 2u
/* hdr.flags bits 16-31 of every call: the cpu the caller sent it from,
 * plus one (0: not said); of every answer, when the kernel polls (uksim
 * run --poll-us), the cpu the kernel answered from, plus one, else 0.  A
 * kernel polls for the next call of a process on another cpu than its own
 * for a while after answering it, and the process's library spins as long
 * for an answer from a kernel on another cpu (sim-kernel/kern.c,
 * lib/conn.c). */
#define KABI_CPU_SHIFT 16
#define KABI_CPU_MASK 0xffff0000u

struct kabi_ica_create_args {
  uint64_t size;
  uint32_t kind; /* enum kabi_ica_kind */
  uint32_t pad;
};

enum kabi_ica_kind { KABI_ICA_CONTROL = 1, KABI_ICA_DATA, KABI_ICA_STATE };

struct kabi_ica_args {
  uint32_t ica;
  uint32_t pad;
};

/* An ICA arriving at its new holder: its fd rides along, in the order of
 * the references, unless flags has KABI_REF_MAPPED. */
struct kabi_ica_ref {
  uint32_t id;
  uint16_t kind;  /* enum kabi_ica_kind */
  uint16_t flags; /* KABI_REF_* */
  uint64_t size;
};

/* No descriptor: the receiver kept its mapping of this ICA when it last
 * passed it on (KABI_KEEP_*), and this is the same ICA. */
#define KABI_REF_MAPPED 1u

struct kabi_ica_ans {
  struct kabi_ica_ref ica;
};

struct kabi_lookup_args {
  char name[KABI_NAME_MAX];
};

struct kabi_lookup_ans {
  uint32_t svc; /* service id: table index + 1 (0 is "none") */
  uint32_t version;
};

struct kabi_send_args {
  uint32_t svc;  /* from LOOKUP */
  uint32_t op;   /* service-defined; recorded for the trace and statistics */
  uint32_t ctl;  /* control ICA id (required) */
  uint32_t data; /* data ICA id or KABI_ICA_NONE */
  uint64_t tag;  /* the caller's cookie, returned with the result */
};

struct kabi_send_ans {
  uint32_t req; /* request id (index + generation) */
  uint32_t pad;
};

struct kabi_await_args {
  uint32_t req; /* a request id, or 0 for any result */
  uint32_t pad;
};

/* A result delivered to an application process.  status is the server's
 * answer, or a kernel error (-ECONNRESET: the server died or restarted while
 * holding the request; -ESRCH: the service went away). */
struct kabi_result_msg {
  uint32_t req;
  int32_t status;
  uint64_t tag;
  uint32_t op;
  uint32_t nica;
  struct kabi_ica_ref ica[KABI_MAX_FDS]; /* ctl first, then data if any */
};

/* A request delivered to a server. */
struct kabi_request_msg {
  uint32_t req;
  uint32_t op;
  int32_t client_pid;
  uint32_t nica;
  struct kabi_ica_ref ica[KABI_MAX_FDS];
};

struct kabi_register_args {
  char name[KABI_NAME_MAX];
  uint32_t version;
  uint32_t pad;
  char opnames[KABI_OPNAMES_MAX]; /* "put,get,..." for the trace; may be "" */
};

/* KABI_REPLAY_DONE: how the replay went (struct uk_journal_stats). */
struct kabi_replay_done_args {
  int32_t status;   /* 0, or the replay's error (-ENOSPC: an overflowed
                       journal; else the failing call's) */
  uint32_t entries; /* journal entries replayed */
  uint32_t calls;   /* calls made for them */
  int32_t failed;   /* the entry whose call failed, -1 none */
  char why[128];    /* for the trace when status < 0 */
};

struct kabi_register_ans {
  uint32_t how; /* enum kabi_reg_how */
  uint32_t svc;
};

struct kabi_reply_args {
  uint32_t req;
  int32_t status;
  uint32_t ctl;  /* ICAs to hand back (the request's ctl, or another) */
  uint32_t data; /* or KABI_ICA_NONE */
};

/* REPLY_MANY_RECEIVE: a server replies to n requests it holds (0 to
 * KABI_BATCH_MAX) and receives what is queued, up to KABI_BATCH_MAX
 * requests, in one round trip.  The call is checked whole before anything
 * changes (each req held by the caller and named once, each ICA held and
 * named once): refused, no reply is taken.  Then every result is queued
 * at once, so a server that saves its state once for a batch and then
 * replies releases no result before the state that includes it (seed
 * 000's guarantee).  The answer is one KABI_ANS_REQUEST packet per
 * request delivered, all with the call's sequence number, every one but
 * the last flagged KABI_ANS_MORE, sent back to back before anything else;
 * or one KABI_ANS_PREPARE, as to RECEIVE.  Meanwhile the server's wait_op
 * in the tables is KABI_REPLY_RECEIVE (what it waits for is the same; the
 * batch is the kernel's own note).  A lock-step run, a service
 * being replaced and a server that is not its service's serving server
 * get one request at a time.  keep: bit 2i KABI_KEEP_CTL and bit 2i+1
 * KABI_KEEP_DATA of reply i (hdr.flags keep bits are not read). */
#define KABI_BATCH_MAX 8 /* below the host's 10 queued packets a socket */
#define KABI_ANS_MORE 4u /* hdr.flags of a request answer: another follows */
struct kabi_reply_many_args {
  uint32_t n;
  uint32_t keep;
  struct kabi_reply_args r[KABI_BATCH_MAX];
};

struct kabi_sleep_args {
  uint64_t ns; /* at most KABI_SLEEP_MAX_NS */
};
#define KABI_SLEEP_MAX_NS (3600ull * 1000000000ull)

struct kabi_keep_args {
  uint32_t req;
  uint32_t pad;
};

/* Answer to a replaced server's RECEIVE: its successor has registered; save
 * what the successor needs (state_register, or a hand-off ICA), then call
 * RECEIVE again.  That RECEIVE is answered -ESHUTDOWN when the successor
 * takes over (the old server exits), or with requests as usual when the
 * replacement failed. */
struct kabi_prepare_msg {
  uint32_t successor_version; /* as the new server registered it */
  int32_t successor_pid;
};

struct kabi_panic_args {
  char reason[128];
};

/* Namespace calls (seed 002 §5.1, Fig. 3; include/uksim/ns.h is the
 * library over them, vfs/vfs.h the tables they change).
 *
 * Every namespace call names the caller's ns control ICA (args.ctl), which
 * the caller holds and keeps holding: the kernel reads the call's paths and
 * small data from it and writes small answers into it while the caller
 * waits, as a monolithic kernel reads a user buffer during a system call
 * (the paper's page-mapped argument buffer).  Paths are path[0] at ctl[0]
 * (len[0] bytes, no NUL) and path[1] right after it (len[1] bytes).  A small
 * write's bytes follow the paths; a small read's bytes come back at
 * ctl[ans.at].  A large read or write names a data ICA (args.data) instead:
 * its bytes are data[0..n), and for a mounted server that ICA itself travels
 * to the server and back with the 9P request (never copied by the kernel).
 * stat and directory reads give struct kabi_dir records.
 *
 * A call that must wait (a pipe read with nothing written yet, a request to
 * a mounted server) is deferred like RECEIVE: the kernel serves every other
 * process meanwhile.  A call on a mounted server whose server dies fails
 * with -EIO (the mount stays; its chans fail until unmounted). */
enum kabi_ns_call {
  KABI_NS_OPEN = 1, /* path[0], flags = mode -> ret = fd */
  KABI_NS_CREATE,   /* path[0], flags = mode, perm -> ret = fd */
  KABI_NS_READ,     /* fd, n, off (KABI_NS_OFF_CUR: the fd's) -> ret = n */
  KABI_NS_WRITE,    /* fd, n, off, the bytes -> ret = n */
  KABI_NS_CLOSE,    /* fd */
  KABI_NS_STAT,     /* path[0] -> one kabi_dir at ctl[ans.at] */
  KABI_NS_FSTAT,    /* fd -> one kabi_dir at ctl[ans.at] */
  KABI_NS_WSTAT,    /* path[0] + one kabi_dir after the path (fields as
                       KABI_DIR_KEEP* say) */
  KABI_NS_REMOVE,   /* path[0] */
  KABI_NS_CHDIR,    /* path[0] */
  KABI_NS_FD2PATH,  /* fd -> the name, ret bytes at ctl[ans.at] */
  KABI_NS_DUP,      /* fd, fd2 (-1: lowest free) -> ret = fd */
  KABI_NS_PIPE,     /* -> ret = fd0 | fd1 << 16 */
  KABI_NS_BIND,     /* path[0] new, path[1] old, flags (VFS_M*) */
  KABI_NS_MOUNT,    /* fd (of a server link: /srv/NAME), path[0] old,
                       path[1] attach name, flags (VFS_M*); fd -1: path[1]
                       is "ADDR[ ANAME]", an external server to dial
                       ("tcp!HOST!PORT", "unix!PATH") */
  KABI_NS_UNMOUNT,  /* path[0] new or len[0] = 0, path[1] old */
  KABI_NS_RFORK,    /* flags: VFS_RFNAMEG / VFS_RFCNAMEG / VFS_RFCFDG */
  KABI_NS_SEEK,     /* fd, off, flags = whence (0 set, 1 cur, 2 end) ->
                       ret = the new offset */
  KABI_NS_CALL_MAX
};

#define KABI_NS_SMALL 8192 /* largest read or write in the control ICA */
#define KABI_NS_OFF_CUR                                                        \
  UINT64_MAX /* read/write at (and advance) the                                \
                descriptor's offset */

struct kabi_ns_args {
  uint32_t call; /* enum kabi_ns_call */
  int32_t fd;
  int32_t fd2;
  uint32_t flags; /* open mode, bind/mount flags, rfork flags, whence */
  uint32_t perm;  /* create */
  uint32_t ctl;   /* the caller's ns control ICA (required) */
  uint32_t data;  /* a data ICA for a large read or write, or 0 */
  uint32_t n;     /* bytes to read or write */
  uint32_t len[2];
  uint64_t off;
};

struct kabi_ns_ans {
  int64_t ret;
  uint32_t at; /* where in the control ICA an answer's bytes start */
  uint32_t pad;
};

/* One directory entry, as stat and directory reads give it (a directory
 * read returns whole records, the descriptor's offset counting records). */
#define KABI_DIR_NAME_MAX 255
#define KABI_DIR_ID_MAX 31
struct kabi_dir {
  uint64_t qid_path;
  uint32_t qid_vers;
  uint8_t qid_type; /* UK_QTDIR ... */
  uint8_t dev_type; /* the servant's letter, 'M' for a mounted server */
  uint16_t flags;   /* KABI_DIR_PARTIAL */
  uint32_t mode;    /* 0x80000000 for a directory | permission bits */
  uint32_t atime, mtime;
  uint32_t pad2;
  uint64_t length;
  char name[KABI_DIR_NAME_MAX + 1];
  char uid[KABI_DIR_ID_MAX + 1], gid[KABI_DIR_ID_MAX + 1],
      muid[KABI_DIR_ID_MAX + 1];
};

/* A directory read's record that says only the name, qid and kind: a
 * 9P2000.L server's listing (Treaddir) has no lengths, times or owners; a
 * stat of the file gives them. */
#define KABI_DIR_PARTIAL 0x1u

/* wstat: in a kabi_dir given to WSTAT, a field left as "don't touch" is
 * ~0 (numbers) or an empty string (name), as 9P's wstat does. */
#define KABI_DIR_KEEP32 0xffffffffu
#define KABI_DIR_KEEP64 0xffffffffffffffffull

/* The text of the `fail` event by which the kernel gives up restarting a
 * service (a restart policy's limit): the event's text starts so, and
 * trace readers (scenarios/trace_text.c) match it. */
#define KABI_RESTART_LIMIT_TEXT "restart limit reached"

#endif /* UKSIM_KABI_H */
