/* 9P file servers as uksim OS servers (issue 13, uksim/p9ica.h), with
 * real processes: p9ica_client speaks 9P over ICAs to ramfs (and hostfs):
 * every operation, bulk data both ways, garbage control ICAs; and a fid
 * opened before `replace ramfs` (extension time) or before a crash with a
 * restart policy (fault time) keeps reading the same bytes afterwards.
 * The client checks every byte against its pattern and fails on an error
 * through the held fid, so a successor that lost the tree or the fid
 * table fails the test.  The harness checks the exactly-one-answer trace
 * at every halt. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static bool vg(void) {
  return getenv("UKSIM_UNDER_VALGRIND") != NULL;
}

static void start_server(mach_client *m, const char *prog, char **args,
                         size_t nargs, const char *fault) {
  char env0[64];
  char *env[] = {env0};
  snprintf(env0, sizeof env0, "UKSIM_FAULT=%s", fault ? fault : "");
  struct mach_prog p = {.program = prog,
                        .args = args,
                        .nargs = nargs,
                        .name = prog,
                        .env = env,
                        .nenv = fault ? 1 : 0,
                        .flags = MACH_SPAWN_REGISTERED,
                        .restart = fault != NULL};
  cr_assert_eq(mach_spawn_prog(m, &p, NULL), 0, "start %s: %s", prog, m->error);
}

/* Runs the client with args to the end; its exit status. */
static int client(mach_client *m, char **args, size_t n) {
  return h_wait(m, h_spawn(m, "p9ica_client", args, n, "p9c", NULL));
}

static void replace(mach_client *m, const char *svc, char **args,
                    size_t nargs) {
  struct mach_prog p = {.program = svc, .args = args, .nargs = nargs};
  /* A successor under valgrind takes seconds to start and restore. */
  int64_t id = mach_replace_send(m, svc, &p, vg() ? 60000 : 0);
  cr_assert_geq(id, 0);
  cr_expect_eq(mach_replace_reply(m, (uint64_t)id, NULL), 0, "replace: %s",
               m->error);
}

/* The restarts of service name so far, waiting (up to 2 s, 60 s under
 * valgrind) until it serves again. */
static uint32_t restarts(mach_client *m, const char *name) {
  uint32_t n = 0;
  for (int i = 0; i < (vg() ? 6000 : 200); i++) {
    const struct uk_kdata *kd;
    bool up = false;
    cr_assert_eq(mach_kdata(m, &kd, NULL), 0);
    for (int s = 0; s < UK_SVC_MAX; s++)
      if (kd->svc[s].state != UK_SVC_FREE && !strcmp(kd->svc[s].name, name)) {
        n = kd->svc[s].restarts;
        up = kd->svc[s].state == UK_SVC_UP && kd->svc[s].phase == UK_PH_SERVING;
      }
    mach_kdata_unmap(kd);
    if (up && n > 0)
      break;
    usleep(10 * 1000);
  }
  return n;
}

Test(p9ica, ramfs_serves_every_operation, .timeout = 120) {
  mach_client m;
  h_boot(&m, NULL);
  start_server(&m, "ramfs", NULL, 0, NULL);
  cr_expect_eq(client(&m, (char *[]){"basic"}, 1), 0);
  h_halt_clean(&m);
}

Test(p9ica, ramfs_answers_garbage_and_serves_on, .timeout = 120) {
  mach_client m;
  h_boot(&m, NULL);
  start_server(&m, "ramfs", NULL, 0, NULL);
  cr_expect_eq(client(&m, (char *[]){"garbage"}, 1), 0);
  cr_expect_eq(client(&m, (char *[]){"basic"}, 1), 0, "after the garbage");
  h_halt_clean(&m);
}

/* What a request costs, in the test log (the client fails on any error):
 * 2000 of each kind, a tenth under valgrind; then with 4 MiB in the tree,
 * which every state save packs again. */
Test(p9ica, ramfs_request_costs, .timeout = 300) {
  mach_client m;
  char n[16];
  snprintf(n, sizeof n, "%d", scaled(2000));
  h_boot(&m, NULL);
  start_server(&m, "ramfs", NULL, 0, NULL);
  cr_expect_eq(client(&m, (char *[]){"time", n}, 2), 0);
  /* with 4 MiB more in the tree: every save packs them again */
  cr_expect_eq(client(&m, (char *[]){"put", "filler", "4194304", "time", n}, 5),
               0);
  h_halt_clean(&m);
}

/* A client holds /f open and reads it on while `ramfs` is replaced
 * twice; then /done tells it to stop. */
Test(p9ica, an_open_fid_reads_on_across_replacement, .timeout = 120) {
  mach_client m;
  h_boot(&m, NULL);
  start_server(&m, "ramfs", NULL, 0, NULL);
  cr_assert_eq(client(&m, (char *[]){"put", "f", "65536"}, 3), 0);
  int64_t w =
      h_spawn(&m, "p9ica_client", (char *[]){"hold", "f"}, 2, "hold", NULL);
  usleep(300 * 1000);
  replace(&m, "ramfs", NULL, 0);
  usleep(300 * 1000);
  replace(&m, "ramfs", (char *[]){"--state-max", "64M"}, 2);
  usleep(300 * 1000);
  cr_assert_eq(client(&m, (char *[]){"touch", "done"}, 2), 0);
  cr_expect_eq(h_wait(&m, w), 0, "the held fid failed across replacement");
  h_halt_clean(&m);
}

/* ramfs crashes at a request of the held reads (the client's setup takes
 * fewer than 20) and restarts from its state. */
Test(p9ica, an_open_fid_reads_on_across_a_crash_and_restart, .timeout = 120) {
  mach_client m;
  h_boot(&m, NULL);
  start_server(&m, "ramfs", NULL, 0, "crash@request:60");
  cr_assert_eq(client(&m, (char *[]){"put", "f", "65536"}, 3), 0);
  int64_t w =
      h_spawn(&m, "p9ica_client", (char *[]){"hold", "f"}, 2, "hold", NULL);
  cr_expect_eq(restarts(&m, "ramfs"), 1, "ramfs did not crash and restart");
  usleep(200 * 1000);
  cr_assert_eq(client(&m, (char *[]){"touch", "done"}, 2), 0);
  cr_expect_eq(h_wait(&m, w), 0, "the held fid failed across the restart");
  h_halt_clean(&m);
}

/* --- hostfs ----------------------------------------------------------- */

static char hostdir[64];

static void host_start_faulty(mach_client *m, const char *fault) {
  strcpy(hostdir, "/tmp/p9ica-hostfs-XXXXXX");
  cr_assert_not_null(mkdtemp(hostdir));
  h_boot(m, NULL);
  start_server(m, "hostfs", (char *[]){hostdir}, 1, fault);
}

static void host_start(mach_client *m) {
  host_start_faulty(m, NULL);
}

static void host_stop(mach_client *m) {
  char cmd[128];
  h_halt_clean(m);
  snprintf(cmd, sizeof cmd, "rm -rf %s", hostdir);
  cr_expect_eq(system(cmd), 0);
}

Test(p9ica, hostfs_serves_every_operation_on_host_files, .timeout = 120) {
  mach_client m;
  char p[128];
  struct stat st;
  host_start(&m);
  cr_expect_eq(client(&m, (char *[]){"--service", "hostfs", "basic"}, 3), 0);
  cr_expect_eq(
      client(&m, (char *[]){"--service", "hostfs", "put", "dir/big", "100000"},
             5),
      0);
  snprintf(p, sizeof p, "%s/dir/big", hostdir);
  cr_expect_eq(stat(p, &st), 0, "the file is on the host");
  cr_expect_eq(st.st_size, 100000);
  cr_expect_eq(client(&m, (char *[]){"--service", "hostfs", "garbage"}, 3), 0);
  char n[16];
  snprintf(n, sizeof n, "%d", scaled(2000));
  cr_expect_eq(client(&m, (char *[]){"--service", "hostfs", "time", n}, 4), 0);
  host_stop(&m);
}

Test(p9ica, hostfs_an_open_fid_reads_on_across_replacement, .timeout = 120) {
  mach_client m;
  host_start(&m);
  cr_assert_eq(
      client(&m, (char *[]){"--service", "hostfs", "put", "f", "65536"}, 5), 0);
  int64_t w =
      h_spawn(&m, "p9ica_client",
              (char *[]){"--service", "hostfs", "hold", "f"}, 4, "hold", NULL);
  usleep(300 * 1000);
  replace(&m, "hostfs", (char *[]){hostdir}, 1);
  usleep(300 * 1000);
  cr_assert_eq(
      client(&m, (char *[]){"--service", "hostfs", "touch", "done"}, 4), 0);
  cr_expect_eq(h_wait(&m, w), 0, "the held fid failed across replacement");
  host_stop(&m);
}

Test(p9ica, hostfs_an_open_fid_reads_on_across_a_crash_and_restart,
     .timeout = 120) {
  mach_client m;
  host_start_faulty(&m, "crash@request:60");
  cr_assert_eq(
      client(&m, (char *[]){"--service", "hostfs", "put", "f", "65536"}, 5), 0);
  int64_t w =
      h_spawn(&m, "p9ica_client",
              (char *[]){"--service", "hostfs", "hold", "f"}, 4, "hold", NULL);
  cr_expect_eq(restarts(&m, "hostfs"), 1, "hostfs did not crash and restart");
  usleep(200 * 1000);
  cr_assert_eq(
      client(&m, (char *[]){"--service", "hostfs", "touch", "done"}, 4), 0);
  cr_expect_eq(h_wait(&m, w), 0, "the held fid failed across the restart");
  host_stop(&m);
}
