/* The benchmarks, each run as `uksim bench NAME` (cli/cmd_bench.c): argv
 * with argv[0] = NAME; the exit status is 0, 1 (failure) or 2 (usage).
 * Each compares against a baseline in the same run (README "Benchmarks"). */
#ifndef UKSIM_BENCH_H
#define UKSIM_BENCH_H

int bench_ipc_main(int argc, char **argv);      /* bench_ipc.c */
int bench_replace_main(int argc, char **argv);  /* bench_replace.c */
int bench_scenario_main(int argc, char **argv); /* bench_scenario.c */
int p9_bench_main(int argc, char **argv);       /* bench_9p.c */
int bench_ns_main(int argc, char **argv);       /* bench_ns.c */
int bench_failover_main(int argc, char **argv); /* bench_failover.c */
int bench_kupdate_main(int argc, char **argv);  /* bench_kupdate.c */
int bench_migrate_main(int argc, char **argv);  /* bench_migrate.c */
int bench_monitor_main(int argc, char **argv);  /* bench_monitor.c */

#endif /* UKSIM_BENCH_H */
