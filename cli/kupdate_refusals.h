/* What `uksim kupdate` says about the processes an update cannot carry
 * (issue 15): it reads the old kernel's region from outside, as the new
 * kernel's extractor does, once the machine has stopped that kernel, so
 * both see the same tables and name each refusal in the same words
 * (sim-kernel/kimage_refuse.h). */
#ifndef UKSIM_CLI_KUPDATE_REFUSALS_H
#define UKSIM_CLI_KUPDATE_REFUSALS_H

#include <stdio.h>

/* A read-only mapping of a kernel-data region of either layout. */
struct kupdate_region {
  const void *kd;
  size_t len;
};

/* Maps the region of descriptor fd (which stays the caller's); 0 or a
 * negative errno. */
int kupdate_region_map(int fd, struct kupdate_region *r);
void kupdate_region_unmap(struct kupdate_region *r);

/* Prints to out, one line each, every process of the region whose image
 * names state the image cannot carry: those that stay (refused at
 * extract) and the servers whose services restart.  Returns how many
 * were refused at extract (servers not counted), or -EPROTO for a region
 * of no layout this program knows. */
int kupdate_refusals(const struct kupdate_region *r, FILE *out);

#endif /* UKSIM_CLI_KUPDATE_REFUSALS_H */
