/* The fixture the kernel-table tests share: each test gets a freshly
 * initialised kernel-data region.  It is about 700 KiB, so it lives on the
 * heap, not on a test's stack.  Include once per test file. */
#ifndef TESTS_SIM_KERNEL_KD_FIXTURE_H
#define TESTS_SIM_KERNEL_KD_FIXTURE_H

#include <criterion/criterion.h>
#include <stdlib.h>

#include "ktab.h"

#define KD_PID 1234
#define KD_OS_ID 7
#define KD_BUDGET (1ull << 30)

static struct uk_kdata *kd;

static void kd_new(void) {
  kd = malloc(sizeof *kd);
  cr_assert_not_null(kd);
  kern_kdata_init(kd, KD_PID, KD_OS_ID, KD_BUDGET);
}

static void kd_free(void) {
  free(kd);
  kd = NULL;
}

#endif /* TESTS_SIM_KERNEL_KD_FIXTURE_H */
