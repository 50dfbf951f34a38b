#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

const char *kite_log_level_name(kite_log_level level) {
  switch (level) {
  case KITE_LOG_DEBUG: return "debug";
  case KITE_LOG_INFO: return "info";
  case KITE_LOG_WARN: return "warn";
  case KITE_LOG_ERROR: return "error";
  }
  return "?";
}

void kite_log_stderr(void *user, kite_log_level level, const char *msg) {
  (void)user;
  /* One fprintf per line: stdio locks the stream, so lines never mix. */
  fprintf(stderr, "kite %s %s\n", kite_log_level_name(level), msg);
}

void kite__log_init(kite__log *log, kite_log_fn fn, void *user,
                    kite_log_level min) {
  log->fn = fn ? fn : kite_log_stderr;
  log->user = user;
  log->min = min;
}

void kite__logf(const kite__log *log, kite_log_level level, const char *fmt,
                ...) {
  if (level < log->min)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  log->fn(log->user, level, line);
}

bool kite__ratelog_allow(kite__ratelog *r, uint32_t now_ms, uint32_t *suppressed) {
  if (r->started && (int32_t)(now_ms - r->next_ms) < 0) {
    r->suppressed++;
    return false;
  }
  r->started = 1;
  r->next_ms = now_ms + 1000;
  *suppressed = r->suppressed;
  r->suppressed = 0;
  return true;
}

bool kite__ratelog_flush(kite__ratelog *r, uint32_t now_ms, uint32_t *suppressed) {
  if (!r->started || (int32_t)(now_ms - r->next_ms) < 0)
    return false;
  if (r->suppressed == 0) {
    r->started = 0;
    return false;
  }
  r->next_ms = now_ms + 1000;
  *suppressed = r->suppressed;
  r->suppressed = 0;
  return true;
}

const char *kite__ratelog_tail(char *buf, size_t size, uint32_t n) {
  if (n == 0 || size == 0)
    return "";
  snprintf(buf, size, " (%u more in the last second)", n);
  return buf;
}
