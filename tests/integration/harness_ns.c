/* The harness's namespace helpers (harness.h): in an object of their own,
 * so that a test that uses none of them does not link libuksim's ns_*. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "uksim/ap.h"
#include "uksim/ns.h"

void h_mount_srv(const char *svc, const char *old, int flag) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/srv/%s", svc);
  /* The server posts itself right after it registers: the entry is made,
   * then names its service. */
  int fd = -1;
  long n = 0;
  for (int i = 0; i < 20000 && n <= 0; i++) { /* 20 s: under valgrind too */
    if (fd >= 0)
      ns_close(fd);
    if (i > 0)
      ap_sleep(1000000);
    fd = ns_open(path, NS_ORDWR);
    n = fd >= 0 ? ns_pread(fd, buf, sizeof buf - 1, 0) : fd;
  }
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(-fd));
  cr_assert_eq(n, (long)strlen(svc), "read %s: %ld", path, n);
  buf[n] = '\0';
  cr_assert_str_eq(buf, svc, "the entry names its service");
  int r = ns_mount(fd, old, flag, "");
  cr_assert_eq(r, 0, "mount %s %s: %s", path, old, strerror(-r));
  cr_assert_eq(ns_close(fd), 0);
}
