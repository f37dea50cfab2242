/* migd_names.c: how a node's migration server is found by node name
 * (seed 004 §2.3 step 1: "find the destination's migration server
 * through the network message server").
 *
 * Each uksim-migd given --netmsg ADDR advertises MIGD_SERVICE at its own
 * listening address to its node's network message server (netmsg serve,
 * node.h's Advertise) and keeps that connection open for its whole life,
 * so the advertisement ends with the process.  The migration client asks
 * its own node's network message server for MIGD_SERVICE on the
 * destination node; that server forwards the question to the
 * destination's (its --peer table), which answers with the address.  A
 * destination already given as "tcp!HOST!PORT" is used as it is. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migd.h"
#include "uksim/node.h"

/* The advertising connection: open until the process ends. */
static node_conn *advert;

/* The node key for the handshake: NULL without a key file. */
static const uint8_t *load_key(const char *keyfile, uint8_t key[NODE_KEY_LEN],
                               int *r) {
  *r = keyfile && keyfile[0] ? node_key_load(keyfile, key) : 0;
  return keyfile && keyfile[0] && *r == 0 ? key : NULL;
}

/* Dials the network message server at netmsg, retrying while it is not
 * yet listening (it may start beside us), up to MIGD_NETMSG_WAIT_MS. */
static node_conn *dial_netmsg(const char *netmsg, const char *keyfile,
                              const char *me, char *err, size_t len) {
  uint8_t key[NODE_KEY_LEN];
  int r;
  const uint8_t *k = load_key(keyfile, key, &r);
  if (r < 0) {
    snprintf(err, len, "--node-key %s: %s", keyfile, strerror(-r));
    return NULL;
  }
  node_conn *c = NULL;
  for (int ms = 0; c == NULL && ms <= MIGD_NETMSG_WAIT_MS; ms += 100) {
    c = node_dial(netmsg, k, me, err, len);
    if (c == NULL && strstr(err, "refused") == NULL)
      break; /* a wrong key or a bad address: waiting will not help */
    if (c == NULL)
      usleep(100000);
  }
  return c;
}

int migd_advertise(const char *netmsg, const char *keyfile, const char *me,
                   const char *addr, char *err, size_t len) {
  node_conn *c = dial_netmsg(netmsg, keyfile, me, err, len);
  if (c == NULL)
    return -EHOSTUNREACH;
  int r = node_advertise(c, MIGD_SERVICE, addr, err, len);
  if (r < 0) {
    node_close(c);
    return r;
  }
  node_close(advert); /* a second call replaces the first */
  advert = c;
  return 0;
}

int migd_resolve(const char *netmsg, const char *keyfile, const char *me,
                 const char *dest, char *addr, size_t len, char *err,
                 size_t errlen) {
  if (strncmp(dest, "tcp!", 4) == 0) {
    snprintf(addr, len, "%s", dest);
    return strlen(dest) < len ? 0 : -ENAMETOOLONG;
  }
  if (netmsg == NULL || netmsg[0] == '\0') {
    snprintf(err, errlen, "node '%s': no --netmsg to look it up with", dest);
    return -EHOSTUNREACH;
  }
  char why[NODE_ERR_MAX];
  struct node_found f;
  node_conn *c = dial_netmsg(netmsg, keyfile, me, why, sizeof why);
  int r = c ? node_lookup_on(c, dest, MIGD_SERVICE, &f, why, sizeof why)
            : -EHOSTUNREACH;
  node_close(c);
  if (r == 0 && f.addr[0] == '\0')
    r = -EPROTO; /* a kernel service of that name, not a migration server */
  if (r < 0) {
    snprintf(err, errlen, "no migration server of node '%s' found: %s", dest,
             r == -EPROTO ? "not an advertised address" : why);
    return r;
  }
  snprintf(addr, len, "%s", f.addr);
  return 0;
}
