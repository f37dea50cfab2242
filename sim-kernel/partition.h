/* The machine's partition: which OS owns which core, memory block and
 * device (seed 001 §3.3, §4.1, §4.2, §4.5; Tables 1, 2, 4, 5).
 *
 * A pure module: a struct and functions, no I/O, no loop.  The machine
 * holds one struct part and asks it at each boot and failover step; the
 * failover code never decides an owner by itself.
 *
 * Cores.  The machine has `cores` virtual cores.  Core i has the fixed
 * hardware id (the paper's local APIC id) 2*i, as in Tables 1-2; the core
 * with local APIC id 0 is the BSP: it boots the 1st OS and never hosts a
 * backup (an INIT/SIPI does not start a BSP, §3.3.1).  An OS numbers the
 * cores itself from its boot core: the boot core is its number 0, the others
 * follow in ascending local APIC id (Tables 1-2).  The logical APIC id
 * depends on the local APIC id alone (the k-th core in ascending local APIC
 * id has logical id 1 << k), so it is the same in every OS (§4.5).  Core i
 * runs on host cpu host_cpu[i mod nhost] (the cpus the machine was allowed
 * when it booted, in ascending order), so part_cpuset() is what an OS's
 * kernel and processes are pinned to.
 *
 * Memory.  Blocks of block_size bytes, in three regions (§3.3.2):
 *   [0, first)                       only the 1st OS uses it; unused after
 *   [first, first + 3*slot)          three slots of `slot` blocks, one for
 *                                    each OS from the 2nd, taken in rotation
 *   [first + 3*slot, total)          general: handed to the active OS
 * The 1st OS owns its region and the whole general region, so its usable
 * memory is os1_blocks = first + general.  Some blocks are "used by
 * hardware" (hw[]): the 1st OS uses them, but memory hot-plug cannot add
 * them to another OS (§4.2.2), so after the 1st OS dies they belong to
 * nobody for good.  An OS from the 2nd keeps its slot when it becomes
 * active and gets the general region minus the hardware blocks: its usable
 * memory is slot + general - hw, the same for every OS from the 2nd, and
 * the drop at the 1st->2nd failover is hw + first - slot (just hw with the
 * default first == slot; Table 5).  A backup's usable memory is its slot.
 *
 * Devices (§3.3.3, §3.3.4, §4.1).  Two boot disks (A for odd OSes, B for
 * even ones), the user disk and nic0 (which migrate with the active role),
 * and nic1 (the backup's NIC).  Exclusion lists, by OS number:
 *   1st OS      may not touch boot-b, nic1 (it is never a backup)
 *   even OSes   may not touch boot-a
 *   odd >= 3    may not touch boot-b
 * A device changes owner only through a reset (PCI detach, then the next
 * owner initializes it): resets[] counts them.
 *
 * OS numbers.  The 1st OS is 1.  A new backup takes the smallest number
 * above every number so far whose parity differs from the active OS's, so
 * that the two boot disks never clash: normally active + 1; after a backup
 * died on standby, the number after it is skipped (its boot disk would be
 * the active's).
 *
 * State machine (part.state; every transition is one function):
 *
 *   PART_EMPTY --part_boot_first--> PART_ALONE
 *       1st OS active: region 1, general region, all cores but the last
 *       (the 1st backup's, Table 1), boot-a, user disk, nic0.
 *   PART_ALONE --part_boot_backup--> PART_PAIRED
 *       The backup takes the free non-BSP core (lowest local APIC id), the
 *       next free slot in rotation, its boot disk and nic1.
 *   PART_PAIRED --part_backup_lost--> PART_ALONE
 *       A backup died on standby: its core, slot, boot disk and nic1 are
 *       freed (reset); the active OS's partition does not change.
 *   PART_PAIRED --part_devices_migrate(dead, to)--> PART_MIGRATED
 *       Failover step 1: the active is dead; the user disk and nic0 are
 *       reset and given to the backup.  The dead OS keeps its memory (its
 *       file cache and tables are read from it) and its cores (fenced).
 *   PART_MIGRATED --part_repartition(dead, new)--> PART_ALONE
 *       Failover step 5: the backup becomes active; it gets the dead OS's
 *       cores but one (the next backup's: not the BSP, not its own boot
 *       core, which it cannot unplug; the lowest local APIC id left), the
 *       general blocks that hot-plug can add, and keeps its slot; nic1 is
 *       detached from it for the next backup; the dead OS's boot disk is
 *       reset; its region-1 blocks or slot are freed.
 * Any other request is refused with a negative errno and changes nothing.
 *
 * Invariants (part_check): every core, block and device has at most one
 * owner, and that owner is a live OS (or PART_HW for hardware blocks after
 * the 1st OS); the user disk and nic0 have exactly one owner once booted;
 * no OS owns a device its exclusion list names; a backup never owns the
 * BSP nor a general block; a slot's blocks belong to the OS in it or to
 * nobody.
 */
#ifndef UKSIM_PARTITION_H
#define UKSIM_PARTITION_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Virtual cores of a machine: at most 64 (a logical APIC id is one bit of
 * a 64-bit mask here; x86's flat logical mode has 8).  At least 2: one for
 * the active OS and one for the backup; a 3rd OS needs 3 (the new active
 * keeps its boot core and the BSP is never a backup's). */
#define PART_CORES_MIN 2
#define PART_CORES_MAX 64
#define PART_CORES_DEFAULT 4
/* Physical memory blocks of a machine (1st OS's plus the slots): 2 TiB
 * of 128 MiB blocks. */
#define PART_BLOCKS_MAX 16384
/* Slots for the OSes from the 2nd (§3.3.2: three, reused in rotation). */
#define PART_SLOTS 3
/* Blocks of one slot, and of the 1st OS's own region, by default. */
#define PART_SLOT_BLOCKS_DEFAULT 1
#define PART_FIRST_BLOCKS_DEFAULT 1
/* Hardware blocks by default: the first ones of the general region (the
 * paper lost 405 MB, about 3 blocks of 128 MiB), at most all of it but
 * one block. */
#define PART_HW_BLOCKS_DEFAULT 3
/* Hardware blocks that can be listed. */
#define PART_HW_MAX 64
/* OSes alive at once: an active and a backup. */
#define PART_LIVE_MAX 2
/* Ports of one NIC's loopback range. */
#define PART_NIC_PORTS 16
/* A hardware-block list as text (--hw-blocks 4,5,9-11). */
#define PART_LIST_TEXT_MAX 256

/* Owners: an OS number (1, 2, ...), nobody, or the hardware. */
#define PART_FREE 0u
#define PART_HW UINT32_MAX

enum part_region { PART_REGION_FIRST, PART_REGION_SLOT, PART_REGION_GENERAL };

enum part_dev {
  PART_DEV_BOOT_A, /* boot disk of the 1st, 3rd, 5th ... OS */
  PART_DEV_BOOT_B, /* boot disk of the 2nd, 4th ... OS */
  PART_DEV_USER,   /* the user disk: migrates with the active role */
  PART_DEV_NIC0,   /* the service NIC: migrates with the active role */
  PART_DEV_NIC1,   /* the backup's NIC */
  PART_DEV_COUNT
};

enum part_role { PART_ROLE_ACTIVE, PART_ROLE_BACKUP, PART_ROLE_DEAD };

enum part_state { PART_EMPTY, PART_ALONE, PART_PAIRED, PART_MIGRATED };

struct part_config {
  uint32_t cores;                    /* PART_CORES_MIN .. PART_CORES_MAX */
  uint32_t nhost;                    /* host cpus the cores map onto (>= 1) */
  uint16_t host_cpu[PART_CORES_MAX]; /* their numbers; nhost of them */
  uint64_t block_size;               /* bytes */
  uint32_t os1_blocks;   /* the 1st OS's memory: region 1 + general */
  uint32_t first_blocks; /* region 1 (< os1_blocks, or 0 < it) */
  uint32_t slot_blocks;  /* one slot (>= 1) */
  bool hw_default;       /* hw[] from PART_HW_BLOCKS_DEFAULT, not the list */
  uint32_t nhw;
  uint32_t hw[PART_HW_MAX]; /* block indices, in region 1 or general */
  uint16_t nic_port[2];     /* first port of nic0's and nic1's range */
};

struct part_os {
  uint32_t number; /* 1 = the 1st OS; 0 = this record is free */
  enum part_role role;
  uint32_t boot_core; /* core index it booted from */
  int slot;           /* its slot, -1 for the 1st OS */
};

struct part {
  struct part_config c;
  enum part_state state;
  uint32_t total_blocks;
  uint32_t core_owner[PART_CORES_MAX];
  uint32_t block_owner[PART_BLOCKS_MAX]; /* total_blocks of them */
  bool block_hw[PART_BLOCKS_MAX];
  uint32_t dev_owner[PART_DEV_COUNT];
  uint32_t dev_resets[PART_DEV_COUNT];
  struct part_os os[PART_LIVE_MAX];
  uint32_t last_number; /* highest OS number booted so far */
  int last_slot;        /* slot taken last, -1 none */
};

/* Defaults: PART_CORES_DEFAULT cores on the given host cpus, os1_blocks of
 * block_size, default regions and hardware blocks, NIC ports from
 * nic_base (nic0 at nic_base, nic1 PART_NIC_PORTS above). */
void part_config_default(struct part_config *c, uint32_t os1_blocks,
                         uint64_t block_size, uint16_t nic_base);

/* Parses a block list ("4,5,9-11") into c->hw (replacing the default);
 * -EINVAL on a bad list, -E2BIG beyond PART_HW_MAX blocks. */
int part_config_hw(struct part_config *c, const char *list);

/* Checks c and lays out a partition in state PART_EMPTY (nothing to free
 * after).  0, or -EINVAL with why in err (a hardware block in a slot or
 * past the end, too few cores, too many blocks ...). */
int part_init(struct part *p, const struct part_config *c, char *err,
              size_t errlen);

/* The transitions of the header comment.  Each returns 0 or a negative
 * errno (-EALREADY / -EBUSY / -ESRCH / -EINVAL: not in the right state, no
 * free core, no such OS) and then changes nothing.  part_boot_backup gives
 * the new OS's number in *number. */
int part_boot_first(struct part *p);
int part_boot_backup(struct part *p, uint32_t *number);
int part_backup_lost(struct part *p, uint32_t backup);
int part_devices_migrate(struct part *p, uint32_t dead, uint32_t to);
int part_repartition(struct part *p, uint32_t dead, uint32_t new_active);

/* Queries.  An OS is named by its number; a number not alive answers NULL,
 * 0 or false. */
const struct part_os *part_os_lookup(const struct part *p, uint32_t number);
uint32_t part_active(const struct part *p); /* 0 when none (or dead) */
uint32_t part_backup(const struct part *p); /* 0 when none */
uint64_t part_usable_bytes(const struct part *p, uint32_t number);
uint32_t part_blocks_of(const struct part *p, uint32_t number,
                        enum part_region r);
/* The host cpus of its cores; 0, or -ESRCH. */
int part_cpuset(const struct part *p, uint32_t number, cpu_set_t *set);
uint32_t part_core_owner(const struct part *p, uint32_t core);
uint32_t part_block_owner(const struct part *p, uint32_t block);
uint32_t part_dev_owner(const struct part *p, enum part_dev d);
/* The devices OS `number` owns, as bits 1u << enum part_dev. */
uint32_t part_devs_of(const struct part *p, uint32_t number);
enum part_region part_block_region(const struct part *p, uint32_t block);

/* Core ids: hardware (local APIC) id, the number OS `number` gives it (-1
 * when that OS is not alive), logical APIC id, host cpu. */
uint32_t part_core_hw_id(uint32_t core);
int part_core_number(const struct part *p, uint32_t number, uint32_t core);
uint64_t part_core_logical_id(const struct part *p, uint32_t core);
uint32_t part_core_host_cpu(const struct part *p, uint32_t core);
/* The same, for an OS that booted from core `boot` (pure: Tables 1-2). */
uint32_t part_core_number_from(uint32_t boot, uint32_t core);

/* Exclusion lists (§4.1): may OS `number` touch device d at all? */
bool part_excluded(uint32_t number, enum part_dev d);
/* May OS `number` open d now: not excluded, and it owns it. */
bool part_may_open(const struct part *p, uint32_t number, enum part_dev d);

const char *part_dev_name(enum part_dev d);
const char *part_role_name(enum part_role r);
const char *part_state_name(enum part_state s);
const char *part_region_name(enum part_region r);

/* The blocks of one region an OS owns (PART_FREE: nobody's, PART_HW: the
 * hardware's) as ranges, "4-12,14" ("-" for none); the length it needed. */
size_t part_blocks_text(const struct part *p, uint32_t owner,
                        enum part_region r, char *buf, size_t len);
/* The hardware blocks, whoever owns them, the same way. */
size_t part_hw_text(const struct part *p, char *buf, size_t len);
/* The local APIC ids of the cores `owner` owns, "0 2 4" ("-" none). */
size_t part_cores_text(const struct part *p, uint32_t owner, char *buf,
                       size_t len);

/* The whole partition as text, one OS a line then free resources. */
size_t part_dump(const struct part *p, char *buf, size_t len);

/* The invariants of the header comment; 0, or -EPROTO with the first one
 * broken in err. */
int part_check(const struct part *p, char *err, size_t errlen);

#endif /* UKSIM_PARTITION_H */
