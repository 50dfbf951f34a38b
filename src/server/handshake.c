/*
 * The handshake and CLOSE (PROTOCOL.md section 2): a stateless cookie
 * exchange. HELLO costs the server no state; CONNECT allocates only with a
 * valid cookie, on the shard that will own the session; a repeated CONNECT
 * gets the same ACCEPT again, never a second session.
 */
#include "server/server_internal.h"

#include "base/le.h"
#include "base/time.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A refused handshake is worth a line, but a flood of them is not worth a
 * flood of lines: one a second per shard, with the count held back. */
void kite__handshake_log_refused(kite__shard *sh, const char *transport,
                                 const kite__addr *from, const char *why) {
  uint32_t held;
  if (!kite__ratelog_allow(&sh->log_refused, sh->now, &held))
    return;
  char who[64], more[48];
  kite__logf(&sh->srv->log, KITE_LOG_WARN, "%shandshake from %s refused: %s%s",
             transport, kite__addr_format(from, who, sizeof(who)), why,
             kite__ratelog_tail(more, sizeof(more), held));
}

static void reject(kite__shard *sh, const kite__ctrl *req, uint8_t reason,
                   const kite__addr *to, const kite__local *local) {
  kite__ctrl r = {.type = KITE__CTRL_REJECT, .reason = reason};
  memcpy(r.nonce, req->nonce, sizeof(r.nonce));
  kite__shard_send_ctrl(sh, &r, to, local);
}

void kite__handshake_send_accept(kite__session *s) {
  kite__shard *sh = s->shard;
  const kite_server_config *cfg = &sh->srv->cfg;
  kite__ctrl a = {
      .type = KITE__CTRL_ACCEPT,
      .conv = s->conv,
      .mtu = s->mtu,
      .rcv_wnd = (uint16_t)cfg->rcv_wnd,
      .idle_timeout_ms = cfg->idle_timeout_ms,
      .max_frame = cfg->max_frame,
  };
  memcpy(a.nonce, s->nonce, sizeof(a.nonce));
  memcpy(a.token, s->token, sizeof(a.token));
  kite__shard_send_ctrl(sh, &a, &s->peer, &s->local);
}

void kite__handshake_send_close(kite__session *s, uint8_t reason) {
  kite__shard *sh = s->shard;
  kite__ctrl c = {.type = KITE__CTRL_CLOSE, .conv = s->conv, .reason = reason};
  memcpy(c.token, s->token, sizeof(c.token));
  /* No acknowledgement exists for CLOSE: three copies (PROTOCOL.md), and
   * the session remembered a while, for a peer that lost all three. */
  for (int i = 0; i < 3; i++)
    kite__shard_send_ctrl(sh, &c, &s->peer, &s->local);
  if (kite__closed_add(&sh->closed, s->conv, &s->peer, &s->local, s->token,
                       reason, sh->now))
    KITE__STAT_INC(sh, close_linger_forgotten);
}

void kite__handshake_closed_heard(kite__shard *sh, uint32_t conv,
                                  const kite__addr *from, size_t len) {
  const kite__closed_entry *e =
      kite__closed_heard(&sh->closed, conv, from, len, sh->now);
  if (!e)
    return;
  kite__ctrl c = {.type = KITE__CTRL_CLOSE, .conv = conv, .reason = e->reason};
  memcpy(c.token, e->token, sizeof(c.token));
  kite__shard_send_ctrl(sh, &c, &e->peer, &e->local);
  KITE__STAT_INC(sh, close_resent);
}

/* A keyed hash of (address, port, nonce): which shard owns the session it
 * asks for, and its key in that shard's handshake map. Keyed, so a client
 * cannot aim many sessions at one shard; the nonce is in it, so the many
 * sessions of one socket, NAT or relay spread over all shards. */
uint64_t kite__handshake_key(const kite_server *srv, const kite__addr *a,
                            const uint8_t nonce[8]) {
  uint8_t in[16 + 2 + 8 + 1];
  size_t n = 0;
  in[n++] = (uint8_t)a->sa.sa_family;
  if (a->sa.sa_family == AF_INET) {
    memcpy(in + n, &a->v4.sin_addr, 4);
    n += 4;
    memcpy(in + n, &a->v4.sin_port, 2);
  } else {
    memcpy(in + n, &a->v6.sin6_addr, 16);
    n += 16;
    memcpy(in + n, &a->v6.sin6_port, 2);
  }
  n += 2;
  memcpy(in + n, nonce, 8);
  n += 8;
  uint8_t out[8];
  crypto_shorthash(out, in, n, srv->route_key);
  uint64_t h;
  memcpy(&h, out, sizeof(h));
  return h;
}

/* A cookie whose MAC is ours but whose time has passed: a CONNECT repeated
 * for an existing session still gets its ACCEPT "whatever the cookie's
 * age" (PROTOCOL.md), so it is forwarded, not refused here. */
static bool cookie_genuine(kite__shard *sh, const kite__addr *from,
                           const kite__ctrl *c, uint32_t now_s) {
  uint32_t ts = kite__get_le32(c->cookie);
  if ((int32_t)(ts - now_s) > 1)
    return false;
  uint8_t again[KITE__COOKIE_BYTES];
  if (kite__cookie_make(&sh->jar, KITE__PROTO_VERSION, &from->sa, c->nonce, ts, again) < 0)
    return false;
  return sodium_memcmp(again, c->cookie, sizeof(again)) == 0;
}

void kite__handshake_connect(kite__shard *sh, const kite__ctrl *c,
                             const kite__addr *from, const kite__local *local,
                             bool fresh) {
  kite_server *srv = sh->srv;
  uint64_t key = kite__handshake_key(srv, from, c->nonce);
  uint32_t slot;
  if (kite__map_get(&sh->hs, key, &slot)) {
    kite__session *s = &sh->slots[slot];
    if (s->state != KITE__S_FREE && s->tr == &kite__transport_kcp &&
        kite__addr_equal(&s->peer, from) &&
        memcmp(s->nonce, c->nonce, 8) == 0) {
      KITE__STAT_INC(sh, accept_again); /* the first ACCEPT was lost */
      kite__handshake_send_accept(s);
      return;
    }
    if (kite__session_connected(s) && s->tr == &kite__transport_v2) {
      /* A v2 session holds this address and nonce: one key, one session. */
      KITE__STAT_INC(sh, drop_control);
      return;
    }
  }
  if (!fresh) {
    KITE__STAT_INC(sh, reject_cookie);
    kite__handshake_log_refused(sh, "", from, "stale cookie");
    reject(sh, c, KITE__REJECT_COOKIE, from, local);
    return;
  }
  if (atomic_load_explicit(&srv->stopping, memory_order_relaxed) ||
      sh->stop_seen) {
    KITE__STAT_INC(sh, reject_shutdown);
    kite__handshake_log_refused(sh, "", from, "shutting down");
    reject(sh, c, KITE__REJECT_SHUTDOWN, from, local);
    return;
  }
  if (kite__shard_overloaded(sh)) {
    /* Behind already: the players it has come first (RUNTIME.md). */
    KITE__STAT_INC(sh, reject_overload);
    kite__handshake_log_refused(sh, "", from, "overloaded");
    reject(sh, c, KITE__REJECT_FULL, from, local);
    return;
  }
  /* Per source, before anything is taken (srclimit.h). */
  kite__src_keys src = kite__srclimit_keys(&sh->srcs, &from->sa);
  int over = kite__srclimit_add(&sh->srcs, &src);
  if (over) {
    if (over == KITE__SRC_OVER_HALFOPEN)
      KITE__STAT_INC(sh, reject_per_source_halfopen);
    else
      KITE__STAT_INC(sh, reject_per_source);
    kite__handshake_log_refused(sh, "", from,
                                over == KITE__SRC_OVER_HALFOPEN
                                    ? "half-open sessions per source"
                                    : "sessions per source");
    reject(sh, c, KITE__REJECT_FULL, from, local);
    return;
  }
  uint32_t n = atomic_fetch_add_explicit(&srv->sessions, 1, memory_order_relaxed);
  uint16_t mtu = (uint16_t)(c->mtu < srv->cfg.mtu ? c->mtu : srv->cfg.mtu);
  kite__session *s = NULL;
  const char *no_worker = NULL;
  if (n < srv->cfg.max_sessions)
    s = kite__kcp_session_new(sh, from, local, c->nonce, key, mtu, c->rcv_wnd,
                              &no_worker);
  if (!s) {
    kite__srclimit_remove(&sh->srcs, &src, false);
    atomic_fetch_sub_explicit(&srv->sessions, 1, memory_order_relaxed);
    if (no_worker)
      KITE__STAT_INC(sh, reject_no_worker);
    else
      KITE__STAT_INC(sh, reject_full);
    kite__handshake_log_refused(sh, "", from, no_worker ? no_worker : "full");
    reject(sh, c, KITE__REJECT_FULL, from, local);
    return;
  }
  s->src_keys = src;
  s->src_open = 0;
  KITE__STAT_INC(sh, accept);
  kite__handshake_send_accept(s);
}

static void handle_close(kite__shard *sh, const kite__ctrl *c,
                         const kite__addr *from) {
  kite__session *s = kite__shard_session_by_conv(sh, c->conv);
  if (!s || s->tr != &kite__transport_kcp || /* v2 closes inside datagrams */
      !kite__addr_equal(&s->peer, from) ||
      sodium_memcmp(s->token, c->token, sizeof(s->token)) != 0) {
    KITE__STAT_INC(sh, drop_close);
    return;
  }
  /* The peer says why it closed; the application hears the same reason
   * (PROTOCOL.md: one code serves CLOSE and on_disconnect). */
  uint8_t reason = c->reason <= KITE_CLOSE_SLOW_PEER ? c->reason : KITE_CLOSE_NORMAL;
  kite__session_close_by_peer(s, reason);
}

void kite__handshake_control(kite__shard *sh, const uint8_t *data, size_t len,
                             const kite__addr *from, const kite__local *local) {
  kite_server *srv = sh->srv;
  kite__ctrl c;
  int rc = kite__ctrl_decode(data, len, &c);
  if (rc == KITE__CTRL_EVERSION && kite__ctrl_may_answer(c.type, len)) {
    /* Our own version in the header tells the client what we speak. */
    KITE__STAT_INC(sh, reject_version);
    kite__handshake_log_refused(sh, "", from, "protocol version");
    reject(sh, &c, KITE__REJECT_VERSION, from, local);
    return;
  }
  if (rc < 0) {
    KITE__STAT_INC(sh, drop_control);
    return;
  }
  uint32_t now_s = sh->now / 1000;
  switch (c.type) {
  case KITE__CTRL_HELLO: {
    kite__ctrl ch = {.type = KITE__CTRL_CHALLENGE};
    memcpy(ch.nonce, c.nonce, sizeof(ch.nonce));
    kite__cookie_make(&sh->jar, KITE__PROTO_VERSION, &from->sa, c.nonce, now_s, ch.cookie);
    KITE__STAT_INC(sh, hello);
    kite__shard_send_ctrl(sh, &ch, from, local);
    return;
  }
  case KITE__CTRL_CONNECT: {
    KITE__STAT_INC(sh, connect);
    if (c.mtu < 64 || c.rcv_wnd == 0) {
      KITE__STAT_INC(sh, drop_control); /* no client could work with these */
      return;
    }
    bool fresh = kite__cookie_check(&sh->jar, KITE__PROTO_VERSION, &from->sa, c.nonce, c.cookie, now_s);
    if (!fresh && !cookie_genuine(sh, from, &c, now_s)) {
      KITE__STAT_INC(sh, reject_cookie);
      kite__handshake_log_refused(sh, "", from, "bad cookie");
      reject(sh, &c, KITE__REJECT_COOKIE, from, local);
      return;
    }
    uint32_t owner = (uint32_t)(kite__handshake_key(srv, from, c.nonce) >> 40) % srv->nshards;
    if (owner == sh->index) {
      kite__handshake_connect(sh, &c, from, local, fresh);
      return;
    }
    kite__cmd *cmd = malloc(sizeof(*cmd));
    if (!cmd)
      return;
    *cmd = (kite__cmd){.type = KITE__CMD_CONNECT, .fresh = fresh,
                       .from = *from, .local = *local, .ctrl = c};
    if (!kite__shard_post(&srv->shards[owner], cmd)) {
      free(cmd);
      KITE__STAT_INC(sh, inbox_full);
    }
    return;
  }
  case KITE__CTRL_CLOSE: {
    /* CLOSE starts with the magic, not the conv, so the kernel does not
     * steer it: hand it to the shard the conv names. */
    uint32_t owner = c.conv & 0xFF;
    if (owner == sh->index) {
      handle_close(sh, &c, from);
    } else if (owner < srv->nshards) {
      kite__shard_handoff(sh, owner, data, len, from, local);
    } else {
      KITE__STAT_INC(sh, drop_close);
    }
    return;
  }
  default: /* server-to-client types, or TCP's: not for this socket */
    KITE__STAT_INC(sh, drop_control);
    return;
  }
}
