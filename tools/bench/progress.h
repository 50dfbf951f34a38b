/*
 * kite-bench's live line: once a second, on a terminal only (stderr is a
 * tty and --quiet is off), where the run is and how it is going, rewritten
 * in place; the summary and --json output are untouched.
 */
#ifndef KITE_BENCH_PROGRESS_H
#define KITE_BENCH_PROGRESS_H

#include "driver.h"

typedef struct progress {
  bool on;
  uint64_t next_us, last_received;
} progress;

void progress_init(progress *p, const bench_config *cfg, uint64_t now_us);
/* Rewrites the line when a second has passed. */
void progress_tick(progress *p, const driver *d, uint64_t now_us);
/* Ends the line, so what follows starts on a fresh one. */
void progress_end(progress *p);

#endif
