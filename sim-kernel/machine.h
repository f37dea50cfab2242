/* The machine process and its clients.
 *
 * mach_main() is the machine itself (started as `uksim machine`, hidden).
 * The mach_client functions are what the CLI and the tests use: boot a
 * machine as a child process, or connect to a running one by name, then send
 * uksim.Ctl requests and collect replies (possibly out of order: a wait for
 * one process may be answered after a spawn of another).
 */
#ifndef UKSIM_MACHINE_H
#define UKSIM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "control.pb-c.h"
#include "partition.h"
#include "uksim/kdata.h"

struct mach_opts {
  char name[64];   /* machine name: its control socket's directory */
  uint32_t blocks; /* physical memory blocks given to OS 1 */
  uint64_t block_size;
  long trace;           /* kernel trace lines to print; -1 all, 0 none */
  char trace_file[256]; /* the kernel's event trace, JSON Lines; "" none */
  char scenario[512];   /* a scenario the kernel runs in lock-step; "" none */
  char seed[24];        /* its seed ("" : the scenario's own) */
  char dump_dir[256];   /* where it dumps servers' final state; "" none */
  uint32_t poll_us;     /* the kernel's cross-cpu polling (kern.c); 0 off */
  uint32_t cores;       /* virtual cores (partition.h) */
  bool hw_given;        /* hw_blocks lists the hardware blocks; else default */
  char hw_blocks[PART_LIST_TEXT_MAX];
  uint16_t nic_port; /* first port of the NICs' ranges; 0: from the pid */
  /* The user disk (sim-kernel/kdisk.h): a LevelDB directory, made if
   * missing; "" none.  Its settings as the kernel's options take them
   * (--disk-size, --sync-ms, --cache-mib); "" the kernel's defaults. */
  char disk[256];
  char disk_size[24], sync_ms[24], cache_mib[24];
  /* At a failover, the dead kernel's dirty blocks are "adopt"ed into the
   * new kernel's cache or "writeback" written back first (kfailover.c);
   * "" the kernel's default (adopt). */
  char cache_migrate[24];
  bool backup;           /* boot a BackupOS beside the ActiveOS (Orthros) */
  uint32_t heartbeat_ms; /* with backup: the active's heartbeat period */
  uint32_t heartbeat_timeout_ms; /* ... and the backup's patience */
  /* Nodes (sim-kernel/node.h, uksim/node.h): listen for other nodes at
   * --node-port [HOST!]PORT ("" none), authenticated with the key file
   * --node-key ("" none; required beyond loopback). */
  char node_port[64];
  char node_key[256];
  /* The kernel binary the backup OSes boot (a kernel update's new
   * version, e.g. uksim-kernel2, issue 15); "" this uksim's own. */
  char backup_kernel[256];
  /* Where the machine's stderr goes, its kernel's and its processes'
   * (appended; a scenario runner's peer machines, kept out of a --quiet
   * run's output); "" this process's. */
  char log[512];
};

/* Orthros (issue 14).  OS instances the machine keeps at once: the active,
 * the backup and dead ones whose state the new active has not taken over
 * yet; a failover that would need more is refused (the machine halts as
 * when the active dies without a backup). */
#define MACH_OS_MAX 4
/* The partition's log the machine keeps for `uksim os` (the last ones:
 * older steps are dropped), and the OSes booted it remembers (Table 5
 * across failovers; beyond it, the oldest are dropped). */
#define MACH_PART_LOG_MAX 64
#define MACH_OS_HISTORY_MAX 32
/* Processes of dead kernels the machine reaps (it is their subreaper). */
#define MACH_ORPHAN_MAX (2 * UK_PROC_MAX)
/* Heartbeat defaults and bounds (ms). */
/* Connections queued on a NIC's listening socket (#I, knic.c) before
 * the kernel accepts them. */
#define MACH_NIC_BACKLOG 16
/* The longest the machine waits after a takeover for the new active's
 * FailoverDone before it boots the next backup anyway (machine.c). */
#define MACH_SETTLE_WAIT_MS 2000
#define MACH_HEARTBEAT_MS_DEFAULT 10
#define MACH_HEARTBEAT_TIMEOUT_MS_DEFAULT 50
#define MACH_HEARTBEAT_MS_MAX 60000
/* The exit status of a kernel that panicked. */
#define KERN_PANIC_STATUS 70
/* The Orthros options of uksim run and demo: MACH_BACKUP_OPTS in their
 * getopt_long table, MACH_BACKUP_HELP in their usage, and each option
 * char c given to mach_backup_opt: 1 when it was one of them (set in o),
 * 0 when not, -1 after a message on stderr. */
#define MACH_OPT_BACKUP 0x4f01
#define MACH_OPT_HB 0x4f02
#define MACH_OPT_HB_TIMEOUT 0x4f03
#define MACH_OPT_CACHE_MIGRATE 0x4f04
#define MACH_OPT_NIC_PORT 0x4f05
#define MACH_OPT_NODE_PORT 0x4f06
#define MACH_OPT_NODE_KEY 0x4f07
#define MACH_OPT_BACKUP_KERNEL 0x4f08
#define MACH_OPT_MONITOR 0x4f09
#define MACH_OPT_MONITOR_POLICY 0x4f0a
#define MACH_OPT_SYNC 0x4f0b
/* --sync-ms at most: a day, as the kernel takes it (sim-kernel/kern.c) */
#define MACH_SYNC_MS_MAX 86400000u
#define MACH_BACKUP_OPTS                                                       \
  {"backup", no_argument, NULL, MACH_OPT_BACKUP},                              \
      {"monitor-interval", required_argument, NULL, MACH_OPT_MONITOR},         \
      {"monitor-policy", required_argument, NULL, MACH_OPT_MONITOR_POLICY},    \
      {"heartbeat-ms", required_argument, NULL, MACH_OPT_HB},                  \
      {"heartbeat-timeout-ms", required_argument, NULL, MACH_OPT_HB_TIMEOUT},  \
      {"cache-migrate", required_argument, NULL, MACH_OPT_CACHE_MIGRATE},      \
      {"nic-port", required_argument, NULL, MACH_OPT_NIC_PORT},                \
      {"node-port", required_argument, NULL, MACH_OPT_NODE_PORT},              \
      {"node-key", required_argument, NULL, MACH_OPT_NODE_KEY},                \
      {"sync-ms", required_argument, NULL, MACH_OPT_SYNC}, {                   \
    "backup-kernel", required_argument, NULL, MACH_OPT_BACKUP_KERNEL           \
  }
struct mach_opts;
int mach_backup_opt(const char *prog, int c, const char *arg,
                    struct mach_opts *o);
#define MACH_BACKUP_HELP                                                       \
  "  --backup          boot a BackupOS beside the ActiveOS: it takes over\n"   \
  "                    when the active panics, hangs or crashes\n"             \
  "  --heartbeat-ms N  the active's heartbeat period (default 10)\n"           \
  "  --heartbeat-timeout-ms N\n"                                               \
  "                    the backup declares the active dead after N ms\n"       \
  "                    without a heartbeat (default 50)\n"                     \
  "  --cache-migrate adopt|writeback\n"                                        \
  "                    at a failover the dead OS's dirty file cache is\n"      \
  "                    adopted by the new OS's cache, written back later\n"    \
  "                    (default), or written back before processes run\n"      \
  "  --sync-ms N       the kernels write the disk's dirty blocks back every\n" \
  "                    N ms (default 5000; 0: only on sync)\n"                 \
  "  --backup-kernel PATH\n"                                                   \
  "                    the kernel binary backups boot (a new kernel "          \
  "version,\n"                                                                 \
  "                    e.g. uksim-kernel2); default: this uksim's own\n"       \
  "  --nic-port N      the first port of nic0's loopback range (16 ports;\n"   \
  "                    nic1's follow); default: one from the pid\n"            \
  "  --node-port [HOST!]PORT\n"                                                \
  "                    listen for other nodes there (HOST: 127.0.0.1);\n"      \
  "                    they reach it as tcp!HOST!PORT (docs/nodes-tutorial)\n" \
  "  --node-key FILE   a secret both nodes hold (required beyond loopback)\n"  \
  "  --monitor-interval MS\n"                                                  \
  "                    with --backup: the backup reads the active's kernel\n"  \
  "                    data every MS ms (seed 003: deadlock, runaway,\n"       \
  "                    stalled driver); 0 off (default)\n"                     \
  "  --monitor-policy report|failover\n"                                       \
  "                    what a finding does: a trace event (default), or\n"     \
  "                    also a failover\n"

/* The default of poll_us, and its largest value.  README.md "uksim bench
 * ipc" gives the measurements behind it. */
#define MACH_POLL_US_DEFAULT 100
#define MACH_POLL_US_MAX 10000

/* --disk DIR of command prog: o->disk made absolute (the kernel runs
 * elsewhere); 0, or -1 after a message on stderr. */
int mach_disk_opt(struct mach_opts *o, const char *prog, const char *dir);
#define MACH_DISK_HELP                                                         \
  "  --disk DIR        the user disk: a LevelDB directory, made if missing\n"

/* Defaults; poll_us from UKSIM_POLL_US when that is set (the commands'
 * --poll-us sets it, so that runs they start themselves, as explore's
 * `uksim run` children, get it too). */
void mach_opts_default(struct mach_opts *o);
/* The poll_us a machine booted now gets (UKSIM_POLL_US, else the default). */
uint32_t mach_poll_us(void);
/* --poll-us N of command prog ("uksim run"): sets UKSIM_POLL_US, from which
 * every machine this process or its children boot takes its kernel's cross-cpu
 * polling time (machine.h); 0, or -1 after a message on stderr. */
int mach_poll_us_opt(const char *prog, const char *v);
#define MACH_POLL_US_HELP                                                      \
  "  --poll-us N       after answering a process on another cpu, the "         \
  "kernel\n"                                                                   \
  "                    polls for N us before it blocks, and the process "      \
  "spins\n"                                                                    \
  "                    as long for its answers (default 100; 0 off)\n"

/* The partition configuration of a machine booted with o, on the host
 * cpus this process may run on; 0, or -EINVAL with why in err (a bad
 * --hw-blocks list, a hardware block in a slot ...).  The commands call it
 * before they boot, so that bad input is refused before anything starts. */
int mach_part_config(const struct mach_opts *o, struct part_config *c,
                     char *err, size_t errlen);
/* --cores N or --hw-blocks LIST of command prog: 0, or -1 after a message
 * on stderr. */
int mach_cores_opt(struct mach_opts *o, const char *prog, const char *v);
int mach_hw_blocks_opt(struct mach_opts *o, const char *prog, const char *v);
#define MACH_PART_HELP                                                         \
  "  --cores N         virtual cores of the machine (default 4, 2..64)\n"      \
  "  --hw-blocks LIST  memory blocks used by hardware (\"4,5,9-11\"; "         \
  "default\n"                                                                  \
  "                    the first 3 of the general region; '' none)\n"

/* Machine names: what a run directory may be called. */
#define MACH_NAME_MAX 40
#define MACH_NAME_RULE                                                         \
  "a name is 1 to 40 letters, digits, '.', '_' or '-', not starting with '.'"
bool mach_name_ok(const char *name);

/* The run directory of machine `name`: $XDG_RUNTIME_DIR/uksim/<name> or
 * /tmp/uksim-<uid>/<name>; with create, made with mode 0700 (and refused if
 * an existing one is not ours or is open to others). */
int mach_rundir(const char *name, char *out, size_t len, bool create);

int mach_main(int argc, char **argv);

/* Limits of the control socket (README "Limits").  One client cannot take
 * what the others need: a client beyond MACH_CLIENTS_MAX is told so and
 * closed; one with MACH_CLIENT_PENDING_MAX requests in flight is answered
 * -EBUSY; one whose unread answers reach MACH_CLIENT_OUTBOX_MAX is not
 * read from until it reads them, and is dropped when it has not read any
 * for MACH_CLIENT_STALL_MS. */
#define MACH_CLIENTS_MAX 32
#define MACH_CLIENT_PENDING_MAX 32
#define MACH_CLIENT_OUTBOX_MAX 64
#define MACH_CLIENT_STALL_MS 10000
/* Descriptors the machine and its kernel need beyond one per ICA (clients,
 * their queued answers, processes' connections); each raises its soft
 * limit to UK_ICA_MAX + this at boot and refuses to boot below it. */
#define MACH_FD_RESERVE 4096

/* Raises this process's descriptor limit to its hard limit (and the hard
 * limit to `need` when it is lower and we may); -EMFILE when fewer than
 * `need` descriptors remain possible. */
int mach_fd_limit(unsigned long need);

#define MACH_MAX_REPLIES 64

typedef struct mach_client {
  int sock;
  pid_t pid; /* the machine, if we booted it; else 0 */
  uint64_t next_id;
  /* Replies that arrived while waiting for another one. */
  Uksim__Ctl *early[MACH_MAX_REPLIES];
  int early_fd[MACH_MAX_REPLIES];
  char error[256]; /* the last error, for a person */
} mach_client;

/* Boots a machine as a child of this process and connects to it.  With
 * o->backup it returns once the active kernel answers, through a
 * failover that began at the boot (mach_ping). */
int mach_boot(mach_client *m, const struct mach_opts *o);

/* How long a client waits for a failover to end before it takes the
 * machine's "the kernel went away" (-ESRCH) or "a failover is in
 * progress" (-EAGAIN) for good (ms), and how often it asks again. */
#define MACH_FAILOVER_WAIT_MS 30000
#define MACH_FAILOVER_RETRY_MS 20

/* Pings the active kernel: 0 once it answers.  With wait_ms > 0 a Ping
 * that met a failover (-ESRCH, -EAGAIN) is sent again until the new
 * active answers, for wait_ms at most.  Returns the last status, or the
 * link's error when the machine went away (m->error says which). */
int mach_ping(mach_client *m, uint32_t wait_ms);

/* Connects to a running machine. */
int mach_connect(mach_client *m, const char *name);

/* Sends a request (its id is set here) and returns the id, or -errno. */
int64_t mach_send(mach_client *m, Uksim__Ctl *req);

/* Waits for the reply to request id.  *out is the reply (free it with
 * uksim__ctl__free_unpacked); *fd a descriptor that came with it, or -1.
 * Returns the reply's status (0 or -errno; m->error says why). */
int mach_reply(mach_client *m, uint64_t id, Uksim__Ctl **out, int *fd);

/* Reads one message the machine sent that nobody waits for (the late
 * answer to a request its asker gave up on): 0, or a negative errno once
 * the link is closed (the machine went away; m->error says so). */
int mach_drop_late(mach_client *m);

/* mach_spawn flags. */
#define MACH_SPAWN_REGISTERED 0x1 /* answer once it registers (servers) */
#define MACH_SPAWN_WAITABLE 0x2   /* keep its exit status for a later wait */

/* Convenience: spawn and collect the answer.  Without MACH_SPAWN_WAITABLE a
 * process that exits before mach_wait_send() is already forgotten. */
int mach_spawn(mach_client *m, const char *program, char *const *args,
               size_t nargs, const char *name, unsigned flags, int *proc);
/* Everything a spawn or a replacement can say about the program to start. */
struct mach_prog {
  const char *program; /* a name on the kernel's path, or a path */
  char *const *args;
  size_t nargs;
  const char *name; /* process name; default: program */
  char *const *env; /* extra KEY=VALUE entries (UKSIM_FAULT=...) */
  size_t nenv;
  unsigned flags;       /* MACH_SPAWN_* */
  bool restart;         /* a server: restart its service after a fault */
  uint32_t deadline_ms; /* a server: holding a request longer is a hang */
  bool protect;         /* moves to the backup OS at a failover */
};
int mach_spawn_prog(mach_client *m, const struct mach_prog *p, int *proc);

/* Asks the kernel to replace the server of `svc` with p (seed 000 §5.2).
 * The reply comes at the commit (0; *proc is the new server) or when the
 * replacement failed (-errno; m->error says why; the old server serves on).
 * deadline_ms: from the request to the commit, 0 for the default (5 s). */
int64_t mach_replace_send(mach_client *m, const char *svc,
                          const struct mach_prog *p, uint32_t deadline_ms);
int mach_replace_reply(mach_client *m, uint64_t id, int *proc);

int64_t mach_wait_send(mach_client *m, int proc);
int mach_wait_reply(mach_client *m, uint64_t id, int *exit_status,
                    int *term_signal);
int mach_kill(mach_client *m, int proc, int sig);
/* Makes this program a process of the kernel named `name`, with a
 * namespace that is fresh (ns_proc < 0) or shared with (rfflags 0), copied
 * from (RFNAMEG) or clean beside (RFCNAMEG) process slot ns_proc's.  *fd is
 * its kernel connection: put its number in UKSIM_FD and libuksim's calls
 * (ap_*, ns_*) work; closing it ends the process.  *proc its slot. */
int mach_attach(mach_client *m, const char *name, int ns_proc, uint32_t rfflags,
                int *proc, int *fd);

/* Maps the kernel-data region read-only.  *kd must be unmapped with
 * mach_kdata_unmap(). */
int mach_kdata(mach_client *m, const struct uk_kdata **kd, Uksim__Reply **info);
/* A read-only descriptor of OS os's kernel-data region, whatever its
 * layout (0: the active's); the caller closes it.  0 or a negative errno. */
int mach_kdata_fd(mach_client *m, uint32_t os, int *fd);
void mach_kdata_unmap(const struct uk_kdata *kd);

/* Halts the machine; *icas_live gets the ICAs left after every process
 * ended (0 when nothing leaked).  Waits for a booted machine to exit. */
int mach_halt(mach_client *m, uint32_t *icas_live);

/* Orthros.  Injects a kernel fault (Uksim__Fault__Kind: PANIC, HANG,
 * CRASH) into OS os (0: the active one). */
int mach_fault(mach_client *m, int kind, uint32_t os);
/* The same with the fault's argument (a deadlock's lock: ica, svc, ns). */
int mach_fault_arg(mach_client *m, int kind, uint32_t os, const char *arg);
/* The OS instances: *st gets active_os, backup_os, failovers, active_pid,
 * backup_pid, dead_os (free it with uksim__reply__free_unpacked). */
int mach_status(mach_client *m, Uksim__Reply **st);
/* Kernel update (issue 15): asks the backup OS (another kernel version)
 * to take the active's processes over by method (Uksim__KUpdate__Method);
 * *old_os and *new_os get the two OS numbers.  It returns once asked: the
 * takeover follows (mach_status: failovers, active_os). */
int mach_kupdate(mach_client *m, int method, uint32_t *old_os,
                 uint32_t *new_os);
/* Maps the inter-OS region read-only (unmap with mach_interos_unmap). */
struct uk_interos;
int mach_interos(mach_client *m, const struct uk_interos **io);
void mach_interos_unmap(const struct uk_interos *io);

void mach_close(mach_client *m);

#endif /* UKSIM_MACHINE_H */
