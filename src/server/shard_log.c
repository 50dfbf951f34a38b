/*
 * The shard's rate-limited warnings (base/log.h), second half: a flood's
 * first line goes out at once from where it happens (handshake.c,
 * session.c, session_tcp.c); what the next second held back is reported
 * here when that second is over, so a burst that follows a line is never
 * left unsaid until the next event of its kind, which may never come.
 */
#include "server/server_internal.h"

static void flush_one(kite__shard *sh, kite__ratelog *r, const char *what) {
  uint32_t held;
  if (kite__ratelog_flush(r, sh->now, &held))
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "shard %u: %u more %s in the last second", sh->index, held,
               what);
}

void kite__shard_logs_flush(kite__shard *sh) {
  flush_one(sh, &sh->log_refused, "handshakes refused");
  flush_one(sh, &sh->log_backpressure, "sessions paused (backpressure)");
  flush_one(sh, &sh->log_protocol, "sessions closed (protocol error)");
  flush_one(sh, &sh->log_nofd,
            "TCP connections refused (out of descriptors)");
  flush_one(sh, &sh->log_overflow, "receive-buffer overflows reported");
}
