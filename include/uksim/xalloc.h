/* Allocation that does not fail: uksim's one out-of-memory policy.
 *
 * Running out of memory is not a condition uksim's libraries and programs
 * recover from: a half-built table or a request dropped for want of a few
 * bytes would be a harder bug to find than the abort.  So every allocation
 * in the tree goes through these functions, which print one line naming
 * the program and the size asked for ("kvs: out of memory (1048576
 * bytes)") on stderr and call abort().  A caller never checks their result
 * for NULL.
 *
 * Limits the kernel or a protocol imposes (an ICA quota, a 9P frame
 * budget) are not out-of-memory: they are checked before allocating and
 * answered with an error, never with an abort.
 *
 * Linked by every library and program through base_dep (lib/meson.build);
 * libuksim carries it for application processes and servers.
 */
#ifndef UKSIM_XALLOC_H
#define UKSIM_XALLOC_H

#include <stddef.h>

/* malloc(size); size 0 allocates 1 byte, so the result is never NULL. */
void *xmalloc(size_t size);

/* calloc(n, size): n zeroed items; an n * size that overflows aborts, as
 * out-of-memory does.  Either being 0 allocates 1 byte. */
void *xcalloc(size_t n, size_t size);

/* realloc(p, size); p may be NULL.  Size 0 keeps 1 byte (it never frees
 * p): free() is how a block is given back. */
void *xrealloc(void *p, size_t size);

/* xrealloc(p, n * size) for an array of n items of size bytes; an n * size
 * that overflows aborts.  Added bytes are not zeroed. */
void *xreallocarray(void *p, size_t n, size_t size);

/* A copy of the string s, in memory from xmalloc. */
char *xstrdup(const char *s);

/* A copy of at most n bytes of s, always NUL-terminated. */
char *xstrndup(const char *s, size_t n);

#endif /* UKSIM_XALLOC_H */
