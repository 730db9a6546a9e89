/*
 * The checks of the plugin's C tests: CHECK counts a failed condition and says where it is;
 * checks_done prints the tally and gives the test's exit status.
 */
#ifndef SDMTCP_CHECK_H
#define SDMTCP_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                     \
    }                                                                 \
  } while (0)

static int
checks_done(const char *name)
{
  if (failures) {
    fprintf(stderr, "%s: %d failed\n", name, failures);
    return 1;
  }
  printf("%s: passed\n", name);
  return 0;
}

#endif
