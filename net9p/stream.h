/*
 * stream.h: stream transport internals shared with the clients.
 */
#ifndef NET9P_STREAM_H
#define NET9P_STREAM_H

#include <sys/socket.h>

#include <uksim/9p.h>

/* How long the stream polls after answering a client on another cpu,
 * and whether it splits large answers (0: neither); see stream.c. */
void p9__stream_set_poll(p9_transport *t, int poll_us);
/* What a server's connection gets from its server: the polling, the
 * frame timeout, the shared frame-buffer budget and the log. */
void p9__stream_serve_limits(p9_transport *t, p9_srv *srv);

/* Resolves a tcp dial address ("*" is every interface). */
int p9__resolve(const p9_addr *a, struct sockaddr_storage *ss);

#endif
