/* Orthros (issue 14): the machine's partition at every failover (cores,
 * memory blocks, devices; seed 001 §3.3, Table 5), the next backup booted
 * after the new active's failover is done, and a backup dying on standby
 * replaced without touching the active's partition. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "uksim/ns.h"
#include "uksim/interos.h"
#include "uksim_paths.h"

#include "orthros.h"

TestSuite(orthros, .init = skip_under_valgrind);

/* Failover steps 5-6 (the machine's): after each failover, read from the
 * machine (the Os request), the new active's kernel data and the inter-OS
 * region: the new active owns the user disk and nic0, its ICA budget is
 * its usable memory, the BSP hosts no backup, the protected process is
 * published by the new active; over 4 failovers usable memory is OS1 >
 * OS2 = ... = OS5 (Table 5); a standby death leaves the active's
 * partition as it was. */
#define FAILOVERS 4

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

/* Step 6 after step 4: the next backup booted after the new active said
 * its failover was done (its restarted services serve), not at the
 * takeover; both in the machine's step log, in order. */
static void check_backup_after_done(const Uksim__Partition *p,
                                    uint32_t active) {
  long repin = -1, done = -1, boot = -1;
  if (active == 1)
    return; /* no failover yet */
  for (size_t i = 0; i < p->n_steps; i++) {
    const Uksim__PartStep *st = p->steps[i];
    if (st->os == active && strcmp(st->step, "repin") == 0)
      repin = (long)i;
    else if (repin >= 0 && st->os == active &&
             strcmp(st->step, "failover-done") == 0)
      done = (long)i;
    else if (repin >= 0 && boot < 0 && strcmp(st->step, "boot-backup") == 0)
      boot = (long)i;
  }
  cr_expect_geq(repin, 0, "no repin step for os %u", active);
  cr_expect_geq(done, 0, "os %u's failover-done is not in the log", active);
  cr_expect_gt(boot, done,
               "the next backup booted (step %ld) before os %u's "
               "failover was done (step %ld)",
               boot, active, done);
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
  check_backup_after_done(p, active);
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

/* A standby death changed nothing of the active's partition, and the
 * machine logged the lost backup (OS 2). */
static void check_kept_partition(mach_client *m, const Uksim__Ctl *before,
                                 uint32_t active) {
  const Uksim__PartOs *a = os_of(before->reply->partition, active);
  Uksim__Ctl *after = partition(m);
  const Uksim__Partition *p = after->reply->partition;
  const Uksim__PartOs *b = os_of(p, active);
  cr_assert(a && b, "os %u is not in the partition", active);
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
            p->steps[i]->os == 2 && p->steps[i]->status == 0;
  cr_expect(lost, "no backup-lost step for os 2");
  uksim__ctl__free_unpacked(after, NULL);
}

/* A backup that dies on standby is replaced by a new one, and the
 * active's partition stays as it was (checked at the end). */
Test(orthros, a_backup_dying_on_standby_is_replaced, .timeout = 60) {
  mach_client m;
  boot_pair(&m);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", NULL, 0, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  char *a[] = {"--count", "3000"};
  int64_t w = h_spawn(&m, "ctr_load", a, 2, "load", NULL);
  Uksim__Reply *st = status(&m);
  pid_t backup = st->backup_pid;
  uint32_t active = st->active_os;
  uksim__reply__free_unpacked(st, NULL);
  Uksim__Ctl *before = partition(&m);
  cr_assert_eq(kill(backup, SIGKILL), 0);
  bool replaced = false;
  for (int i = 0; i < 500 && !replaced; i++) {
    st = status(&m);
    /* 3 would boot from the active's boot disk: partition.h skips it */
    replaced = st->backup_os == 4 && st->backup_pid != backup;
    cr_expect_eq(st->active_os, active, "the active changed");
    cr_expect_eq(st->failovers, 0);
    uksim__reply__free_unpacked(st, NULL);
    usleep(10 * 1000);
  }
  cr_expect(replaced, "no new backup");
  cr_expect_eq(h_wait(&m, w), 0, "the active stopped serving");
  check_kept_partition(&m, before, active);
  uksim__ctl__free_unpacked(before, NULL);
  halt(&m);
}

Test(orthros, four_failovers_repartition_and_republish, .timeout = 300) {
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
  remove_traces();
}

/* The machine does not wait for a failover that never settles: a
 * restarted server that never serves leaves the new active's failover
 * open, and the next backup boots MACH_SETTLE_WAIT_MS after the takeover
 * anyway, the step log saying so (failover-done, -ETIMEDOUT). */
Test(orthros, the_next_backup_boots_when_a_restart_never_ends, .timeout = 60) {
  mach_client m;
  char *a[] = {"--hang-restoring", "yes"};
  boot_pair(&m);
  await_pair(&m, 0);
  cr_assert_eq(
      mach_spawn(&m, "ctr_srv", a, 2, "ctr", MACH_SPAWN_REGISTERED, NULL), 0,
      "%s", m.error);
  cr_assert_eq(mach_fault(&m, UKSIM__FAULT__KIND__PANIC, 0), 0, "%s", m.error);
  uint32_t active = await_pair(&m, 1);
  Uksim__Ctl *rep = partition(&m);
  const Uksim__Partition *p = rep->reply->partition;
  uint64_t takeover = 0, done = 0;
  int status = 0;
  for (size_t i = 0; i < p->n_steps; i++) {
    const Uksim__PartStep *st = p->steps[i];
    if (st->os == active && strcmp(st->step, "repartition") == 0)
      takeover = st->at_us;
    if (st->os == active && strcmp(st->step, "failover-done") == 0) {
      done = st->at_us;
      status = st->status;
    }
  }
  cr_expect_eq(status, -ETIMEDOUT, "failover-done said %d", status);
  /* libuv times a timer from the loop's cached clock, up to a turn of
   * the loop before the takeover's step was stamped: 50 ms of slack. */
  cr_expect_geq(done, takeover + (MACH_SETTLE_WAIT_MS - 50) * 1000ull,
                "the backup did not wait for the failover: %.3f ms",
                (double)(done - takeover) / 1e3);
  uksim__ctl__free_unpacked(rep, NULL);
  halt(&m);
}
