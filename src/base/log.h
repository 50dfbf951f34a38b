/* Internal logging: formats a line and hands it to the configured sink. */
#ifndef KITE_BASE_LOG_H
#define KITE_BASE_LOG_H

#include "kite/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kite__log {
  kite_log_fn fn; /* never NULL */
  void *user;
  kite_log_level min;
} kite__log;

void kite__log_init(kite__log *log, kite_log_fn fn, void *user,
                    kite_log_level min);

/* Formats at most 512 bytes (longer lines are cut, never overrun). */
void kite__logf(const kite__log *log, kite_log_level level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));

/* At most one line a second for an event that a flood could repeat (a
 * refused handshake, a full mailbox). The line let through says how many
 * were held back before it, if any (kite__ratelog_tail()); the owner also
 * calls kite__ratelog_flush() periodically, so the count of a burst that
 * follows a line is reported once its second is over, even when no later
 * event comes to carry it. Zeroed memory is ready. One thread: the owner's. */
typedef struct kite__ratelog {
  uint32_t next_ms;    /* the next line may go at or after this */
  uint32_t suppressed; /* held back since the last line */
  uint8_t started;     /* a line went out and its second is not over */
} kite__ratelog;

/* true: log now, and *suppressed is how many were held back before (0:
 * say nothing of them). false: held back and counted. */
bool kite__ratelog_allow(kite__ratelog *r, uint32_t now_ms, uint32_t *suppressed);

/* true: the second after the last line is over and *suppressed (never 0)
 * events were held back since: log that count now. It counts as the line
 * of its second. Cheap when nothing is held back: call it once per loop
 * iteration (or from a timer), not per event. A quiet ratelog forgets its
 * last line, so a 32-bit clock wrap cannot hold the next one back. */
bool kite__ratelog_flush(kite__ratelog *r, uint32_t now_ms, uint32_t *suppressed);

/* The tail of a line kite__ratelog_allow() let through: " (N more in the
 * last second)" in |buf|, or "" when |n| is 0. Returns a string to print
 * with %s, valid while |buf| is. */
const char *kite__ratelog_tail(char *buf, size_t size, uint32_t n);

#endif
