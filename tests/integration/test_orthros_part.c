/* Orthros (issue 14): the machine re-partitions itself at every failover
 * (seed 001 §3.3, failover steps 5-6) and the inter-OS region publishes
 * the protected processes.  After each failover, read from the machine
 * (the Os request), the new active's kernel data and the inter-OS region:
 * the new active owns the user disk and nic0, its ICA budget is its usable
 * memory, the BSP hosts no backup, the protected process is published by
 * the new active; over 4 failovers usable memory is OS1 > OS2 = ... = OS5
 * (Table 5); a standby death leaves the active's partition as it was. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "uksim/interos.h"
#include "uksim_paths.h"

#define HB_MS 10
#define TIMEOUT_MS 50
#define FAILOVERS 4

static char name[64];

static void boot_pair(mach_client *m) {
  static int n;
  struct mach_opts o;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "opart-%d-%d", (int)getpid(), n++);
  snprintf(name, sizeof name, "%s", o.name);
  o.backup = true;
  o.heartbeat_ms = HB_MS;
  o.heartbeat_timeout_ms = TIMEOUT_MS;
  cr_assert_eq(mach_boot(m, &o), 0, "boot: %s", m->error);
}

static Uksim__Reply *status(mach_client *m) {
  Uksim__Reply *st;
  cr_assert_eq(mach_status(m, &st), 0, "status: %s", m->error);
  return st;
}

/* The partition as the machine answers `uksim os` (free with
 * uksim__ctl__free_unpacked). */
static Uksim__Ctl *partition(mach_client *m) {
  Uksim__Ctl c = UKSIM__CTL__INIT, *rep;
  Uksim__Os os = UKSIM__OS__INIT;
  c.body_case = UKSIM__CTL__BODY_OS;
  c.os = &os;
  int64_t id = mach_send(m, &c);
  cr_assert_geq(id, 0, "%s", m->error);
  cr_assert_eq(mach_reply(m, (uint64_t)id, &rep, NULL), 0, "%s", m->error);
  cr_assert_not_null(rep->reply->partition);
  return rep;
}

static const Uksim__PartOs *os_of(const Uksim__Partition *p, uint32_t n) {
  for (size_t i = 0; i < p->n_os; i++)
    if (p->os[i]->number == n)
      return p->os[i];
  return NULL;
}

static uint32_t dev_owner(const Uksim__Partition *p, const char *dev) {
  for (size_t i = 0; i < p->n_devices; i++)
    if (strcmp(p->devices[i]->name, dev) == 0)
      return p->devices[i]->owner;
  return 0;
}

/* Waits until `failovers` happened and an active and a backup run, the
 * active heartbeating; returns the active's number. */
static uint32_t await_pair(mach_client *m, uint32_t failovers) {
  const struct uk_interos *io;
  cr_assert_eq(mach_interos(m, &io), 0, "%s", m->error);
  for (int i = 0; i < 1000; i++) {
    Uksim__Reply *st = status(m);
    uint32_t a = st->active_os;
    bool ok = st->failovers == failovers && a && st->backup_os &&
              io->hb_os == a && io->hb_ns > 0;
    uksim__reply__free_unpacked(st, NULL);
    if (ok) {
      usleep(3 * HB_MS * 1000); /* the new backup sees a heartbeat */
      mach_interos_unmap(io);
      return a;
    }
    usleep(10 * 1000);
  }
  cr_assert_fail("no active and backup pair after %u failovers", failovers);
  return 0;
}

/* The active's ICA budget, once it equals `want` (the Resize arrives
 * after the TakeOver), or what it is after 5 s. */
static uint64_t budget_of_active(mach_client *m, uint64_t want) {
  uint64_t b = 0;
  for (int i = 0; i < 500; i++) {
    const struct uk_kdata *kd;
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
    b = kd->hdr.budget_bytes;
    mach_kdata_unmap(kd);
    if (b == want)
      break;
    usleep(10 * 1000);
  }
  return b;
}

/* Waits until OS `os` has published the protected table; a copy. */
static struct uk_interos published_by(mach_client *m, uint32_t os) {
  const struct uk_interos *io;
  struct uk_interos copy;
  cr_assert_eq(mach_interos(m, &io), 0, "%s", m->error);
  for (int i = 0; i < 500 && io->prot_os != os; i++)
    usleep(10 * 1000);
  usleep(20 * 1000); /* the publication in progress ends */
  memcpy(&copy, io, sizeof copy);
  mach_interos_unmap(io);
  return copy;
}

/* What must hold of the partition with `active` active, after any number
 * of failovers. */
static void check_partition(mach_client *m, uint32_t active, pid_t pload) {
  Uksim__Ctl *rep = partition(m);
  const Uksim__Partition *p = rep->reply->partition;
  const Uksim__PartOs *a = os_of(p, active);
  cr_assert_not_null(a, "os %u is not in the partition", active);
  cr_expect_str_eq(a->role, "active");
  cr_expect_eq(dev_owner(p, "user"), active, "the user disk is not os %u's",
               active);
  cr_expect_eq(dev_owner(p, "nic0"), active, "nic0 is not os %u's", active);
  for (size_t i = 0; i < p->n_os; i++)
    for (size_t c = 0; c < p->os[i]->n_cores; c++)
      cr_expect(
          !(p->os[i]->cores[c]->bsp && strcmp(p->os[i]->role, "backup") == 0),
          "backup os %u has the BSP", p->os[i]->number);
  for (size_t i = 0; i < p->n_steps; i++)
    cr_expect_eq(p->steps[i]->status, 0, "step %s of os %u: %s",
                 p->steps[i]->step, p->steps[i]->os, p->steps[i]->text);
  uint64_t want = a->usable_mib << 20;
  cr_expect_eq(budget_of_active(m, want), want,
               "os %u's ICA budget is not its usable memory (%llu MiB)", active,
               (unsigned long long)a->usable_mib);
  uksim__ctl__free_unpacked(rep, NULL);
  struct uk_interos io = published_by(m, active);
  cr_expect_eq(io.prot_os, active, "os %u did not publish", active);
  cr_expect_eq(io.nprot, 1, "protected processes published: %u", io.nprot);
  cr_expect_eq(io.prot[0].os, active);
  cr_expect_eq(io.prot[0].pid, pload, "the published pid is not the app's");
  cr_expect_str_eq(io.prot[0].name, "moves");
}

/* Table 5's shape: OS1 > OS2 = OS3 = ... as active. */
static void check_table5(mach_client *m, uint32_t oses) {
  Uksim__Ctl *rep = partition(m);
  const Uksim__Partition *p = rep->reply->partition;
  uint64_t usable[FAILOVERS + 2] = {0};
  for (size_t i = 0; i < p->n_history; i++)
    if (p->history[i]->number <= oses)
      usable[p->history[i]->number] = p->history[i]->active_usable_mib;
  printf("orthros-part: usable MiB as active:");
  for (uint32_t n = 1; n <= oses; n++)
    printf(" os%u %llu", n, (unsigned long long)usable[n]);
  printf("\n");
  cr_expect_gt(usable[2], 0);
  cr_expect_gt(usable[1], usable[2], "OS1 does not have more than OS2");
  for (uint32_t n = 3; n <= oses; n++)
    cr_expect_eq(usable[n], usable[2], "OS%u != OS2", n);
  uksim__ctl__free_unpacked(rep, NULL);
}

static pid_t pid_of(mach_client *m, int proc) {
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(m, &kd, NULL), 0, "%s", m->error);
  pid_t pid = kd->proc[proc].pid;
  mach_kdata_unmap(kd);
  return pid;
}

static int spawn_moving_load(mach_client *m) {
  int proc;
  char *a[] = {"--forever", "--tolerate-reset", "--tolerate-intr"};
  struct mach_prog lp = {.program = "ctr_load",
                         .args = a,
                         .nargs = 3,
                         .name = "moves",
                         .protect = true};
  cr_assert_eq(
      mach_spawn(m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m->error);
  cr_assert_eq(mach_spawn_prog(m, &lp, &proc), 0, "%s", m->error);
  return proc;
}

Test(orthros_part, four_failovers_repartition_and_republish, .timeout = 300) {
  mach_client m;
  boot_pair(&m);
  uint32_t active = await_pair(&m, 0);
  pid_t pload = pid_of(&m, spawn_moving_load(&m));
  check_partition(&m, active, pload);
  for (uint32_t i = 1; i <= FAILOVERS; i++) {
    cr_assert_eq(mach_fault(&m,
                            i % 2 ? UKSIM__FAULT__KIND__CRASH
                                  : UKSIM__FAULT__KIND__PANIC,
                            0),
                 0, "fault: %s", m.error);
    active = await_pair(&m, i);
    cr_expect_eq(active, i + 1, "the %uth OS is not active", i + 1);
    check_partition(&m, active, pload);
  }
  check_table5(&m, FAILOVERS + 1);
  /* uksim ps names the OS of each process and the generation. */
  char cmd[512], want[96];
  int st;
  snprintf(cmd, sizeof cmd, "%s ps --name %s", UKSIM_EXE_DEFAULT, name);
  const char *out = h_run(cmd, &st);
  cr_expect_eq(st, 0);
  snprintf(want, sizeof want, "active os %u after %u failovers", active,
           FAILOVERS);
  cr_expect(strstr(out, want), "ps: no generation '%s': %s", want, out);
  snprintf(want, sizeof want, "\n%-3u%-2s", active, "*");
  cr_expect(strstr(out, want) && strstr(out, "moves"),
            "ps: the protected process is not os %u's: %s", active, out);
  snprintf(cmd, sizeof cmd, "%s os --name %s", UKSIM_EXE_DEFAULT, name);
  out = h_run(cmd, &st);
  cr_expect_eq(st, 0);
  cr_expect(strstr(out, "repartition") && strstr(out, "ACTIVE_USABLE_MIB"),
            "os: %s", out);
  h_halt_clean(&m);
}

Test(orthros_part, a_standby_death_keeps_the_active_partition, .timeout = 120) {
  mach_client m;
  boot_pair(&m);
  uint32_t active = await_pair(&m, 0);
  Uksim__Ctl *before = partition(&m);
  const Uksim__PartOs *a = os_of(before->reply->partition, active);
  cr_assert_not_null(a);
  Uksim__Reply *st = status(&m);
  pid_t backup = st->backup_pid;
  uint32_t old_backup = st->backup_os;
  uksim__reply__free_unpacked(st, NULL);
  cr_assert_eq(kill(backup, SIGKILL), 0);
  bool replaced = false;
  for (int i = 0; i < 500 && !replaced; i++) {
    st = status(&m);
    replaced = st->backup_os && st->backup_os != old_backup;
    uksim__reply__free_unpacked(st, NULL);
    usleep(10 * 1000);
  }
  cr_assert(replaced, "no new backup");
  Uksim__Ctl *after = partition(&m);
  const Uksim__Partition *p = after->reply->partition;
  const Uksim__PartOs *b = os_of(p, active);
  cr_assert_not_null(b);
  cr_expect_str_eq(b->role, "active");
  cr_expect_eq(b->usable_mib, a->usable_mib);
  cr_expect_str_eq(b->cpus, a->cpus);
  cr_expect_str_eq(b->general_blocks, a->general_blocks);
  cr_expect_eq(b->n_cores, a->n_cores);
  cr_expect_eq(dev_owner(p, "user"), active);
  cr_expect_eq(dev_owner(p, "nic0"), active);
  bool lost = false;
  for (size_t i = 0; i < p->n_steps; i++)
    lost |= strcmp(p->steps[i]->step, "backup-lost") == 0 &&
            p->steps[i]->os == old_backup && p->steps[i]->status == 0;
  cr_expect(lost, "no backup-lost step for os %u", old_backup);
  uksim__ctl__free_unpacked(before, NULL);
  uksim__ctl__free_unpacked(after, NULL);
  h_halt_clean(&m);
}
