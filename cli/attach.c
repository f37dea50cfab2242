/* The CLI process as a uksim application process (see attach.h). */
#include "attach.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uksim/num.h"

/* A live process (not FREE, not EXITED) at slot i. */
static bool live(const struct uk_kdata *kd, int i) {
  uint8_t s = kd->proc[i].state;
  return s == UK_PROC_RUNNING || s == UK_PROC_WAITING;
}

int cli_proc_slot(const struct uk_kdata *kd, const char *proc, int *slot,
                  char *err, size_t errlen) {
  uint64_t pid;
  int found = -1, n = 0;
  bool by_pid = num_parse_u64(proc, 1, INT32_MAX, 0, &pid) == 0;
  for (int i = 0; i < UK_PROC_MAX; i++) {
    if (!live(kd, i))
      continue;
    const struct uk_proc *p = &kd->proc[i];
    bool match = by_pid ? (uint64_t)p->pid == pid
                        : strncmp(p->name, proc, KABI_NAME_MAX) == 0 &&
                              strlen(proc) <= KABI_NAME_MAX;
    if (match && n++ == 0)
      found = i;
  }
  if (n == 0) {
    snprintf(err, errlen, "no process '%s' ('uksim ps' lists them)", proc);
    return -1;
  }
  if (n > 1) {
    snprintf(err, errlen, "%d processes are named '%s': give a pid", n, proc);
    return -1;
  }
  *slot = found;
  return 0;
}

/* The slot of proc in mc's machine, read from its kernel data. */
static int resolve(const char *cmd, mach_client *mc, const char *proc,
                   int *slot) {
  const struct uk_kdata *kd;
  Uksim__Reply *info = NULL;
  char err[256];
  if (mach_kdata(mc, &kd, &info) < 0) {
    fprintf(stderr, "uksim %s: %s\n", cmd, mc->error);
    return -1;
  }
  int r = cli_proc_slot(kd, proc, slot, err, sizeof err);
  if (r < 0)
    fprintf(stderr, "uksim %s: %s\n", cmd, err);
  uksim__reply__free_unpacked(info, NULL);
  mach_kdata_unmap(kd);
  return r;
}

int cli_attach(const char *cmd, mach_client *mc, const char *machine,
               const char *proc, uint32_t rfflags, const char *as) {
  int slot = -1, fd = -1, self;
  if (mach_connect(mc, machine) < 0) {
    fprintf(stderr, "uksim %s: %s\n", cmd, mc->error);
    return -1;
  }
  if (proc && resolve(cmd, mc, proc, &slot) < 0)
    return -1;
  if (mach_attach(mc, as, slot, rfflags, &self, &fd) < 0) {
    fprintf(stderr, "uksim %s: attach: %s\n", cmd, mc->error);
    return -1;
  }
  char s[16];
  snprintf(s, sizeof s, "%d", fd);
  setenv("UKSIM_FD", s, 1);
  return 0;
}
