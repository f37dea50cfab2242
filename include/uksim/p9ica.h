/* 9P over the ICA queue: how a 9P file server that is a uksim OS server
 * (servers/ramfs.c, servers/hostfs.c) and its clients (the kernel's mount
 * driver #M, or any process) carry 9P2000 messages through the kernel
 * (seed 002 §6.1: the server link of a local server; DESIGN.md "9P and
 * namespaces").
 *
 * - One 9P message per request, op P9ICA_OP ("9p" in the trace).
 * - The control ICA holds the T-message at ctl[0] in 9P's own framing
 *   (size[4] type[1] tag[2] ...); it is at least P9ICA_CTL_MIN bytes.
 * - Bulk data rides in a data ICA, never in the frame, when the request
 *   carries one:
 *   - a Twrite's count bytes are data[0..count); its frame ends right after
 *     count[4] (size says so);
 *   - a Tread asks for the Rread's bytes in data[0..count); the Rread frame
 *     in ctl then ends right after its count[4].
 *   With a data ICA, count may be as large as the data ICA (msize bounds
 *   frames only).  Without one the bytes are in the frame as usual, and a
 *   message must fit in the control ICA.  As 9P allows, a server may move
 *   fewer bytes than count in one message (ramfs and hostfs: at most 8 MiB
 *   less 24, their msize); the Rread's or Rwrite's count says how many.
 *   A Treaddir's answer always travels in the frame.
 * - The server answers in place: the R-message at ctl[0] (a 9P error is an
 *   Rerror with request status 0), handing back the same ICAs.  A request
 *   status < 0 is a transport failure: -EPROTO for a control ICA that holds
 *   no well-formed T-message, -EMSGSIZE for an answer that does not fit.
 * - Sessions: the server keeps one 9P session (its Tversion, msize and fid
 *   table) per client, keyed by the request's client_pid; the kernel's
 *   mount driver is client_pid 0.  A Tversion resets that client's
 *   session.  Fid tables and the file tree are server state: they survive
 *   the server's replacement and its restart after a crash (the server keeps
 *   them in its state ICA), so a client's open fids stay open.
 */
#ifndef UKSIM_P9ICA_H
#define UKSIM_P9ICA_H

#define P9ICA_OP 0u
#define P9ICA_OPNAMES "9p"
#define P9ICA_CTL_MIN                                                          \
  8192u /* control ICA size, enough for any T/R frame                          \
           without bulk data of over 8 KiB - 24 */
#define P9ICA_MSIZE (P9ICA_CTL_MIN) /* the msize the clients ask for */

#endif /* UKSIM_P9ICA_H */
