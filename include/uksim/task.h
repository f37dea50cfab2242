/* Migratable tasks (seed 004): an application whose whole state lives in
 * one task memory region, so that a process of the same program on another
 * node can map a copy of the region and continue where the task stopped.
 *
 * The region is a memfd mapped at TASK_REGION_ADDR (MAP_FIXED_NOREPLACE).
 * It holds, from its first byte: the header (struct task_hdr: the task's
 * suspend count, its thread table with each thread's suspend count,
 * priority, scheduling policy and saved registers, the heap's break and
 * the application's root pointer, its service handles and its held ICAs'
 * table), then the threads' stacks, then the heap, where held ICAs are
 * whole pages.  Nothing the task needs lives outside it: pointers inside the
 * region stay valid because the region is at the same address in every
 * process, and code addresses (saved instruction pointers, return
 * addresses on the stacks) stay valid because task programs run without
 * address-space randomisation (task_noaslr), so the same binary and the
 * same libraries load at the same addresses on every node.
 *
 * Threads are user-level contexts (ucontext) run by one kernel thread, the
 * one that calls task_run().  Scheduling is cooperative: the runnable
 * thread (state READY, suspend count 0) of the highest priority runs until
 * it makes a task call; among equal priorities TASK_POLICY_RR rotates and
 * TASK_POLICY_FIFO keeps the thread that ran last.
 *
 * Safe point.  A thread is suspendable only inside a task call (task_yield,
 * task_write, task_read, task_sleep): there its registers are saved in the
 * region and it holds nothing outside it.  A task call is atomic with
 * respect to migration: task_write has written all its bytes before its
 * safe point, task_read has consumed nothing when it waits, so a call in
 * progress at suspension finishes at the origin or restarts at the
 * destination, never both.  The task as a whole is suspended (parked) when
 * its suspend count is above 0 and task_run() has reached the scheduler
 * between two thread runs; task_park() waits for that.
 *
 * Rules for task code: keep every pointer you store inside the region
 * (task_alloc, not malloc); hold no file descriptor, lock or libc buffer
 * across a task call; compile task code without the stack protector
 * (-fno-stack-protector), because the canary is per process and a frame
 * entered at the origin returns at the destination.
 *
 * Example (a task of two threads that counts and prints):
 *
 *   struct state { long n; };
 *   static void counter(void *arg) {
 *     struct state *s = arg;
 *     for (;;) { s->n++; task_printf("n=%ld\n", s->n); task_sleep(10); }
 *   }
 *   int main(int argc, char **argv) {
 *     task_noaslr(argv);            // re-executes itself once, then returns
 *     if (argc > 1) {               // destination: adopt a copied region
 *       if (task_adopt(atoi(argv[1])) < 0) return 1;
 *     } else {
 *       task_init(1 << 20);
 *       struct state *s = task_alloc(sizeof *s);
 *       task_set_root(s);
 *       task_thread_new(counter, s, 10, TASK_POLICY_RR);
 *     }
 *     return task_run() == TASK_RUN_ENDED ? 0 : 0;
 *   }
 *
 * Functions return 0 (or an index) or a negative errno, as libuv's do.
 */
#ifndef UKSIM_TASK_H
#define UKSIM_TASK_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <ucontext.h>

/* Where every task region is mapped, in every task process: far from the
 * program, its heap, the libraries and the stack in a process without
 * address-space randomisation. */
#define TASK_REGION_ADDR ((uintptr_t)0x200000000000ull)
/* Region sizes: at least room for the header and one stack, at most 4 GiB
 * (the largest task the benchmarks move is 1 GiB). */
#define TASK_REGION_MIN (1ull << 20)
#define TASK_REGION_MAX (4ull << 30)
/* The page: the unit the migration methods copy and track. */
#define TASK_PAGE 4096u
/* Threads per task, a fixed table in the header. */
#define TASK_MAX_THREADS 16
/* Each thread's stack, carved from the region after the header: all
 * TASK_MAX_THREADS stacks take half of a TASK_REGION_MIN region. */
#define TASK_STACK_SIZE (32u * 1024u)
/* The migration client sends this signal after task_suspend, so that a
 * scheduler waiting idle (up to 10 ms) parks at once; task_run catches it
 * (a handler that does nothing, SA_RESTART).  A task program must leave
 * it alone. */
#define TASK_KICK_SIGNAL SIGURG
/* Region header layout: bump on any change to struct task_hdr. */
#define TASK_MAGIC 0x6b736174736b7531ull /* "1uksatsk" */
#define TASK_VERSION 3u /* 2: service handles; 3: held ICAs, 512-byte calls */
/* Service handles per task, and the bytes of one request or reply (a
 * control ICA's: a struct kvs_ctl fits). */
#define TASK_SERVICES_MAX 8
#define TASK_CALL_MAX 512
/* ICAs a task holds at once, and the bytes of one (whole pages): the data
 * ICA of a call, which the task's node copies across to the service and
 * back (a copy is unavoidable between nodes, migd_calls.c). */
#define TASK_ICAS_MAX 8
#define TASK_ICA_MAX (64u * 1024u)
#define TASK_NAME_MAX 32 /* a service or node name, NUL included */
/* The descriptor a task process talks to its node's migration server on,
 * for service calls (a SOCK_SEQPACKET socket the server passes). */
#define TASK_SVC_FD 4

enum task_policy {
  TASK_POLICY_RR = 0,   /* yield goes behind the others of its priority */
  TASK_POLICY_FIFO = 1, /* yield keeps its place among its priority */
};

enum task_thread_state {
  TASK_THREAD_FREE = 0,  /* slot unused */
  TASK_THREAD_READY = 1, /* runnable when its suspend count is 0 */
  TASK_THREAD_SLEEP = 2, /* waiting for wake_ms (monotonic, see below) */
  TASK_THREAD_INPUT = 3, /* waiting for console input */
  TASK_THREAD_DEAD = 4,  /* returned from its function */
  TASK_THREAD_CALL = 5,  /* waiting for the answer to a service call */
};

/* A service handle's call, in the region (so it migrates with the task):
 *
 *   IDLE --task_call: request written here, seq+1, sent--> SENT
 *   SENT --the answer of seq arrives--> DONE --the caller takes it--> IDLE
 *   SENT --the task adopted on another node--> SENT, sent again with the
 *          same seq from there (task_adopt): the node that runs the call
 *          answers a seq it ran already from its record, so the call runs
 *          once, whichever node the task was on when it ended
 *
 * An answer whose seq is not the handle's SENT one is dropped. */
enum task_call_state {
  TASK_CALL_IDLE = 0,
  TASK_CALL_SENT = 1,
  TASK_CALL_DONE = 2,
};

struct task_service {
  char name[TASK_NAME_MAX]; /* "" : a free handle */
  char node[TASK_NAME_MAX]; /* the node whose service it is */
  uint64_t seq;             /* calls made; the one SENT has this number */
  int32_t state;            /* enum task_call_state */
  int32_t status;           /* DONE: the service's status */
  uint32_t op;
  uint32_t req_len, rep_len;
  int32_t ica;       /* the call's data ICA (task_call_ica), or -1 */
  uint32_t data_len; /* SENT: its bytes sent; DONE: the bytes come back */
  uint8_t req[TASK_CALL_MAX], rep[TASK_CALL_MAX];
};

/* An ICA the task holds: whole pages of its region, so that it moves with
 * the address space and is at the same address after a move; the header's
 * table is what the destination checks against the list the origin sends
 * (migd.c, Threads). */
struct task_ica {
  uint64_t off; /* in the region, page-aligned; 0: a free slot */
  uint64_t len; /* bytes, whole pages, TASK_ICA_MAX at most */
};

/* One message on TASK_SVC_FD, either way: a request (task -> server) or
 * its answer (status, data the reply).  Both ends are of one build on one
 * host, so it is a fixed layout; between nodes it is migrate.proto's. */
struct task_call_msg {
  uint32_t handle, op;
  uint64_t seq;
  int32_t status;
  uint32_t len;
  char service[TASK_NAME_MAX], node[TASK_NAME_MAX];
  uint8_t data[TASK_CALL_MAX];
  uint32_t ica_len; /* a data ICA's bytes, right behind, in one packet */
  uint32_t pad;
};

/* One thread, in the region: everything that migrates with it. */
struct task_thread {
  int32_t state;       /* enum task_thread_state */
  int32_t suspend;     /* suspend count: runs only at 0 */
  int32_t priority;    /* larger runs first */
  int32_t policy;      /* enum task_policy */
  uint64_t last_run;   /* scheduler tick of its last run (RR order) */
  uint64_t sleep_left; /* ms still to sleep when suspended, see task_park */
  uint64_t wake_ms;    /* CLOCK_MONOTONIC ms of this process to wake at */
  void (*fn)(void *);  /* same address in every process (no ASLR) */
  void *arg;
  uint64_t stack_off; /* offset of its stack in the region */
  ucontext_t ctx;     /* saved registers while not running */
};

/* The region header, at TASK_REGION_ADDR. */
struct task_hdr {
  uint64_t magic;   /* TASK_MAGIC */
  uint32_t version; /* TASK_VERSION */
  uint32_t nthreads_max;
  uint64_t size;           /* region bytes */
  uint64_t heap_off;       /* first heap byte */
  uint64_t brk;            /* next free heap byte (offset) */
  uint64_t tick;           /* scheduler ticks, for RR */
  uint64_t calls;          /* task calls made, all threads */
  uint64_t migrations;     /* times this task has moved */
  void *root;              /* the application's state, set by task_set_root */
  int32_t current;         /* running thread or -1 */
  int32_t last;            /* thread that ran last, for FIFO */
  _Atomic int32_t suspend; /* task suspend count (task_suspend) */
  _Atomic int32_t parked;  /* 1 while the scheduler waits, suspended */
  _Atomic int32_t ended;   /* 1: the task moved; this copy must stop */
  int32_t uffd; /* this process's write-tracking userfaultfd, or -1 */
  struct task_thread th[TASK_MAX_THREADS];
  struct task_service svc[TASK_SERVICES_MAX];
  struct task_ica ica[TASK_ICAS_MAX];
};

/* What task_run() returns (besides a negative errno). */
enum task_run_result {
  TASK_RUN_DONE = 0,  /* every thread returned */
  TASK_RUN_ENDED = 1, /* task_end(): the task continues elsewhere */
};

/* Re-executes the program once without address-space randomisation
 * (personality ADDR_NO_RANDOMIZE) and returns in the re-executed process;
 * returns at once if already so.  Call it first in main() of a task
 * program, on every node.  When the environment has UKSIM_TASK_PARENT=PID
 * (a node's migration server started the task), the process also dies
 * with that parent (PR_SET_PDEATHSIG): a node that disappears takes its
 * tasks along.  With UKSIM_TASK_UFFD=1 too, task_init and task_adopt
 * register the region with a userfaultfd in write-protect mode and note
 * its descriptor in the header (uffd), so that the migration server can
 * take it (pidfd_getfd) and track the pages the task writes (pre-copy).
 * With UKSIM_TASK_DEMAND=1 as well, the registration is in MISSING mode
 * too: a page the region does not hold yet faults to whoever reads that
 * userfaultfd, which fetches it (demand paging, sim-kernel/migpage.h). */
void task_noaslr(char **argv);

/* Creates this process's task: a region of `size` bytes (TASK_REGION_MIN ..
 * TASK_REGION_MAX, rounded up to a page), zero, mapped at TASK_REGION_ADDR.
 * Returns 0, -EINVAL (size), -EEXIST (a task already, or the address is
 * taken) or another -errno. */
int task_init(uint64_t size);

/* Maps the region in memfd `fd` (a copy of another process's region) at
 * TASK_REGION_ADDR as this process's task, after checking its header.
 * With UKSIM_TASK_WAIT_FD=N in the environment (a migration server
 * started the program before the region arrived), it first writes one
 * byte to socket N and waits for one back, the word that the region is
 * whole; end of file instead gives -ECANCELED.  Then the checks:
 * -EINVAL for a region too small or too large, a wrong magic, version or
 * size, or a thread table that points outside the region.  Sleeping
 * threads' deadlines are rebased on this process's clock.  Takes `fd`. */
int task_adopt(int fd);

/* Checks a region image of `len` bytes at `base` (mapped anywhere) as
 * task_adopt does.  Returns 0 or -EINVAL. */
int task_check(const void *base, uint64_t len);

/* The task's region: its header and memfd (-1 when none). */
struct task_hdr *task_hdr(void);
int task_fd(void);

/* Heap: `n` bytes from the region, 16-byte aligned, zero on a fresh region.
 * NULL when the heap is full.  Never freed (the heap is a bump allocator;
 * a task that reuses memory keeps its own free lists). */
void *task_alloc(size_t n);
void task_set_root(void *p);
void *task_root(void);

/* Makes a thread that runs fn(arg) with `priority` and `policy`.  Returns
 * its index, -EINVAL or -EAGAIN (table full or no room for its stack). */
int task_thread_new(void (*fn)(void *), void *arg, int priority, int policy);

/* Runs the task's threads on the calling kernel thread until all have
 * returned (TASK_RUN_DONE) or the task was ended (TASK_RUN_ENDED). */
int task_run(void);

/* Task calls: only from a task thread; each is a safe point. */
void task_yield(void);
void task_sleep(uint64_t ms);
/* Writes all `n` bytes to the console (fd 1), then yields. */
int task_write(const void *buf, size_t n);
int task_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads what console input (fd 0) has, 1 .. n bytes, waiting for some;
 * 0 at end of input. */
long task_read(void *buf, size_t n);
/* The calling thread's index. */
int task_self(void);

/* Service handles (issue 16).  A task calls services of the node it was
 * on when it opened them, wherever it runs now: the node's migration
 * server (uksim-migd) runs each call, and a migration server of another
 * node forwards it there (sim-kernel/migd_calls.c).
 *
 * task_service_open names a service of the node the task runs on now
 * (UKSIM_TASK_NODE): a handle, -EINVAL (a name too long), -ENOSPC (no free
 * handle) or -ENOTCONN (not started by a migration server).  task_call is
 * a task call: it sends op and req[0..len) and waits for the answer,
 * copying at most replen bytes of the reply to rep; returns the service's
 * status, with *replied the reply's length, or -EINVAL / -EBADF / -EMSGSIZE
 * for bad arguments and -EPIPE when the migration server is gone.  One
 * call at a time per handle: another thread's call on it waits. */
int task_service_open(const char *service);
int task_call(int h, uint32_t op, const void *req, size_t len, void *rep,
              size_t replen, size_t *replied);
/* task_call with the task's ICA `ica` for data: its first data_len bytes
 * go to the service as the call's data ICA (0: the call has none), and
 * the data ICA the service answers with, if any, comes back into it, its
 * length in *data_got (0: none; one longer than the task's ICA is
 * refused, -EMSGSIZE).  -EBADF for an ICA the task does not hold,
 * -EINVAL for data_len beyond its length. */
int task_call_ica(int h, uint32_t op, const void *req, size_t len, int ica,
                  size_t data_len, void *rep, size_t replen, size_t *replied,
                  size_t *data_got);

/* Held ICAs: task_ica_new takes `len` bytes (1 .. TASK_ICA_MAX, rounded up
 * to whole pages) from the heap, zero on a fresh region, as an ICA the task
 * holds until it ends: its index, or -EINVAL (len) or -ENOSPC (the table
 * or the heap full).  task_ica gives its address and length (NULL for an
 * ICA not held). */
int task_ica_new(size_t len);
void *task_ica(int i, size_t *len);

/* Thread control, from a task thread or while the task is parked. */
int task_thread_suspend(int i);
int task_thread_resume(int i);
int task_thread_set_priority(int i, int priority, int policy);

/* Task control, from any kernel thread or from another process that maps
 * the region (hdr is that mapping): the migration client's calls.
 * task_suspend raises the task's suspend count; task_park then waits up to
 * timeout_ms for the scheduler to stop at a safe point (0 or -ETIMEDOUT);
 * task_resume lowers the count; task_end makes task_run() return
 * TASK_RUN_ENDED in the process that runs this copy. */
void task_suspend(struct task_hdr *h);
int task_park(struct task_hdr *h, int timeout_ms);
void task_resume(struct task_hdr *h);
void task_end(struct task_hdr *h);

#endif /* UKSIM_TASK_H */
