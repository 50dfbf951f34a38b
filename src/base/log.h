/* Internal logging: formats a line and hands it to the configured sink. */
#ifndef KITE_BASE_LOG_H
#define KITE_BASE_LOG_H

#include "kite/log.h"

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

#endif
