/* The scenario language: parser and syntax tree (scenarios/README.md).
 *
 * A scenario file is parsed whole, before anything starts, into a plain
 * tree: arrays of structs with fixed-size strings, so a tree holds no
 * pointer into the source buffer and can outlive it.  scn_parse checks the
 * syntax and the cross references (names used by actions, triggers and
 * expectations are declared); the first error stops it and is reported as
 * "file:line:col: message".  The parser never crashes on any input: every
 * limit below is checked and every number is checked for overflow.
 *
 * The same header holds the trace event vocabulary, which the trace reader
 * and the timeline renderer (timeline.h) share with the parser.
 */
#ifndef UKSIM_SCN_H
#define UKSIM_SCN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits, each documented in scenarios/README.md "Limits". */
#define SCN_FILE_MAX (1u << 20) /* bytes in a scenario file */
#define SCN_LINE_MAX 1024       /* bytes in a line, without its newline */
#define SCN_STMT_MAX 1000       /* statements in a file */
#define SCN_TOKENS_MAX 64       /* words and strings in a statement */
#define SCN_NAME_MAX 31         /* bytes in a name */
#define SCN_INST_MAX (SCN_NAME_MAX + 11) /* "name.generation" */
#define SCN_TEXT_MAX 255              /* bytes in a quoted string, unquoted */
#define SCN_FAULTS_MAX 8              /* --fault options in one statement */
#define SCN_ERR_MAX 512               /* bytes in a formatted error */
#define SCN_BLOCK_SIZE (128ull << 20) /* machine memory is counted in these */
#define SCN_TIME_MAX_NS (86400ull * 1000000000) /* a day: any time written */
#define SCN_ARGS_WORDS_MAX 20                   /* words in one --args */

/* What one run may hold, so that a scenario the kernel cannot run is
 * refused when it is parsed, not found out during the run or after it
 * (cli/scn_exec.c checks these against the kernel's tables). */
#define SCN_SERVERS_MAX 32 /* servers: the kernel's services (UK_SVC_MAX) */
/* Processes started in a run, every instance counted: the trace holds 64
 * actors with the kernel, the kernel's process table 64 processes. */
#define SCN_PROCS_MAX 63
/* Bytes in a server's name: its instances NAME.N fit the kernel's 31. */
#define SCN_SERVER_NAME_MAX 20

/* The programs' own limits (kvs and kvsload): beyond them the program
 * would refuse its arguments and exit at the start of the run. */
#define SCN_HOLD_MAX 64         /* server --hold (kvs --cache, KST_HELD_MAX) */
#define SCN_KEYS_MAX (1u << 24) /* app --keys */
#define SCN_VALUE_MAX (64u << 20) /* app --value-size (KVS_VALUE_MAX) */

/* A path in a namespace (bind, mount, unmount, expect file): the kernel's
 * UK_PATH_MAX, which a string's SCN_TEXT_MAX bytes equal. */
#define SCN_PATH_MAX 255

/* Where a statement or an error is: 1-based line, 1-based byte column. */
struct scn_pos {
  int line;
  int col;
};

/* A refused input.  text is the whole message, "file:line:col: message"
 * (the column is left out where it has no meaning, as in trace files). */
struct scn_err {
  struct scn_pos pos;
  char text[SCN_ERR_MAX];
};

/* Trace events, in the order of the README's "Trace format" table. */
enum scn_ev {
  SCN_EV_SPAWN,
  SCN_EV_REGISTER,
  SCN_EV_SEND,
  SCN_EV_RECEIVE,
  SCN_EV_REPLY,
  SCN_EV_RESULT,
  SCN_EV_FLAG,
  SCN_EV_PREPARE,
  SCN_EV_HANDOFF,
  SCN_EV_COMMIT,
  SCN_EV_FAIL,
  SCN_EV_FAULT,
  SCN_EV_DETECT,
  SCN_EV_RESTART,
  SCN_EV_ERROR,
  SCN_EV_EXIT,
  SCN_EV_ACTION,
  SCN_EV_EXPECT,
  SCN_EV_HALT, /* the machine halted; status: ICAs still live */
  /* Orthros (sim-kernel/kos.c, kfailover.c): written by the kernels of a
   * machine with a backup OS. */
  SCN_EV_PANIC,     /* the active kernel panics (its last event) */
  SCN_EV_OS_DEAD,   /* a backup declares the active dead (op: how) */
  SCN_EV_OS_ACTIVE, /* the backup is fenced in: it is the active OS now */
  SCN_EV_TAKEOVER,  /* the dead OS's state has come over */
  SCN_EV_FAILOVER,  /* one failover step (op: which) and its time */
  SCN_EV_RESIZE,    /* the machine gave the kernel another ICA budget */
  SCN_EV_KUPDATE,   /* a kernel update's conversion through images (op:
                       convert, refused: a process that cannot move) */
  /* The backup's monitor found a fault in the active's tables (op: which;
   * seed 003, sim-kernel/kmon.c). */
  SCN_EV_MONITOR,
  SCN_EV_COUNT
};

/* The event's name as written in traces and scenarios ("spawn" ...). */
const char *scn_ev_name(enum scn_ev ev);
/* 0 and *ev set, or -EINVAL for a name that is no event. */
int scn_ev_parse(const char *name, enum scn_ev *ev);

/* State-save methods (DESIGN.md "Server replacement").  0 is "not given":
 * a replacement then keeps the method of the server it replaces. */
enum scn_state {
  SCN_STATE_UNSET,
  SCN_STATE_SINGLE,
  SCN_STATE_CHAIN,
  SCN_STATE_COPY
};

enum scn_fault_kind {
  SCN_FAULT_CRASH,  /* dies by a signal */
  SCN_FAULT_PANIC,  /* reports an internal inconsistency to the kernel */
  SCN_FAULT_HANG,   /* stops calling the kernel, loops forever */
  SCN_FAULT_REFUSE, /* refuses the state it is handed (only at restore) */
  /* In-kernel faults of the active kernel (seed 003, sim-kernel/kfault.c),
   * for the backup's monitor: fault kernel deadlock [LOCK] | runaway |
   * stall-driver. */
  SCN_FAULT_DEADLOCK,
  SCN_FAULT_RUNAWAY,
  SCN_FAULT_STALL
};

enum scn_fault_point {
  SCN_AT_START,    /* as soon as the process runs, before register() */
  SCN_AT_REGISTER, /* in register(): it never registers */
  SCN_AT_RESTORE,  /* while restoring state handed over by state_get() */
  SCN_AT_REQUEST,  /* on receiving its n-th request */
  SCN_AT_SAVE,     /* while saving state after the replacement flag */
  SCN_AT_HANDOFF   /* while handing its ICAs and queue to the new server */
};

/* One entry of a fault plan: what goes wrong inside the server, where. */
struct scn_fault {
  enum scn_fault_kind kind;
  enum scn_fault_point point;
  uint64_t n;    /* the request number for SCN_AT_REQUEST, else 0 */
  uint64_t n_hi; /* request:N..M: the kernel picks n in [n, n_hi] */
};

enum scn_mode { SCN_MODE_LOCKSTEP, SCN_MODE_FREE };

/* Orthros (issue 14): the machine has one backup OS at a time (the
 * machine's MACH_OS_MAX slots hold an active, a backup and a dead one). */
#define SCN_BACKUP_MAX 1
/* The heartbeat interval and timeout, whole milliseconds: the machine's
 * MACH_HEARTBEAT_MS_MAX (a minute). */
#define SCN_HEARTBEAT_MAX_NS (60000ull * 1000000)
/* Usable-memory rows an `expect usable-mib` lists: the machine's history
 * of booted OSes (MACH_OS_HISTORY_MAX). */
#define SCN_USABLE_MAX 16
/* machine --disk SIZE: the user disk the runner makes (a LevelDB), at most
 * 1G: what a scenario writes through diskfs fits far below. */
#define SCN_DISK_MAX (1ull << 30)
/* machine --nic-port N: the first of nic0's SCN_NIC_PORTS loopback ports
 * (the machine's PART_NIC_PORTS; nic1, the backup's, is the next range),
 * no privileged port, and both ranges below 65536. */
#define SCN_NIC_PORTS 16
#define SCN_NIC_PORT_MIN 1024
#define SCN_NIC_PORT_MAX (65535 - 2 * SCN_NIC_PORTS)
/* tcp-client statements in a file: the runner's clients outside the
 * machine, one thread and one connection each. */
#define SCN_TCP_CLIENTS_MAX 4
/* tcp-client --every: a line at least every ms, at most every minute. */
#define SCN_TCP_EVERY_MIN_NS 1000000ull
#define SCN_TCP_EVERY_MAX_NS (60000ull * 1000000)
/* tcp-client --lines: a typo does not run for days. */
#define SCN_TCP_LINES_MAX 10000000ull

/* machine ...: zero fields were not given and take the kernel's default. */
struct scn_machine {
  uint64_t memory;   /* bytes, a multiple of SCN_BLOCK_SIZE */
  uint64_t grace_ns; /* wall-clock grace before a silent process is hung */
  uint64_t seed;     /* default seed; --seed on the command line wins */
  bool seed_set;
  enum scn_mode mode;
  bool mode_set;
  uint32_t backup; /* backup OSes (0 or 1): Orthros */
  /* The backup's kernel version (issue 15): 1 the same as the active's
   * (0: not given), 2 the next one (uksim-kernel2, kernel-data layout
   * v2): its takeover is a kernel update through process images. */
  uint32_t backup_version;
  uint64_t heartbeat_ns;  /* the active's heartbeat interval, 0: default */
  uint64_t hb_timeout_ns; /* silence that declares it dead, 0: default */
  /* The backup's monitor (seed 003): its interval, 0: none; and its
   * policy, 1: failover, 0: report.  The command line's
   * --monitor-interval and --monitor-policy win over them. */
  uint64_t monitor_ns;
  uint32_t monitor_failover;
  uint64_t disk;      /* bytes of a user disk (#S), 0: none */
  uint32_t nic_port;  /* nic0's first port, 0: the machine's pick */
  struct scn_pos pos; /* line 0 when the file has no machine statement */
};

enum scn_restart {
  SCN_RESTART_NEVER,
  SCN_RESTART_ALWAYS,
  SCN_RESTART_LIMIT /* at most restarts times */
};

/* server NAME ...: an OS server started at boot, registering service NAME. */
struct scn_server {
  char name[SCN_NAME_MAX + 1];
  char binary[SCN_NAME_MAX + 1]; /* default: the name */
  uint32_t version;              /* default 1 */
  enum scn_state state;          /* default single, never unset */
  enum scn_restart restart;      /* default never */
  uint32_t restarts;             /* for SCN_RESTART_LIMIT */
  uint64_t deadline_ns;          /* request deadline, 0: none */
  uint64_t heartbeat_ns;         /* heartbeat interval, 0: none */
  uint32_t hold;                 /* requests held at once (caching), 0: 1 */
  char args[SCN_TEXT_MAX + 1];   /* extra arguments for the binary */
  struct scn_fault faults[SCN_FAULTS_MAX];
  unsigned nfaults;
  struct scn_pos pos;
};

/* Which arguments a program takes from its declaration (scn_family_of):
 * the kvs family (kvs, kvs2 and any program the language does not know,
 * as before namespaces) takes --state, --service and --cache; the 9P file
 * servers (ramfs, hostfs) take --name; for apps, kvsload takes the
 * workload options and any other program only its --args. */
enum scn_family { SCN_FAM_KVS, SCN_FAM_9P };
enum scn_family scn_family_of(const char *binary);

/* An app's namespace when it is spawned (rfork(2)): its own fresh one, or
 * the group of a process declared before it, shared (rfork without
 * RFNAMEG), copied (RFNAMEG) or clean (RFCNAMEG: an empty mount table,
 * the source's root). */
enum scn_ns_kind { SCN_NS_FRESH, SCN_NS_SHARE, SCN_NS_COPY, SCN_NS_CLEAN };

struct scn_ns {
  enum scn_ns_kind kind;
  char from[SCN_NAME_MAX + 1]; /* a server or app; empty for fresh */
};

/* app NAME ...: an application process running a workload. */
struct scn_app {
  char name[SCN_NAME_MAX + 1];
  char binary[SCN_NAME_MAX + 1];  /* default kvsload */
  char service[SCN_NAME_MAX + 1]; /* default: the first server declared */
  uint64_t count;                 /* requests, default 1000 */
  uint64_t keys;                  /* key space, default 100 */
  uint64_t value_min, value_max;  /* value bytes, default 64..64 */
  uint64_t seed;                  /* default: derived from the run's seed */
  bool seed_set;
  unsigned mix[3];   /* put:get:delete weights, default 50:45:5 */
  uint64_t rate;     /* requests per virtual second, 0: no pacing */
  uint64_t start_ns; /* virtual time it is spawned, default 0 */
  char args[SCN_TEXT_MAX + 1];
  struct scn_ns ns; /* default fresh */
  bool protect;     /* --protect: it moves to the backup OS at a failover */
  struct scn_pos pos;
};

/* tcp-client NAME PORT --every TIME --lines N --until TIME --server APP:
 * a TCP client outside the machine, run by the runner
 * (cli/tcp_client.c): one connection to 127.0.0.1:PORT (a port of nic0)
 * for the whole run, a numbered line every TIME, each echo checked.  It
 * stops after N lines, at TIME into the run, when the run ends, or when
 * its connection ends, whichever comes first.  --server names the app
 * that serves it: once the scenario has acted on that app (kill echo), the
 * end of the connection is the conversation's end, not a break. */
struct scn_tcp_client {
  char name[SCN_NAME_MAX + 1];
  uint32_t port;
  uint64_t every_ns;             /* default SCN_TCP_EVERY_DEFAULT_NS */
  uint64_t lines;                /* 0: no limit */
  uint64_t until_ns;             /* 0: no limit */
  char server[SCN_NAME_MAX + 1]; /* --server APP, or "" */
  struct scn_pos pos;
};
#define SCN_TCP_EVERY_DEFAULT_NS (50ull * 1000000)

/* node NAME --port N: another node beside the machine under test (issue
 * 16), booted by the runner before the run and halted after it, outside
 * the machine and its trace as a tcp-client is.  It runs kvs and ramfs,
 * `netmsg serve` at 127.0.0.1:N (remote calls: a `netmsg proxy` server
 * in the scenario reaches its kvs) and `uksim exportfs` at N + 1 of a
 * namespace with ramfs on /n holding the file /n/note ("written on
 * NAME\n"), for `import`. */
#define SCN_NODES_MAX 3
/* node NAME (no --port): a node for process migration only, its
 * migration server and nothing else (no machine, netmsg or exportfs).
 * --crash-at STEP: that migration server disappears, as a crashed node,
 * when a migration reaches STEP on its side (uksim-migd --die-at). */
#define SCN_STEP_MAX 15 /* bytes in a --crash-at step's name */
struct scn_node {
  char name[SCN_NAME_MAX + 1];
  uint32_t port;                   /* 0: a migration-only node */
  char crash_at[SCN_STEP_MAX + 1]; /* "": none */
  struct scn_pos pos;
};

/* Process migration (issue 16, seed 004 §2.3; scenarios/scn_mig.c).
 * Every node of a scenario with tasks runs a migration server
 * (uksim-migd), the machine under test's own node among them, named
 * SCN_LOCAL_NODE (a reserved node name). */
#define SCN_LOCAL_NODE "local"
/* task NAME --node NODE --binary ctask|mtask|ktask [--args "..."]: a migratable
 * task (include/uksim/task.h) started on NODE's migration server when the
 * run starts, before the servers. */
#define SCN_TASKS_MAX 4
/* Bytes in an `input` action's line: it is traced whole, with the task's
 * name, in an event's SCN_TEXT_MAX. */
#define SCN_INPUT_MAX 128
/* 0: not given (refused: a task names its program). */
enum scn_task_binary {
  SCN_TASK_UNSET,
  SCN_TASK_CTASK,
  SCN_TASK_MTASK,
  SCN_TASK_KTASK
};
struct scn_task {
  char name[SCN_NAME_MAX + 1];
  char node[SCN_NAME_MAX + 1];
  enum scn_task_binary binary;
  char args[SCN_TEXT_MAX + 1];
  struct scn_pos pos;
};
/* The address-space methods of a migration (sim-kernel/migd.h). */
/* 0: not given (refused: a migration names its method). */
enum scn_method {
  SCN_METHOD_UNSET,
  SCN_METHOD_EAGER,
  SCN_METHOD_PRECOPY,
  SCN_METHOD_DEMAND
};
const char *scn_method_name(enum scn_method m);
const char *scn_task_binary_name(enum scn_task_binary b);
/* expect task NAME on NODE | moves == K | output contains "TEXT" | lost */
enum scn_task_check {
  SCN_TASK_ON,     /* it runs on exactly NODE, on no other */
  SCN_TASK_MOVES,  /* its migrations that were done, compared with value */
  SCN_TASK_OUTPUT, /* its console output, as its origin printed it */
  SCN_TASK_LOST    /* it runs on no node */
};

enum scn_trigger_kind {
  SCN_TRIG_AT,      /* at a virtual time */
  SCN_TRIG_REQUEST, /* when the n-th request is sent to a service */
  SCN_TRIG_EVENT    /* at the n-th trace event of a kind by an actor */
};

/* A range LO..HI (times or numbers) is held as the low value and the high
 * one; without a range both are the same.  The kernel picks the value from
 * the run's seed when the run starts (cli/scn_exec.c), so a seed
 * varies where a fault strikes as well as the schedule. */
struct scn_trigger {
  enum scn_trigger_kind kind;
  uint64_t t_ns, t_hi_ns;      /* SCN_TRIG_AT */
  uint64_t n, n_hi;            /* SCN_TRIG_REQUEST and SCN_TRIG_EVENT */
  char name[SCN_INST_MAX + 1]; /* the service, or the actor ("*": any) */
  enum scn_ev ev;              /* SCN_TRIG_EVENT */
};

enum scn_action_kind {
  SCN_ACT_REPLACE,
  SCN_ACT_CRASH,
  SCN_ACT_PANIC,
  SCN_ACT_HANG,
  SCN_ACT_KILL,
  SCN_ACT_RESTART,
  SCN_ACT_BIND,    /* in target's namespace: bind src on dst */
  SCN_ACT_MOUNT,   /* ... mount the server posted at src on dst */
  SCN_ACT_UNMOUNT, /* ... unmount src (or all, src empty) from dst */
  /* fault kernel panic|hang|crash (the active OS's kernel), fault backup
   * crash (the standby's): target "kernel" or "backup", kfault the kind */
  SCN_ACT_FAULT,
  /* stop APP: SIGTERM, the app ends as it chooses (mtload --forever
   * finishes its calls, checks them and exits with its verdict) */
  SCN_ACT_STOP,
  /* kupdate [image|replay]: a kernel update (issue 15): the machine
   * stops the active kernel and the backup, of the next version (machine
   * --backup-version 2), takes its processes over through images (uksim
   * kupdate), or by their replay of their journals (kreplay) */
  SCN_ACT_KUPDATE,
  /* migrate TASK --to NODE --method M: target the task, node, method */
  SCN_ACT_MIGRATE,
  /* input TASK "TEXT": a line typed at the task's console, at its origin
   * node (target the task, args the text, at most SCN_INPUT_MAX bytes) */
  SCN_ACT_INPUT
};

/* Whether k is a namespace action (bind, mount, unmount: run by a helper). */
static inline bool scn_action_is_ns(enum scn_action_kind k) {
  return k >= SCN_ACT_BIND && k <= SCN_ACT_UNMOUNT;
}

/* Flags of bind and mount, as nsh writes them (bind(2)). */
#define SCN_NS_FLAGS_MAX 3 /* "ac" or "bc" at most, checked */

/* at TIME ACTION, or on TRIGGER: ACTION. */
struct scn_action {
  struct scn_trigger when;
  enum scn_action_kind kind;
  char target[SCN_INST_MAX + 1]; /* a server, app or instance ("kvs.2") */
  char binary[SCN_NAME_MAX + 1]; /* replace: the new server's binary */
  enum scn_state state;          /* replace: unset keeps the server's */
  uint64_t deadline_ns; /* replace: to register and restore, 0: default */
  struct scn_fault faults[SCN_FAULTS_MAX]; /* the new instance's plan */
  unsigned nfaults;
  char args[SCN_TEXT_MAX + 1];
  /* bind, mount, unmount: the target is a declared server or app whose
   * namespace group is changed. */
  char src[SCN_PATH_MAX + 1];       /* NEW; /srv/NAME; unmount: NEW or "" */
  char dst[SCN_PATH_MAX + 1];       /* OLD */
  char flags[SCN_NS_FLAGS_MAX + 1]; /* some of a, b, c */
  char aname[SCN_PATH_MAX + 1];     /* mount --aname, or "" */
  enum scn_fault_kind kfault;       /* fault: crash, panic, hang, ... */
  char klock[8]; /* fault kernel deadlock: the lock's name, "" default */
  char node[SCN_NAME_MAX + 1]; /* migrate: the destination node */
  enum scn_method method;      /* migrate */
  struct scn_pos pos;
  bool kreplay; /* kupdate replay: method B (sim-kernel/kreplay.c) */
};

enum scn_expect_kind {
  SCN_EXP_ALL_ANSWERED, /* every request got an answer */
  SCN_EXP_EXACTLY_ONE,  /* no request answered twice, none dropped */
  SCN_EXP_NO_LEAKS,     /* no ICA left allocated at the end */
  SCN_EXP_ERRORS,       /* error answers, compared with value */
  SCN_EXP_LATENCY,      /* a latency statistic, compared with value (ns) */
  SCN_EXP_STATE,        /* final state of a service */
  SCN_EXP_TRACE_CONTAINS,
  SCN_EXP_TRACE_OMITS,
  SCN_EXP_FILE,      /* a file read in a process's namespace at the end */
  SCN_EXP_FAILOVERS, /* failovers (os-active events), compared with value */
  SCN_EXP_ENDED,     /* app ended with its OS: spawned, never exited itself */
  SCN_EXP_USABLE,    /* the machine's usable memory per OS (Table 5) */
  SCN_EXP_TCP,       /* a tcp-client kept its one connection */
  SCN_EXP_TASK       /* a migratable task's place, moves or output */
};

enum scn_file_check { SCN_FILE_EQUALS, SCN_FILE_CONTAINS, SCN_FILE_FAILS };

enum scn_cmp { SCN_LT, SCN_LE, SCN_EQ, SCN_GE, SCN_GT };
enum scn_stat { SCN_STAT_P50, SCN_STAT_P99, SCN_STAT_MAX };

/* A trace event pattern: every given part must match. */
struct scn_pattern {
  enum scn_ev ev;
  char actor[SCN_INST_MAX + 1]; /* "*" or empty: any actor */
  char text[SCN_TEXT_MAX + 1];  /* a substring of the text, or empty */
};

struct scn_expect {
  enum scn_expect_kind kind;
  enum scn_cmp cmp;               /* errors, latency */
  uint64_t value;                 /* errors: a count; latency: ns */
  enum scn_stat stat;             /* latency */
  char app[SCN_NAME_MAX + 1];     /* errors, latency: scope, or empty;
                                     ended: the app; tcp-client: its name */
  char service[SCN_NAME_MAX + 1]; /* errors, latency: scope; state: which */
  char op[SCN_NAME_MAX + 1];      /* latency: "kvs.put", or empty */
  bool model;                     /* state: equals the apps' models */
  char path[SCN_TEXT_MAX + 1];    /* state: else equals this file;
                                     file: the path read */
  struct scn_pattern pattern;     /* trace contains / omits */
  /* file PROC PATH equals|contains "TEXT", or file PROC PATH fails: PROC
   * in proc, PATH (in its namespace) in path, TEXT in text. */
  char proc[SCN_NAME_MAX + 1];
  enum scn_file_check fcheck;
  char text[SCN_TEXT_MAX + 1];
  /* usable-mib OS MIB ...: OS number os[i] had mib[i] MiB usable as
   * active (the machine's Table 5), for i < nusable. */
  uint32_t usable_os[SCN_USABLE_MAX];
  uint64_t usable_mib[SCN_USABLE_MAX];
  unsigned nusable;
  /* task NAME ...: NAME in app, the check in tcheck; on NODE: NODE in
   * proc; moves CMP K: cmp, value; output contains "TEXT": text. */
  enum scn_task_check tcheck;
  struct scn_pos pos;
};

/* A parsed scenario.  Arrays are in file order. */
struct scn {
  char file[SCN_TEXT_MAX + 1];  /* as given to scn_parse */
  char title[SCN_TEXT_MAX + 1]; /* scenario "...", or empty */
  struct scn_machine machine;
  struct scn_server *servers;
  size_t nservers;
  struct scn_app *apps;
  size_t napps;
  struct scn_action *actions;
  size_t nactions;
  struct scn_expect *expects;
  size_t nexpects;
  struct scn_tcp_client *tcps;
  size_t ntcps;
  struct scn_node *nodes;
  size_t nnodes;
  struct scn_task *tasks;
  size_t ntasks;
};

/* Parses len bytes of buf (which need not end in a NUL and may hold any
 * bytes).  file names the input in messages.  Returns a new tree, or NULL
 * with *err filled. */
struct scn *scn_parse(const char *file, const char *buf, size_t len,
                      struct scn_err *err);

/* Reads and parses the file at path; NULL with *err filled, also when the
 * file cannot be read. */
struct scn *scn_load(const char *path, struct scn_err *err);

void scn_free(struct scn *s);

/* Names of enum values as the language writes them. */
const char *scn_state_name(enum scn_state s);
const char *scn_action_name(enum scn_action_kind k);
const char *scn_fault_kind_name(enum scn_fault_kind k);
const char *scn_fault_point_name(enum scn_fault_point p);

/* Writes "file:line:col: message" into err; col 0 leaves the column out,
 * line 0 both ("file: message", for a file that cannot be read). */
void scn_err_set(struct scn_err *err, const char *file, int line, int col,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
