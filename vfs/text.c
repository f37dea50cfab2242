/* Text files for servants (vfs_int.h): a string or a text made line by
 * line, read at an offset.  Servants' text files (#c time, #p status and
 * ns, #k's tables) are made anew on every read, Plan 9's readstr and
 * readnum: nothing is kept between reads, so a reader at an offset sees
 * that part of the text as it is now.
 */
#include <string.h>

#include "vfs_int.h"

long vfs__read_str(void *buf, uint32_t n, uint64_t off, const char *s,
                   size_t len) {
  if (off >= len)
    return 0;
  size_t k = len - (size_t)off < n ? len - (size_t)off : n;
  memcpy(buf, s + off, k);
  return (long)k;
}

long vfs__read_lines(const struct uk_kdata *kd, vfs__line_fn fn,
                     const void *arg, void *buf, uint32_t n, uint64_t off) {
  char line[VFS_LINE_MAX];
  uint64_t at = 0; /* offset of the line in hand */
  uint32_t cursor = 0, got = 0;
  for (size_t len; got < n && (len = fn(kd, arg, &cursor, line, sizeof line));
       at += len) {
    if (at + len <= off)
      continue;
    got += (uint32_t)vfs__read_str((char *)buf + got, n - got,
                                   off > at ? off - at : 0, line, len);
  }
  return (long)got;
}

/* rc(1) needs quotes around anything but these. */
static int plain(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || strchr("/._-+,:=@", ch) != NULL;
}

size_t vfs__quote(char *out, size_t at, size_t cap, const char *name) {
  size_t n = strlen(name), q = name[0] == '\0';
  for (size_t i = 0; i < n; i++)
    q += !plain(name[i]);
  /* Quoted, each ' doubles: at most 2n + 2 bytes, and the NUL. */
  if (at + (q ? 2 * n + 2 : n) + 1 > cap)
    return cap;
  if (q)
    out[at++] = '\'';
  for (size_t i = 0; i < n; i++) {
    if (q && name[i] == '\'')
      out[at++] = '\'';
    out[at++] = name[i];
  }
  if (q)
    out[at++] = '\'';
  out[at] = '\0';
  return at;
}

uint32_t vfs__ring_take(const char *ring, uint32_t cap, uint32_t *head,
                        uint32_t *len, void *out, uint32_t n) {
  uint32_t k = n < *len ? n : *len;
  for (uint32_t i = 0; i < k; i++)
    ((char *)out)[i] = ring[(*head + i) % cap];
  *head = (*head + k) % cap;
  *len -= k;
  return k;
}

uint32_t vfs__ring_put(char *ring, uint32_t cap, uint32_t head, uint32_t *len,
                       const void *in, uint32_t n) {
  uint32_t room = cap - *len, k = n < room ? n : room;
  for (uint32_t i = 0; i < k; i++)
    ring[(head + *len + i) % cap] = ((const char *)in)[i];
  *len += k;
  return k;
}
