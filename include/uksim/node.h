/* Nodes (issue 16): uksim machines that know each other over TCP.
 *
 * A machine started with --node-port [HOST!]PORT listens there for other
 * nodes (default: it does not listen; HOST defaults to 127.0.0.1).  With
 * --node-key FILE both ends prove they hold the same secret (a file whose
 * BLAKE2b hash is the key, as `uksim 9p` keys are); a listener on anything
 * but loopback refuses to start without one.  A dialer reaches the node at
 * its dial address "tcp!127.0.0.1!PORT", as the migrate helper does:
 *
 *   uint8_t key[NODE_KEY_LEN];  // node_key_load("k"), or NULL: no key
 *   char err[NODE_ERR_MAX];
 *   node_conn *c = node_dial("tcp!127.0.0.1!7001", NULL, "me", err, sizeof
 * err); struct node_found f; if (c && node_lookup(c, "kvs", &f, err, sizeof
 * err) == 0) printf("kvs is slot %u of node %s\n", f.index, f.node);
 *   node_close(c);
 *
 * The protocol (sim-kernel/node.proto, state machine in sim-kernel/node.h)
 * is protobuf-c in length-prefixed frames.  Every call here blocks, with
 * NODE_IO_TIMEOUT_MS at most per answer: a node that disappears gives an
 * error, never a hang.
 */
#ifndef UKSIM_NODE_H
#define UKSIM_NODE_H

#include <stddef.h>
#include <stdint.h>

/* Limits (README.md "Limits"). */
#define NODE_PROTO_VERSION 1
#define NODE_FRAME_MAX (64 * 1024) /* one frame's bytes, header excluded */
#define NODE_NAME_MAX 64           /* a node or service name, NUL included */
#define NODE_NONCE_LEN 32          /* challenge bytes */
#define NODE_KEY_LEN 32
#define NODE_MAC_LEN 32
#define NODE_CONNS_MAX 32        /* connections a listener serves at once */
#define NODE_HANDSHAKE_MS 5000   /* a peer must be authenticated by then */
#define NODE_IO_TIMEOUT_MS 10000 /* a dialer's wait for one answer */
#define NODE_ERR_MAX 160         /* room for an error text */
#define NODE_ADDR_MAX 96 /* a dial address "tcp!HOST!PORT", NUL included */
/* The network message server (servers/netmsg.c): the peers it forwards
 * lookups to (--peer NAME=ADDR) and the services advertised to it. */
#define NETMSG_PEERS_MAX 16
#define NETMSG_ADVERTS_MAX 32
/* Remote calls (servers/netmsg.c): a control ICA crosses in one frame, a
 * data ICA in chunks, up to NODE_DATA_MAX bytes. */
#define NODE_CTL_MAX (32 * 1024)
#define NODE_CHUNK (32 * 1024)
#define NODE_DATA_MAX (1ull << 30)

typedef struct node_conn node_conn;

/* Loads a key file (the BLAKE2b-256 hash of its contents; an empty file
 * is refused): 0 or -errno. */
int node_key_load(const char *path, uint8_t key[NODE_KEY_LEN]);

/* Dials the node at addr ("tcp!HOST!PORT") and authenticates as `name`
 * with key (NULL: the node must have none).  NULL with why in err
 * ("node b: wrong key", "connection refused") on failure. */
node_conn *node_dial(const char *addr, const uint8_t *key, const char *name,
                     char *err, size_t errlen);

/* The peer's node name. */
const char *node_peer(const node_conn *c);

/* Where service `svc` is on the dialed node. */
struct node_found {
  char node[NODE_NAME_MAX];
  uint32_t index, gen, version;
  char addr[NODE_ADDR_MAX]; /* an advertised service's address, else "" */
};
/* 0 and *f, -ENOENT when the node has no such service, or another -errno
 * with why in err (the node went away, a corrupt answer). */
int node_lookup(node_conn *c, const char *svc, struct node_found *f, char *err,
                size_t errlen);

/* Where service svc is on the node named `node` (NULL or "": the dialed
 * one), asked of a network message server (`netmsg serve`), which asks
 * that node's own for it (its --peer table).  As node_lookup; besides,
 * -EHOSTUNREACH when the server knows no node of that name or cannot
 * reach it.  This is how a node's migration server is found by node name:
 *
 *   node_lookup_on(c, "b", MIGD_SERVICE, &f, err, sizeof err);
 *   // f.addr: where node b's uksim-migd listens */
int node_lookup_on(node_conn *c, const char *node, const char *svc,
                   struct node_found *f, char *err, size_t errlen);

/* Advertises that service svc of this node listens at addr, to the
 * network message server c: its lookups of svc answer addr for as long as
 * c stays open (closing it, or the process ending, withdraws it).  0, or
 * -errno with why in err (-EEXIST: another process advertises svc,
 * -ENOSPC: NETMSG_ADVERTS_MAX reached). */
int node_advertise(node_conn *c, const char *svc, const char *addr, char *err,
                   size_t errlen);

void node_close(node_conn *c);

#endif /* UKSIM_NODE_H */
