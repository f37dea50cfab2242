/*
 * auth.c: shared-key authentication through the Tauth/afid exchange.
 *
 * The server answers Tauth with an afid whose read yields a fresh random
 * challenge; the client writes back crypto_auth's MAC (HMAC-SHA-512-256,
 * libsodium) of challenge || uname || 0 || aname under the shared key;
 * Tattach then names that afid.  The key never crosses the wire, a MAC
 * answers one challenge only, and it binds the user and tree attached.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "p9_impl.h"

void p9__random(void *buf, size_t n) {
  randombytes_buf(buf, n);
}

void p9_auth_mac(const uint8_t key[P9_KEYLEN], const uint8_t *chal,
                 p9_str uname, p9_str aname, uint8_t mac[P9_MACLEN]) {
  crypto_auth_hmacsha512256_state st;
  uint8_t zero = 0;
  crypto_auth_hmacsha512256_init(&st, key, P9_KEYLEN);
  crypto_auth_hmacsha512256_update(&st, chal, P9_CHALLEN);
  crypto_auth_hmacsha512256_update(&st, (const uint8_t *)uname.s, uname.len);
  crypto_auth_hmacsha512256_update(&st, &zero, 1);
  crypto_auth_hmacsha512256_update(&st, (const uint8_t *)aname.s, aname.len);
  crypto_auth_hmacsha512256_final(&st, mac);
  sodium_memzero(&st, sizeof(st));
}

void p9__auth_who(p9_str uname, p9_str aname, uint8_t who[32]) {
  crypto_generichash_state st;
  uint8_t zero = 0;
  crypto_generichash_init(&st, NULL, 0, 32);
  crypto_generichash_update(&st, (const uint8_t *)uname.s, uname.len);
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, (const uint8_t *)aname.s, aname.len);
  crypto_generichash_final(&st, who, 32);
}

int p9_key_load(const char *path, uint8_t key[P9_KEYLEN]) {
  crypto_generichash_state st;
  uint8_t buf[4096];
  ssize_t n;
  size_t total = 0;
  int fd, err = 0;
  if (sodium_init() < 0)
    return -EIO;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return -errno;
  crypto_generichash_init(&st, NULL, 0, P9_KEYLEN);
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    crypto_generichash_update(&st, buf, (size_t)n);
    total += (size_t)n;
  }
  if (n < 0)
    err = -errno;
  else if (total == 0)
    err = -EINVAL; /* an empty file is not a secret */
  close(fd);
  crypto_generichash_final(&st, key, P9_KEYLEN);
  sodium_memzero(buf, sizeof(buf));
  return err;
}
