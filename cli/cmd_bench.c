/* `uksim bench NAME`: runs one of the benchmarks in bench/ (bench.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

/* Every option each benchmark accepts, under its name, so that `uksim
 * bench --help` alone tells a student what each can be asked (several
 * benchmarks answer a bad option with a one-line usage only).  A test,
 * tests/cli/bench_help.sh, reads bench/bench_NAME.c and fails when an
 * option a benchmark parses is missing from its entry here. */
static const char usage[] =
    "usage: uksim bench NAME [OPTIONS]\n\n"
    "  ipc       IPC round trips and ICA hand-off against plain Linux "
    "baselines\n"
    "            [--json] [--quick] [--blocks N] [--poll-us N]\n"
    "  replace   kvs replaced under load, per state-save method and size\n"
    "            [--json] [--quick] [--csv FILE] [--plot FILE.svg] "
    "[--sizes LIST]\n"
    "            [--repeat N]\n"
    "  scenario  lock-step scenarios and seed exploration, timed\n"
    "            [--json] [--quick] [--seeds N] [--jobs J] [--poll-us N]\n"
    "  9p        our 9P server against diod\n"
    "            [--json] [--large-mib N] [--seconds S] [--msize N] "
    "[--rounds N]\n"
    "            [--poll-us N]\n"
    "  ns        file reads through the namespace from ramfs, beside the "
    "null\n"
    "            round trip\n"
    "            [--json] [--rounds N] [--trips N] [--quick] [--no-fuse]\n"
    "  failover  Orthros: fault to every protected process served again, "
    "by step\n"
    "            [--json] [--quick] [--all] [--rounds N] [--case KEY] "
    "[--services S]\n"
    "  kupdate   kernel update: processes moved to another kernel version\n"
    "            [--json] [--procs N (one run of N loads)]\n"
    "  migrate   a task moved between nodes, per size and method, beside "
    "loopback\n"
    "            TCP\n"
    "            [--json] [--sizes LIST (default 1m,64m,1g)]\n"
    "            [--rounds N (1..9, default 3: the median move's figures)]\n"
    "  monitor   seed 003: per interval (1, 10, 100, 1000 ms) the "
    "monitor's cpu\n"
    "            and the monitored kernel's slowdown (windows on and off in "
    "turn);\n"
    "            per in-kernel fault its detection latency, free ICA memory "
    "and\n"
    "            blocked readers at the finding, and the heartbeat alone on "
    "it\n"
    "            (heartbeat_detects_<fault>)\n"
    "            [--json] [--rounds N (1..9, default 3)]\n";

int cmd_bench(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "ipc"))
    return bench_ipc_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "replace"))
    return bench_replace_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "scenario"))
    return bench_scenario_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "9p"))
    return p9_bench_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "ns"))
    return bench_ns_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "failover"))
    return bench_failover_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "kupdate"))
    return bench_kupdate_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "migrate"))
    return bench_migrate_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "monitor"))
    return bench_monitor_main(argc - 1, argv + 1);
  /* Asked for, it is the answer; otherwise a usage error (no name, or
   * an unknown one), on stderr like every usage error. */
  bool asked = argc >= 2 && !strcmp(argv[1], "--help");
  fputs(usage, asked ? stdout : stderr);
  return asked ? 0 : 2;
}
