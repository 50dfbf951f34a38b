/*
 * Wrap-safe millisecond time. KCP carries 32-bit millisecond timestamps, so
 * the engine runs on a 32-bit clock that wraps every 49.7 days; compare two
 * instants only through their signed difference (as nginx's event timers do).
 */
#ifndef KITE_BASE_TIME_H
#define KITE_BASE_TIME_H

#include <stdbool.h>
#include <stdint.h>

/* |a| - |b| in ms, correct across wrap while the two are < 2^31 ms apart. */
static inline int32_t kite__ms_diff(uint32_t a, uint32_t b) {
  return (int32_t)(a - b);
}

/* true when instant |a| is at or after |b|. */
static inline bool kite__ms_reached(uint32_t a, uint32_t b) {
  return kite__ms_diff(a, b) >= 0;
}

/* The earlier of two instants. */
static inline uint32_t kite__ms_min(uint32_t a, uint32_t b) {
  return kite__ms_diff(a, b) <= 0 ? a : b;
}

#endif
