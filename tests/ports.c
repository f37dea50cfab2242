/* Free loopback ports for tests (ports.h). */
#include "ports.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

bool h_port_free(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (s >= 0)
    close(s);
  return ok;
}

/* The first block tried is the pid's, spread (PORTS_SPREAD blocks
 * between consecutive pids): the test processes one Criterion run forks
 * have consecutive pids, and a process that found its block taken moved
 * on to the next one, its neighbour's first choice, where both then
 * started servers (CI saw "address already in use" so). */
#define PORTS_SPREAD 37u

int h_free_ports(int lo, int span, int n) {
  unsigned slots = (unsigned)(span / n);
  unsigned first = (unsigned)getpid() * PORTS_SPREAD;
  for (unsigned k = 0; k < slots; k++) {
    int b = lo + (int)((first + k) % slots) * n;
    bool all = true;
    for (int j = 0; j < n && all; j++)
      all = h_port_free(b + j);
    if (all)
      return b;
  }
  return 0;
}
