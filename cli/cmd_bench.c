/* `uksim bench NAME`: runs one of the benchmarks in bench/ (bench.h). */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

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
  fprintf(argc >= 2 && strcmp(argv[1], "--help") ? stderr : stdout,
          "usage: uksim bench ipc|replace|scenario|9p|ns|failover|kupdate|"
          "migrate|monitor "
          "[--json]\n\n"
          "  ipc   IPC round trips and ICA hand-off against plain Linux "
          "baselines\n"
          "  replace  kvs replaced under load, per state-save method and "
          "size\n"
          "  scenario  lock-step scenarios and seed exploration, timed\n"
          "  9p    our 9P server against diod\n"
          "  ns    file reads through the namespace from ramfs, beside the "
          "null round trip\n"
          "  failover  Orthros: fault to every protected process served "
          "again, by step\n"
          "  kupdate  kernel update: processes moved to another kernel "
          "version\n"
          "  migrate  a task moved between nodes, per size and method, "
          "beside loopback TCP\n"
          "  monitor  seed 003: the monitor's cpu and the monitored "
          "kernel's slowdown\n"
          "           per interval, and each in-kernel fault's detection\n");
  return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
