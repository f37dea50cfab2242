/* uksim exportfs and uksim import (seed 002 §6.3, Fig. 6 c-d).
 *
 *   uksim exportfs [--name MACHINE] [--key FILE] [--as NAME] [-c CMDS]
 *                  PROC ADDR
 *   uksim import [--name MACHINE] [--as NAME] [-abc] PROC ADDR REMOTE LOCAL
 *
 * exportfs attaches to the machine as a process sharing PROC's namespace
 * ("-": a fresh one, #c on /dev, #s on /srv ...) and serves it as 9P2000
 * at ADDR (tcp!HOST!PORT) until it is killed.  -c runs nsh commands in
 * that namespace first (`mount /srv/ramfs /n`), as a Plan 9 user shapes
 * a namespace before exportfs serves it.
 * import attaches sharing PROC's namespace on this node and mounts
 * REMOTE of the namespace exported at ADDR on LOCAL (ns_import), so PROC
 * and every process sharing its namespace see the other node's files.
 * With --key the exporter demands 9P authentication (Tauth) under that
 * key; the importing node's kernel proves its own --node-key (the same
 * secret) before it attaches, so a node booted with the exporter's key
 * imports from it and any other is refused (README "Nodes"). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "exportfs.h"
#include "nsh.h"
#include "uksim/ns.h"

static int usage_export(FILE *f, int st) {
  fprintf(f, "usage: uksim exportfs [--name MACHINE] [--key FILE] [--as "
             "NAME] [-c CMDS] PROC|- tcp!HOST!PORT\n\n"
             "Serve the namespace of process PROC ('-': a fresh one) to "
             "other nodes as\n9P2000 at the address; they mount it with "
             "'uksim import'.  Runs until killed.\n"
             "-c runs nsh commands in that namespace first ('mount "
             "/srv/ramfs /n').\n");
  return st;
}

static int usage_import(FILE *f, int st) {
  fprintf(f, "usage: uksim import [--name MACHINE] [--as NAME] [-a|-b] "
             "PROC tcp!HOST!PORT REMOTE LOCAL\n\n"
             "Mount REMOTE of the namespace another node exports at the "
             "address on LOCAL\nin the namespace of process PROC (-b before, "
             "-a after what is there;\ndefault: replace it).\n");
  return st;
}

/* Serves until the loop ends (it never does by itself). */
static int export_serve(const char *addr, const char *keyfile) {
  uint8_t key[P9_KEYLEN];
  int err = keyfile ? p9_key_load(keyfile, key) : 0;
  if (err < 0) {
    fprintf(stderr, "uksim exportfs: --key %s: %s\n", keyfile, strerror(-err));
    return 1;
  }
  /* UKSIM_EXPORTFS_TRACE=1: every 9P message on stderr (p9_fcall_fmt). */
  p9_srv_config cfg = {.key = keyfile ? key : NULL,
                       .trace = getenv("UKSIM_EXPORTFS_TRACE") != NULL};
  uv_loop_t *loop = uv_default_loop();
  p9_srv *srv = p9_srv_new(exportfs_ops(), NULL, &cfg, &err);
  p9_listener *l = srv ? p9_listen(srv, loop, addr, &err) : NULL;
  if (l == NULL) {
    fprintf(stderr, "uksim exportfs: %s: %s\n", addr,
            err == -EPERM ? "beyond loopback a --key is required"
                          : strerror(-err));
    return 1;
  }
  printf("exportfs: serving at %s\n", p9_listener_addr(l));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

int cmd_exportfs(int argc, char **argv) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"key", required_argument, NULL, 'k'},
                                       {"as", required_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *machine = "default", *as = "exportfs", *keyfile = NULL;
  const char *cmds = NULL;
  mach_client mc;
  struct nsh sh;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+hc:", opts, NULL)) != -1) {
    if (c == 'c')
      cmds = optarg;
    else if (c == 'n')
      machine = optarg;
    else if (c == 'k')
      keyfile = optarg;
    else if (c == 'a')
      as = optarg;
    else
      return usage_export(c == 'h' ? stdout : stderr, c == 'h' ? 0 : 2);
  }
  if (argc - optind != 2)
    return usage_export(stderr, 2);
  const char *proc = argv[optind];
  if (cli_attach("exportfs", &mc, machine, strcmp(proc, "-") ? proc : NULL, 0,
                 as) < 0) {
    mach_close(&mc);
    return 1;
  }
  nsh_init(&sh, stdout, stderr);
  int st = cmds ? nsh_run(&sh, cmds, strlen(cmds)) : 0;
  if (st == 0)
    st = export_serve(argv[optind + 1], keyfile);
  mach_close(&mc);
  return st;
}

int cmd_import(int argc, char **argv) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"as", required_argument, NULL, 'A'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *machine = "default", *as = "import";
  int c, flag = NS_MREPL;
  mach_client mc;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+abch", opts, NULL)) != -1) {
    if (c == 'n')
      machine = optarg;
    else if (c == 'A')
      as = optarg;
    else if (c == 'a' || c == 'b')
      flag = (flag & NS_MCREATE) | (c == 'a' ? NS_MAFTER : NS_MBEFORE);
    else if (c == 'c')
      flag |= NS_MCREATE;
    else
      return usage_import(c == 'h' ? stdout : stderr, c == 'h' ? 0 : 2);
  }
  if (argc - optind != 4)
    return usage_import(stderr, 2);
  char **a = argv + optind;
  if (cli_attach("import", &mc, machine, a[0], 0, as) < 0) {
    mach_close(&mc);
    return 1;
  }
  int r = ns_import(a[1], a[2], a[3], flag);
  if (r < 0)
    fprintf(stderr, "uksim import: %s %s on %s: %s\n", a[1], a[2], a[3],
            ns_import_strerror(r));
  mach_close(&mc);
  return r < 0;
}
