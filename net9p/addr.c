/*
 * addr.c: Plan 9 dial strings ("tcp!host!port", "unix!/path").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <uksim/9p.h>

static int copy(char *dst, size_t cap, const char *s, size_t n) {
  if (n == 0 || n >= cap)
    return -EINVAL;
  memcpy(dst, s, n);
  dst[n] = 0;
  return 0;
}

int p9_addr_parse(const char *s, p9_addr *a) {
  const char *b1, *b2;
  memset(a, 0, sizeof(*a));
  if (!s || !(b1 = strchr(s, '!')))
    return -EINVAL;
  if (b1 - s == 4 && memcmp(s, "unix", 4) == 0) {
    a->is_unix = 1;
    return copy(a->path, sizeof(a->path), b1 + 1, strlen(b1 + 1));
  }
  if (b1 - s != 3 || memcmp(s, "tcp", 3) != 0)
    return -EINVAL;
  if (!(b2 = strchr(b1 + 1, '!')) || strchr(b2 + 1, '!'))
    return -EINVAL;
  if (copy(a->host, sizeof(a->host), b1 + 1, (size_t)(b2 - b1 - 1)) < 0 ||
      copy(a->port, sizeof(a->port), b2 + 1, strlen(b2 + 1)) < 0)
    return -EINVAL;
  if (strspn(a->port, "0123456789") != strlen(a->port))
    return -EINVAL;
  return 0;
}

int p9_addr_is_loopback(const p9_addr *a) {
  struct in_addr v4;
  struct in6_addr v6;
  if (a->is_unix || strcmp(a->host, "localhost") == 0)
    return 1;
  if (inet_pton(AF_INET, a->host, &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, a->host, &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return 0;
}
