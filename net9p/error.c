/*
 * error.c: the one table of 9P error strings.
 *
 * 9P2000 sends text (Rerror), 9P2000.L a Linux errno (Rlerror).  Servers
 * say errors as negative errnos; this table turns them into the text Plan 9
 * programs expect, and turns text from a Plan 9 peer back into an errno.
 * The first entry for an errno is its text; later entries with the same
 * errno are extra spellings accepted when mapping text to errno.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
    /* Plan 9 spellings mapped onto the nearest errno. */
    {ENOENT, "no authentication required"},
    {ENOENT, "file not found"},
    {EACCES, "authentication required"},
    {EACCES, "authentication failed"},
    {EBADF, "fid already in use"},
    {EBADF, "fid already open"},
    {EBADF, "fid not open for reading"},
    {EBADF, "fid not open for writing"},
    {EBADF, "cannot walk an open fid"},
    {EBADF, "bad use of fid"},
    {EINVAL, "bad offset in directory read"},
    {EINVAL, "bad file name"},
    {EINVAL, "duplicate tag"},
    {EPROTO, "version not negotiated"},
    {EPROTO, "unknown message type"},
    {EPROTO, "unexpected message"},
    {EPERM, "create prohibited"},
    {EPERM, "remove prohibited"},
    {EPERM, "wstat prohibited"},
    {EPERM, "file has been removed"},
    {EMSGSIZE, "msize too small"},
};

const char *p9_strerror(int err) {
  if (err < 0)
    err = -err;
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (table[i].err == err)
      return table[i].text;
  return "i/o error";
}

int p9_errno(p9_str ename) {
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (p9_str_eq(ename, table[i].text))
      return table[i].err;
  return EIO;
}

int p9__lerror_errno(uint32_t ecode) {
  return ecode > 0 && ecode < 4096 ? -(int)ecode : -EIO;
}
