/*
 * The unreliable lane of a version-2 UDP session (PROTOCOL-v2.md section
 * 6). Out: each message is one UNRELIABLE item, appended to the session's
 * lane buffer (one datagram's room, allocated at its first message, never
 * per message) and the session marked dirty; at the end of the batch the
 * flush lets the items ride in KCP's next output when they fit, else sends
 * them in a datagram of their own, so they never wait for KCP's interval
 * and no window holds them. A token bucket of unreliable_bytes_per_s
 * (bytes of items, a second's worth of burst) bounds what one session
 * sends; past it messages are dropped, counted. In: sequenced messages
 * older than the newest delivered of their msg_id are dropped, counted;
 * the rest go to the same handlers, told the lane.
 *
 * Ownership: everything here is the session's shard thread's.
 */
#include "server/server_internal.h"
#include "server/session_v2.h"

#include "proto/frame.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of items a datagram of the session holds. */
static size_t lane_room(const kite__session *s) {
  size_t mtu = s->mtu < KITE__UDP_DGRAM_MAX ? s->mtu : KITE__UDP_DGRAM_MAX;
  return mtu - KITE__V2PKT_OVERHEAD;
}

bool kite__v2_budget_take(kite__v2sess *v, uint32_t now, uint64_t rate,
                          size_t cost) {
  uint32_t dt = now - v->budget_ms;
  if (dt) {
    v->budget += (uint64_t)dt * rate / 1000;
    if (v->budget > rate)
      v->budget = rate;
    v->budget_ms = now;
  }
  if (v->budget < cost)
    return false;
  v->budget -= cost;
  return true;
}

int kite__v2_send_unreliable(kite__session *s, uint16_t msg_id,
                             unsigned flags, const void *body, size_t len) {
  kite__shard *sh = s->shard;
  kite__v2sess *v = kite__v2_of(s);
  if (len > v->max_unreliable)
    return KITE_EMSGSIZE;
  if (v->path.validating) {
    /* Section 7: to an address not yet validated nothing unreliable. */
    KITE__STAT_INC(sh, unreliable_drop_path);
    return 0;
  }
  size_t cost = KITE__V2ITEM_HDR + KITE__V2U_HDR + len;
  if (!kite__v2_budget_take(v, sh->now, sh->srv->cfg.unreliable_bytes_per_s,
                            cost)) {
    KITE__STAT_INC(sh, unreliable_drop_budget);
    return KITE_EFULL;
  }
  size_t room = lane_room(s);
  if (!v->lane && !(v->lane = malloc(room)))
    return KITE_ENOMEM;
  if (v->lane_len + cost > room)
    kite__v2_lane_flush(s); /* full: what waits goes first */
  uint8_t f = 0;
  uint16_t seq = 0;
  if (flags & KITE_UNRELIABLE_SEQUENCED) {
    f = KITE__V2U_F_SEQ;
    if (kite__v2seq_next(&v->seq_out, msg_id, &seq) < 0)
      return KITE_ENOMEM; /* a first msg_id, no memory to count it */
  }
  int n = kite__v2item_put_unreliable(v->lane + v->lane_len,
                                      room - v->lane_len, msg_id, f, seq, body,
                                      len, v->max_unreliable);
  if (n < 0)
    return n; /* cannot be: max_unreliable fits a datagram */
  v->lane_len = (uint16_t)(v->lane_len + (size_t)n);
  KITE__STAT_INC(sh, unreliable_out);
  KITE__SESSION_ADD(s, frames_out, 1);
  KITE__SESSION_ADD(s, bytes_out, (uint64_t)n);
  kite__session_mark_dirty(s);
  return 0;
}

size_t kite__v2_lane_ride(kite__session *s, uint8_t *out, size_t room) {
  kite__v2sess *v = kite__v2_of(s);
  size_t n = v->lane_len;
  if (!n || n > room)
    return 0;
  memcpy(out, v->lane, n);
  v->lane_len = 0;
  return n;
}

void kite__v2_lane_flush(kite__session *s) {
  kite__v2sess *v = kite__v2_of(s);
  if (!v->lane_len)
    return;
  size_t room;
  uint8_t *out = kite__v2_out_begin(s, &room);
  size_t n = kite__v2_lane_ride(s, out, room);
  if (n)
    kite__v2_out_end(s, &s->peer, n); /* held back: lost, as on the wire */
  v->lane_len = 0;
}

void kite__v2_lane_in(kite__session *s, const kite__v2item *it) {
  kite__v2sess *v = kite__v2_of(s);
  unsigned req = KITE_REQ_UNRELIABLE;
  if (it->flags & KITE__V2U_F_SEQ) {
    if (!kite__v2seq_accept(&v->seq_in, it->msg_id, it->seq)) {
      KITE__STAT_INC(s->shard, unreliable_drop_stale);
      return;
    }
    req |= KITE_REQ_SEQUENCED;
  }
  kite__session_deliver_unreliable(s, it->msg_id, req, it->body,
                                   it->body_len);
}
