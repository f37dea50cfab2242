/* Kernel data: the tables a kernel keeps in a memfd region that the machine
 * owns, laid out here so a reader outside the kernel (uksim ps, a backup
 * kernel, a monitor) needs nothing but this header.
 *
 * Every table has a fixed capacity and is addressed by index, never by
 * pointer: the region maps at a different address in every reader.  Queues
 * are singly linked lists threaded through the request table by index.
 * Entries carry a generation that changes each time the slot is reused, so
 * an id (index + generation) that outlived its object is detected.
 *
 * Only the kernel writes the region.  Readers copy what they need and must
 * accept a torn view: a reader checks magic and layout version and treats
 * every index as untrusted (bounds-check before following it).
 *
 * Limits (also in README "Limits"): UK_PROC_MAX processes, UK_SVC_MAX
 * services, UK_ICA_MAX ICAs, UK_REQ_MAX requests in flight per kernel, and
 * UK_QUEUE_MAX requests queued per service.  Per process (quotas, so that
 * one process cannot take the kernel's tables from the others; a call
 * beyond one is refused with -EDQUOT): UK_PROC_ICAS_MAX ICAs held,
 * UK_PROC_REQS_MAX requests sent and not yet collected, of which at most
 * UK_PROC_RESULTS_MAX answered and waiting in its result queue.
 *
 * Namespaces (seed 002, vfs/vfs.h has the design and the operations):
 * UK_CHAN_MAX chans per kernel, UK_NS_MAX namespace groups, UK_MOUNT_MAX
 * mount points per group, UK_UNION_MAX members per union and UK_FD_MAX
 * descriptors per process.  An all-zero vfs part is the empty state (no
 * chans, groups or attached processes), so kern_kdata_init() needs nothing
 * more; every link between these tables is an id (index and generation,
 * UK_VFS_NONE = 0 for "none"), so a reader detects a stale link.
 *
 * Servants' state (vfs/dev.h, one servant a file): the console's rings
 * (UK_CONS_OUT bytes of output, the oldest overwritten; UK_CONS_IN bytes of
 * input the kernel fills), environment variables (UK_ENV_MAX in all, at
 * most UK_ENV_NS_MAX per namespace group, names of UK_ENV_NAME_MAX bytes,
 * values of UK_ENV_VAL_MAX: -ENOSPC, -ENAMETOOLONG, -EFBIG beyond), /srv
 * entries (UK_SRV_MAX, -ENOSPC beyond) and pipes (UK_PIPE_MAX, -ENFILE
 * beyond, each with a UK_PIPE_BUF byte buffer per direction).  All-zero
 * is their empty state too.
 *
 * The disk's buffer cache (#S, sim-kernel/bcache.c): struct uk_bcache,
 * UK_BCACHE_MAX blocks of UK_DISK_BLOCK bytes in ICAs of UK_BCACHE_SEG
 * blocks each, the kernel's own (UK_HOLD_KERNEL).  All-zero: no disk.
 */
#ifndef UKSIM_KDATA_H
#define UKSIM_KDATA_H

#include <stdint.h>

#include "kabi.h"

#define UK_KDATA_MAGIC 0x756b6b64617461ull /* "ukkdata" */
/* Layout v2 (-DUK_KDATA_V2, the second kernel version `uksim-kernel2`
 * that a kernel update moves processes to, issue 15): the process table
 * split in two (identity in proc[], scheduling and accounting in
 * psched[]), fields reordered and added, other state, kind, flag and
 * holder encodings.  Code reaches the moved fields through uk_psched()
 * only, so both versions compile from one source; a reader of the other
 * version refuses the region by its layout number (version-neutral
 * images cross versions: kimage.proto). */
#ifdef UK_KDATA_V2
#define UK_KDATA_LAYOUT 1001 /* bump on any change below */
#else
#define UK_KDATA_LAYOUT 11 /* bump on any change below */
#endif

#define UK_PROC_MAX 256
#define UK_SVC_MAX 32
#define UK_ICA_MAX 4096
#define UK_REQ_MAX 4096
#define UK_QUEUE_MAX 1024
#define UK_PROC_ICAS_MAX 1024
#define UK_PROC_REQS_MAX 512
#define UK_PROC_RESULTS_MAX 256
#define UK_OPS_MAX 8 /* ops with their own latency histogram per service */
#define UK_SVC_PROG_MAX                                                        \
  512                       /* bytes of a service's packed argv (uk_svc.prog)  \
                             */
#define UK_HIST_BUCKETS 160 /* up to ~2^41 ns */
#define UK_NIL 0xffffffffu  /* "no index" in a link or holder field */
#define UK_KCLIENT                                                             \
  0xfffffffeu /* uk_req.client of the kernel's own requests                    \
               */

/* Namespace limits.  A table that is full refuses the call (-ENFILE,
 * -ENOSPC, -EMFILE) and leaves everything as it was. */
/* Chans per kernel: open files, roots and cwds, mount points, union
 * members, and chans awaiting a clunk. */
#define UK_CHAN_MAX 4096
/* Namespace groups: enough for every process to have its own. */
#define UK_NS_MAX UK_PROC_MAX
#define UK_MOUNT_MAX 32 /* mount points (bound or mounted onto) per group */
#define UK_UNION_MAX 8  /* members in one mount point's union list */
#define UK_FD_MAX 64    /* file descriptors per process */
/* Longest path namec takes or gives a chan (-ENAMETOOLONG beyond); each
 * chan keeps its name in path[UK_PATH_MAX + 1] for fd2path. */
#define UK_PATH_MAX 255

/* Servants' limits (vfs/dev*.c). */
#define UK_CONS_OUT 8192 /* console output kept; the oldest is overwritten */
#define UK_CONS_IN                                                             \
  1024                     /* console input not yet read (the kernel's fill    \
                              takes what fits) */
#define UK_ENV_MAX 256     /* environment variables per kernel */
#define UK_ENV_NS_MAX 32   /* ... per namespace group */
#define UK_ENV_NAME_MAX 31 /* bytes of a variable's name */
#define UK_ENV_VAL_MAX 512 /* bytes of its value */
#define UK_SRV_MAX 64      /* /srv entries per kernel */
#define UK_SRV_NAME_MAX 31 /* bytes of an entry's name */
#define UK_PIPE_MAX 32     /* pipes per kernel */
#define UK_NETLINK_MAX 16  /* external 9P servers dialed, per kernel */
#define UK_NETLINK_ADDR_MAX 127 /* bytes of a dial address */
#define UK_PIPE_BUF                                                            \
  4096 /* bytes buffered per direction of a pipe; a                            \
          write up to this size is all or nothing */
/* #I (vfs/devip.c): TCP conversations per kernel, listening ones and
 * connections together (-ENFILE beyond: a clone or an accept waits for
 * none, it fails), and ports in the NIC's range (the machine's
 * PART_NIC_PORTS, kept equal by a static assert in knic.c). */
#define UK_CONV_MAX 32
#define UK_NIC_PORTS 16

/* The disk and its buffer cache (sim-kernel/kdisk.c, bcache.c). */
/* Bytes of a disk block: one LevelDB value. */
#define UK_DISK_BLOCK (64u * 1024)
/* Blocks per cache ICA (a segment, 4 MiB). */
#define UK_BCACHE_SEG 64u
#define UK_BCACHE_SEG_BYTES ((uint64_t)UK_BCACHE_SEG * UK_DISK_BLOCK)
/* Cached blocks: 1 GiB, all of which may be dirty. */
#define UK_BCACHE_MAX 16384u
#define UK_BCACHE_SEGS_MAX (UK_BCACHE_MAX / UK_BCACHE_SEG) /* cache ICAs */
#define UK_DISK_NAME_MAX 127 /* bytes of the disk's path kept in the table */

#ifndef UK_KDATA_V2
enum uk_proc_state {
  UK_PROC_FREE = 0,
  UK_PROC_RUNNING, /* not waiting in the kernel */
  UK_PROC_WAITING, /* a deferred call (receive, await, call) is pending */
  UK_PROC_EXITED,  /* gone; slot reclaimed once its answer is collected */
};

enum uk_proc_kind { UK_PROC_AP = 1, UK_PROC_SERVER };

struct uk_proc {
  uint32_t gen;
  uint8_t state;    /* enum uk_proc_state */
  uint8_t kind;     /* enum uk_proc_kind */
  uint16_t wait_op; /* enum kabi_op of the pending call, when WAITING */
  int32_t pid;
  uint32_t svc; /* server: service index it serves, else UK_NIL */
  char name[KABI_NAME_MAX];
  uint32_t res_head, res_tail, res_len; /* result queue (request indexes) */
  uint32_t icas_held;
  uint32_t outstanding; /* requests sent and not yet answered */
  uint32_t flags;       /* UK_PROC_F_* */
  uint64_t calls, errors;
  int32_t exit_status, term_signal;
  /* The call in the kernel, as another kernel needs it to take the process
   * over (sim-kernel/adopt.c): the sequence number and op of the last call
   * read from the process, and of the last answer sent.  call_seq !=
   * answered_seq: a call is in the kernel (deferred, or cut short by the
   * kernel's death). */
  uint32_t call_seq, call_op, answered_seq;
  uint32_t wait_seq; /* WAITING: the deferred call's sequence number */
  uint32_t wait_req; /* AWAIT/CALL: the request waited for, 0 for any */
  /* WAITING in a namespace call a servant could not finish (a read of an
   * empty pipe): the chan id it waits on, else UK_VFS_NONE; and since
   * when (monotonic ns, host clock), for a monitor (seed 003) to tell a
   * reader never woken. */
  uint32_t wait_chan;
  uint64_t wait_ns;
};

/* uk_proc.flags: the process moves to the backup OS at a failover (seed
 * 001 §2.6: protected processes are chosen in advance; the others end). */
#define UK_PROC_F_PROTECT 0x1u
/* ... and it came by Attach (uksim sh, uksim mount): a program of its own,
 * which a takeover never signals (its connection just ends). */
#define UK_PROC_F_ATTACHED 0x2u
/* ... and a kernel update could not carry it: it stays on this kernel,
 * which retires and serves only such processes (sim-kernel/kretire.c). */
#define UK_PROC_F_KEPT 0x4u
#else
/* Layout v2: the same states, numbered otherwise (FREE stays 0: an
 * all-zero table is empty in both). */
enum uk_proc_state {
  UK_PROC_FREE = 0,
  UK_PROC_EXITED = 1,
  UK_PROC_WAITING = 2,
  UK_PROC_RUNNING = 3,
};

enum uk_proc_kind { UK_PROC_SERVER = 1, UK_PROC_AP = 2 };

/* Layout v2, the identity half of a process: who it is and how it ended. */
struct uk_proc {
  uint32_t gen;
  int32_t pid;
  uint32_t flags; /* UK_PROC_F_* */
  uint8_t kind;   /* enum uk_proc_kind */
  uint8_t state;  /* enum uk_proc_state */
  uint16_t pad;
  char name[KABI_NAME_MAX];
  uint32_t svc; /* server: service index it serves, else UK_NIL */
  int32_t exit_status, term_signal;
  /* Added in v2: the OS it came from by a kernel update (0: born here),
   * and the image version it was rebuilt from (0: none, or replayed). */
  uint32_t origin_os, image_version;
  uint64_t calls, errors;
};

/* Layout v2, the scheduling and accounting half, parallel to proc[]: the
 * call in the kernel, the result queue and the quotas (meanings as in
 * layout 1's struct uk_proc). */
struct uk_psched {
  uint32_t call_seq, answered_seq, call_op;
  uint32_t wait_seq; /* WAITING: the deferred call's sequence number */
  uint32_t wait_req; /* AWAIT/CALL: the request waited for, 0 for any */
  uint16_t wait_op;  /* enum kabi_op of the pending call, when WAITING */
  uint16_t pad;
  uint32_t res_len, res_head, res_tail; /* result queue (request indexes) */
  uint32_t outstanding;                 /* requests sent and not yet answered */
  uint32_t icas_held;
  uint32_t pad2;
  /* Added in v2: monotonic ns of the last call read from the process. */
  uint64_t last_call_ns;
  /* For the seed-003 monitor, as in layout 1's struct uk_proc: the chan a
   * namespace call waits on (UK_VFS_NONE none) and since when. */
  uint32_t wait_chan;
  uint32_t pad3;
  uint64_t wait_ns;
};

#define UK_PROC_F_PROTECT 0x100u
#define UK_PROC_F_ATTACHED 0x200u
#define UK_PROC_F_KEPT 0x400u
#endif

enum uk_svc_state {
  UK_SVC_FREE = 0,
  UK_SVC_UP,   /* requests are accepted (see phase for who serves them) */
  UK_SVC_DOWN, /* no server; requests are refused */
};

/* Where a service is in a replacement or restart (sim-kernel/replace.c has
 * the state machine).  Requests queue in every phase; they are delivered
 * only in SERVING and REQUESTED. */
enum uk_svc_phase {
  UK_PH_SERVING = 0,
  UK_PH_REQUESTED,  /* replace flag set; waiting for the server's receive */
  UK_PH_STARTING,   /* successor spawned; waiting for its register */
  UK_PH_PREPARING,  /* old server saving state for the successor */
  UK_PH_RESTORING,  /* successor restoring; commits at its first receive */
  UK_PH_RESTARTING, /* the server failed; a new instance is starting */
};

struct uk_svc_ophist {
  uint64_t count, errors;
  uint64_t bucket[UK_HIST_BUCKETS]; /* latency, see uk_hist_bucket() */
};

struct uk_svc {
  uint32_t gen;
  uint32_t state; /* enum uk_svc_state */
  char name[KABI_NAME_MAX];
  uint32_t proc;      /* serving process index, UK_NIL if none */
  uint32_t state_ica; /* registered state ICA id, KABI_ICA_NONE if none */
  uint32_t flags;     /* UK_SVC_F_* */
  uint32_t version;
  char opnames[KABI_OPNAMES_MAX]; /* "put,get,..." as registered */
  uint32_t q_head, q_tail, q_len; /* request queue (request indexes) */
  uint32_t held;        /* requests delivered to the server, not yet replied */
  uint32_t phase;       /* enum uk_svc_phase */
  uint32_t successor;   /* process index of the successor, UK_NIL if none */
  uint32_t handoff_ica; /* state saved for the successor, or KABI_ICA_NONE */
  uint32_t restarts;    /* restarts after faults */
  uint32_t replacements, failed_replacements;
  uint64_t requests, replies, errors;
  struct uk_svc_ophist op[UK_OPS_MAX]; /* ops >= UK_OPS_MAX share the last */
  /* How to start its server again, for a kernel that takes the service
   * over from this one (Orthros, sim-kernel/adopt.c): the argv of the
   * server that registered it, packed as NUL-terminated strings one after
   * another and an empty one after the last (all empty: too long to keep,
   * so it cannot be restarted elsewhere), and its fault policy.  Its extra
   * environment (fault plans) is the instance's own and is not kept. */
  char prog[UK_SVC_PROG_MAX];
  uint32_t restart, restart_max, deadline_ms, heartbeat_ms;
};

/* The server should be replaced at its next receive() (seed 000 §5.2). */
#define UK_SVC_F_REPLACE 0x1u

enum uk_ica_state { UK_ICA_FREE = 0, UK_ICA_LIVE };

/* Who holds an ICA: exactly one at a time. */
#ifndef UK_KDATA_V2
enum uk_holder_kind {
  UK_HOLD_NONE = 0,
  UK_HOLD_PROC,    /* holder = process index */
  UK_HOLD_REQUEST, /* travelling in a queue; holder = request index */
  UK_HOLD_SVC,     /* a state ICA, or parked while a server restarts;
                      holder = service index */
  UK_HOLD_KERNEL,  /* the kernel's own (the mount driver's 9P messages) */
};
#else
enum uk_holder_kind {
  UK_HOLD_NONE = 0, /* layout v2: the same kinds, numbered otherwise */
  UK_HOLD_KERNEL = 1,
  UK_HOLD_SVC = 2,
  UK_HOLD_REQUEST = 3,
  UK_HOLD_PROC = 4,
};
#endif

#ifndef UK_KDATA_V2
struct uk_ica_ent {
  uint16_t gen;
  uint8_t state;       /* enum uk_ica_state */
  uint8_t kind;        /* enum kabi_ica_kind */
  uint8_t holder_kind; /* enum uk_holder_kind */
  uint8_t pad[3];
  uint32_t holder;
  /* The call that made it (its creator's call_seq): a kernel taking the
   * creator over finds an ICA_CREATE cut short by its kernel's death. */
  uint32_t made_by_seq;
  uint64_t size;
};
#else
struct uk_ica_ent { /* layout v2: the same fields, reordered */
  uint64_t size;
  uint32_t holder;
  uint32_t made_by_seq;
  uint16_t gen;
  uint8_t holder_kind; /* enum uk_holder_kind */
  uint8_t kind;        /* enum kabi_ica_kind */
  uint8_t state;       /* enum uk_ica_state */
  uint8_t pad[3];
};
#endif

enum uk_req_state {
  UK_REQ_FREE = 0,
  UK_REQ_QUEUED,     /* in its service's request queue */
  UK_REQ_IN_SERVICE, /* delivered to the server, not yet replied */
  UK_REQ_ANSWERED,   /* in its client's result queue */
};

struct uk_req {
  uint32_t gen;
  uint32_t state;  /* enum uk_req_state */
  uint32_t next;   /* next in whichever queue holds it, or UK_NIL */
  uint32_t client; /* process index; UK_KCLIENT: the kernel itself */
  uint32_t svc;    /* service index */
  uint32_t op;
  uint32_t ctl, data; /* ICA ids */
  int32_t status;
  uint32_t kept;       /* IN_SERVICE and kept in the server's state (KEEP) */
  uint32_t client_seq; /* the SEND or CALL that made it (its hdr.seq) */
  uint32_t pad;
  uint64_t tag;
  uint64_t seqno;   /* kernel-wide request number, for the trace */
  uint64_t sent_ns; /* monotonic ns at send */
  uint64_t recv_ns; /* monotonic ns at delivery to the server */
};

struct uk_counters {
  /* bad_calls: calls the kernel refused, malformed or not allowed now
   * (e.g. a send to a service that is down); errors: answers to requests
   * with a negative status. */
  uint64_t calls, bad_calls, sends, results, errors;
  uint64_t icas_created, icas_released, ica_bytes;
  uint64_t spawned, exited;
  /* For `uksim bench replace` (seed 000 §4.2.3: method 1 attaches and
   * detaches more ICAs than method 2). */
  uint64_t ica_attaches;   /* ICAs handed out by state_get and ica_attach */
  uint64_t ica_detaches;   /* ICAs taken from a server for its successor or
                              a restart (re-linked, or freed at a commit) */
  uint64_t ica_bytes_peak; /* most ICA bytes at once since the last replace
                              request (or boot) */
};

/* Namespace ids (chans, namespace groups): index in the low 16 bits,
 * generation above; a generation is never 0, so no id is UK_VFS_NONE. */
#define UK_VFS_NONE 0u
#define UK_VFS_ID(index, gen) (((uint32_t)(gen) << 16) | (uint32_t)(index))
#define UK_VFS_INDEX(id) ((id)&0xffffu)
#define UK_VFS_GEN(id) ((id) >> 16)

/* A 9P qid: what a servant or server calls the file. */
struct uk_qid {
  uint64_t path;
  uint32_t vers;
  uint8_t type; /* UK_QTDIR, ... as in 9P */
  uint8_t pad[3];
};

#define UK_QTDIR 0x80u /* the qid names a directory (9P's QTDIR) */

enum uk_chan_state {
  UK_CHAN_FREE = 0,
  UK_CHAN_LIVE,  /* referenced (ref >= 1) */
  UK_CHAN_CLUNK, /* a mounted server's chan whose last reference went: the
                    kernel owes the server a Tclunk of fid; slot reused
                    once it is sent */
};

/* The servant letter of a mounted server's chans (the paper's #M). */
#define UK_CHAN_MNT 'M'

/* A chan (the paper's objH, Plan 9's Chan): one file of one servant or
 * server.  Its name is (type, dev, qid.path), never qid alone: two servers
 * may use the same qid path for different files. */
struct uk_chan {
  uint16_t gen;
  uint8_t state; /* enum uk_chan_state */
  uint8_t type;  /* servant letter ('/', 'c', 's', ...), UK_CHAN_MNT for a
                    mounted server */
  uint8_t flags; /* UK_CHAN_F_* */
  uint8_t mode;  /* open mode (9P's OREAD ... | OTRUNC ...) when OPEN */
  uint8_t pad[2];
  uint32_t ref;
  uint32_t dev; /* servant instance; UK_CHAN_MNT: the server link (the
                   paper's mchan) */
  uint32_t fid; /* UK_CHAN_MNT: the server's fid for this file */
  uint32_t pad2;
  struct uk_qid qid;
  uint64_t offset;
  /* The name namec reached it by, cleaned ("/n/x/a", "#c/cons"), NUL
   * terminated; empty for a chan namec did not make. */
  char path[UK_PATH_MAX + 1];
};

#define UK_CHAN_F_OPEN 0x1u /* opened: mode and offset mean something */

/* A union member accepts creates (Plan 9's MCREATE, the same bit). */
#define UK_MCREATE 0x4u

/* One mount point in a namespace group: a walk that reaches a chan named
 * like `from` sees the union member[0..n) in this order instead. */
struct uk_mount {
  uint32_t from; /* chan id */
  uint8_t n;     /* members, 1..UK_UNION_MAX */
  uint8_t pad[3];
  uint32_t member[UK_UNION_MAX]; /* chan ids */
  uint8_t mflag[UK_UNION_MAX];   /* UK_MCREATE or 0 */
};

enum uk_ns_state { UK_NS_FREE = 0, UK_NS_LIVE };

/* A namespace group (Plan 9's Pgrp): the mount table that every process
 * attached to it sees.  mount[0..nmount) are live, in the order their
 * mount points were first bound onto. */
struct uk_nsgroup {
  uint16_t gen;
  uint8_t state; /* enum uk_ns_state */
  uint8_t pad;
  uint32_t ref; /* processes attached (and references the kernel holds) */
  uint32_t nmount;
  uint32_t pad2;
  struct uk_mount mount[UK_MOUNT_MAX];
};

/* The namespace half of a process entry, parallel to proc[]: its group,
 * root and current directory, and its descriptors (chan ids, UK_VFS_NONE
 * for a free descriptor). */
struct uk_vproc {
  uint8_t attached; /* 1 once given a namespace, 0 after release */
  uint8_t pad[3];
  uint32_t ns;   /* namespace group id */
  uint32_t root; /* chan id */
  uint32_t cwd;  /* chan id */
  uint32_t fd[UK_FD_MAX];
};

/* #c: the console.  Output is a ring the kernel mirrors into its trace
 * (out_total counts every byte ever written, so a mirror knows what it has
 * not yet seen); input is a ring the kernel fills and cons reads drain. */
struct uk_cons {
  uint32_t out_head; /* index of the oldest byte kept */
  uint32_t out_len;  /* bytes kept, <= UK_CONS_OUT */
  uint64_t out_total;
  uint32_t in_head, in_len; /* the same for input, <= UK_CONS_IN */
  uint32_t raw;             /* consctl "rawon" (1) / "rawoff" (0) */
  uint32_t pad;
  char out[UK_CONS_OUT];
  char in[UK_CONS_IN];
};

enum uk_env_state { UK_ENV_FREE = 0, UK_ENV_LIVE };

/* #e: one environment variable of one namespace group. */
struct uk_envvar {
  uint16_t gen;  /* changes on each reuse: a var's qid carries it */
  uint8_t state; /* enum uk_env_state */
  uint8_t pad;
  uint32_t ns;  /* the group's id */
  uint32_t len; /* bytes of val in use, <= UK_ENV_VAL_MAX */
  uint32_t pad2;
  char name[UK_ENV_NAME_MAX + 1];
  char val[UK_ENV_VAL_MAX];
};

enum uk_srv_state {
  UK_SRV_FREE = 0,
  UK_SRV_CREATED, /* made, nothing posted yet */
  UK_SRV_POSTED,  /* names a service */
};

/* #s: an entry of /srv.  A posted one names a service by index and the
 * generation the service had when it was posted, so an entry that outlived
 * its service is detected. */
struct uk_srvent {
  uint16_t gen;
  uint8_t state; /* enum uk_srv_state */
  uint8_t pad;
  uint32_t svc;     /* service index, when POSTED */
  uint32_t svc_gen; /* kd->svc[svc].gen when posted */
  char name[UK_SRV_NAME_MAX + 1];
  char posted[KABI_NAME_MAX]; /* the service's name as written */
};

/* #M: an external 9P server the kernel dialed ("tcp!HOST!PORT",
 * "unix!PATH").  A chan of it has type 'M' and dev UK_SVC_MAX + its index;
 * an empty addr is a free entry.  Entries are kept once up (a link is
 * dialed once per address and kernel). */
struct uk_netlink {
  uint8_t up;      /* 1 once Rversion came */
  uint8_t dialect; /* 0 9P2000, 1 9P2000.L */
  uint16_t pad;
  char addr[UK_NETLINK_ADDR_MAX + 1];
};

/* #|: a ring of bytes that one end of a pipe reads. */
struct uk_pring {
  uint32_t head, len; /* len <= UK_PIPE_BUF */
  char buf[UK_PIPE_BUF];
};

/* #|: a pipe, two ends (data = 0, data1 = 1).  A pipe is in use while a
 * chan names it (type '|', dev = UK_VFS_ID(index, gen)); when the last
 * such chan goes it is cleared and its gen moves on.  ring[e] holds what
 * end e reads (what end 1 - e wrote); hungup[e]: end e was open and its
 * last open chan has closed. */
struct uk_pipe {
  uint16_t gen;
  uint8_t hungup[2];
  uint32_t pad;
  /* When ring[e] last went from empty to not empty (monotonic ns, host
   * clock): how long data has been there for a reader to take. */
  uint64_t data_ns[2];
  struct uk_pring ring[2];
};

/* #I: a TCP conversation (vfs/devip.c has its state machine).  It is in
 * use while its state is not FREE; the socket itself is the kernel's
 * descriptor (and the machine's duplicate), never bytes in this region:
 * unread data stays in the host socket.  gen changes each time the slot
 * is reused (a chan's qid carries it). */
enum uk_conv_state {
  UK_CONV_FREE = 0,
  UK_CONV_OPEN,      /* cloned, not announced */
  UK_CONV_ANNOUNCED, /* a listening socket on port */
  UK_CONV_CONNECTED, /* an accepted connection */
  UK_CONV_HUNGUP,    /* its socket is gone (peer closed, hangup, lost) */
};

struct uk_conv {
  uint16_t gen;
  uint8_t state; /* enum uk_conv_state */
  uint8_t pad;
  uint16_t port;  /* local port */
  uint16_t rport; /* remote port, CONNECTED */
  uint32_t raddr; /* remote IPv4 address, host order, CONNECTED */
  uint32_t owner; /* process index that cloned or accepted it */
  uint32_t sock;  /* the socket's id for the machine (UK_VFS_ID(i, gen)) */
  uint32_t from;  /* the announced conversation it was accepted on */
};

/* #I: the NIC this kernel may use.  owned: it holds nic0 (the active OS);
 * a port outside [port_base, port_base + UK_NIC_PORTS) is refused. */
struct uk_nic {
  uint16_t port_base; /* 0: no NIC */
  uint8_t owned;
  uint8_t pad[5];
  struct uk_conv conv[UK_CONV_MAX];
};

struct uk_vfs {
  struct uk_chan chan[UK_CHAN_MAX];
  struct uk_nsgroup ns[UK_NS_MAX];
  struct uk_vproc vproc[UK_PROC_MAX];
  struct uk_cons cons;                   /* #c */
  struct uk_envvar env[UK_ENV_MAX];      /* #e */
  struct uk_srvent srv[UK_SRV_MAX];      /* #s */
  struct uk_pipe pipe[UK_PIPE_MAX];      /* #| */
  struct uk_netlink net[UK_NETLINK_MAX]; /* #M's dialed servers */
  struct uk_nic nic;                     /* #I */
};

enum uk_bcache_state {
  UK_BC_FREE = 0, /* holds no block */
  UK_BC_CLEAN,    /* the block as the disk has it */
  UK_BC_DIRTY,    /* written since its last write-back */
  UK_BC_WRITING,  /* in a write-back batch not yet committed: still dirty
                     for a reader (a backup writes it back again) */
};

/* One cache block: entry i is block i % UK_BCACHE_SEG of segment i /
 * UK_BCACHE_SEG, so ica and off are redundant on purpose: a reader from
 * outside checks them against the segment table and skips a torn entry. */
struct uk_bcache_ent {
  uint64_t block; /* disk block number */
  uint64_t seq;   /* hdr.wseq at its last write: the newer of two wins */
  uint32_t gen;   /* changes each time the entry takes another block */
  uint8_t state;  /* enum uk_bcache_state */
  uint8_t pad[3];
  uint32_t ica; /* the segment's ICA id */
  uint32_t off; /* byte offset of the block in that ICA */
};

struct uk_bcache_hdr {
  uint32_t block_size; /* UK_DISK_BLOCK once a disk is attached, else 0 */
  uint32_t nseg;       /* segments made so far, <= UK_BCACHE_SEGS_MAX */
  uint32_t seg_max;    /* the cache's size setting, in segments */
  uint32_t ncached;    /* entries CLEAN, DIRTY or WRITING */
  uint32_t ndirty;     /* entries DIRTY or WRITING */
  uint32_t pad;
  uint64_t disk_bytes; /* the disk's size (#S/sd0/data's length) */
  uint64_t wseq;       /* writes so far; an entry's seq is one of these */
  uint64_t hits, misses, evictions;
  uint64_t writebacks;     /* write-back batches committed */
  uint64_t blocks_written; /* blocks they wrote */
  uint64_t waits;          /* writes deferred until a write-back */
  char disk[UK_DISK_NAME_MAX + 1];
};

struct uk_bcache {
  struct uk_bcache_hdr hdr;
  uint32_t seg_ica[UK_BCACHE_SEGS_MAX]; /* ICA id of segment s */
  struct uk_bcache_ent ent[UK_BCACHE_MAX];
};

/* Kernel locks (sim-kernel/klock.c), seed 003 §4: words in kernel data
 * that say who is inside which critical path and since when, so that a
 * monitor reading the region from outside finds a lock never released.
 * The kernel is one libuv loop, so no two paths run at once; a lock is
 * held while a call is inside a path that changes its table, and a call
 * that needs a lock held by another (left held by a faulty path, or
 * spanning loop turns) waits for its release.  UK_LOCK_MAX slots, the
 * first UK_LOCK_COUNT used. */
#define UK_LOCK_MAX 8
enum uk_lock_id {
  UK_LOCK_ICA = 0, /* the ICA table: create, release */
  UK_LOCK_SVC,     /* the service table and its request and result
                      queues: register, lookup, send, call, await,
                      receive, reply */
  UK_LOCK_NS,      /* the mount tables and chans: namespace calls */
  UK_LOCK_COUNT
};
/* uk_proc wait_op of a call parked on a held lock: not started, so a
 * takeover restarts it (adopt.c) and no result is due to it. */
#define UK_WAIT_LOCK 0xffffu
struct uk_lock {
  uint32_t held;     /* 1 while taken */
  uint32_t owner;    /* process index it was taken for; UK_KCLIENT: the
                        kernel's own path */
  uint64_t since_ns; /* monotonic ns (host clock) when taken */
  uint64_t acquires; /* times taken since boot: its progress */
  uint32_t waiters;  /* calls waiting for its release now */
  uint32_t pad;
};

struct uk_kdata_hdr {
  uint64_t magic;
  uint32_t layout;
  uint32_t size; /* sizeof(struct uk_kdata) */
  int32_t kernel_pid;
  uint32_t os_id;
  uint64_t boot_ns;
  uint64_t budget_bytes; /* ICA memory this kernel may use */
  uint64_t step;         /* kernel steps taken; a reader sees progress */
};

struct uk_kdata {
  struct uk_kdata_hdr hdr;
  struct uk_counters ctr;
  struct uk_lock lock[UK_LOCK_MAX];
  struct uk_proc proc[UK_PROC_MAX];
#ifdef UK_KDATA_V2
  struct uk_psched psched[UK_PROC_MAX]; /* parallel to proc[] */
#endif
  struct uk_svc svc[UK_SVC_MAX];
  struct uk_ica_ent ica[UK_ICA_MAX];
  struct uk_req req[UK_REQ_MAX];
  struct uk_vfs vfs;       /* chans, namespaces, descriptors (vfs/vfs.h) */
  struct uk_bcache bcache; /* the disk's buffer cache (bcache.c) */
};

/* The scheduling and accounting half of process p (p < UK_PROC_MAX):
 * in layout 1 the process entry itself, in layout v2 its psched[] entry.
 * uk_psched_t names the type of either. */
#ifdef UK_KDATA_V2
typedef struct uk_psched uk_psched_t;
static inline uk_psched_t *uk_psched(struct uk_kdata *kd, uint32_t p) {
  return &kd->psched[p];
}
static inline const uk_psched_t *uk_psched_c(const struct uk_kdata *kd,
                                             uint32_t p) {
  return &kd->psched[p];
}
#else
typedef struct uk_proc uk_psched_t;
static inline uk_psched_t *uk_psched(struct uk_kdata *kd, uint32_t p) {
  return &kd->proc[p];
}
static inline const uk_psched_t *uk_psched_c(const struct uk_kdata *kd,
                                             uint32_t p) {
  return &kd->proc[p];
}
#endif

/* Latency histogram buckets: log2 with 4 linear sub-buckets, in ns.  Bucket b
 * covers [uk_hist_lower(b), uk_hist_lower(b + 1)). */
static inline unsigned uk_hist_bucket(uint64_t ns) {
  if (ns < 4)
    return (unsigned)ns;
  unsigned lg = 63 - (unsigned)__builtin_clzll(ns);
  unsigned sub = (unsigned)(ns >> (lg - 2)) & 3u;
  unsigned b = (lg - 1) * 4 + sub;
  return b < UK_HIST_BUCKETS ? b : UK_HIST_BUCKETS - 1;
}

static inline uint64_t uk_hist_lower(unsigned b) {
  if (b < 4)
    return b;
  unsigned lg = b / 4 + 1;
  return (1ull << lg) + ((uint64_t)(b % 4) << (lg - 2));
}

#endif /* UKSIM_KDATA_H */
