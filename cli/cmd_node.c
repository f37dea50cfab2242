/* uksim node: talk to another node as a node does (uksim/node.h).
 *
 *   uksim node [--key FILE] [--as NAME] tcp!HOST!PORT hello
 *   uksim node [--key FILE] [--as NAME] tcp!HOST!PORT lookup SERVICE
 *
 * `hello` authenticates and prints the node's name; `lookup` prints where
 * SERVICE is on it ("kvs on node b: slot 0 gen 1 version 1").  Exit 0,
 * 1 when the node refused or has no such service, 2 for bad usage. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "uksim/node.h"

static int usage(FILE *f, int st) {
  fprintf(f, "usage: uksim node [--key FILE] [--as NAME] tcp!HOST!PORT "
             "hello|lookup SERVICE\n\n"
             "Dial the node (a machine started with --node-port) and, once "
             "both ends\nhave proved they hold the key (--node-key on the "
             "node, --key here),\nprint its name (hello) or where SERVICE "
             "is on it (lookup).\n");
  return st;
}

static int lookup(node_conn *c, const char *svc) {
  struct node_found f;
  char err[NODE_ERR_MAX];
  if (node_lookup(c, svc, &f, err, sizeof err) < 0) {
    fprintf(stderr, "uksim node: %s\n", err);
    return 1;
  }
  printf("%s on node %s: slot %u gen %u version %u\n", svc, f.node, f.index,
         f.gen, f.version);
  return 0;
}

int cmd_node(int argc, char **argv) {
  static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                       {"as", required_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *keyfile = NULL, *as = "uksim-node";
  uint8_t key[NODE_KEY_LEN];
  char err[NODE_ERR_MAX];
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'k')
      keyfile = optarg;
    else if (c == 'a')
      as = optarg;
    else
      return usage(c == 'h' ? stdout : stderr, c == 'h' ? 0 : 2);
  }
  int n = argc - optind;
  const char *verb = n >= 2 ? argv[optind + 1] : "";
  if (!((n == 2 && !strcmp(verb, "hello")) ||
        (n == 3 && !strcmp(verb, "lookup"))))
    return usage(stderr, 2);
  int r = keyfile ? node_key_load(keyfile, key) : 0;
  if (r < 0) {
    fprintf(stderr, "uksim node: --key %s: %s\n", keyfile, strerror(-r));
    return 1;
  }
  node_conn *nc =
      node_dial(argv[optind], keyfile ? key : NULL, as, err, sizeof err);
  if (nc == NULL) {
    fprintf(stderr, "uksim node: %s: %s\n", argv[optind], err);
    return 1;
  }
  if (n == 2)
    printf("node %s\n", node_peer(nc));
  int st = n == 3 ? lookup(nc, argv[optind + 2]) : 0;
  node_close(nc);
  return st;
}
