/* Private to libscn: what scn_eval.c and eval_state.c share. */
#ifndef UKSIM_EVAL_IMPL_H
#define UKSIM_EVAL_IMPL_H

#include "scn_eval.h"

/* snprintf that cuts quietly: what it writes is for a person, and a cut
 * message is better than none. */
void scn__fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the verdict: holds, and the text "EXPECTATION: what was seen". */
void scn__verdict(struct scn_verdict *v, const struct scn_expect *x, bool holds,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* "s" unless n is 1: "1 request", "2 requests". */
const char *scn__s(uint64_t n);

/* " at step S, line L" (no line in a binary trace), into buf. */
const char *scn__where(uint64_t step, int line, char *buf, size_t len);

/* Whether process inst is an instance of app or server name: "kvs" or
 * "kvs.N". */
bool scn__instance_of(const char *inst, const char *name);

/* state S equals model, state S equals "FILE". */
void scn__eval_model(const struct scn *s, const struct scn_expect *x,
                     const struct scn_trace *tr, struct scn_verdict *v);
void scn__eval_file(const struct scn_expect *x, const struct scn_facts *facts,
                    struct scn_verdict *v);

/* file PROC PATH ... (eval_file.c). */
void scn__eval_read(const struct scn_expect *x, const struct scn_facts *facts,
                    struct scn_verdict *v);

/* The file at path, whole, NUL-terminated, *n its bytes (it may hold NULs);
 * NULL when it cannot be read or is over SCN_DUMP_MAX (eval_file.c). */
char *scn__slurp(const char *path, size_t *n);

/* task NAME ... (eval_task.c): a migratable task's place, moves, output. */
void scn__task_expect_str(const struct scn_expect *x, char *buf, size_t len);
void scn__eval_task(const struct scn_expect *x, const struct scn_trace *tr,
                    const struct scn_facts *facts, struct scn_verdict *v);

/* "<", "<=" ... */
const char *scn__cmp_name(enum scn_cmp c);

/* Whether seen CMP want holds. */
bool scn__compare(uint64_t seen, enum scn_cmp cmp, uint64_t want);

/* failovers, ended, usable-mib (eval_os.c): Orthros. */
void scn__os_expect_str(const struct scn_expect *x, char *buf, size_t len);
void scn__eval_os(const struct scn_expect *x, const struct scn_trace *tr,
                  const struct scn_facts *facts, struct scn_verdict *v);

/* tcp-client NAME connected (eval_tcp.c): the runner's client. */
void scn__tcp_expect_str(const struct scn_expect *x, char *buf, size_t len);
void scn__eval_tcp(const struct scn *s, const struct scn_expect *x,
                   const struct scn_trace *tr, const struct scn_facts *facts,
                   struct scn_verdict *v);

#endif
