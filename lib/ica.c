/* ica_create / ica_release for processes (see uksim/ica.h). */
#include "conn.h"

#include <errno.h>
#include <string.h>

int ica_create(uint64_t size, uint32_t kind, uk_ica *out) {
  struct kabi_ica_create_args a = {.size = size, .kind = kind};
  struct kabi_ica_ans ans;
  kabi_msg m;

  memset(out, 0, sizeof *out);
  if (size == 0 || size > UK_ICA_SIZE_MAX)
    return -EINVAL;
  kabi_msg_init(&m, KABI_ICA_CREATE, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  if (r < 0) {
    kabi_msg_close_fds(&m);
    return r;
  }
  r = kabi_payload(&m, &ans, sizeof ans);
  if (r < 0) {
    kabi_msg_close_fds(&m);
    return r;
  }
  uk_ica *o[1] = {out};
  return uk__ica_attach_all(&m, &ans.ica, 1, o);
}

int ica_release(uk_ica *ica) {
  if (ica->id == KABI_ICA_NONE)
    return 0;
  struct kabi_ica_args a = {.ica = ica->id};
  kabi_msg m;
  kabi_msg_init(&m, KABI_ICA_RELEASE, 0, 0, &a, sizeof a);
  int r = uk__call(&m);
  kabi_msg_close_fds(&m);
  if (r == 0)
    ica_unmap(ica);
  return r;
}
