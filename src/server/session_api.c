/*
 * The public calls on sessions (include/kite/server.h): each finds the
 * session by id and either acts at once, on the session's own shard, or
 * hands the work to that shard through its inbox.
 */
#include "server/server_internal.h"

#include "base/clock.h"
#include "base/time.h"
#include "proto/frame.h"

#include <stdlib.h>
#include <string.h>

const char *kite_close_reason_name(int reason) {
  switch (reason) {
  case KITE_CLOSE_NORMAL: return "normal";
  case KITE_CLOSE_IDLE: return "idle timeout";
  case KITE_CLOSE_PROTOCOL: return "protocol error";
  case KITE_CLOSE_SHUTDOWN: return "server shutdown";
  case KITE_CLOSE_KICKED: return "kicked";
  case KITE_CLOSE_DEAD_LINK: return "dead link";
  case KITE_CLOSE_SLOW_PEER: return "slow peer";
  case KITE_CLOSE_KEY_EXHAUSTED: return "key exhausted";
  }
  return "unknown";
}

int kite_session_send(kite_server *srv, kite_session_id id, uint16_t msg_id,
                      const void *body, size_t len) {
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN)
    return KITE_EINVAL;
  if (len > srv->cfg.max_frame)
    return KITE_EMSGSIZE;
  kite__session *s = kite__session_by_id(srv, id);
  if (!s)
    return KITE_ENOTFOUND;
  return kite__session_send_any(srv, s, id, msg_id, 0, body, len);
}

int kite__session_send_any(kite_server *srv, kite__session *s,
                           kite_session_id id, uint16_t msg_id,
                           uint16_t fflags, const void *body, size_t len) {
  kite__shard *sh = s->shard;
  if (kite__shard_current() == sh) {
    if (s->state == KITE__S_HALF_OPEN)
      return KITE_ENOTFOUND; /* not the application's yet */
    if (!kite__session_live(s) || s->close_pending != KITE__NO_CLOSE ||
        kite__logic_closing(s->app))
      return KITE_ECLOSED; /* nothing more goes out (logic.h) */
    int rc = kite__session_send_frame(s, msg_id, fflags, body, len);
    if (rc == 0)
      KITE__STAT_INC(sh, frames_out);
    return rc;
  }
  /* Another thread: reserve room in the session's queue, then hand over.
   * A session already closed by the application is refused here; one that
   * closes while the frame travels drops it on the shard. */
  if (!kite__session_live(s) || kite__logic_closing(s->app))
    return KITE_ECLOSED;
  uint32_t segs = kite__frame_segs(srv, KITE__FRAME_HDR + len);
  if (!kite__session_reserve(s, segs))
    return KITE_EFULL;
  kite__cmd *cmd = malloc(sizeof(*cmd) + len);
  if (!cmd) {
    kite__session_unreserve(s, segs);
    return KITE_ENOMEM;
  }
  cmd->type = KITE__CMD_SEND;
  cmd->msg_id = msg_id;
  cmd->fflags = fflags;
  cmd->len = (uint32_t)len;
  cmd->segs = segs;
  cmd->id = id;
  if (len) /* body may be NULL then */
    memcpy(cmd->data, body, len);
  if (!kite__shard_post(sh, cmd)) {
    kite__session_unreserve(s, segs);
    free(cmd);
    return KITE_EFULL;
  }
  return 0;
}

int kite_session_close(kite_server *srv, kite_session_id id) {
  return kite__session_close_any(srv, id, KITE_CLOSE_KICKED);
}

int kite_session_get_info(kite_server *srv, kite_session_id id,
                          kite_session_info *out) {
  kite__session *s = kite__session_by_id(srv, id);
  if (!s || !kite__session_live(s))
    return KITE_ENOTFOUND;
  kite__shard *sh = s->shard;
  bool own = kite__shard_current() == sh;
  kite_session_info in;
  memset(&in, 0, sizeof(in));
  kite__session_pub_lock(s);
  const kite__transport *tr = own ? s->tr : NULL;
  kite__addr peer = s->peer;
  kite_transport kind = s->kind;
  in.version = s->version;
  if (s->ident) {
    in.client_id = s->ident->client_id;
    if (s->ident->user_len) /* the rest of in.user_data: zero */
      memcpy(in.user_data, s->ident->user_data, s->ident->user_len);
  }
  uint32_t opened = s->opened_ms;
  kite__rtt r = s->rtt;
  kite__session_pub_unlock(s);
  if (own && tr) /* the owner reads the transport's figures as they are */
    tr->rtt(s, &r);
  uint32_t now = own ? sh->now : kite__now_ms();
  in.transport = kind;
  kite__addr_format(&peer, in.peer, sizeof(in.peer));
  int32_t age = kite__ms_diff(now, opened);
  int32_t idle = kite__ms_diff(now, kite__session_last_rx(s));
  in.connected_ms = age > 0 ? (uint32_t)age : 0;
  in.idle_ms = idle > 0 ? (uint32_t)idle : 0;
  in.srtt_ms = r.srtt_ms;
  in.rttvar_ms = r.rttvar_ms;
  in.rto_ms = r.rto_ms;
  in.retransmits = r.retransmits;
  in.frames_in = atomic_load_explicit(&s->frames_in, memory_order_relaxed);
  in.frames_out = atomic_load_explicit(&s->frames_out, memory_order_relaxed);
  in.bytes_in = atomic_load_explicit(&s->bytes_in, memory_order_relaxed);
  in.bytes_out = atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
  /* The slot may have been reused while we copied: then the copy is of
   * another session, and this one is gone. */
  if (atomic_load_explicit(&s->generation, memory_order_acquire) !=
          kite__sid_generation(id) || !kite__session_live(s))
    return KITE_ENOTFOUND;
  *out = in;
  return 0;
}
