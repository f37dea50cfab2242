/* Unit tests for the machine's partition (sim-kernel/partition.c).
 *
 * Tables 1 and 2 of seed 001 exactly, Table 4's initial shape, Table 5's
 * shape over five failovers, the exclusion lists, and a randomized run of
 * failovers and standby deaths checked after every step against the
 * invariants (part_check) and against a plain model of who must own the
 * user disk and nic0.  Seeds are fixed; UKSIM_TEST_SEED tries another. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition.h"

#define MIB (1ull << 20)
#define BS (128 * MIB)

static struct part P;

/* A 4-core machine of 32 blocks for the 1st OS on host cpus 0 and 1. */
static void config(struct part_config *c) {
  part_config_default(c, 32, BS, 20000);
  c->nhost = 2;
  c->host_cpu[0] = 0;
  c->host_cpu[1] = 1;
}

static void boot(const struct part_config *c) {
  char err[128];
  cr_assert_eq(part_init(&P, c, err, sizeof err), 0, "%s", err);
  cr_assert_eq(part_boot_first(&P), 0);
}

static void boot_default(void) {
  struct part_config c;
  config(&c);
  boot(&c);
}

static void check(void) {
  char err[160];
  cr_assert_eq(part_check(&P, err, sizeof err), 0, "%s", err);
}

static uint32_t boot_backup(void) {
  uint32_t n = 0;
  cr_assert_eq(part_boot_backup(&P, &n), 0);
  check();
  return n;
}

/* The failover steps the partition takes part in: 1 and 5. */
static void failover(void) {
  uint32_t a = part_active(&P), b = part_backup(&P);
  cr_assert_eq(part_devices_migrate(&P, a, b), 0);
  check();
  cr_assert_eq(part_repartition(&P, a, b), 0);
  check();
}

Test(partition, tables_1_and_2_core_ids) {
  static const uint32_t hw[] = {0, 2, 4, 6};
  static const uint32_t table1[] = {1, 2, 3, 0}, table2[] = {1, 0, 2, 3};
  static const uint64_t logical[] = {1, 2, 4, 8};
  boot_default();
  uint32_t os2 = boot_backup();
  cr_assert_eq(os2, 2);
  cr_assert_eq(part_core_hw_id(part_os_lookup(&P, 2)->boot_core), 6,
               "Table 1: the BackupOS boots from local APIC id 6");
  for (uint32_t i = 0; i < 4; i++) {
    cr_expect_eq(part_core_hw_id(i), hw[i]);
    cr_expect_eq(part_core_number(&P, 2, i), (int)table1[i], "core %u", i);
    cr_expect_eq(part_core_logical_id(&P, i), logical[i]);
    cr_expect_eq(part_core_number(&P, 1, i), (int)i, "the 1st OS: BSP first");
  }
  failover();
  uint32_t os3 = boot_backup();
  cr_assert_eq(os3, 3);
  cr_assert_eq(part_core_hw_id(part_os_lookup(&P, 3)->boot_core), 2,
               "Table 2: the new BackupOS boots from local APIC id 2");
  for (uint32_t i = 0; i < 4; i++) {
    cr_expect_eq(part_core_number(&P, 3, i), (int)table2[i], "core %u", i);
    cr_expect_eq(part_core_logical_id(&P, i), logical[i], "same in every OS");
  }
}

Test(partition, table_4_initial_state) {
  boot_default();
  cr_assert_eq(P.state, PART_ALONE);
  boot_backup();
  uint32_t active = 0, backup = 0;
  for (uint32_t i = 0; i < 4; i++) {
    active += part_core_owner(&P, i) == 1;
    backup += part_core_owner(&P, i) == 2;
  }
  cr_expect_eq(active, 3, "the ActiveOS has all cores but one");
  cr_expect_eq(backup, 1, "the BackupOS one");
  cr_expect_eq(part_blocks_of(&P, 2, PART_REGION_SLOT), 1);
  cr_expect_eq(part_usable_bytes(&P, 2), BS, "the backup: its slot");
  cr_expect_eq(part_usable_bytes(&P, 1), 32 * BS, "the 1st OS: os1_blocks");
  cr_expect(part_may_open(&P, 1, PART_DEV_BOOT_A));
  cr_expect(part_may_open(&P, 1, PART_DEV_USER));
  cr_expect(part_may_open(&P, 1, PART_DEV_NIC0));
  cr_expect(part_may_open(&P, 2, PART_DEV_BOOT_B));
  cr_expect(part_may_open(&P, 2, PART_DEV_NIC1));
  cr_expect(!part_may_open(&P, 2, PART_DEV_USER), "not before migration");
  cr_expect_eq(part_devs_of(&P, 1), 1u << PART_DEV_BOOT_A |
                                        1u << PART_DEV_USER |
                                        1u << PART_DEV_NIC0);
  cr_expect_eq(part_devs_of(&P, 2),
               1u << PART_DEV_BOOT_B | 1u << PART_DEV_NIC1);
  cr_expect_eq(part_devs_of(&P, PART_FREE), 0);
}

Test(partition, the_bsp_never_hosts_a_backup_over_6_failovers) {
  boot_default();
  for (int f = 0; f < 6; f++) {
    uint32_t b = boot_backup();
    cr_assert_neq(part_os_lookup(&P, b)->boot_core, 0, "failover %d", f);
    cr_assert_neq(part_core_owner(&P, 0), b);
    failover();
    cr_assert_eq(part_active(&P), b);
  }
  cr_expect_eq(part_active(&P), 7);
}

/* Table 5: the usable memory of OS 1 .. 6 over five failovers. */
static void usable_over_failovers(uint64_t usable[7]) {
  usable[1] = part_usable_bytes(&P, 1);
  for (int n = 2; n <= 6; n++) {
    boot_backup();
    failover();
    usable[n] = part_usable_bytes(&P, part_active(&P));
    cr_assert_eq(part_active(&P), (uint32_t)n);
  }
}

Test(partition, table_5_usable_memory_drops_once) {
  uint64_t u[7];
  boot_default();
  usable_over_failovers(u);
  cr_expect_gt(u[1], u[2]);
  cr_expect_eq(u[1] - u[2], PART_HW_BLOCKS_DEFAULT * BS,
               "the drop is the hardware blocks (first == slot)");
  for (int n = 3; n <= 6; n++)
    cr_expect_eq(u[n], u[2], "OS %d", n);
}

Test(partition, table_5_with_a_listed_hardware_block_and_a_larger_region_1) {
  struct part_config c;
  uint64_t u[7];
  config(&c);
  c.first_blocks = 2;
  cr_assert_eq(part_config_hw(&c, "0,9-10"), 0);
  boot(&c);
  usable_over_failovers(u);
  /* Blocks 9 and 10 are general (region 1 is 0-1, slots 2-4); block 0 is
   * in region 1, lost with it anyway. */
  cr_expect_eq(u[1] - u[2], (2 + 2 - 1) * BS, "hw + first - slot");
  for (int n = 3; n <= 6; n++)
    cr_expect_eq(u[n], u[2], "OS %d", n);
  cr_expect_eq(part_block_owner(&P, 9), PART_HW);
}

Test(partition, exclusion_lists_by_parity) {
  for (enum part_dev d = 0; d < PART_DEV_COUNT; d++) {
    bool boot_a = d == PART_DEV_BOOT_A, boot_b = d == PART_DEV_BOOT_B;
    cr_expect_eq(part_excluded(1, d), boot_b || d == PART_DEV_NIC1,
                 "1st OS, %s", part_dev_name(d));
    for (uint32_t n = 2; n <= 10; n += 2)
      cr_expect_eq(part_excluded(n, d), boot_a, "OS %u, %s", n,
                   part_dev_name(d));
    for (uint32_t n = 3; n <= 11; n += 2)
      cr_expect_eq(part_excluded(n, d), boot_b, "OS %u, %s", n,
                   part_dev_name(d));
    cr_expect(part_excluded(0, d));
  }
  cr_expect(part_excluded(1, PART_DEV_COUNT));
}

static void expect_one_owner(uint32_t want) {
  cr_assert_eq(part_dev_owner(&P, PART_DEV_USER), want);
  cr_assert_eq(part_dev_owner(&P, PART_DEV_NIC0), want);
  cr_assert(part_may_open(&P, want, PART_DEV_USER));
  cr_assert(part_may_open(&P, want, PART_DEV_NIC0));
  for (int i = 0; i < PART_LIVE_MAX; i++)
    if (P.os[i].number && P.os[i].number != want)
      cr_assert(!part_may_open(&P, P.os[i].number, PART_DEV_USER));
}

Test(partition, user_disk_and_nic0_move_with_the_active_role) {
  boot_default();
  expect_one_owner(1);
  for (int f = 0; f < 4; f++) {
    uint32_t a = part_active(&P), b = boot_backup();
    expect_one_owner(a);
    uint32_t resets = P.dev_resets[PART_DEV_USER];
    cr_assert_eq(part_devices_migrate(&P, a, b), 0);
    expect_one_owner(b);
    cr_expect_eq(P.dev_resets[PART_DEV_USER], resets + 1, "reset on the move");
    cr_assert_eq(part_repartition(&P, a, b), 0);
    expect_one_owner(b);
    cr_expect_eq(part_dev_owner(&P, PART_DEV_NIC1), PART_FREE,
                 "nic1 detached for the next backup");
  }
}

/* The active OS's cores, blocks and devices, to compare. */
struct snap {
  uint32_t cores[PART_CORES_MAX], blocks[PART_BLOCKS_MAX];
  uint32_t devs[PART_DEV_COUNT];
  uint64_t usable;
};

static void snap_active(struct snap *s) {
  uint32_t a = part_active(&P);
  memset(s, 0, sizeof *s);
  for (uint32_t i = 0; i < P.c.cores; i++)
    s->cores[i] = part_core_owner(&P, i) == a;
  for (uint32_t b = 0; b < P.total_blocks; b++)
    s->blocks[b] = part_block_owner(&P, b) == a;
  for (int d = 0; d < PART_DEV_COUNT; d++)
    s->devs[d] = part_dev_owner(&P, (enum part_dev)d) == a;
  s->usable = part_usable_bytes(&P, a);
}

Test(partition, a_backup_dying_on_standby_leaves_the_active_unchanged) {
  static struct snap before, after;
  boot_default();
  boot_backup();
  failover(); /* OS 2 active */
  uint32_t b = boot_backup();
  cr_assert_eq(b, 3);
  snap_active(&before);
  cr_assert_eq(part_backup_lost(&P, b), 0);
  check();
  snap_active(&after);
  cr_expect(memcmp(&before, &after, sizeof before) == 0);
  uint32_t r = boot_backup();
  cr_expect_eq(r, 5, "the replacement skips OS 4: its boot disk is OS 2's");
  cr_expect_eq(part_os_lookup(&P, r)->boot_core, 1, "the dead one's core");
  cr_expect(part_may_open(&P, r, PART_DEV_BOOT_A));
  snap_active(&after);
  cr_expect(memcmp(&before, &after, sizeof before) == 0);
  failover();
  cr_expect_eq(part_active(&P), 5);
  cr_expect_eq(part_usable_bytes(&P, 5), before.usable);
}

Test(partition, wrong_requests_are_refused_and_change_nothing) {
  static struct part was;
  uint32_t n;
  struct part_config c;
  config(&c);
  cr_assert_eq(part_init(&P, &c, NULL, 0), 0);
  cr_expect_eq(part_boot_backup(&P, &n), -ESRCH, "no active OS yet");
  cr_assert_eq(part_boot_first(&P), 0);
  cr_expect_eq(part_boot_first(&P), -EALREADY);
  cr_expect_eq(part_devices_migrate(&P, 1, 2), -EINVAL, "no backup");
  cr_expect_eq(part_repartition(&P, 1, 2), -EINVAL);
  boot_backup();
  cr_expect_eq(part_boot_backup(&P, &n), -EALREADY, "one backup at a time");
  was = P;
  cr_expect_eq(part_devices_migrate(&P, 2, 1), -ESRCH, "backwards");
  cr_expect_eq(part_devices_migrate(&P, 1, 7), -ESRCH);
  cr_expect_eq(part_repartition(&P, 1, 2), -EINVAL, "devices first");
  cr_expect_eq(part_backup_lost(&P, 1), -ESRCH, "the active is no backup");
  cr_expect(memcmp(&was, &P, sizeof P) == 0);
  cr_assert_eq(part_devices_migrate(&P, 1, 2), 0);
  cr_expect_eq(part_backup_lost(&P, 2), -EINVAL, "mid-failover");
  cr_expect_eq(part_repartition(&P, 2, 1), -ESRCH);
  check();
}

Test(partition, a_two_core_machine_has_no_core_for_a_3rd_os) {
  struct part_config c;
  uint32_t n;
  config(&c);
  c.cores = 2;
  boot(&c);
  boot_backup();
  failover();
  cr_expect_eq(part_boot_backup(&P, &n), -EBUSY);
  check();
}

Test(partition, bad_configurations_say_why) {
  struct part_config c;
  char err[128];
  config(&c);
  c.cores = 1;
  cr_expect_eq(part_init(&P, &c, err, sizeof err), -EINVAL);
  cr_expect(strstr(err, "cores"), "%s", err);
  c.cores = PART_CORES_MAX + 1;
  cr_expect_eq(part_init(&P, &c, err, sizeof err), -EINVAL);
  config(&c);
  cr_assert_eq(part_config_hw(&c, "2"), 0);
  cr_expect_eq(part_init(&P, &c, err, sizeof err), -EINVAL);
  cr_expect(strstr(err, "slot"), "%s", err);
  cr_assert_eq(part_config_hw(&c, "35"), 0);
  cr_expect_eq(part_init(&P, &c, err, sizeof err), -EINVAL, "past the end");
  cr_assert_eq(part_config_hw(&c, "5,5"), 0);
  cr_expect_eq(part_init(&P, &c, err, sizeof err), -EINVAL, "twice");
  config(&c);
  c.os1_blocks = PART_BLOCKS_MAX;
  cr_expect_eq(part_init(&P, &c, err, sizeof err), -EINVAL);
  static const char *bad[] = {
      "x", "1,", ",1", "3-1", "1-", "-1", "1--2", "1 ", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(part_config_hw(&c, bad[i]), -EINVAL, "'%s'", bad[i]);
  cr_expect_eq(part_config_hw(&c, "0-100"), -E2BIG);
  cr_expect_eq(part_config_hw(&c, ""), 0, "no hardware blocks");
  cr_expect_eq(c.nhw, 0);
}

Test(partition, a_small_machine_keeps_one_general_block) {
  struct part_config c;
  part_config_default(&c, 2, BS, 0);
  boot(&c);
  boot_backup();
  failover();
  cr_expect_eq(part_usable_bytes(&P, 2), 2 * BS, "its slot + 1 general");
}

Test(partition, cores_map_onto_host_cpus) {
  cpu_set_t s;
  boot_default();
  boot_backup();
  cr_assert_eq(part_cpuset(&P, 1, &s), 0);
  cr_expect(CPU_ISSET(0, &s) && CPU_ISSET(1, &s) && CPU_COUNT(&s) == 2);
  cr_assert_eq(part_cpuset(&P, 2, &s), 0);
  cr_expect(CPU_ISSET(1, &s) && CPU_COUNT(&s) == 1, "core 3 -> cpu 3 mod 2");
  cr_expect_eq(part_cpuset(&P, 9, &s), -ESRCH);
}

Test(partition, dump_names_every_os_and_what_is_free) {
  char buf[1024];
  boot_default();
  boot_backup();
  size_t n = part_dump(&P, buf, sizeof buf);
  cr_assert_lt(n, sizeof buf);
  cr_expect(strstr(buf, "os 1 active boot-core 0 cores 0 2 4 blocks first 0 "
                        "slot - general 4-34 usable 4096 MiB devices boot-a "
                        "user nic0"),
            "%s", buf);
  cr_expect(strstr(buf, "os 2 backup boot-core 6 cores 6 blocks first - slot "
                        "1 general - usable 128 MiB devices boot-b nic1"),
            "%s", buf);
  cr_expect(strstr(buf, "free cores - slot blocks 2-3 hardware 4-6 devices\n"),
            "%s", buf);
  char small[8];
  cr_expect_eq(part_dump(&P, small, sizeof small), n, "counts when cut");
}

/* Random failovers and standby deaths; after each step the invariants, one
 * owner for the user disk and nic0 (the active OS, or the backup once the
 * devices migrated), and the active's usable memory from the 2nd OS on. */
static void random_step(unsigned *seed, uint64_t *usable, int step) {
  uint32_t a = part_active(&P), b;
  int r = rand_r(seed) % 3;
  if (part_backup(&P) == 0) {
    b = boot_backup();
    cr_assert_eq(b % 2 == a % 2, false, "step %d: parities differ", step);
    return;
  }
  b = part_backup(&P);
  if (r == 0) {
    cr_assert_eq(part_backup_lost(&P, b), 0);
  } else {
    cr_assert_eq(part_devices_migrate(&P, a, b), 0);
    expect_one_owner(b);
    cr_assert_eq(part_repartition(&P, a, b), 0);
    if (*usable == 0)
      *usable = part_usable_bytes(&P, b);
    cr_assert_eq(part_usable_bytes(&P, b), *usable, "step %d", step);
  }
  check();
  expect_one_owner(part_active(&P));
}

Test(partition, random_failovers_and_standby_deaths_keep_the_invariants) {
  const char *e = getenv("UKSIM_TEST_SEED");
  unsigned seeds[] = {1, 2, 3, 42, e ? (unsigned)strtoul(e, NULL, 0) : 7};
  for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
    unsigned seed = seeds[s];
    struct part_config c;
    config(&c);
    c.cores = 3 + seeds[s] % 6;
    boot(&c);
    uint64_t usable = 0;
    for (int step = 0; step < 400; step++)
      random_step(&seed, &usable, step);
    cr_expect_gt(P.last_number, 50, "seed %u: many OSes", seeds[s]);
  }
}

/* The invariant checker itself: each corruption is named. */
Test(partition, part_check_finds_each_broken_invariant) {
  static struct part good;
  char err[160];
  boot_default();
  boot_backup();
  good = P;
  P.core_owner[0] = 2;
  cr_expect_eq(part_check(&P, err, sizeof err), -EPROTO);
  cr_expect(strstr(err, "BSP"), "%s", err);
  P = good;
  P.block_owner[10] = 2;
  cr_expect_eq(part_check(&P, err, sizeof err), -EPROTO);
  cr_expect(strstr(err, "general block 10"), "%s", err);
  P = good;
  P.block_owner[2] = 1;
  cr_expect_eq(part_check(&P, err, sizeof err), -EPROTO, "another's slot");
  P = good;
  P.dev_owner[PART_DEV_NIC1] = 1;
  cr_expect_eq(part_check(&P, err, sizeof err), -EPROTO);
  cr_expect(strstr(err, "excludes"), "%s", err);
  P = good;
  P.dev_owner[PART_DEV_USER] = PART_FREE;
  cr_expect_eq(part_check(&P, err, sizeof err), -EPROTO);
  P = good;
  P.core_owner[3] = 9;
  cr_expect_eq(part_check(&P, err, sizeof err), -EPROTO, "not alive");
  P = good;
  P.state = PART_ALONE;
  cr_expect_eq(part_check(&P, err, sizeof err), -EPROTO, "two OSes, alone");
  P = good;
  cr_expect_eq(part_check(&P, err, sizeof err), 0);
}
