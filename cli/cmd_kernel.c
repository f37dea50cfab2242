/* `uksim kernel`: the kernel role the machine starts (sim-kernel/kern.c),
 * with what the kernel library leaves to its caller installed: the
 * scenario executor (scn_exec.c) and the writer of its event trace in JSON
 * Lines (scenarios/README.md "Trace format"). */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "kern.h"
#include "scn_exec.h"
#include "scn_trace.h"

/* One event as one JSON line; a key whose value is NULL or 0 is left out. */
static void write_event(FILE *f, uint64_t step, uint64_t t_ns,
                        const struct kern_ev *e) {
  fprintf(f, "{\"step\":%" PRIu64 ",\"t\":%" PRIu64, step, t_ns);
  scn_json_str(f, "ev", e->ev);
  scn_json_str(f, "actor", e->actor ? e->actor : "kernel");
  scn_json_str(f, "peer", e->peer);
  scn_json_str(f, "svc", e->svc);
  if (e->req)
    fprintf(f, ",\"req\":%" PRIu64, e->req);
  scn_json_str(f, "op", e->op);
  if (e->status)
    fprintf(f, ",\"status\":%d", e->status);
  scn_json_str(f, "text", e->text);
  fputs("}\n", f);
}

int cmd_kernel(int argc, char **argv) {
  static struct kern_ops ops = {.write_event = write_event};
  scn_exec_ops(&ops);
  return kern_main(argc, argv, &ops);
}
