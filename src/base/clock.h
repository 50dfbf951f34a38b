/* The process's monotonic clock, for owners that feed engines a now_ms. */
#ifndef KITE_BASE_CLOCK_H
#define KITE_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t kite__now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wraps every 49.7 days: compare with kite__ms_diff() (base/time.h). */
static inline uint32_t kite__now_ms(void) {
  return (uint32_t)(kite__now_us() / 1000u);
}

#endif
