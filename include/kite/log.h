/*
 * kite's log: one line per event that matters, through a callback the
 * application may set (default: stderr).
 */
#ifndef KITE_LOG_H
#define KITE_LOG_H

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kite_log_level {
  KITE_LOG_DEBUG = 0,
  KITE_LOG_INFO = 1,
  KITE_LOG_WARN = 2,
  KITE_LOG_ERROR = 3,
} kite_log_level;

/* Receives one line (no trailing newline). Called from kite's threads,
 * possibly several at once: it must be thread-safe. |msg| is valid only
 * during the call. */
typedef void (*kite_log_fn)(void *user, kite_log_level level, const char *msg);

/* The default sink: "kite LEVEL msg" on stderr. */
KITE_API
void kite_log_stderr(void *user, kite_log_level level, const char *msg);

KITE_API
const char *kite_log_level_name(kite_log_level level);

#ifdef __cplusplus
}
#endif
#endif
