/*
 * The version-2 UDP transport (PROTOCOL-v2.md sections 4 and 5): a KCP
 * engine as version 1's, whose every output is one KCP item in a protected
 * datagram (session_v2_out.c), and whose input comes out of datagrams that
 * pass section 4's steps, in order. Frames are cut from KCP's receive
 * queue exactly as session_kcp.c does.
 */
#include "server/server_internal.h"
#include "server/session_v2.h"

#include "base/time.h"
#include "proto/frame.h"
#include "proto/v2item.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The opened items of the datagram being read: the shard thread's own,
 * never held across datagrams, so no allocation per packet. */
static _Thread_local uint8_t plain[KITE__UDP_DGRAM_MAX];

static kite__kcp *kcp_of(const kite__session *s) { return kite__v2_of(s)->kcp; }

/* Whether the items still read: connected, and no close decided. */
static bool reading(const kite__session *s) {
  return kite__session_connected(s) && s->close_pending == KITE__NO_CLOSE;
}

/* One KCP output, one datagram; unreliable items waiting ride along when
 * they fit (section 5: items share a datagram). */
static void v2_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                      void *user) {
  (void)kcp;
  kite__session *s = user;
  size_t room;
  uint8_t *out = kite__v2_out_begin(s, &room);
  int n = kite__v2item_put(out, room, KITE__V2ITEM_KCP, buf, len);
  if (n < 0)
    return;
  size_t more = kite__v2_lane_ride(s, out + n, room - (size_t)n);
  kite__v2_out_end(s, &s->peer, (size_t)n + more);
}

/* Called from inside kite__kcp_flush(): the close waits for a safe point. */
static void v2_dead(kite__kcp *kcp, void *user) {
  (void)kcp;
  kite__session *s = user;
  if (s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE_CLOSE_DEAD_LINK;
}

static const kite__kcp_ops engine_ops = {v2_output, v2_dead};

static void v2_free(kite__v2sess *v) {
  if (v->kcp)
    kite__kcp_destroy(v->kcp);
  free(v->lane);
  kite__v2seq_out_free(&v->seq_out);
  sodium_memzero(v, sizeof(*v) + v->ident.user_len); /* user data after it */
  free(v);
}

int kite__v2_session_new(kite__shard *sh, kite__session *s,
                         const kite__v2_new *n) {
  const kite_server_config *cfg = &sh->srv->cfg;
  uint16_t user_len = kite__v2ident_len(n->tok->user_data);
  kite__v2sess *v = calloc(1, sizeof(*v) + user_len); /* user data after it */
  if (!v)
    return KITE_ENOMEM;
  kite__kcp_config kc = sh->kcp_cfg;
  kc.mtu = n->mtu - KITE__V2_KCP_OVERHEAD; /* one output, one item */
  kc.peer_rcv_wnd = n->peer_rcv_wnd;
  uint32_t conv = kite__conv_new(&sh->convs, sh->index);
  if (kite__kcp_create(&v->kcp, conv, &kc, sh->pool, &engine_ops, s) < 0) {
    free(v);
    return KITE_ENOMEM;
  }
  if (kite__map_put(&sh->hs, n->hs_key, s->slot) < 0) {
    v2_free(v);
    return KITE_ENOMEM;
  }
  if (kite__map_put(&sh->convs, kite__conv_key(conv), s->slot) < 0) {
    kite__map_del(&sh->hs, n->hs_key);
    v2_free(v);
    return KITE_ENOMEM;
  }
  uint8_t accept_nonce[8];
  randombytes_buf(accept_nonce, sizeof(accept_nonce));
  kite__v2_traffic_keys(&v->keys, n->tok->c2s_key, n->tok->s2c_key, false,
                        n->nonce, accept_nonce);
  kite__replay_init(&v->window);
  v->pn.next = 0;
  kite__v2seq_init(&v->seq_in);
  kite__v2seq_out_init(&v->seq_out);
  v->budget = cfg->unreliable_bytes_per_s; /* a second's worth to start */
  v->budget_ms = sh->now;
  v->ident.client_id = n->tok->client_id;
  v->ident.user_len = user_len;
  v->ident.user_data = user_len ? (const uint8_t *)(v + 1) : NULL;
  memcpy(v + 1, n->tok->user_data, user_len);
  v->origin = *n->peer;
  memcpy(v->tag, n->tag, KITE__V2TOK_TAG);
  v->max_unreliable = kite__v2_max_unreliable(n->mtu, cfg->max_frame);
  v->path.validated = *n->peer;
  kite__v2accept a = {
      .conv = conv,
      .mtu = n->mtu,
      .rcv_wnd = (uint16_t)cfg->rcv_wnd,
      .idle_timeout_ms = n->idle_ms,
      .max_frame = cfg->max_frame,
      .max_unreliable = v->max_unreliable,
  };
  kite__v2ctl_accept_seal(v->accept, n->nonce, accept_nonce, &a,
                          n->tok->s2c_key);

  kite__session_admit(s, &kite__transport_v2, v, n->peer);
  atomic_store_explicit(&s->lane, KITE__LANE_DGRAM, memory_order_relaxed);
  atomic_store_explicit(&s->max_unreliable, v->max_unreliable,
                        memory_order_relaxed);
  kite__session_pub_lock(s);
  s->version = 2;
  s->ident = &v->ident;
  kite__session_pub_unlock(s);
  s->local = *n->local;
  s->hs_key = n->hs_key;
  s->conv = conv;
  s->mtu = n->mtu;
  s->peer_rcv_wnd = n->peer_rcv_wnd;
  s->idle_ms = n->idle_ms;
  memcpy(s->nonce, n->nonce, 8);
  kite__session_schedule(s);
  return 0;
}

void kite__v2_session_free(kite__session *s) { v2_free(kite__v2_of(s)); }

/* Frames straight out of the KCP receive queue, as session_kcp.c. */
static void pump_frames(kite__session *s) { kite__kcp_pump_frames(s, kcp_of(s)); }

/* Broken items: the datagram verified, so only the peer sent them. */
static void items_refused(kite__session *s, int why) {
  kite__shard *sh = s->shard;
  char who[64], more[48];
  uint32_t held;
  if (kite__ratelog_allow(&sh->log_protocol, sh->now, &held))
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "session %s: v2 items: %s: closing (protocol error)%s",
               kite__addr_format(&s->peer, who, sizeof(who)),
               kite__v2item_strerror(why),
               kite__ratelog_tail(more, sizeof(more), held));
  KITE__STAT_INC(sh, v2_drop_items);
  if (s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE_CLOSE_PROTOCOL;
}

/* An UNRELIABLE item: a ping (msg_id 0) gets its pong on the lane
 * (section 6); the rest goes to the handlers (session_v2_lane.c). */
static void unreliable_in(kite__session *s, const kite__v2item *it) {
  kite__shard *sh = s->shard;
  if (it->msg_id != KITE__MSG_PING) {
    kite__v2_lane_in(s, it);
    return;
  }
  if (it->flags & KITE__V2U_F_PONG)
    return; /* we send no unreliable pings */
  uint8_t item[KITE__V2U_HDR + KITE__PING_BODY_MAX];
  item[0] = 0;
  item[1] = 0; /* msg_id 0 */
  item[2] = KITE__V2U_F_PONG;
  item[3] = 0;
  item[4] = 0; /* seq 0 */
  memcpy(item + KITE__V2U_HDR, it->body, it->body_len); /* <= 32: checked */
  if (kite__v2_send_item(s, KITE__V2ITEM_UNRELIABLE, item,
                         KITE__V2U_HDR + (size_t)it->body_len))
    KITE__STAT_INC(sh, v2_unreliable_pings);
  else
    KITE__STAT_INC(sh, v2_drop_unreliable);
}

/* The items of a datagram that verified: both passes (section 5). */
static void items_in(kite__shard *sh, kite__session *s, const uint8_t *p,
                     size_t len, const kite__addr *from) {
  kite__v2sess *v = kite__v2_of(s);
  kite__v2item_rules rules = {.conv = s->conv,
                              .max_unreliable = v->max_unreliable,
                              .from_server = false};
  kite__v2item_scan scan;
  if (kite__v2item_check(p, len, &rules, &scan) < 0) {
    items_refused(s, scan.why);
    return;
  }
  if (scan.reserved || scan.wrong_way)
    KITE__STAT_ADD(sh, v2_items_skipped, scan.reserved + scan.wrong_way);
  kite__v2item_iter it;
  kite__v2item_iter_init(&it, p, scan.end, false);
  kite__v2item item;
  bool fed = false;
  while (reading(s) && kite__v2item_next(&it, &item)) {
    switch (item.type) {
    case KITE__V2ITEM_KCP: {
      int rc = kite__kcp_input(v->kcp, item.value, item.len, sh->now);
      if (rc < 0)
        KITE__STAT_INC(sh, drop_kcp);
      fed = true;
      break;
    }
    case KITE__V2ITEM_UNRELIABLE:
      unreliable_in(s, &item);
      break;
    case KITE__V2ITEM_PATH_RESPONSE:
      kite__v2_path_response(s, from, item.value);
      break;
    case KITE__V2ITEM_CLOSE:
      if (fed && s->state != KITE__S_HALF_OPEN)
        pump_frames(s); /* the items before it are acted on */
      kite__session_close_by_peer(s, item.reason);
      return;
    default:
      break;
    }
  }
  if (fed && reading(s) && s->state != KITE__S_HALF_OPEN)
    pump_frames(s);
}

void kite__v2_session_input(kite__shard *sh, kite__session *s, const uint8_t *data,
                            size_t len, const kite__addr *from) {
  kite__v2sess *v = kite__v2_of(s);
  uint32_t conv;
  uint64_t pn;
  /* 1: size, pn under 2^48 (the conv named this session already). */
  if (len > s->mtu || kite__v2pkt_peek(data, len, &conv, &pn) < 0) {
    KITE__STAT_INC(sh, v2_drop_size);
    return;
  }
  /* 2: half-open, only the accepted address. */
  bool moved = !kite__addr_equal(&s->peer, from);
  if (moved && s->state == KITE__S_HALF_OPEN) {
    KITE__STAT_INC(sh, v2_drop_addr);
    return;
  }
  /* 3: the replay window, before any cryptography. */
  if (kite__replay_check(&v->window, pn) < 0) {
    KITE__STAT_INC(sh, v2_drop_replay);
    return;
  }
  /* 4: the tag. */
  int n = kite__v2pkt_open(plain, data, len, v->keys.c2s);
  if (n < 0) {
    KITE__STAT_INC(sh, v2_drop_auth);
    return;
  }
  /* 5: recorded; the address (section 7); open; idle restarts; items. */
  int raised = kite__replay_record(&v->window, pn);
  if (raised < 0) {
    KITE__STAT_INC(sh, v2_drop_replay);
    return;
  }
  kite__v2_path_seen(s, from, len, raised == 1);
  kite__session_heard(s, sh->now);
  kite__session_mark_dirty(s);
  if (s->state == KITE__S_HALF_OPEN) {
    kite__srclimit_opened(&sh->srcs, &s->src_keys);
    s->src_open = 1;
    kite__session_open(s);
  }
  items_in(sh, s, plain, (size_t)n, from);
  if (kite__session_connected(s))
    kite__session_publish_rtt(s, sh->now);
  kite__session_settle(s);
}

static int v2_sendv(kite__session *s, struct iovec *iov, int n) {
  return kite__kcp_session_sendv(s, kcp_of(s), iov, n);
}

/* One of the last three numbers went out with CLOSE 7: the session ends
 * with that reason at the next safe point (section 9). */
static void key_check(kite__session *s) {
  if (kite__v2_of(s)->key_done && s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE__CLOSE_KEY_EXHAUSTED;
}

static void v2_flush(kite__session *s) {
  kite__kcp *kcp = kcp_of(s);
  kite__kcp_flush(kcp, s->shard->now);
  kite__v2_lane_flush(s); /* what did not ride with KCP's output */
  atomic_store_explicit(&s->queued, kite__kcp_queued(kcp), memory_order_relaxed);
  key_check(s);
}

static bool v2_next_due(kite__session *s, uint32_t now_ms, uint32_t *due_ms) {
  uint32_t k, p;
  bool hk = kite__kcp_next_due(kcp_of(s), now_ms, &k);
  bool hp = kite__v2_path_due(s, &p);
  if (hk && hp)
    *due_ms = kite__ms_min(k, p);
  else if (hk)
    *due_ms = k;
  else if (hp)
    *due_ms = p;
  return hk || hp;
}

static void v2_on_timer(kite__session *s, uint32_t now_ms) {
  kite__v2_path_timer(s, now_ms);
  uint32_t due;
  if (kite__kcp_next_due(kcp_of(s), now_ms, &due) && kite__ms_reached(now_ms, due))
    v2_flush(s);
  key_check(s);
}

static void v2_resume(kite__session *s) {
  pump_frames(s);
  kite__session_mark_dirty(s);
}

static void v2_drain(kite__session *s) { pump_frames(s); }

static uint32_t v2_queued(const kite__session *s) {
  return kite__kcp_queued(kcp_of(s));
}

static uint32_t v2_unacked(const kite__session *s) {
  return kite__kcp_unacked(kcp_of(s));
}

static void v2_notify_close(kite__session *s, uint8_t reason) {
  kite__v2_send_close(s, reason);
}

static void v2_teardown(kite__session *s) {
  kite__shard *sh = s->shard;
  kite__v2sess *v = kite__v2_of(s);
  kite__kcp_stats st;
  kite__kcp_get_stats(v->kcp, &st);
  KITE__STAT_ADD(sh, retransmits, st.retransmits + st.fast_retransmits);
  kite__map_del(&sh->hs, s->hs_key);
  kite__map_del(&sh->convs, kite__conv_key(s->conv));
  kite__srclimit_remove(&sh->srcs, &s->src_keys, s->src_open);
  kite__session_pub_lock(s);
  s->ident = NULL; /* other threads copy it no more */
  kite__session_pub_unlock(s);
  v2_free(v);
}

static void v2_rtt(const kite__session *s, kite__rtt *out) {
  kite__kcp_session_rtt(kcp_of(s), out);
}

const kite__transport kite__transport_v2 = {
    .name = "kcp v2",
    .kind = KITE_TRANSPORT_KCP,
    .sendv = v2_sendv,
    .flush = v2_flush,
    .next_due = v2_next_due,
    .on_timer = v2_on_timer,
    .resume = v2_resume,
    .drain = v2_drain,
    .queued = v2_queued,
    .unacked = v2_unacked,
    .notify_close = v2_notify_close,
    .teardown = v2_teardown,
    .rtt = v2_rtt,
    .send_unreliable = kite__v2_send_unreliable,
};
