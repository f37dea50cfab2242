/* scn-timeline: draws a JSON Lines trace as a sequence diagram.
 *
 *   scn-timeline TRACE OUT [--title TEXT] [--first N]
 *
 * TRACE is a file, or - for standard input.  OUT ending in .html gets an
 * HTML page embedding the SVG; any other name gets the SVG alone.  --first
 * draws only the first N events (a long run's trace is too tall to read
 * whole, and may hold more events than a trace may).  Exit status 0, 1 if
 * OUT cannot be written, 2 for a bad trace or usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "uksim/num.h"

static int usage(FILE *f, int status) {
  fputs("usage: scn-timeline TRACE OUT.svg|OUT.html [--title TEXT] "
        "[--first N]\n"
        "Draws a trace (JSON Lines, scenarios/README.md) as a sequence\n"
        "diagram.  TRACE - reads standard input.  --first N draws only the\n"
        "first N events.\n",
        f);
  return status;
}

static bool ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), t = strlen(tail);
  return n >= t && strcmp(s + n - t, tail) == 0;
}

static struct scn_trace *load(const char *path, size_t first,
                              struct scn_err *err) {
  if (strcmp(path, "-") == 0)
    return scn_trace_read_first("<stdin>", stdin, first, err);
  FILE *in = fopen(path, "r");
  if (in == NULL) {
    scn_err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
    return NULL;
  }
  struct scn_trace *tr = scn_trace_read_first(path, in, first, err);
  fclose(in);
  return tr;
}

static int write_out(const struct scn_trace *tr, const char *path,
                     const char *title) {
  FILE *out = fopen(path, "w");
  int rc;
  if (out == NULL) {
    fprintf(stderr, "scn-timeline: %s: %s\n", path, strerror(errno));
    return 1;
  }
  if (ends_with(path, ".html") || ends_with(path, ".htm"))
    rc = scn_timeline_html(tr, title, out);
  else
    rc = scn_timeline_svg(tr, out);
  if (fclose(out) != 0 || rc < 0) {
    fprintf(stderr, "scn-timeline: %s: write failed\n", path);
    return 1;
  }
  return 0;
}

/* Reads --title and --first after the two paths; 0 or -1. */
static int options(int argc, char **argv, const char **title, size_t *first) {
  for (int i = 3; i < argc; i += 2) {
    if (i + 1 == argc)
      return -1;
    if (strcmp(argv[i], "--title") == 0) {
      *title = argv[i + 1];
      continue;
    }
    if (strcmp(argv[i], "--first") != 0)
      return -1;
    uint64_t n;
    if (num_opt_u64("scn-timeline", "--first", argv[i + 1], 1,
                    SCN_TRACE_EVENTS_MAX, 0, &n) < 0)
      return -1;
    *first = (size_t)n;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct scn_err err;
  const char *title = NULL;
  size_t first = 0;
  if (argc == 2 && strcmp(argv[1], "--help") == 0)
    return usage(stdout, 0);
  if (argc < 3 || options(argc, argv, &title, &first) < 0)
    return usage(stderr, 2);
  struct scn_trace *tr = load(argv[1], first, &err);
  if (tr == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return 2;
  }
  int status = write_out(tr, argv[2], title ? title : argv[1]);
  scn_trace_free(tr);
  return status;
}
