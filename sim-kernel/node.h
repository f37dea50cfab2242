/* The node protocol's inside: frames, the handshake and the listener the
 * machine runs (uksim/node.h is the dialer's side).
 *
 * A frame is a little-endian u32 length n (1..NODE_FRAME_MAX) and n bytes
 * of a packed uksim.node.Msg.  A length out of range, a Msg that does not
 * unpack or a message the state does not expect closes the connection
 * (after a Refused saying why, when the peer is still there).
 *
 * The handshake, mutual and with fresh challenges on both sides, so that
 * neither a recorded answer nor a reflected one proves anything:
 *
 *   listener                                     dialer
 *   HELLO_SENT  -- Hello(name, nL, keyed) -->     CONNECTED
 *                                                 | checks nothing yet
 *               <-- Auth(name, nD, macD) --       AUTH_SENT
 *   macD == mac(key, "dialer", nL, nD, nameD)?
 *     no:  -- Refused("wrong key") --> CLOSED     CLOSED, err "wrong key"
 *     yes: -- Welcome(macL) -->  READY
 *                                                 macL == mac(key, "listener",
 *                                                   nD, nL, nameL)?
 *                                                 no: CLOSED ("node X does not
 *                                                   hold our key"); yes: READY
 *   READY: Lookup -> Found, any number of times, either order of ids.
 *
 * Without --node-key the key is all zeros on that side, so a keyed and an
 * unkeyed node never agree.  A listener that is not READY within
 * NODE_HANDSHAKE_MS closes the connection.
 */
#ifndef UKSIM_SK_NODE_H
#define UKSIM_SK_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "node.pb-c.h"
#include "uksim/node.h"

/* Frames ------------------------------------------------------------------ */

#define NODE_HDR 4

/* Encodes m as one frame in a malloc'd buffer (*out): its length, or
 * -EMSGSIZE when it exceeds NODE_FRAME_MAX. */
long node_frame_encode(const Uksim__Node__Msg *m, uint8_t **out);
/* The whole frame's length if buf[0..len) starts with one (0: not enough
 * bytes yet), or -EMSGSIZE for a length out of range. */
long node_frame_need(const uint8_t *buf, size_t len);
/* The Msg of the whole frame buf[0..len), or NULL (-EBADMSG: it does not
 * unpack, has no body, or a name or nonce out of bounds).  Freed with
 * node_msg_free. */
Uksim__Node__Msg *node_frame_decode(const uint8_t *buf, size_t len, int *err);
void node_msg_free(Uksim__Node__Msg *m);

/* The handshake ------------------------------------------------------------ */

enum node_state {
  NODE_CONNECTED = 0, /* dialer: waiting for Hello */
  NODE_HELLO_SENT,    /* listener: waiting for Auth */
  NODE_AUTH_SENT,     /* dialer: waiting for Welcome */
  NODE_READY,         /* authenticated both ways */
  NODE_CLOSED,        /* refused or broken: hs->error says why */
};

struct node_hs {
  enum node_state state;
  bool keyed, peer_keyed;
  uint8_t key[NODE_KEY_LEN];
  uint8_t nonce[NODE_NONCE_LEN];      /* ours */
  uint8_t peer_nonce[NODE_NONCE_LEN]; /* theirs */
  char name[NODE_NAME_MAX];           /* ours */
  char peer[NODE_NAME_MAX];           /* theirs */
  char error[NODE_ERR_MAX];
};

/* key NULL: no key (zeros).  Starts a listener's side: *hello is its first
 * frame (malloc'd), state HELLO_SENT. */
long node_hs_listen(struct node_hs *hs, const uint8_t *key, const char *name,
                    uint8_t **hello);
/* Starts a dialer's side: state CONNECTED, nothing to send yet. */
void node_hs_dial(struct node_hs *hs, const uint8_t *key, const char *name);
/* Feeds one received message to a handshake that is not READY.  *out
 * (malloc'd, *outlen bytes; NULL and 0 when there is none) is the frame to
 * send back.  Returns 0, or -EACCES (wrong key) / -EPROTO (an unexpected
 * message) with state CLOSED, hs->error set and maybe a Refused in *out to
 * send before closing. */
int node_hs_input(struct node_hs *hs, const Uksim__Node__Msg *in, uint8_t **out,
                  size_t *outlen);

/* The MAC of one side's proof (crypto_auth_hmacsha512256). */
void node_mac(const uint8_t key[NODE_KEY_LEN], const char *role,
              const uint8_t *n1, const uint8_t *n2, const char *name,
              uint8_t mac[NODE_MAC_LEN]);

/* Blocking connections (node_client.c) ------------------------------------
 * What the dialer (uksim/node.h) is made of, for the network message server
 * as well: both ends of a call. */

/* Runs the listener's handshake on an accepted socket fd (which the
 * connection owns from then on, closed on failure too). */
node_conn *node_accept(int fd, const uint8_t *key, const char *name, char *err,
                       size_t errlen);
/* Sends one message: 0 or -errno. */
int node_send(node_conn *c, const Uksim__Node__Msg *m);
/* The next message.  idle: wait as long as no byte of it came (a server
 * between calls); else NODE_IO_TIMEOUT_MS at most (-ETIMEDOUT). */
Uksim__Node__Msg *node_recv(node_conn *c, bool idle, int *err);
/* Sends size bytes at base as Chunks of call id. */
int node_send_data(node_conn *c, uint64_t id, const uint8_t *base,
                   uint64_t size);
/* Receives the Chunks of call id into dst[0..size), in order. */
int node_recv_data(node_conn *c, uint64_t id, uint8_t *dst, uint64_t size);
/* A person's words for a node_* I/O error. */
const char *node_io_error(int r);
uint64_t node_next_id(node_conn *c);

/* The machine's listener ------------------------------------------------- */

struct node_cfg {
  char name[NODE_NAME_MAX]; /* this node's name */
  const uint8_t *key;       /* NULL: no key */
  /* The kernel-data region of the active OS, to answer lookups from its
   * server info table: an fd the listener maps read-only and does not
   * close, or -1 when no OS runs. */
  int (*kdata_fd)(void);
};

/* Parses --node-port's [HOST!]PORT into a dial address "tcp!HOST!PORT"
 * (HOST defaults to 127.0.0.1): 0, or -EINVAL. */
int node_port_addr(const char *arg, char *addr, size_t len);
/* Listens at addr on loop.  -EPERM for an address beyond loopback without
 * a key; -errno from the socket otherwise.  cfg is copied. */
int node_listen(uv_loop_t *loop, const char *addr, const struct node_cfg *cfg);
/* The port it listens on (for a port 0 given), 0 when not listening. */
int node_listen_port(void);
/* Stops listening and closes every connection. */
void node_stop(void);

#endif /* UKSIM_SK_NODE_H */
