/* uksim os: how a running machine is partitioned among its OSes (seed 001
 * §3.3): each OS's cores (local APIC id, the OS's own number for it, the
 * logical APIC id, the host cpu), memory blocks by region, usable memory
 * and devices; then what nobody owns and the devices' owners.  The machine
 * answers it itself (an Os request), from its struct part. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "machine.h"
#include "uksim/interos.h"

int cli_part_check(const char *cmd, const struct mach_opts *m) {
  struct part_config c;
  char err[160];
  if (mach_part_config(m, &c, err, sizeof err) == 0)
    return -1;
  fprintf(stderr, "uksim %s: %s\n", cmd, err);
  return 2;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: uksim os [--name MACHINE] [--json]\n\n"
          "Show how a running machine is partitioned among its OSes: each "
          "OS's cores\n(local APIC id / the OS's own number for it / "
          "logical APIC id, and the\nhost cpus they run on), its memory "
          "blocks by region (first: the 1st OS's\nown; slot: a 2nd..Nth "
          "OS's; general: the active OS's), its usable memory\n(its ICA "
          "budget) and its devices; then the devices' owners, every OS booted\n"
          "so far with its usable memory as backup and as active (Table 5 "
          "across\nfailovers), and the partition's steps with their "
          "times.  An OS a kernel update left retiring (serving the "
          "processes\nit could not carry) is named at the end (JSON: "
          "\"retiring\", os 0 for none).\n\n"
          "  --name MACHINE  the machine (default 'default')\n"
          "  --json          one JSON object instead of tables\n");
}

static void print_os_text(const Uksim__PartOs *o) {
  char blocks[800], devs[128] = "";
  snprintf(blocks, sizeof blocks, "first %s, slot %s, general %s",
           o->first_blocks, o->slot_blocks, o->general_blocks);
  for (size_t i = 0; i < o->n_devices; i++)
    snprintf(devs + strlen(devs), sizeof devs - strlen(devs), "%s%s",
             i ? " " : "", o->devices[i]);
  char slot[16] = "-";
  if (o->slot >= 0)
    snprintf(slot, sizeof slot, "%d", o->slot);
  printf("%-3u %-7s %-5u %-5s %-11" PRIu64 " %-6s %-34s %s\n", o->number,
         o->role, o->boot_core, slot, o->usable_mib, o->cpus, blocks, devs);
  printf("    cores (local APIC id/its number/logical id):");
  for (size_t i = 0; i < o->n_cores; i++)
    printf(" %u/%d/%" PRIu64 "%s", o->cores[i]->hw_id, o->cores[i]->os_number,
           o->cores[i]->logical_id, o->cores[i]->bsp ? "(BSP)" : "");
  printf("\n");
}

/* A step's text may quote an error: escaped. */
static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++)
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", (unsigned char)*s);
    else
      putchar(*s);
  putchar('"');
}

/* Table 5 across failovers (every OS booted so far) and the partition
 * log, each step with its time since the machine booted. */
static void print_history_text(const Uksim__Partition *p) {
  printf("\n%-3s %-7s %-17s %s\n", "OS", "ROLE", "BACKUP_USABLE_MIB",
         "ACTIVE_USABLE_MIB");
  for (size_t i = 0; i < p->n_history; i++) {
    const Uksim__PartHistory *h = p->history[i];
    char active[24] = "-";
    if (h->active_usable_mib)
      snprintf(active, sizeof active, "%" PRIu64, h->active_usable_mib);
    printf("%-3u %-7s %-17" PRIu64 " %s\n", h->number, h->role,
           h->backup_usable_mib, active);
  }
  printf("\n%-12s %-13s %-3s %-7s %s\n", "AT_MS", "STEP", "OS", "STATUS",
         "WHAT");
  for (size_t i = 0; i < p->n_steps; i++) {
    const Uksim__PartStep *st = p->steps[i];
    printf("%-12.3f %-13s %-3u %-7d %s\n", (double)st->at_us / 1e3, st->step,
           st->os, st->status, st->text);
  }
}

static void print_text(const char *name, const Uksim__Partition *p) {
  printf("machine '%s': partition %s; %u cores, %u blocks of %" PRIu64
         " MiB; hardware blocks %s\n",
         name, p->state, p->cores, p->blocks, p->block_size >> 20,
         p->hw_blocks);
  printf("%-3s %-7s %-5s %-5s %-11s %-6s %-34s %s\n", "OS", "ROLE", "BOOT",
         "SLOT", "USABLE_MIB", "CPUS", "BLOCKS", "DEVICES");
  for (size_t i = 0; i < p->n_os; i++)
    print_os_text(p->os[i]);
  printf("free: cores %s; slot blocks %s\n\n", p->free_cores,
         p->free_slot_blocks);
  printf("%-7s %-5s %-6s %-7s %s\n", "DEVICE", "KIND", "OWNER", "RESETS",
         "DETAIL");
  for (size_t i = 0; i < p->n_devices; i++) {
    const Uksim__PartDevice *d = p->devices[i];
    char owner[16] = "-";
    if (d->owner)
      snprintf(owner, sizeof owner, "%u", d->owner);
    printf("%-7s %-5s %-6s %-7u %s\n", d->name, d->kind, owner, d->resets,
           d->detail);
  }
  print_history_text(p);
}

/* Every string here is the machine's own (names, numbers, ranges): none
 * needs escaping. */
static void print_os_json(const Uksim__PartOs *o) {
  printf("{\"number\":%u,\"role\":\"%s\",\"boot_core\":%u,\"slot\":%d,"
         "\"usable_mib\":%" PRIu64 ",\"cpus\":\"%s\",\"blocks\":{\"first\":"
         "\"%s\",\"slot\":\"%s\",\"general\":\"%s\"},\"devices\":[",
         o->number, o->role, o->boot_core, o->slot, o->usable_mib, o->cpus,
         o->first_blocks, o->slot_blocks, o->general_blocks);
  for (size_t i = 0; i < o->n_devices; i++)
    printf("%s\"%s\"", i ? "," : "", o->devices[i]);
  printf("],\"cores\":[");
  for (size_t i = 0; i < o->n_cores; i++) {
    const Uksim__PartCore *k = o->cores[i];
    printf("%s{\"hw_id\":%u,\"os_number\":%d,\"logical_id\":%" PRIu64
           ",\"host_cpu\":%u,\"bsp\":%s}",
           i ? "," : "", k->hw_id, k->os_number, k->logical_id, k->host_cpu,
           k->bsp ? "true" : "false");
  }
  printf("]}");
}

static void print_json(const char *name, const Uksim__Partition *p) {
  printf("{\"machine\":\"%s\",\"state\":\"%s\",\"cores\":%u,"
         "\"block_size_mib\":%" PRIu64 ",\"blocks\":%u,\"hw_blocks\":\"%s\","
         "\"free_cores\":\"%s\",\"free_slot_blocks\":\"%s\",\"os\":[",
         name, p->state, p->cores, p->block_size >> 20, p->blocks, p->hw_blocks,
         p->free_cores, p->free_slot_blocks);
  for (size_t i = 0; i < p->n_os; i++) {
    printf(i ? "," : "");
    print_os_json(p->os[i]);
  }
  printf("],\"devices\":[");
  for (size_t i = 0; i < p->n_devices; i++) {
    const Uksim__PartDevice *d = p->devices[i];
    printf("%s{\"name\":\"%s\",\"kind\":\"%s\",\"owner\":%u,\"resets\":%u,"
           "\"detail\":\"%s\"}",
           i ? "," : "", d->name, d->kind, d->owner, d->resets, d->detail);
  }
  printf("],\"history\":[");
  for (size_t i = 0; i < p->n_history; i++) {
    const Uksim__PartHistory *h = p->history[i];
    printf("%s{\"number\":%u,\"role\":\"%s\",\"backup_usable_mib\":%" PRIu64
           ",\"active_usable_mib\":%" PRIu64 "}",
           i ? "," : "", h->number, h->role, h->backup_usable_mib,
           h->active_usable_mib);
  }
  printf("],\"steps\":[");
  for (size_t i = 0; i < p->n_steps; i++) {
    const Uksim__PartStep *st = p->steps[i];
    printf("%s{\"at_us\":%" PRIu64 ",\"step\":\"%s\",\"os\":%u,"
           "\"status\":%d,\"text\":",
           i ? "," : "", st->at_us, st->step, st->os, st->status);
    json_string(st->text);
    printf("}");
  }
  printf("]"); /* the object's end is the caller's (retiring) */
}

/* A kernel update's retiring OS (sim-kernel/kkeep.h), while it lives: the
 * partition counts it dead since the update (its core and memory went to
 * the new active), but its kernel still runs the processes it kept. */
static void print_retiring(mach_client *mc, bool json) {
  const struct uk_interos *io;
  if (mach_interos(mc, &io) < 0) {
    if (json)
      printf("}\n");
    return;
  }
  if (json)
    printf(",\"retiring\":{\"os\":%u,\"kept\":%u}}\n", io->keep_os,
           io->keep_os ? io->nkeep : 0);
  else if (io->keep_os != 0)
    printf("\nos %u retires after a kernel update: its kernel still serves "
           "the %u process%s the update could not carry (uksim ps lists "
           "them); it ends after them\n",
           io->keep_os, io->nkeep, io->nkeep == 1 ? "" : "es");
  mach_interos_unmap(io);
}

/* Asks the machine; 0 and *rep (free it), or -1 after saying why. */
static int ask(mach_client *mc, const char *name, Uksim__Ctl **rep) {
  Uksim__Ctl c = UKSIM__CTL__INIT;
  Uksim__Os os = UKSIM__OS__INIT;
  c.body_case = UKSIM__CTL__BODY_OS;
  c.os = &os;
  int64_t id;
  if (mach_connect(mc, name) < 0 || (id = mach_send(mc, &c)) < 0 ||
      mach_reply(mc, (uint64_t)id, rep, NULL) < 0) {
    fprintf(stderr, "uksim os: %s\n", mc->error);
    return -1;
  }
  if ((*rep)->reply->partition == NULL) {
    fprintf(stderr, "uksim os: machine '%s' sent no partition\n", name);
    return -1;
  }
  return 0;
}

int cmd_os(int argc, char **argv) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *name = "default";
  bool json = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'n')
      name = optarg;
    else if (c == 'j')
      json = true;
    else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "uksim os: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  mach_client mc;
  Uksim__Ctl *rep = NULL;
  int st = ask(&mc, name, &rep) < 0 ? 1 : 0;
  if (st == 0 && json)
    print_json(name, rep->reply->partition);
  else if (st == 0)
    print_text(name, rep->reply->partition);
  if (st == 0)
    print_retiring(&mc, json);
  if (rep)
    uksim__ctl__free_unpacked(rep, NULL);
  mach_close(&mc);
  return st;
}
