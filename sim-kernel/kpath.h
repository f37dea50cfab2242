/* Where the kernel finds the programs it starts (servers, applications) by
 * name: one search, used by spawn, replace and the scenario executor; and
 * where `uksim run` finds the shipped scenarios.
 *
 * The path, first match wins:
 *   1. UKSIM_PATH, colon-separated directories (a student's own servers);
 *   2. the build tree (servers/, apps/, bench/, tests/integration/), only
 *      when the running binary lives in it: an installed uksim never picks
 *      up a stale build;
 *   3. the install beside the running binary: <exe>/../<libexecdir>/uksim,
 *      so that a DESTDIR or relocated install finds its own programs;
 *   4. the configured <prefix>/<libexecdir>/uksim.
 * A name with a slash is used as given. */
#ifndef UKSIM_KPATH_H
#define UKSIM_KPATH_H

#include <stddef.h>

/* Longest path the search builds or accepts (PATH_MAX on Linux). */
#define KERN_PATH_MAX 4096

/* Writes the path of program `prog` to out[len].  Returns 0, or -EINVAL
 * (empty name), -ENOENT (nowhere on the path), -EISDIR / -EACCES (a name
 * with a slash that is not an executable file). */
int kern__find_program(const char *prog, char *out, size_t len);

/* What kern__find_program's error means, for a person. */
const char *kern__program_error(int r);

/* Writes the path of shipped scenario `name` ("tour.scn", "bench/x.scn")
 * to out[len]:
 * the source tree's scenarios/ when the running binary is the build's,
 * else <exe>/../<datadir>/uksim/scenarios, else the configured
 * <prefix>/<datadir>/uksim/scenarios.  Returns 0, -EINVAL (an empty name,
 * an absolute one or one with "..") or -ENOENT. */
int kern__find_scenario(const char *name, char *out, size_t len);

#endif /* UKSIM_KPATH_H */
