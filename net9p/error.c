/*
 * error.c: the one table of 9P error strings.
 *
 * 9P2000 sends text (Rerror), 9P2000.L a Linux errno (Rlerror).  Servers
 * say errors as negative errnos; this table turns them into the text Plan 9
 * programs expect, and turns text from any peer back into an errno.  The
 * first entry for an errno is its text; later entries with the same errno
 * are other spellings accepted when mapping text to errno: Plan 9's
 * (lib9p, the kernel's error.h, ramfs, exportfs) and the strerror texts of
 * glibc that 9P2000 servers on Linux send (Linux's own v9fs client keeps
 * such a table, net/9p/error.c).  Text is matched exactly, then without
 * regard to case; text that matches no entry whole is searched for the
 * longest entry it contains, so that "'x' file does not exist" or "walk: No
 * such file or directory" still read as ENOENT.  Anything else is EIO.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <uksim/9p.h>

#include "p9_impl.h"

static const struct {
  int err;
  const char *text;
} table[] = {
    {EPERM, "permission denied"},
    {ENOENT, "file does not exist"},
    {EIO, "i/o error"},
    {EBADF, "unknown fid"},
    {ENOMEM, "out of memory"},
    {EACCES, "permission denied"},
    {EBUSY, "file in use"},
    {EEXIST, "file already exists"},
    {EXDEV, "cross-device link"},
    {ENOTDIR, "not a directory"},
    {EISDIR, "is a directory"},
    {EINVAL, "bad argument"},
    {ENFILE, "too many fids"},
    {EFBIG, "file too large"},
    {ENOSPC, "no space left on device"},
    {EROFS, "read-only file system"},
    {ERANGE, "result out of range"},
    {ENAMETOOLONG, "file name too long"},
    {ENOTEMPTY, "directory not empty"},
    {ELOOP, "too many levels of symbolic links"},
    {ENOSYS, "function not implemented"},
    {EOPNOTSUPP, "operation not supported"},
    {EPROTO, "protocol botch"},
    {EBADMSG, "malformed message"},
    {EMSGSIZE, "message too large"},
    {EINTR, "interrupted"},
    {ECANCELED, "request flushed"},
    {E2BIG, "too many names in walk"},
    {EAGAIN, "too many outstanding requests"},
    {ECONNRESET, "connection reset"},
    {ETIMEDOUT, "timed out"},
    {EOVERFLOW, "count too small for a directory entry"},
    {EILSEQ, "name is not valid UTF-8"},
    {EUSERS, "too many users"},
    /* Plan 9 spellings mapped onto the nearest errno. */
    {ENOENT, "no authentication required"},
    {ENOENT, "file not found"},
    {ENOENT, "directory entry not found"},
    {EACCES, "authentication required"},
    {EACCES, "authentication failed"},
    {EPERM, "not owner"},
    {EPERM, "create prohibited"},
    {EPERM, "remove prohibited"},
    {EPERM, "wstat prohibited"},
    {EPERM, "write prohibited"},
    {EPERM, "read prohibited"},
    {EPERM, "stat prohibited"},
    {EPERM, "file has been removed"},
    {EPERM, "mounted directory forbids creation"},
    {EPERM, "mount/attach disallowed"},
    {EBADF, "fid already in use"},
    {EBADF, "duplicate fid"},
    {EBADF, "fid already open"},
    {EBADF, "file already open for I/O"},
    {EBADF, "fid not open for reading"},
    {EBADF, "fid not open for writing"},
    {EBADF, "cannot walk an open fid"},
    {EBADF, "bad use of fid"},
    {EBADF, "bad fid"},
    {EBADF, "fd out of range or not open"},
    {EBUSY, "exclusive use file already open"},
    {EBUSY, "device or object already in use"},
    {EBUSY, "is a mount point"},
    {EEXIST, "file exists"},
    {EISDIR, "file is a directory"},
    {ENOTDIR, "walk in non-directory"},
    {ENOTDIR, "create in non-directory"},
    {EINVAL, "bad offset in directory read"},
    {EINVAL, "bad offset"},
    {EINVAL, "bad count"},
    {EINVAL, "bad file name"},
    {EINVAL, "illegal name"},
    {EINVAL, "file name syntax"},
    {EINVAL, "bad character in file name"},
    {EINVAL, "bad arg in system call"},
    {EINVAL, "inconsistent mode"},
    {EINVAL, "duplicate tag"},
    {EINVAL, "unknown specifier in attach"},
    {EIO, "read or write too large"},
    {EPROTO, "9P protocol botch"},
    {EPROTO, "version not negotiated"},
    {EPROTO, "unknown 9P version"},
    {EPROTO, "version conflict"},
    {EPROTO, "unknown message type"},
    {EPROTO, "unexpected message"},
    {EPROTO, "malformed stat buffer"},
    {EMSGSIZE, "msize too small"},
    {ENOMEM, "kernel allocate failed"},
    {ETIMEDOUT, "connection timed out"},
    {ECONNREFUSED, "connection refused"},
    {ESHUTDOWN, "device shut down"},
    /* glibc's strerror texts, which 9P2000 servers on Linux send. */
    {EPERM, "Operation not permitted"},
    {ENOENT, "No such file or directory"},
    {ESRCH, "No such process"},
    {EINTR, "Interrupted system call"},
    {EIO, "Input/output error"},
    {ENXIO, "No such device or address"},
    {E2BIG, "Argument list too long"},
    {EBADF, "Bad file descriptor"},
    {EAGAIN, "Resource temporarily unavailable"},
    {ENOMEM, "Cannot allocate memory"},
    {EACCES, "Permission denied"},
    {EFAULT, "Bad address"},
    {EBUSY, "Device or resource busy"},
    {EEXIST, "File exists"},
    {EXDEV, "Invalid cross-device link"},
    {ENODEV, "No such device"},
    {ENOTDIR, "Not a directory"},
    {EISDIR, "Is a directory"},
    {EINVAL, "Invalid argument"},
    {ENFILE, "Too many open files in system"},
    {EMFILE, "Too many open files"},
    {ETXTBSY, "Text file busy"},
    {EFBIG, "File too large"},
    {ENOSPC, "No space left on device"},
    {ESPIPE, "Illegal seek"},
    {EROFS, "Read-only file system"},
    {EMLINK, "Too many links"},
    {EPIPE, "Broken pipe"},
    {ERANGE, "Numerical result out of range"},
    {EDEADLK, "Resource deadlock avoided"},
    {ENAMETOOLONG, "File name too long"},
    {ENOLCK, "No locks available"},
    {ENOSYS, "Function not implemented"},
    {ENOTEMPTY, "Directory not empty"},
    {ELOOP, "Too many levels of symbolic links"},
    {ENODATA, "No data available"},
    {EOVERFLOW, "Value too large for defined data type"},
    {EILSEQ, "Invalid or incomplete multibyte or wide character"},
    {EUSERS, "Too many users"},
    {EOPNOTSUPP, "Operation not supported"},
    {EOPNOTSUPP, "Not supported"},
    {EPROTO, "Protocol error"},
    {EBADMSG, "Bad message"},
    {EMSGSIZE, "Message too long"},
    {ECONNRESET, "Connection reset by peer"},
    {ECONNREFUSED, "Connection refused"},
    {ECANCELED, "Operation canceled"},
    {EDQUOT, "Disk quota exceeded"},
    {ESTALE, "Stale file handle"},
};

enum { NTABLE = sizeof(table) / sizeof(table[0]) };

const char *p9_strerror(int err) {
  if (err < 0)
    err = -err;
  for (size_t i = 0; i < NTABLE; i++)
    if (table[i].err == err)
      return table[i].text;
  return "i/o error";
}

/* The errno of the longest entry that text (NUL-terminated) contains, or
 * EIO: a Plan 9 kernel puts the name before its text ("'x' file does not
 * exist"), other servers an operation or a path. */
static int errno_within(const char *text) {
  size_t best = 0;
  int err = EIO;
  for (size_t i = 0; i < NTABLE; i++) {
    size_t n = strlen(table[i].text);
    if (n > best && strcasestr(text, table[i].text)) {
      best = n;
      err = table[i].err;
    }
  }
  return err;
}

/* Exact spellings first: Plan 9's "permission denied" is EPERM, glibc's
 * "Permission denied" EACCES. */
int p9_errno(p9_str ename) {
  char text[256];
  for (size_t i = 0; i < NTABLE; i++)
    if (p9_str_eq(ename, table[i].text))
      return table[i].err;
  for (size_t i = 0; i < NTABLE; i++)
    if (strlen(table[i].text) == ename.len &&
        strncasecmp(ename.s, table[i].text, ename.len) == 0)
      return table[i].err;
  snprintf(text, sizeof(text), "%.*s", (int)ename.len, ename.s);
  return errno_within(text);
}

int p9__lerror_errno(uint32_t ecode) {
  return ecode > 0 && ecode < 4096 ? -(int)ecode : -EIO;
}
