/* uksim os against a real machine: the partition the machine laid out from
 * its options, as the CLI prints it, and what the kernel got from it (its
 * ICA budget in kernel data, its cpus in /proc). */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "uksim_paths.h"

/* The value of "key": in s, up to the next ',' '}' or ']' (quotes kept). */
static const char *field(const char *s, const char *key, char *v, size_t len) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *at = strstr(s, k);
  cr_assert_not_null(at, "no %s in %s", k, s);
  at += strlen(k);
  size_t n = strcspn(at, ",}]");
  if (at[0] == '"')
    n = strcspn(at + 1, "\"") + 2;
  snprintf(v, len, "%.*s", (int)n, at);
  return v;
}

/* The cpus the kernel process may run on, in the form uksim os uses. */
static void kernel_cpus(int pid, char *out, size_t len) {
  cpu_set_t set;
  cr_assert_eq(sched_getaffinity(pid, sizeof set, &set), 0);
  size_t at = 0;
  out[0] = '\0';
  for (int i = 0; i < CPU_SETSIZE; i++)
    if (CPU_ISSET(i, &set))
      at += (size_t)snprintf(out + at, len - at, at ? ",%d" : "%d", i);
}

Test(os, json_shows_the_partition_the_kernel_runs_in, .timeout = 120) {
  mach_client m;
  struct mach_opts o;
  char cmd[512], v[128];
  int st;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "os-%d", (int)getpid());
  o.cores = 6;
  o.blocks = 16;
  cr_assert_eq(mach_hw_blocks_opt(&o, "test", "10,12-13"), 0);
  cr_assert_eq(mach_boot(&m, &o), 0, "%s", m.error);

  snprintf(cmd, sizeof cmd, "%s os --name %s --json", UKSIM_EXE_DEFAULT,
           o.name);
  const char *out = h_run(cmd, &st);
  cr_assert_eq(st, 0, "%s", out);
  cr_expect_str_eq(field(out, "cores", v, sizeof v), "6");
  cr_expect_str_eq(field(out, "blocks", v, sizeof v), "19", "16 + 3 slots");
  cr_expect_str_eq(field(out, "hw_blocks", v, sizeof v), "\"10,12-13\"");
  cr_expect_str_eq(field(out, "free_cores", v, sizeof v), "\"10\"",
                   "the last core waits for the backup");
  cr_expect_str_eq(field(out, "free_slot_blocks", v, sizeof v), "\"1-3\"");
  cr_expect_str_eq(field(out, "number", v, sizeof v), "1");
  cr_expect_str_eq(field(out, "role", v, sizeof v), "\"active\"");
  cr_expect_str_eq(field(out, "usable_mib", v, sizeof v), "2048");
  cr_expect_str_eq(field(out, "first", v, sizeof v), "\"0\"");
  cr_expect_str_eq(field(out, "general", v, sizeof v), "\"4-18\"");
  cr_expect(strstr(out, "\"devices\":[\"boot-a\",\"user\",\"nic0\"]"), "%s",
            out);
  cr_expect(strstr(out, "{\"hw_id\":0,\"os_number\":0,\"logical_id\":1,"), "%s",
            out);
  cr_expect(strstr(out, "{\"hw_id\":8,\"os_number\":4,\"logical_id\":16,"),
            "%s", out);
  cr_expect(strstr(out, "{\"name\":\"nic1\",\"kind\":\"nic\",\"owner\":0,"),
            "%s", out);

  /* The kernel took its budget and its cpus from the partition. */
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0);
  cr_expect_eq(kd->hdr.budget_bytes, 2048ull << 20);
  char cpus[256];
  kernel_cpus(kd->hdr.kernel_pid, cpus, sizeof cpus);
  char want[260];
  snprintf(want, sizeof want, "\"%s\"", cpus);
  cr_expect_str_eq(field(out, "cpus", v, sizeof v), want);
  mach_kdata_unmap(kd);

  snprintf(cmd, sizeof cmd, "%s os --name %s", UKSIM_EXE_DEFAULT, o.name);
  out = h_run(cmd, &st);
  cr_expect_eq(st, 0);
  cr_expect(strstr(out, "1   active  0     -     2048"), "%s", out);
  cr_expect(strstr(out, "0/0/1(BSP) 2/1/2 4/2/4 6/3/8 8/4/16"), "%s", out);
  h_halt_clean(&m);
}

Test(os, bad_options_exit_2_before_anything_boots, .timeout = 60) {
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "%s os --bogus 2>&1", UKSIM_EXE_DEFAULT);
  h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2);
  snprintf(cmd, sizeof cmd, "%s run --cores 65 2>&1", UKSIM_EXE_DEFAULT);
  const char *out = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2, "%s", out);
  snprintf(cmd, sizeof cmd, "%s demo --hw-blocks 1 2>&1", UKSIM_EXE_DEFAULT);
  out = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 2);
  cr_expect(strstr(out, "hardware block 1 is in a slot"), "%s", out);
  snprintf(cmd, sizeof cmd, "%s os --name nothing-here 2>&1",
           UKSIM_EXE_DEFAULT);
  out = h_run(cmd, &st);
  cr_expect_eq(WEXITSTATUS(st), 1);
  cr_expect(strstr(out, "no machine 'nothing-here' is running"), "%s", out);
}

/* On two cores the 1st OS has the BSP alone: its kernel and the processes
 * it starts run on the first host cpu the machine may use, whatever the
 * host has. */
Test(os, the_kernel_and_its_processes_run_on_the_os_cores, .timeout = 120) {
  mach_client m;
  struct mach_opts o;
  int proc;
  cpu_set_t allowed;
  mach_opts_default(&o);
  snprintf(o.name, sizeof o.name, "os2-%d", (int)getpid());
  o.cores = 2;
  cr_assert_eq(mach_boot(&m, &o), 0, "%s", m.error);
  cr_assert_eq(
      mach_spawn(&m, "kvs", NULL, 0, "kvs", MACH_SPAWN_REGISTERED, &proc), 0);
  cr_assert_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int first = 0;
  while (!CPU_ISSET(first, &allowed))
    first++;
  char want[16], got[256];
  snprintf(want, sizeof want, "%d", first);
  const struct uk_kdata *kd;
  cr_assert_eq(mach_kdata(&m, &kd, NULL), 0);
  kernel_cpus(kd->hdr.kernel_pid, got, sizeof got);
  cr_expect_str_eq(got, want, "the kernel");
  kernel_cpus(kd->proc[proc].pid, got, sizeof got);
  cr_expect_str_eq(got, want, "kvs, started by the kernel");
  mach_kdata_unmap(kd);
  h_halt_clean(&m);
}
