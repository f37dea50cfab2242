/* uksim-migd: a node's migration server (the protocol and its state
 * machine are in migd.h), and its control client.
 *
 *   uksim-migd --port [HOST!]PORT [--name NODE] [--key FILE] [--die-at STEP]
 *              [--netmsg tcp!HOST!PORT [--node-key FILE]]
 *   uksim-migd [--key FILE] --ctl tcp!HOST!PORT start PROGRAM [ARG...]
 *   uksim-migd --ctl ADDR move TASK NODE|tcp!HOST!PORT [eager|precopy|demand]
 *              [--prepage N]
 *   uksim-migd --ctl ADDR input TASK TEXT
 *   uksim-migd --ctl ADDR ps
 *
 * --key FILE is a node key file (node.h): every connection proves it both
 * ways (migd.h "The handshake"), the key never sent.  HOST defaults to
 * 127.0.0.1; any other address without --key is refused at start.
 * The server listens with libuv; each connection is served by
 * a thread of its own that reads and writes its socket in blocking mode,
 * because a migration is a strict sequence of messages (migd.h) that reads
 * best as straight-line code.  Each task runs under a thread with a
 * private libuv loop that spawned it (uv_spawn), reads its console output
 * and reaps it.  --die-at STEP is fault injection for the tests: the
 * server exits, as a node that disappears, when a migration reaches STEP
 * on either side; its tasks die with it (UKSIM_TASK_PARENT, task.h).
 *
 * Output: task console lines as "task<ID> <line>" on stdout, for every task
 * that started on this node wherever it runs now (and for a task whose
 * origin is gone); notices on stderr.
 */
#include "migd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "migcons.h"
#include "migpage.h"
#include "migrate.pb-c.h"
#include "migwire.h"
#include "node.h"
#include "uksim/9p.h"
#include "uksim/node.h"
#include "uksim/num.h"
#include "uksim/task.h"
#include "uksim/xalloc.h"

enum ent_state {
  ENT_FREE = 0,
  ENT_STARTING, /* spawned, not yet known to run */
  ENT_RUNNING,  /* runs here */
  ENT_PARKED,   /* arrived here, waits for Resume */
  ENT_MOVED,    /* moved away: its console comes back here */
  ENT_EXITED,
  ENT_LOST, /* died with a node while its pages were fetched (migd.h) */
};

struct ent {
  int state; /* enum ent_state */
  uint64_t id;
  pid_t pid;
  int status;
  char program[PATH_MAX];
  int region_fd;        /* adopted here: the memfd; else -1 until a move */
  struct migcons in;    /* its console input, here and across moves */
  char origin[64];      /* "" when it started here */
  uint64_t origin_task; /* its id at the origin */
  int console_fd;       /* to the origin, for output; -1: print here */
  int console_old;      /* the last one detached, closed at the next */
  char line[512];       /* output line being assembled */
  size_t line_len;
  uv_sem_t spawned;
  int spawn_err;
  int demand;     /* arrived by demand paging: its region faults to us */
  int wait_fd;    /* pre-spawned copy: our end of its wait socket, or -1 */
  int wait_child; /* its end, until it is spawned, or -1 */
  int fetching;   /* demand paging: pages still at the origin */
};

static struct ent ents[MIGD_TASKS_MAX];
static pthread_mutex_t ents_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_id = 1;
static const char *node_name = "node";
/* The key this server and its dialers prove (--key FILE, migd.h "The
 * handshake"), or NULL: none. */
static const uint8_t *mig_key;
static uint8_t mig_key_buf[MIG_KEY_LEN];
static char node_addr[64];
static const char *die_at;
/* Finding other nodes' migration servers by name (migd_names.c). */
static const char *netmsg_addr = "";
static const char *netmsg_keyfile = "";

/* Fault injection: this node disappears at `step`. */
static void step(const char *name) {
  if (die_at && strcmp(die_at, name) == 0) {
    fprintf(stderr, "migd %s: dying at %s (--die-at)\n", node_name, name);
    _exit(3);
  }
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- the task table ---- */

/* What an entry made before still holds, when it is made anew: its task
 * has ended (or came home as another entry), so its region, its input
 * pipe and its last console connection go.  A node takes task after task
 * without running out of descriptors or of memory (a region is a memfd). */
static void ent_release(struct ent *e) {
  if (e->id == 0)
    return; /* never made */
  if (e->console_old >= 0)
    close(e->console_old);
  if (e->console_fd >= 0)
    close(e->console_fd);
  if (e->region_fd >= 0)
    close(e->region_fd);
  migcons_close(&e->in);
}

static struct ent *ent_new(void) {
  pthread_mutex_lock(&ents_lock);
  for (int i = 0; i < MIGD_TASKS_MAX; i++) {
    struct ent *e = &ents[i];
    if (e->state == ENT_FREE || e->state == ENT_EXITED) {
      ent_release(e);
      memset(e, 0, sizeof *e);
      e->state = ENT_STARTING;
      e->id = next_id++;
      e->region_fd = e->console_fd = e->console_old = -1;
      e->wait_fd = e->wait_child = -1;
      migcons_init(&e->in, e->id);
      pthread_mutex_unlock(&ents_lock);
      return e;
    }
  }
  pthread_mutex_unlock(&ents_lock);
  return NULL;
}

static struct ent *ent_lookup(uint64_t id) {
  for (int i = 0; i < MIGD_TASKS_MAX; i++)
    if (ents[i].state != ENT_FREE && ents[i].id == id)
      return &ents[i];
  return NULL;
}

/* ---- console ---- */

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* Drops the console connection of a task: its output is printed here
 * from now on.  The connection's reader ends at the shutdown; the
 * descriptor is closed only at the entry's next detach or reuse, long
 * after, so that no thread that read console_fd a moment before sends on
 * a number reused meanwhile. */
static void console_detach(struct ent *e) {
  if (e->console_fd < 0)
    return;
  shutdown(e->console_fd, SHUT_RDWR);
  if (e->console_old >= 0)
    close(e->console_old);
  e->console_old = e->console_fd;
  e->console_fd = -1;
}

/* Prints whole lines of task `id`'s output, keeping a partial one. */
static void print_lines(struct ent *e, uint64_t id, const char *p, size_t n) {
  pthread_mutex_lock(&out_lock);
  for (size_t k = 0; k < n; k++) {
    if (p[k] != '\n' && e->line_len < sizeof e->line - 1) {
      e->line[e->line_len++] = p[k];
      continue;
    }
    if (p[k] == '\n') {
      printf("task%llu %.*s\n", (unsigned long long)id, (int)e->line_len,
             e->line);
      e->line_len = 0;
    }
  }
  fflush(stdout);
  pthread_mutex_unlock(&out_lock);
}

/* Output of a task running here: to its origin while it answers, then
 * here (the origin is gone: seed 004 §4, I/O at the destination). */
static void console_out(struct ent *e, const char *p, size_t n) {
  if (e->console_fd >= 0) {
    MigMsg m = MIG_MSG__INIT;
    MigConsole c = MIG_CONSOLE__INIT;
    c.task = e->origin_task;
    c.data.data = (uint8_t *)p;
    c.data.len = n;
    m.m_case = MIG_MSG__M_CONSOLE;
    m.console = &c;
    if (mig_send(e->console_fd, &m) == 0)
      return;
    fprintf(stderr, "migd %s: task%llu: origin %s gone, console here\n",
            node_name, (unsigned long long)e->id, e->origin);
    console_detach(e);
  }
  print_lines(e, e->id, p, n);
}

/* Input from the origin for a task that runs here, and the origin's
 * Held (migcons.h). */
static void *console_in_main(void *arg) {
  struct ent *e = arg;
  int fd = e->console_fd, r;
  MigMsg *m;
  while ((m = mig_recv(fd)) != NULL) {
    MigConsole *c = m->m_case == MIG_MSG__M_CONSOLE ? m->console : NULL;
    if (c && c->held)
      migcons_acked(&e->in, 1);
    else if (c && c->input &&
             (r = migcons_input(&e->in, c->data.data, c->data.len)) < 0)
      fprintf(stderr, "migd %s: task%llu input dropped: %s\n", node_name,
              (unsigned long long)e->id, strerror(-r));
    mig_msg__free_unpacked(m, NULL);
  }
  migcons_acked(&e->in, -1);
  return NULL;
}

/* Opens the console connection of an arrived task to its origin node. */
static void console_attach(struct ent *e) {
  char why[MIG_ERR_MAX];
  int fd = mig_dial(e->origin, mig_key, why, sizeof why);
  if (fd < 0) {
    fprintf(stderr, "migd %s: task%llu: origin %s, console here\n", node_name,
            (unsigned long long)e->id, why);
    return;
  }
  e->console_fd = fd;
  console_out(e, "", 0); /* an empty Console message attaches */
  pthread_t t;
  if (pthread_create(&t, NULL, console_in_main, e) == 0)
    pthread_detach(t);
}

/* ---- task processes ---- */

struct runner {
  struct ent *e;
  char **argv;
  int stdin_rd;
  int calls_fd; /* the server's end of the task's TASK_SVC_FD */
  pid_t pid;    /* the process, once spawned */
  uv_loop_t loop;
  uv_process_t proc;
  uv_pipe_t out;
};

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf) {
  (void)h;
  static __thread char chunk[4096];
  (void)want;
  *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct runner *r = s->data;
  if (n > 0)
    console_out(r->e, buf->base, (size_t)n);
  else if (n < 0)
    uv_close((uv_handle_t *)s, NULL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  struct runner *r = p->data;
  struct ent *e = r->e;
  pthread_mutex_lock(&ents_lock);
  /* A copy ended by a move whose destination was then lost may exit
   * after restart_here started its successor in the same entry: its
   * exit says nothing of the entry then. */
  int current = p->pid == e->pid;
  if (current)
    e->status = sig ? 128 + sig : (int)status;
  if (current && e->state != ENT_MOVED && e->state != ENT_LOST)
    e->state = ENT_EXITED;
  pthread_mutex_unlock(&ents_lock);
  if (current && e->state == ENT_EXITED)
    fprintf(stderr, "migd %s: task%llu exited, status %d\n", node_name,
            (unsigned long long)e->id, e->status);
  uv_close((uv_handle_t *)p, NULL);
}

/* The task's service calls (migd_calls.c): its TASK_SVC_FD, and who it is
 * for the records (its origin node and id there). */
static int calls_open(struct runner *r, int *child) {
  r->calls_fd = migd_calls_pair(child);
  return r->calls_fd < 0 ? r->calls_fd : 0;
}

static void calls_start(struct runner *r, int child) {
  struct ent *e = r->e;
  close(child);
  migd_calls_start(r->calls_fd, e->origin[0] ? e->origin : node_addr,
                   e->origin[0] ? e->origin_task : e->id);
}

static int spawn(struct runner *r) {
  int child = -1;
  if (calls_open(r, &child) < 0)
    return r->calls_fd;
  uv_stdio_container_t io[6] = {
      {.flags = UV_INHERIT_FD, .data.fd = r->stdin_rd},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
       .data.stream = (uv_stream_t *)&r->out},
      {.flags = UV_INHERIT_FD, .data.fd = 2},
      {.flags = r->e->region_fd >= 0 ? UV_INHERIT_FD : UV_IGNORE,
       .data.fd = r->e->region_fd},
      {.flags = UV_INHERIT_FD, .data.fd = child},
      {.flags = r->e->wait_child >= 0 ? UV_INHERIT_FD : UV_IGNORE,
       .data.fd = r->e->wait_child},
  };
  _Static_assert(TASK_SVC_FD == 4, "the fifth stdio descriptor");
  /* The sixth, a pre-spawned copy's wait socket, is UKSIM_TASK_WAIT_FD. */
  char parent[32], node[32 + TASK_NAME_MAX];
  snprintf(parent, sizeof parent, "UKSIM_TASK_PARENT=%d", (int)getpid());
  snprintf(node, sizeof node, "UKSIM_TASK_NODE=%s", node_name);
  char *env[7] = {parent, "UKSIM_TASK_UFFD=1", "UKSIM_TASK_SVC=1", node},
       **more = env + 4;
  if (r->e->demand)
    *more++ = "UKSIM_TASK_DEMAND=1";
  if (r->e->wait_child >= 0)
    *more++ = "UKSIM_TASK_WAIT_FD=5";
  uv_process_options_t o = {
      .exit_cb = on_exit_cb,
      .file = r->argv[0],
      .args = r->argv,
      .env = env,
      .stdio_count = r->e->wait_child >= 0 ? 6 : 5,
      .stdio = io,
  };
  uv_pipe_init(&r->loop, &r->out, 0);
  r->out.data = r;
  r->proc.data = r;
  int err = uv_spawn(&r->loop, &r->proc, &o);
  if (err < 0) {
    uv_close((uv_handle_t *)&r->out, NULL);
    close(child);
    close(r->calls_fd);
    return err;
  }
  calls_start(r, child);
  r->pid = r->proc.pid;
  pthread_mutex_lock(&ents_lock);
  r->e->pid = r->pid;
  pthread_mutex_unlock(&ents_lock);
  return uv_read_start((uv_stream_t *)&r->out, on_alloc, on_output);
}

static void *runner_main(void *arg) {
  struct runner *r = arg;
  uv_loop_init(&r->loop);
  r->e->spawn_err = spawn(r);
  close(r->stdin_rd);
  uv_sem_post(&r->e->spawned);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  /* The console connection goes with the process, unless restart_here
   * has given the entry another process (and perhaps a connection of its
   * own) meanwhile. */
  pthread_mutex_lock(&ents_lock);
  if (r->e->pid == r->pid)
    console_detach(r->e);
  pthread_mutex_unlock(&ents_lock);
  for (char **a = r->argv; *a; a++)
    free(*a);
  free(r->argv);
  free(r);
  return NULL;
}

/* Starts argv as task e (with its region memfd as fd 3 when adopting). */
static int ent_start(struct ent *e, char **argv) {
  int rd = migcons_pipe(&e->in);
  if (rd < 0)
    return rd;
  struct runner *r = xcalloc(1, sizeof *r);
  r->e = e;
  r->argv = argv;
  r->stdin_rd = rd;
  snprintf(e->program, sizeof e->program, "%s", argv[0]);
  uv_sem_init(&e->spawned, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, runner_main, r) != 0)
    abort();
  pthread_detach(t);
  uv_sem_wait(&e->spawned);
  uv_sem_destroy(&e->spawned);
  if (e->wait_child >= 0)
    close(e->wait_child);
  e->wait_child = -1;
  return e->spawn_err;
}

/* ---- replies ---- */

static int reply(int fd, MigResult *res) {
  MigMsg m = MIG_MSG__INIT;
  m.m_case = MIG_MSG__M_RESULT;
  m.result = res;
  return mig_send(fd, &m);
}

static int reply_err(int fd, int err, const char *msg) {
  return mig_send_result(fd, err, msg);
}

/* ---- origin: the migration client ---- */

/* One migration as the origin sees it. */
struct mig {
  struct ent *e;
  MigMove *req;
  int fd;             /* to the destination */
  struct task_hdr *h; /* the region, mapped here */
  uint64_t size;
  int suspended;  /* this client raised the task's suspend count */
  uint64_t bytes; /* page bytes sent */
  uint64_t rounds;
  uint64_t t_suspend;
  const char *why; /* error text for the controller */
  int uffd;        /* pre-copy: the task's write tracking, or -1 */
  uint8_t *dirty;  /* pre-copy: 1 per page written since sent */
  _Atomic int wp_stop;
  pthread_t wp_thread;
  uint64_t t_resumed;      /* the destination said Resumed */
  char refusal[256];       /* the destination's words, for `why` */
  struct migpage_stats ps; /* demand paging's figures */
  uint8_t *small;          /* a run below MIG_BULK_MIN on its way */
  uint8_t *carry;          /* the input the task had not read (migcons.h) */
  size_t carry_len;
  int held_asked; /* this node asked the task's origin to hold its input */
};

/* The region memfd of a task this node started: its process holds it as
 * "memfd:uksim-task"; /proc/PID/fd/N opens the same memfd. */
static int open_region(pid_t pid) {
  char dir[64], link[PATH_MAX], path[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(dir);
  if (!d)
    return -errno;
  struct dirent *de;
  int fd = -ENOENT;
  while ((de = readdir(d)) != NULL && fd == -ENOENT) {
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0)
      continue;
    link[n] = 0;
    if (strncmp(link, "/memfd:uksim-task", 17) == 0)
      fd = open(path, O_RDWR | O_CLOEXEC);
  }
  closedir(d);
  return fd;
}

/* The region of a task started a moment ago may not exist yet (its
 * process is still re-executed without ASLR, task.h): waits up to
 * MIG_PARK_TIMEOUT_MS for it, as for the task's safe point. */
static int await_region(pid_t pid) {
  int fd = open_region(pid);
  for (int ms = 0; fd == -ENOENT && ms < MIG_PARK_TIMEOUT_MS; ms += 10) {
    usleep(10000);
    fd = open_region(pid);
  }
  return fd;
}

static int map_task(struct mig *g) {
  struct ent *e = g->e;
  if (e->region_fd < 0)
    e->region_fd = await_region(e->pid);
  if (e->region_fd < 0) {
    g->why = "cannot open the task's region";
    return e->region_fd;
  }
  off_t size = lseek(e->region_fd, 0, SEEK_END);
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 e->region_fd, 0);
  if (size <= 0 || p == MAP_FAILED) {
    g->why = "cannot map the task's region";
    return -EINVAL;
  }
  g->h = p;
  g->size = (uint64_t)size;
  return 0;
}

static int send_msg(struct mig *g, MigMsg *m, const char *why) {
  int r = mig_send(g->fd, m);
  if (r < 0)
    g->why = why;
  return r;
}

static int suspend_task(struct mig *g) {
  task_suspend(g->h);
  kill(g->e->pid, TASK_KICK_SIGNAL); /* out of its idle wait at once */
  g->suspended = 1;
  g->t_suspend = now_us();
  if (task_park(g->h, MIG_PARK_TIMEOUT_MS) < 0) {
    g->why = "the task did not reach a safe point";
    return -ETIMEDOUT;
  }
  g->h->migrations++;
  return 0;
}

/* PRESPAWNED: the destination's program is up and waits for the region
 * (or the destination refused the task: Confirm(err)). */
static int await_ready(struct mig *g) {
  MigMsg *m = mig_recv(g->fd);
  int r = -EPIPE;
  g->why = "destination lost (create)";
  if (m && m->m_case == MIG_MSG__M_READY) {
    r = 0;
    g->why = NULL;
  } else if (m && m->m_case == MIG_MSG__M_CONFIRM) {
    r = m->confirm->err ? m->confirm->err : -EPROTO;
    snprintf(g->refusal, sizeof g->refusal, "destination refused: %s",
             m->confirm->msg);
    g->why = g->refusal;
  }
  if (m)
    mig_msg__free_unpacked(m, NULL);
  return r;
}

static uint64_t next_data(struct mig *g, uint64_t pg, uint64_t end);
static uint64_t data_end(struct mig *g, uint64_t pg, uint64_t end);

/* The region's data extents now, as (offset, length) byte pairs into
 * pairs (2 * MIG_RESERVE_MAX); their count times two. */
static size_t data_extents(struct mig *g, uint64_t *pairs) {
  uint64_t end = g->size / TASK_PAGE, pg = 0;
  size_t n = 0;
  while (n < 2 * MIG_RESERVE_MAX && (pg = next_data(g, pg, end)) < end) {
    uint64_t stop = data_end(g, pg, end);
    pairs[n++] = pg * TASK_PAGE;
    pairs[n++] = (stop - pg) * TASK_PAGE;
    pg = stop;
  }
  return n;
}

static int send_create(struct mig *g) {
  MigMsg m = MIG_MSG__INIT;
  MigCreate c = MIG_CREATE__INIT;
  uint64_t pairs[2 * MIG_RESERVE_MAX];
  if (g->req->method != MIG_METHOD__MIG_DEMAND) {
    c.n_reserve = data_extents(g, pairs);
    c.reserve = pairs;
  }
  c.size = g->size;
  c.program = g->e->program;
  c.method = g->req->method;
  c.origin = g->e->origin[0] ? g->e->origin : node_addr;
  c.origin_task = g->e->origin[0] ? g->e->origin_task : g->e->id;
  c.prepage = g->req->prepage;
  m.m_case = MIG_MSG__M_CREATE;
  m.create = &c;
  if (send_msg(g, &m, "destination lost (create)") < 0)
    return -EPIPE;
  return await_ready(g);
}

/* The first page at or after pg that the memfd holds: holes (pages never
 * written) are skipped without touching them, since reading one would
 * allocate it. */
static uint64_t next_data(struct mig *g, uint64_t pg, uint64_t end) {
  off_t off = lseek(g->e->region_fd, (off_t)(pg * TASK_PAGE), SEEK_DATA);
  if (off < 0)
    return end; /* ENXIO: only holes from here */
  uint64_t next = (uint64_t)off / TASK_PAGE;
  return next < end ? next : end;
}

/* The first hole at or after pg (or end): where a data extent stops. */
static uint64_t data_end(struct mig *g, uint64_t pg, uint64_t end) {
  off_t off = lseek(g->e->region_fd, (off_t)(pg * TASK_PAGE), SEEK_HOLE);
  uint64_t next = off < 0 ? end : ((uint64_t)off + TASK_PAGE - 1) / TASK_PAGE;
  return next < end ? next : end;
}

/* A short run's bytes into p->data (MIG_BULK_MIN at most), read from the
 * memfd: reading through a mapping would fault on every page. */
static int inline_run(struct mig *g, MigPages *p, size_t len) {
  if (!g->small)
    g->small = xmalloc(MIG_BULK_MIN);
  if (pread(g->e->region_fd, g->small, len, (off_t)p->offset) != (ssize_t)len)
    return -EIO;
  p->data.data = g->small;
  p->data.len = len;
  return 0;
}

/* Sends pages [pg, pg + n) (n * TASK_PAGE <= MIG_BULK_MAX) as one Pages
 * message: a bulk one, whose bytes go from the memfd to the socket by
 * sendfile, neither read into this process nor packed (migrate.proto);
 * below MIG_BULK_MIN, in `data`. */
static int send_run(struct mig *g, uint64_t pg, uint64_t n, int last) {
  size_t len = (size_t)(n * TASK_PAGE);
  MigMsg m = MIG_MSG__INIT;
  MigPages p = MIG_PAGES__INIT;
  p.offset = pg * TASK_PAGE;
  p.last_round = last;
  m.m_case = MIG_MSG__M_PAGES;
  m.pages = &p;
  int r = len < MIG_BULK_MIN ? inline_run(g, &p, len) : 0;
  p.bulk = len < MIG_BULK_MIN ? 0 : len;
  if (r == 0)
    r = mig_send_bulk(g->fd, &m, g->e->region_fd, (off_t)p.offset, p.bulk);
  if (r < 0) {
    g->why = r == -EIO ? "cannot read the task's region"
                       : "destination lost (pages)";
    return r == -EIO ? r : -EPIPE;
  }
  g->bytes += len;
  return 0;
}

/* Sends pages [pg, stop) in runs of at most MIG_BULK_MAX bytes. */
static int send_extent(struct mig *g, uint64_t pg, uint64_t stop, int last) {
  const uint64_t most = MIG_BULK_MAX / TASK_PAGE;
  for (uint64_t run; pg < stop; pg += run) {
    run = stop - pg < most ? stop - pg : most;
    int r = send_run(g, pg, run, last);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Sends pages [first, first + n); with `skip_holes`, only those the memfd
 * holds, an extent of data at a time: a fresh destination region is zero
 * already (a page written again must go even if zero). */
static int send_pages(struct mig *g, uint64_t first, uint64_t n, int last,
                      int skip_holes) {
  uint64_t pg = first, end = first + n;
  while (pg < end) {
    if (skip_holes && (pg = next_data(g, pg, end)) >= end)
      break;
    uint64_t stop = skip_holes ? data_end(g, pg, end) : end;
    int r = send_extent(g, pg, stop, last);
    if (r < 0)
      return r;
    pg = stop;
  }
  return 0;
}

static int send_threads(struct mig *g) {
  MigMsg m = MIG_MSG__INIT;
  MigThreads t = MIG_THREADS__INIT;
  MigThread th[TASK_MAX_THREADS], *thp[TASK_MAX_THREADS];
  uint32_t icas[TASK_ICAS_MAX];
  for (int i = 0; i < TASK_ICAS_MAX; i++)
    if (g->h->ica[i].off != 0)
      icas[t.n_icas++] = (uint32_t)i;
  t.icas = icas;
  for (int i = 0; i < TASK_MAX_THREADS; i++) {
    mig_thread__init(&th[i]);
    th[i].index = (uint32_t)i;
    th[i].state = g->h->th[i].state;
    th[i].suspend = g->h->th[i].suspend;
    th[i].priority = g->h->th[i].priority;
    th[i].policy = g->h->th[i].policy;
    thp[i] = &th[i];
  }
  t.n_threads = TASK_MAX_THREADS;
  t.threads = thp;
  t.task_suspend = atomic_load(&g->h->suspend);
  m.m_case = MIG_MSG__M_THREADS;
  m.threads = &t;
  return send_msg(g, &m, "destination lost (threads)");
}

/* The destination's Confirm, or its reason for refusing. */
static int await_confirm(struct mig *g, char *why, size_t n) {
  MigMsg m0 = MIG_MSG__INIT;
  m0.m_case = MIG_MSG__M_COMMIT;
  MigCommit c = MIG_COMMIT__INIT;
  m0.commit = &c;
  if (send_msg(g, &m0, "destination lost (commit)") < 0)
    return -EPIPE;
  MigMsg *m = mig_recv(g->fd);
  int r = -EPIPE;
  g->why = "destination lost before confirming";
  if (m && m->m_case == MIG_MSG__M_CONFIRM) {
    r = m->confirm->err;
    snprintf(why, n, "destination refused: %s", m->confirm->msg);
    g->why = r ? why : NULL;
  }
  if (m)
    mig_msg__free_unpacked(m, NULL);
  return r;
}

static int copy_eager(struct mig *g) {
  int r = send_create(g);
  if (r == 0)
    r = suspend_task(g);
  step("create");
  if (r == 0)
    r = send_pages(g, 0, g->size / TASK_PAGE, 1, 1);
  step("pages");
  return r;
}

/* ---- pre-copy: write tracking with userfaultfd write-protect ---- */

/* Write-protects (on) or releases pages [pg, pg + n) of the task. */
static int wp_range(struct mig *g, uint64_t pg, uint64_t n, int on) {
  struct uffdio_writeprotect wp = {
      .range = {.start = TASK_REGION_ADDR + pg * TASK_PAGE,
                .len = n * TASK_PAGE},
      .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
  return ioctl(g->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

/* The tracker: a write to a protected page faults here; the page is
 * noted dirty and released, which wakes the writer. */
static void *wp_main(void *arg) {
  struct mig *g = arg;
  struct pollfd pfd = {.fd = g->uffd, .events = POLLIN};
  while (!atomic_load(&g->wp_stop)) {
    if (poll(&pfd, 1, 20) <= 0)
      continue;
    struct uffd_msg msg;
    if (read(g->uffd, &msg, sizeof msg) != sizeof msg ||
        msg.event != UFFD_EVENT_PAGEFAULT)
      continue;
    uint64_t pg = (msg.arg.pagefault.address - TASK_REGION_ADDR) / TASK_PAGE;
    if (pg < g->size / TASK_PAGE) {
      __atomic_store_n(&g->dirty[pg], 1, __ATOMIC_RELEASE);
      wp_range(g, pg, 1, 0);
    }
  }
  return NULL;
}

/* Takes the task's userfaultfd (its process registered it, task.h) and
 * protects the whole region. */
static int wp_start(struct mig *g) {
  int pfd = (int)pidfd_open(g->e->pid, 0);
  g->uffd = pfd >= 0 && g->h->uffd >= 0 ? pidfd_getfd(pfd, g->h->uffd, 0) : -1;
  if (pfd >= 0)
    close(pfd);
  if (g->uffd < 0) {
    g->why = "the task has no write tracking (userfaultfd)";
    return -ENOTSUP;
  }
  g->dirty = xcalloc(g->size / TASK_PAGE, 1);
  int r = wp_range(g, 0, g->size / TASK_PAGE, 1);
  if (r == 0 && pthread_create(&g->wp_thread, NULL, wp_main, g) != 0)
    r = -EAGAIN;
  if (r < 0) {
    g->why = "cannot write-protect the task";
    return r;
  }
  return 0;
}

static void wp_stop(struct mig *g) {
  if (g->uffd < 0)
    return;
  if (g->dirty) {
    atomic_store(&g->wp_stop, 1);
    pthread_join(g->wp_thread, NULL);
  }
  wp_range(g, 0, g->size / TASK_PAGE, 0);
  close(g->uffd);
  g->uffd = -1;
}

/* One round: every page written since it was sent is protected again,
 * then sent.  `last`: the task is parked, nothing to protect. */
static int send_dirty(struct mig *g, int last, uint64_t *count) {
  uint64_t pages = g->size / TASK_PAGE;
  *count = 0;
  /* Runs of written pages go as one message each: the last round runs
   * while the task is stopped, and a message a page was most of it. */
  for (uint64_t pg = 0, n; pg < pages; pg += n ? n : 1) {
    for (n = 0; pg + n < pages && n < MIG_CHUNK / TASK_PAGE &&
                __atomic_exchange_n(&g->dirty[pg + n], 0, __ATOMIC_ACQ_REL);
         n++)
      ;
    *count += n;
    if (n && !last)
      wp_range(g, pg, n, 1);
    if (n && send_pages(g, pg, n, last, 0) < 0)
      return -EPIPE;
  }
  return 0;
}

static uint64_t dirty_pages(struct mig *g) {
  uint64_t n = 0, pages = g->size / TASK_PAGE;
  for (uint64_t pg = 0; pg < pages; pg++)
    n += __atomic_load_n(&g->dirty[pg], __ATOMIC_ACQUIRE);
  return n;
}

/* Pre-copy: everything while running, then rounds of what was written
 * again until little is left (MIG_PRECOPY_STOP_PAGES) or the rounds run
 * out; then the task stops for the last round. */
static int copy_precopy(struct mig *g) {
  uint64_t n;
  int r = wp_start(g);
  if (r == 0)
    r = send_create(g);
  step("create");
  if (r == 0)
    r = send_pages(g, 0, g->size / TASK_PAGE, 0, 1);
  g->rounds = 1;
  while (r == 0 && g->rounds < MIG_PRECOPY_ROUNDS_MAX &&
         dirty_pages(g) > MIG_PRECOPY_STOP_PAGES) {
    r = send_dirty(g, 0, &n);
    g->rounds++;
  }
  if (r == 0)
    r = suspend_task(g);
  if (r == 0)
    r = send_dirty(g, 1, &n);
  step("pages");
  return r; /* tracking stops after the move (wp_stop), out of downtime */
}

/* ---- console input at a move (migcons.h) ---- */

/* Not the task's origin: the origin stops sending its input here first,
 * so that none is on its way when the pipe is drained. */
static void hold_origin_input(struct mig *g) {
  struct ent *e = g->e;
  if (!e->origin[0] || e->console_fd < 0)
    return;
  g->held_asked = 1;
  if (migcons_await_held(&e->in, e->console_fd, MIG_PEER_TIMEOUT_MS) < 0)
    fprintf(stderr, "migd %s: task%llu: origin %s does not hold its input\n",
            node_name, (unsigned long long)e->id, e->origin);
}

/* The task parked: what it has not read goes to the destination before
 * Threads, which the destination puts into its copy's pipe first. */
static int carry_input(struct mig *g) {
  hold_origin_input(g);
  g->carry = xmalloc(MIG_INPUT_MAX);
  g->carry_len = migcons_drain(&g->e->in, g->carry);
  if (g->carry_len == 0)
    return 0;
  MigMsg m = MIG_MSG__INIT;
  MigConsole c = MIG_CONSOLE__INIT;
  c.task = g->e->in.task;
  c.input = 1;
  c.data.data = g->carry;
  c.data.len = g->carry_len;
  m.m_case = MIG_MSG__M_CONSOLE;
  m.console = &c;
  return send_msg(g, &m, "destination lost (input)");
}

/* The task runs here again (a move aborted, or restarted from the
 * duplicate): its unread input back into its pipe, the origin told to
 * send the rest here again. */
static void input_back(struct mig *g) {
  struct ent *e = g->e;
  if (g->carry)
    migcons_local(&e->in, g->carry, g->carry_len);
  if (g->held_asked && e->console_fd >= 0)
    migcons_say_active(e->console_fd, e->in.task);
}

/* Before COMMITTED: the origin's copy goes on. */
static void abort_move(struct mig *g) {
  wp_stop(g);
  input_back(g);
  if (g->suspended) {
    if (atomic_load(&g->h->parked))
      g->h->migrations--;
    task_resume(g->h);
  }
}

/* After CONFIRM the destination was lost before it resumed: the task
 * runs again here, from the duplicate this node kept. */
/* Waits until the process of the copy task_end ended has gone: were
 * the region's `ended` cleared before it saw it, that copy would run on
 * beside its successor, two processes in one region. */
static void await_end(pid_t pid) {
  int pfd = (int)pidfd_open(pid, 0);
  if (pfd < 0)
    return; /* gone already */
  struct pollfd p = {.fd = pfd, .events = POLLIN};
  if (poll(&p, 1, MIG_PARK_TIMEOUT_MS) != 1) {
    kill(pid, SIGKILL);
    poll(&p, 1, MIG_PARK_TIMEOUT_MS);
  }
  close(pfd);
}

static void restart_here(struct mig *g) {
  struct ent *e = g->e;
  fprintf(stderr,
          "migd %s: task%llu: destination lost after confirm, "
          "restarting from the duplicate\n",
          node_name, (unsigned long long)e->id);
  await_end(e->pid);
  atomic_store(&g->h->ended, 0);
  g->h->migrations--;
  char **argv = xcalloc(4, sizeof *argv);
  argv[0] = xstrdup(e->program);
  argv[1] = xstrdup("--adopt");
  argv[2] = xstrdup("3");
  e->state = ENT_STARTING;
  /* The ended copy's console connection went or goes with it (runner_main):
   * one of the new process's own, Active on it in input_back. */
  pthread_mutex_lock(&ents_lock);
  console_detach(e);
  pthread_mutex_unlock(&ents_lock);
  if (ent_start(e, argv) == 0) {
    e->state = ENT_RUNNING;
    if (e->origin[0] && strcmp(e->origin, node_addr) != 0)
      console_attach(e);
    input_back(g); /* into the new process's pipe */
    task_resume(g->h);
  }
}

/* COMMITTED: end the origin copy, then let the destination resume. */
static int commit_move(struct mig *g) {
  pthread_mutex_lock(&ents_lock);
  g->e->state = ENT_MOVED;
  pthread_mutex_unlock(&ents_lock);
  task_end(g->h);
  step("end");
  MigMsg m = MIG_MSG__INIT;
  MigResume rs = MIG_RESUME__INIT;
  m.m_case = MIG_MSG__M_RESUME;
  m.resume = &rs;
  MigMsg *a = NULL;
  if (mig_send(g->fd, &m) == 0)
    a = mig_recv(g->fd);
  int ok = a && a->m_case == MIG_MSG__M_RESUMED;
  if (a)
    mig_msg__free_unpacked(a, NULL);
  if (!ok) {
    restart_here(g);
    g->why = "destination lost after confirm; the task runs here again";
    return -EPIPE;
  }
  g->t_resumed = now_us();
  return 0;
}

/* ---- demand paging (migpage.h; its states in migd.h) ---- */

/* COPYING for demand paging: the task stops for its header pages only.
 * Every header page goes, holes too: the destination counts them in. */
static int copy_demand(struct mig *g) {
  if (g->req->prepage > MIG_PREPAGE_MAX) {
    g->why = "prepage above MIG_PREPAGE_MAX";
    return -EINVAL;
  }
  int r = send_create(g);
  if (r == 0)
    r = suspend_task(g);
  step("create");
  if (r == 0)
    r = send_pages(g, 0, MIG_HEADER_BYTES / TASK_PAGE, 1, 0);
  step("pages");
  return r;
}

static void served_first(void) {
  step("serve");
}

/* SERVING: pages from the duplicate until the destination has them all;
 * then, or when the destination is lost, the duplicate goes. */
static int serve_demand(struct mig *g) {
  struct ent *e = g->e;
  int r = migpage_serve(g->fd, e->region_fd, g->size, &g->ps, served_first);
  g->bytes += g->ps.bytes;
  pthread_mutex_lock(&ents_lock);
  if (r < 0)
    e->state = ENT_LOST;
  close(e->region_fd);
  e->region_fd = -1;
  pthread_mutex_unlock(&ents_lock);
  if (r < 0) {
    fprintf(stderr,
            "migd %s: task%llu lost: the destination went away before it "
            "had every page (demand paging's residual dependency)\n",
            node_name, (unsigned long long)e->id);
    g->why = "task lost: the destination went away while it fetched "
             "pages from here (demand paging's residual dependency)";
  }
  return r;
}

static int copy_space(struct mig *g) {
  switch (g->req->method) {
  case MIG_METHOD__MIG_PRECOPY:
    return copy_precopy(g);
  case MIG_METHOD__MIG_DEMAND:
    return copy_demand(g);
  default:
    return copy_eager(g);
  }
}

static int move_task(struct mig *g) {
  int r = map_task(g);
  if (r < 0)
    return r;
  char dest[NODE_ADDR_MAX], lookup_err[256];
  if (migd_resolve(netmsg_addr, netmsg_keyfile, node_name, g->req->dest, dest,
                   sizeof dest, lookup_err, sizeof lookup_err) < 0) {
    fprintf(stderr, "migd %s: %s\n", node_name, lookup_err);
    g->why = "destination node not found through the network message server";
    return -EHOSTUNREACH;
  }
  step("connect");
  g->fd = mig_dial(dest, mig_key, g->refusal, sizeof g->refusal);
  if (g->fd < 0) {
    fprintf(stderr, "migd %s: %s\n", node_name, g->refusal);
    g->why = g->refusal; /* a wrong key says so, from either side */
    return g->fd;
  }
  mig_timeout(g->fd, MIG_PEER_TIMEOUT_MS);
  r = copy_space(g);
  if (r == 0)
    r = carry_input(g);
  if (r == 0)
    r = send_threads(g);
  step("threads");
  if (r == 0)
    r = await_confirm(g, g->refusal, sizeof g->refusal);
  step("confirm");
  if (r != 0) {
    abort_move(g);
    return r;
  }
  r = commit_move(g);
  wp_stop(g); /* pre-copy: the task is stopped or gone, writes or not */
  if (r == 0 && g->req->method == MIG_METHOD__MIG_DEMAND)
    r = serve_demand(g);
  return r;
}

static void do_move(int cfd, MigMove *req) {
  MigResult res = MIG_RESULT__INIT;
  struct mig g = {.req = req, .fd = -1, .uffd = -1};
  uint64_t t0 = now_us();
  pthread_mutex_lock(&ents_lock);
  g.e = ent_lookup(req->task);
  int ok = g.e && g.e->state == ENT_RUNNING && !g.e->fetching;
  int fetching = g.e && g.e->fetching;
  pthread_mutex_unlock(&ents_lock);
  if (!ok) {
    reply_err(cfd, fetching ? -EBUSY : -ENOENT,
              fetching ? "the task still fetches pages from its origin"
                       : "no such task running here");
    return;
  }
  res.err = move_task(&g);
  uint64_t t1 = now_us();
  res.msg = (char *)(g.why ? g.why : "moved");
  res.task = req->task;
  uint64_t t_up = g.t_resumed ? g.t_resumed : t1;
  res.downtime_us = g.t_suspend ? t_up - g.t_suspend : 0;
  res.remote_faults = g.ps.remote_faults;
  res.first_touch_us =
      g.ps.remote_faults ? g.ps.fault_us_sum / g.ps.remote_faults : 0;
  res.total_us = t1 - t0;
  res.bytes = g.bytes;
  res.rounds = g.rounds;
  reply(cfd, &res);
  if (g.fd >= 0)
    close(g.fd);
  if (g.h)
    munmap(g.h, g.size);
  free(g.dirty);
  free(g.small);
  free(g.carry);
}

/* ---- destination: the migration server ---- */

struct arrival {
  int fd;
  MigCreate *c;
  int memfd;
  uint8_t *map;
  struct ent *e;
  char why[128];
  int uffd;    /* demand paging: the copy's userfaultfd, taken */
  int pipe[2]; /* bulk pages on their way to the memfd, or -1 */
};

static int refuse(struct arrival *a, int err, const char *why) {
  MigMsg m = MIG_MSG__INIT;
  MigConfirm c = MIG_CONFIRM__INIT;
  c.err = err;
  c.msg = (char *)why;
  m.m_case = MIG_MSG__M_CONFIRM;
  m.confirm = &c;
  mig_send(a->fd, &m);
  fprintf(stderr, "migd %s: refused a task: %s\n", node_name, why);
  return err;
}

/* CREATED: an empty address space of the announced size. */
/* The origin's data extents (MigCreate.reserve) allocated now, while the
 * task still runs there: the pages that come while it is stopped then
 * only need copying.  Demand paging's region must stay empty. */
static int reserve_space(struct arrival *a) {
  MigCreate *c = a->c;
  if (c->n_reserve == 0)
    return 0;
  if (c->method == MIG_METHOD__MIG_DEMAND || c->n_reserve % 2 ||
      c->n_reserve > 2 * MIG_RESERVE_MAX)
    return refuse(a, -EPROTO, "bad reserve");
  for (size_t k = 0; k < c->n_reserve; k += 2) {
    uint64_t off = c->reserve[k], len = c->reserve[k + 1];
    if (off % TASK_PAGE || len % TASK_PAGE || len > c->size ||
        off > c->size - len)
      return refuse(a, -ERANGE, "reserve outside the region");
    if (len && fallocate(a->memfd, 0, (off_t)off, (off_t)len) < 0)
      return refuse(a, -ENOMEM, "no memory for the region");
  }
  return 0;
}

static int create_space(struct arrival *a) {
  MigCreate *c = a->c;
  if (c->size < TASK_REGION_MIN || c->size > TASK_REGION_MAX ||
      c->size % TASK_PAGE || c->program[0] != '/' ||
      access(c->program, X_OK) < 0)
    return refuse(a, -EINVAL, "bad size or program");
  a->memfd = memfd_create("uksim-task", MFD_CLOEXEC);
  if (a->memfd < 0 || ftruncate(a->memfd, (off_t)c->size) < 0)
    return refuse(a, -ENOMEM, "no memory for the region");
  a->map = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, a->memfd, 0);
  if (a->map == MAP_FAILED) {
    a->map = NULL;
    return refuse(a, -ENOMEM, "cannot map the region");
  }
  return reserve_space(a);
}

/* Bulk pages: from the connection straight into the region's memfd, not
 * unpacked (migrate.proto, mig_recv_bulk). */
static int take_bulk(struct arrival *a, MigPages *p) {
  if (p->data.len != 0 || p->bulk > MIG_BULK_MAX || p->bulk % TASK_PAGE)
    return refuse(a, -EPROTO, "bad bulk pages");
  if (a->pipe[0] < 0 && mig_bulk_pipe(a->pipe) < 0)
    return refuse(a, -EMFILE, "no pipe for the pages");
  int r = mig_recv_bulk(a->fd, a->memfd, (off_t)p->offset, p->bulk, a->pipe);
  return r == -EIO ? refuse(a, -ENOMEM, "cannot store pages") : r;
}

static int take_pages(struct arrival *a, MigPages *p) {
  uint64_t len = p->bulk ? p->bulk : p->data.len;
  if (p->offset % TASK_PAGE || len > a->c->size || p->offset > a->c->size - len)
    return refuse(a, -ERANGE, "page outside the region");
  if (p->bulk)
    return take_bulk(a, p);
  /* pwrite, not a copy through the mapping: the kernel fills whole pages
   * without a fault for each. */
  if (pwrite(a->memfd, p->data.data, p->data.len, (off_t)p->offset) !=
      (ssize_t)p->data.len)
    return refuse(a, -ENOMEM, "cannot store pages");
  return 0;
}

/* The input the task had not read at the origin, into the copy's pipe
 * before anything newer (migcons.h). */
static int take_input(struct arrival *a, MigConsole *c) {
  if (!c->input || c->data.len > MIG_INPUT_MAX)
    return refuse(a, -EPROTO, "bad console input");
  int r = migcons_input(&a->e->in, c->data.data, c->data.len);
  return r < 0 ? refuse(a, r, "no room for the task's input") : 0;
}

/* The ICAs the origin says the task holds are the ones the image's table
 * holds, no more, no fewer (task_check at start_copy checks each is whole
 * pages of the region): so the copy holds what the task held. */
static int held_icas_ok(const struct task_hdr *h, const MigThreads *t) {
  uint32_t said = 0, held = 0;
  for (size_t k = 0; k < t->n_icas; k++) {
    if (t->icas[k] >= TASK_ICAS_MAX || (said & 1u << t->icas[k]))
      return 0;
    said |= 1u << t->icas[k];
  }
  for (int i = 0; i < TASK_ICAS_MAX; i++)
    if (h->ica[i].off != 0)
      held |= 1u << i;
  return said == held;
}

/* Step 6: the threads' suspend counts, priorities and policies, and the
 * ICAs the task holds. */
static int take_threads(struct arrival *a, MigThreads *t) {
  struct task_hdr *h = (struct task_hdr *)a->map;
  if (!held_icas_ok(h, t))
    return refuse(a, -EINVAL, "the held ICAs differ from the image's");
  for (size_t k = 0; k < t->n_threads; k++) {
    MigThread *th = t->threads[k];
    if (th->index >= TASK_MAX_THREADS || th->suspend < 0)
      return refuse(a, -EINVAL, "bad thread");
    h->th[th->index].suspend = th->suspend;
    h->th[th->index].priority = th->priority;
    h->th[th->index].policy = th->policy;
  }
  return 0;
}

/* CREATED -> READY: pages and threads until Commit. */
static int receive_image(struct arrival *a) {
  for (;;) {
    MigMsg *m = mig_recv(a->fd);
    if (!m)
      return -EPIPE;
    int r = 0, done = 0;
    switch (m->m_case) {
    case MIG_MSG__M_PAGES:
      r = take_pages(a, m->pages);
      break;
    case MIG_MSG__M_THREADS:
      r = take_threads(a, m->threads);
      break;
    case MIG_MSG__M_CONSOLE:
      r = take_input(a, m->console);
      break;
    case MIG_MSG__M_COMMIT:
      done = 1;
      break;
    default:
      r = refuse(a, -EPROTO, "unexpected message");
    }
    mig_msg__free_unpacked(m, NULL);
    if (r < 0 || done)
      return r;
  }
}

/* READY: the program started on the image, parked at once (the image's
 * suspend count is the origin's, above 0). */
/* The pre-spawned copy's first word on its wait socket: it is up. */
static int copy_up(struct ent *e) {
  struct pollfd p = {.fd = e->wait_fd, .events = POLLIN};
  char c;
  return poll(&p, 1, MIG_PARK_TIMEOUT_MS) == 1 && read(e->wait_fd, &c, 1) == 1
             ? 0
             : -ETIMEDOUT;
}

/* PRESPAWNED: the program started on the empty region, before the origin
 * stops the task; it waits (task_adopt, UKSIM_TASK_WAIT_FD) until
 * start_copy tells it the region is whole.  Then Ready to the origin. */
static int prespawn(struct arrival *a) {
  int sv[2];
  if (!(a->e = ent_new()))
    return refuse(a, -EAGAIN, "task table full");
  struct ent *e = a->e;
  e->region_fd = a->memfd;
  snprintf(e->origin, sizeof e->origin, "%s", a->c->origin);
  e->origin_task = a->c->origin_task;
  e->in.task = a->c->origin_task;
  e->demand = a->c->method == MIG_METHOD__MIG_DEMAND;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return refuse(a, -errno, "no socket for the copy");
  e->wait_fd = sv[0];
  e->wait_child = sv[1];
  char **argv = xcalloc(4, sizeof *argv);
  argv[0] = xstrdup(a->c->program);
  argv[1] = xstrdup("--adopt");
  argv[2] = xstrdup("3");
  e->state = ENT_PARKED;
  if (ent_start(e, argv) < 0) {
    e->state = ENT_EXITED;
    return refuse(a, -ENOEXEC, "cannot start the program");
  }
  if (copy_up(e) < 0)
    return refuse(a, -ETIMEDOUT, "the copy did not start");
  /* Its console connection to the origin too, while the task still runs
   * there: a connection less in the downtime. */
  if (strcmp(e->origin, node_addr) != 0)
    console_attach(e);
  MigMsg m = MIG_MSG__INIT;
  MigReady rd = MIG_READY__INIT;
  m.m_case = MIG_MSG__M_READY;
  m.ready = &rd;
  return mig_send(a->fd, &m);
}

/* READY: the image checked, the waiting copy told to go; it adopts the
 * region and parks (the image's suspend count is the origin's, above
 * 0). */
static int start_copy(struct arrival *a) {
  if (task_check(a->map, a->c->size) < 0)
    return refuse(a, -EINVAL, "corrupt task image");
  /* The image says parked (the origin's copy was) and names the origin's
   * userfaultfd: both must be this copy's before task_park below can
   * tell that the copy has adopted the region. */
  struct task_hdr *h = (struct task_hdr *)a->map;
  atomic_store(&h->parked, 0);
  h->uffd = -1;
  struct ent *e = a->e;
  if (write(e->wait_fd, "g", 1) != 1 || task_park(h, MIG_PARK_TIMEOUT_MS) < 0)
    return refuse(a, -ETIMEDOUT, "the copy did not start");
  return 0;
}

static int confirm(struct arrival *a) {
  MigMsg m = MIG_MSG__INIT;
  MigConfirm c = MIG_CONFIRM__INIT;
  c.task = a->e->id;
  m.m_case = MIG_MSG__M_CONFIRM;
  m.confirm = &c;
  return mig_send(a->fd, &m);
}

/* The origin was lost after Confirm: resume only if its node is gone.
 * One that answers but refuses the key is there: not gone. */
static int origin_gone(struct arrival *a) {
  int fd = mig_dial(a->c->origin, mig_key, NULL, 0);
  if (fd < 0)
    return fd != -EACCES;
  close(fd);
  return 0;
}

/* The task came back to its origin as entry e: the entry it left here
 * (its first id, the one the user types to and the one its output goes
 * out under) hands e its held input and its id, and is freed, so that
 * the task is one entry here again (migcons.h, HOME).  One lock over
 * both, so that no input typed to the id passes what was held. */
static void come_home(struct ent *e) {
  pthread_mutex_lock(&ents_lock);
  struct ent *left = ent_lookup(e->origin_task);
  e->origin[0] = 0;
  if (left && left != e && left->state == ENT_MOVED && !left->origin[0]) {
    migcons_home(&left->in, &e->in);
    e->id = left->id;
    /* The duplicate its first move kept (a restart's, or demand
     * paging's, closed then under this lock): no use now. */
    if (left->region_fd >= 0)
      close(left->region_fd);
    left->region_fd = -1;
    left->state = ENT_FREE;
  }
  pthread_mutex_unlock(&ents_lock);
}

static void resume_copy(struct arrival *a) {
  struct ent *e = a->e;
  if (strcmp(e->origin, node_addr) == 0)
    come_home(e);
  else if (e->console_fd < 0)
    console_attach(e); /* not attached at prespawn */
  pthread_mutex_lock(&ents_lock);
  e->state = ENT_RUNNING;
  pthread_mutex_unlock(&ents_lock);
  /* Its input that the origin held meanwhile comes here now, after what
   * the move carried (in the pipe already). */
  if (e->console_fd >= 0)
    migcons_say_active(e->console_fd, e->in.task);
  task_resume((struct task_hdr *)a->map);
}

/* Demand paging, READY: the copy's userfaultfd, taken before Confirm so
 * that a node that cannot page refuses the task while the origin still
 * runs it. */
static int take_faults(struct arrival *a) {
  struct task_hdr *h = (struct task_hdr *)a->map;
  a->uffd = migpage_take_uffd(a->e->pid, h->uffd);
  if (a->uffd < 0) {
    fprintf(stderr, "migd %s: the copy's userfaultfd (%d): %s\n", node_name,
            h->uffd, strerror(-a->uffd));
    kill(a->e->pid, SIGKILL);
    return refuse(a, -ENOTSUP, "no userfaultfd for demand paging");
  }
  a->e->fetching = 1;
  return 0;
}

static void fetched_first(void) {
  step("fetch");
}

/* The task is lost here: its process goes, `ps` says so. */
static void lose(struct arrival *a, const char *why) {
  pthread_mutex_lock(&ents_lock);
  a->e->state = ENT_LOST;
  a->e->fetching = 0;
  pthread_mutex_unlock(&ents_lock);
  kill(a->e->pid, SIGKILL);
  fprintf(stderr,
          "migd %s: task%llu lost: %s (demand paging's residual "
          "dependency)\n",
          node_name, (unsigned long long)a->e->id, why);
}

/* FETCHING, destination side: the task runs; its pages come on the
 * migration connection until all are in, or the task is lost. */
static void fetch_pages(struct arrival *a) {
  struct migpage_stats st;
  int r = migpage_fetch(a->fd, a->uffd, a->c->size, MIG_HEADER_BYTES,
                        a->c->prepage, &st, fetched_first);
  if (r < 0) {
    lose(a, "its origin went away, or refused a page, before every page "
            "was fetched");
    return;
  }
  a->e->fetching = 0;
  fprintf(stderr,
          "migd %s: task%llu: %s, %llu remote faults, "
          "%llu us waited in all, first %llu us after resume\n",
          node_name, (unsigned long long)a->e->id,
          r ? "ended before every page was in" : "every page in",
          (unsigned long long)st.remote_faults,
          (unsigned long long)st.fault_us_sum,
          (unsigned long long)st.first_fault_us);
}

/* Demand paging, the origin lost between Confirm and Resume: this node
 * holds the header only, so it cannot run the task.  If the origin's
 * node still answers, it restarts its own copy (migd.h). */
static void demand_unresumed(struct arrival *a) {
  if (origin_gone(a)) {
    lose(a, "its origin went away after confirm, with every page but the "
            "header");
    return;
  }
  a->e->fetching = 0;
  kill(a->e->pid, SIGKILL);
}

static void serve_create(int fd, MigCreate *c) {
  struct arrival a = {
      .fd = fd, .c = c, .memfd = -1, .uffd = -1, .pipe = {-1, -1}};
  int demand = c->method == MIG_METHOD__MIG_DEMAND;
  mig_timeout(fd, MIG_PEER_TIMEOUT_MS);
  int r = create_space(&a);
  step("create");
  if (r == 0)
    r = prespawn(&a);
  if (r == 0)
    r = receive_image(&a);
  step("pages");
  if (r == 0)
    r = start_copy(&a);
  if (r == 0 && demand)
    r = take_faults(&a);
  if (r == 0)
    r = confirm(&a);
  step("confirm");
  MigMsg *m = r == 0 ? mig_recv(fd) : NULL;
  if (r == 0 && m && m->m_case == MIG_MSG__M_RESUME) {
    step("resume");
    resume_copy(&a);
    MigMsg ok = MIG_MSG__INIT;
    MigResumed rs = MIG_RESUMED__INIT;
    ok.m_case = MIG_MSG__M_RESUMED;
    ok.resumed = &rs;
    mig_send(fd, &ok);
    if (demand)
      fetch_pages(&a);
  } else if (r == 0 && demand) {
    demand_unresumed(&a);
  } else if (r == 0 && origin_gone(&a)) {
    fprintf(stderr, "migd %s: origin gone after confirm: task%llu runs here\n",
            node_name, (unsigned long long)a.e->id);
    console_detach(a.e); /* attached at prespawn, to a node now gone */
    resume_copy(&a);
  } else if (a.e && a.e->pid > 0) {
    kill(a.e->pid, SIGKILL); /* the origin keeps (or restarts) its copy */
  }
  if (m)
    mig_msg__free_unpacked(m, NULL);
  if (a.map)
    munmap(a.map, c->size);
  if (a.uffd >= 0)
    close(a.uffd);
  if (a.e && a.e->wait_fd >= 0)
    close(a.e->wait_fd); /* a copy still waiting ends (ECANCELED) */
  if (a.e)
    a.e->wait_fd = -1;
  if (r < 0 && a.memfd >= 0 && !a.e)
    close(a.memfd);
  if (a.pipe[0] >= 0) {
    close(a.pipe[0]);
    close(a.pipe[1]);
  }
}

/* ---- origin: consoles of tasks that moved away ---- */

/* One Console message from the node a task of ours runs on: its output,
 * or a step of the input hand-over (migcons.h). */
static void console_from(struct ent *e, int fd, MigConsole *c) {
  if (c->hold)
    migcons_hold(&e->in, fd);
  else if (c->active)
    migcons_active(&e->in, fd);
  else if (!c->input)
    print_lines(e, e->id, (char *)c->data.data, c->data.len);
}

static void serve_console(int fd, MigConsole *first) {
  pthread_mutex_lock(&ents_lock);
  struct ent *e = ent_lookup(first->task);
  pthread_mutex_unlock(&ents_lock);
  if (!e)
    return;
  console_from(e, fd, first);
  MigMsg *m;
  while ((m = mig_recv(fd)) != NULL) {
    if (m->m_case == MIG_MSG__M_CONSOLE)
      console_from(e, fd, m->console);
    mig_msg__free_unpacked(m, NULL);
  }
  migcons_lost(&e->in, fd);
}

/* Console input typed here: for a task that runs here, or one that
 * started here and runs elsewhere (migcons.h).  A task that only passed
 * through this node is not here. */
static void do_input(int fd, MigInput *in) {
  pthread_mutex_lock(&ents_lock);
  struct ent *e = ent_lookup(in->task);
  int here = e && (e->state == ENT_RUNNING || e->state == ENT_PARKED ||
                   (e->state == ENT_MOVED && !e->origin[0]));
  pthread_mutex_unlock(&ents_lock);
  int r = here ? migcons_input(&e->in, in->data.data, in->data.len) : -ENOENT;
  reply_err(fd, r,
            r == -EAGAIN ? "the task's unread input is full (MIG_INPUT_MAX)"
            : r          ? "task not reachable"
                         : "ok");
}

static void do_start(int fd, MigStart *s) {
  struct ent *e = s->n_argv > 0 && s->argv[0][0] == '/' ? ent_new() : NULL;
  if (!e) {
    reply_err(fd, -EINVAL, "need an absolute program path and a free slot");
    return;
  }
  char **argv = xcalloc(s->n_argv + 1, sizeof *argv);
  for (size_t k = 0; k < s->n_argv; k++)
    argv[k] = xstrdup(s->argv[k]);
  int r = ent_start(e, argv);
  e->state = r < 0 ? ENT_EXITED : ENT_RUNNING;
  MigResult res = MIG_RESULT__INIT;
  res.err = r;
  res.msg = (char *)(r < 0 ? "cannot start" : "started");
  res.task = e->id;
  reply(fd, &res);
}

static const char *state_name(int s) {
  static const char *names[] = {"free",  "starting", "running", "parked",
                                "moved", "exited",   "lost"};
  return s >= 0 && s <= ENT_LOST ? names[s] : "?";
}

static void do_list(int fd) {
  char text[MIGD_TASKS_MAX * 160] = "";
  size_t len = 0;
  pthread_mutex_lock(&ents_lock);
  for (int i = 0; i < MIGD_TASKS_MAX; i++) {
    struct ent *e = &ents[i];
    if (e->state == ENT_FREE)
      continue;
    len += (size_t)snprintf(text + len, sizeof text - len,
                            "task%llu %s pid=%d origin=%s\n",
                            (unsigned long long)e->id, state_name(e->state),
                            (int)e->pid, e->origin[0] ? e->origin : "here");
  }
  pthread_mutex_unlock(&ents_lock);
  MigResult res = MIG_RESULT__INIT;
  res.msg = "ok";
  res.text = text;
  reply(fd, &res);
}

/* ---- connections ---- */

/* The server's side of the handshake (migd.h); a refusal is logged. */
static int hello_ok(int fd) {
  char why[MIG_ERR_MAX];
  int r = mig_hs_serve(fd, mig_key, why, sizeof why);
  if (r < 0)
    fprintf(stderr, "migd %s: connection refused: %s\n", node_name, why);
  return r == 0;
}

static void dispatch(int fd, MigMsg *m) {
  switch (m->m_case) {
  case MIG_MSG__M_START:
    do_start(fd, m->start);
    break;
  case MIG_MSG__M_MOVE:
    do_move(fd, m->move);
    break;
  case MIG_MSG__M_INPUT:
    do_input(fd, m->input);
    break;
  case MIG_MSG__M_LIST:
    do_list(fd);
    break;
  case MIG_MSG__M_CREATE:
    serve_create(fd, m->create);
    break;
  case MIG_MSG__M_CONSOLE:
    serve_console(fd, m->console);
    break;
  case MIG_MSG__M_CALL:
    migd_calls_serve(fd, m->call);
    break;
  default:
    reply_err(fd, -EPROTO, "unexpected message");
  }
}

static int conns; /* connection threads alive (MIGD_CONNS_MAX) */

static void *conn_main(void *arg) {
  int fd = (int)(long)arg;
  mig_timeout(fd, MIG_PEER_TIMEOUT_MS);
  if (hello_ok(fd)) {
    MigMsg *m = mig_recv(fd);
    mig_timeout(fd, 0); /* console connections stay open, quiet */
    if (m) {
      dispatch(fd, m);
      mig_msg__free_unpacked(m, NULL);
    }
  }
  close(fd);
  __atomic_sub_fetch(&conns, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  uv_tcp_t *c = xmalloc(sizeof *c);
  uv_tcp_init(server->loop, c);
  uv_os_fd_t ufd;
  int fd = -1;
  if (uv_accept(server, (uv_stream_t *)c) == 0 &&
      uv_fileno((uv_handle_t *)c, &ufd) == 0)
    fd = dup(ufd);
  uv_close((uv_handle_t *)c, (uv_close_cb)free);
  if (fd < 0)
    return;
  if (__atomic_load_n(&conns, __ATOMIC_ACQUIRE) >= MIGD_CONNS_MAX) {
    fprintf(stderr, "uksim-migd: %d connections open: one more closed\n",
            MIGD_CONNS_MAX);
    close(fd);
    return;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pthread_t t;
  __atomic_add_fetch(&conns, 1, __ATOMIC_ACQ_REL);
  if (pthread_create(&t, NULL, conn_main, (void *)(long)fd) == 0) {
    pthread_detach(t);
  } else {
    __atomic_sub_fetch(&conns, 1, __ATOMIC_RELEASE);
    close(fd);
  }
}

/* With --netmsg: this server's address, advertised to its node's network
 * message server so other nodes find it by this node's name.  0, or -1
 * after saying why. */
static int advertise(void) {
  char err[256];
  if (netmsg_addr[0] == '\0')
    return 0;
  if (migd_advertise(netmsg_addr, netmsg_keyfile, node_name, node_addr, err,
                     sizeof err) < 0) {
    fprintf(stderr, "migd %s: --netmsg %s: %s\n", node_name, netmsg_addr, err);
    return -1;
  }
  fprintf(stderr, "migd %s: advertised as '%s' at %s\n", node_name,
          MIGD_SERVICE, netmsg_addr);
  return 0;
}

/* --port [HOST!]PORT into node_addr: 0, or -1 after saying why (a bad
 * address; one beyond loopback without a key). */
static int listen_addr(const char *arg, struct sockaddr_in *sa) {
  p9_addr a;
  if (node_port_addr(arg, node_addr, sizeof node_addr) < 0 ||
      migd_lookup(node_addr, sa) < 0 || p9_addr_parse(node_addr, &a) < 0) {
    fprintf(stderr, "uksim-migd: --port %s: not [IPv4!]PORT\n", arg);
    return -1;
  }
  if (!p9_addr_is_loopback(&a) && mig_key == NULL) {
    fprintf(stderr,
            "uksim-migd: --port %s: beyond loopback a --key FILE is "
            "required\n",
            arg);
    return -1;
  }
  return 0;
}

static int serve(const char *port) {
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t srv;
  struct sockaddr_in sa;
  if (listen_addr(port, &sa) < 0)
    return 2;
  uv_tcp_init(loop, &srv);
  int r = uv_tcp_bind(&srv, (struct sockaddr *)&sa, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&srv, 64, on_connection);
  if (r < 0) {
    fprintf(stderr, "migd %s: listen on %s: %s\n", node_name, node_addr,
            uv_strerror(r));
    return 1;
  }
  fprintf(stderr, "migd %s: listening on %s\n", node_name, node_addr);
  if (advertise() < 0)
    return 1;
  return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- the control client ---- */

static int parse_method(const char *s, MigMethod *m) {
  static const char *names[] = {"eager", "precopy", "demand"};
  for (int i = 0; i < 3; i++)
    if (strcmp(s, names[i]) == 0) {
      *m = (MigMethod)i;
      return 0;
    }
  return -1;
}

/* Builds the request of `words` (the control command) into *m. */
static int ctl_request(char **w, int n, MigMsg *m, void *store) {
  MigMove *mv = store;
  MigInput *in = store;
  uint64_t id = 0;
  if (n >= 2 && strcmp(w[0], "ps") != 0 && strcmp(w[0], "start") != 0 &&
      num_parse_u64(w[1], 1, UINT64_MAX, 0, &id) < 0)
    return -1;
  if (n >= 2 && strcmp(w[0], "start") == 0) {
    static MigStart st = MIG_START__INIT;
    st.n_argv = (size_t)n - 1;
    st.argv = w + 1;
    m->m_case = MIG_MSG__M_START;
    m->start = &st;
  } else if (n >= 3 && n <= 4 && strcmp(w[0], "move") == 0) {
    mig_move__init(mv);
    mv->task = id;
    mv->dest = w[2];
    if (n >= 4 && parse_method(w[3], &mv->method) < 0)
      return -1;
    m->m_case = MIG_MSG__M_MOVE;
    m->move = mv;
  } else if (n == 3 && strcmp(w[0], "input") == 0) {
    mig_input__init(in);
    in->task = id;
    in->data.data = (uint8_t *)w[2];
    in->data.len = strlen(w[2]);
    m->m_case = MIG_MSG__M_INPUT;
    m->input = in;
  } else if (n == 1 && strcmp(w[0], "ps") == 0) {
    static MigList l = MIG_LIST__INIT;
    m->m_case = MIG_MSG__M_LIST;
    m->list = &l;
  } else {
    return -1;
  }
  return 0;
}

static void print_result(const MigResult *r) {
  if (r->text && r->text[0]) {
    fputs(r->text, stdout);
    return;
  }
  printf("%s task=%llu", r->err ? "error" : "ok", (unsigned long long)r->task);
  if (r->total_us)
    printf(" downtime_us=%llu total_us=%llu bytes=%llu rounds=%llu",
           (unsigned long long)r->downtime_us, (unsigned long long)r->total_us,
           (unsigned long long)r->bytes, (unsigned long long)r->rounds);
  if (r->remote_faults)
    printf(" remote_faults=%llu first_touch_us=%llu",
           (unsigned long long)r->remote_faults,
           (unsigned long long)r->first_touch_us);
  printf(" (%s)\n", r->msg);
}

/* Takes "--prepage N" (demand paging's neighbours, MIG_PREPAGE_MAX at
 * most) out of the words.  0, or -1 for a bad N. */
static int take_prepage(char **w, int *n, uint32_t *prepage) {
  for (int k = 0; k + 1 < *n; k++) {
    if (strcmp(w[k], "--prepage") != 0)
      continue;
    uint64_t v;
    if (num_parse_u64(w[k + 1], 0, MIG_PREPAGE_MAX, 0, &v) < 0)
      return -1;
    *prepage = (uint32_t)v;
    memmove(w + k, w + k + 2, (size_t)(*n - k - 2) * sizeof *w);
    *n -= 2;
    return 0;
  }
  return 0;
}

static int ctl(const char *addr, char **words, int n) {
  MigMsg m = MIG_MSG__INIT;
  union {
    MigMove mv;
    MigInput in;
  } store;
  uint32_t prepage = 0;
  if (take_prepage(words, &n, &prepage) < 0 ||
      ctl_request(words, n, &m, &store) < 0) {
    fprintf(stderr, "uksim-migd: bad control command\n");
    return 2;
  }
  char why[MIG_ERR_MAX];
  int fd = mig_dial(addr, mig_key, why, sizeof why);
  if (fd < 0) {
    fprintf(stderr, "uksim-migd: %s\n", why);
    return 1;
  }
  if (m.m_case == MIG_MSG__M_MOVE)
    store.mv.prepage = prepage;
  mig_timeout(fd, 0); /* a move of 1 GiB takes its time */
  MigMsg *a = mig_send(fd, &m) == 0 ? mig_recv(fd) : NULL;
  close(fd);
  if (!a || a->m_case != MIG_MSG__M_RESULT) {
    fprintf(stderr, "uksim-migd: %s: no answer\n", addr);
    return 1;
  }
  print_result(a->result);
  int rc = a->result->err ? 1 : 0;
  mig_msg__free_unpacked(a, NULL);
  return rc;
}

/* --key FILE: the key this server proves and demands (migd.h). */
static int load_key(const char *path) {
  char why[MIG_ERR_MAX];
  if (mig_key_file(path, mig_key_buf, why, sizeof why) < 0) {
    fprintf(stderr, "uksim-migd: %s\n", why);
    return -1;
  }
  mig_key = mig_key_buf;
  return 0;
}

static void usage(FILE *to) {
  fprintf(to, "usage: uksim-migd --port [HOST!]PORT [--name NODE] [--key FILE] "
              "[--die-at STEP]\n"
              "                  [--netmsg tcp!HOST!PORT [--node-key FILE]]\n"
              "       uksim-migd [--key FILE] --ctl tcp!HOST!PORT COMMAND...\n"
              "a node's migration server (seed 004; sim-kernel/migd.h), or its "
              "control client.\n"
              "COMMAND: start PROGRAM [ARGS...] | ps | input TASK TEXT\n"
              "       | move TASK NODE|tcp!HOST!PORT [eager|precopy|demand] "
              "[--prepage N]\n"
              "STEP: connect create pages threads confirm end resume serve "
              "fetch\n"
              "docs/migration-tutorial.md walks through it.\n");
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
      {"port", 1, 0, 'p'},     {"name", 1, 0, 'n'}, {"key", 1, 0, 'k'},
      {"die-at", 1, 0, 'D'},   {"ctl", 1, 0, 'c'},  {"netmsg", 1, 0, 'm'},
      {"node-key", 1, 0, 'K'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  const char *port = NULL;
  const char *ctl_addr = NULL;
  int c;
  signal(SIGPIPE, SIG_IGN);
  while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
    switch (c) {
    case 'p':
      port = optarg;
      break;
    case 'n':
      node_name = optarg;
      break;
    case 'k':
      if (load_key(optarg) < 0)
        return 2;
      break;
    case 'D':
      die_at = optarg;
      break;
    case 'c':
      ctl_addr = optarg;
      break;
    case 'm':
      netmsg_addr = optarg;
      break;
    case 'K':
      netmsg_keyfile = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (ctl_addr)
    return ctl(ctl_addr, argv + optind, argc - optind);
  migd_calls_init(node_name, netmsg_addr, netmsg_keyfile, mig_key);
  if (!port || optind != argc) {
    usage(stderr);
    return 2;
  }
  return serve(port);
}
