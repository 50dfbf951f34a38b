/* Internal logging: formats a line and hands it to the configured sink. */
#ifndef KITE_BASE_LOG_H
#define KITE_BASE_LOG_H

#include "kite/log.h"

#include <stdbool.h>
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
 * refused handshake, a full mailbox): the line that is let through says
 * how many were held back. Zeroed memory is ready. One thread. */
typedef struct kite__ratelog {
  uint32_t next_ms;    /* the next line may go at or after this */
  uint32_t suppressed; /* held back since the last line */
  uint8_t started;
} kite__ratelog;

/* true: log now, and *suppressed is how many were held back before. */
bool kite__ratelog_allow(kite__ratelog *r, uint32_t now_ms, uint32_t *suppressed);

#endif
