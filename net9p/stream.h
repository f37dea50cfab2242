/*
 * stream.h: stream transport internals shared with the clients.
 */
#ifndef NET9P_STREAM_H
#define NET9P_STREAM_H

#include <sys/socket.h>

#include <uksim/9p.h>

/* Resolves a tcp dial address ("*" is every interface). */
int p9__resolve(const p9_addr *a, struct sockaddr_storage *ss);

#endif
