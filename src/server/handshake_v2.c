/*
 * Control packets by version on the UDP port (PROTOCOL-v2.md section 1),
 * and the version-2 handshake (section 3): HELLO v2 is v1's, with the
 * version in the cookie; CONNECT v2 runs the contract's steps 1 to 9 in
 * order on the shard that owns (address, port, client_nonce), the one
 * whose handshake map says whether step 2 holds.
 *
 * One reading of the order, for floods: a CONNECT's cookie MAC is checked
 * (not its age) on the shard that read it before it is handed to its
 * owner, so a CONNECT with a forged cookie costs a SipHash and a REJECT 4,
 * never a hand-over. A repeated CONNECT carries its genuine cookie, so
 * step 2 still answers it whatever the cookie's age.
 */
#include "server/server_internal.h"
#include "server/session_v2.h"

#include "base/le.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void send_v2(kite__shard *sh, const kite__v2ctl *c, const kite__addr *to,
                    const kite__local *local) {
  uint8_t buf[KITE__V2CTL_MAX];
  int n = kite__v2ctl_encode(buf, sizeof(buf), c);
  if (n > 0)
    kite__udp_tx_add(sh->tx, to, local, buf, (size_t)n);
}

static void reject(kite__shard *sh, const uint8_t nonce[8], uint8_t reason,
                   const kite__addr *to, const kite__local *local) {
  kite__v2ctl r = {.type = KITE__CTRL_REJECT, .reason = reason};
  memcpy(r.nonce, nonce, sizeof(r.nonce));
  send_v2(sh, &r, to, local);
}

/* A packet of a version this server does not serve (section 1): REJECT 2
 * in the highest version served, only to a HELLO or CONNECT of 64 bytes or
 * more (no reply outgrows its request); anything else is dropped. */
static void version_refused(kite__shard *sh, const uint8_t *data, size_t len,
                            const kite__addr *from, const kite__local *local) {
  if (len < KITE__CTRL_HDR || !kite__ctrl_may_answer(data[4], len)) {
    KITE__STAT_INC(sh, drop_control);
    return;
  }
  KITE__STAT_INC(sh, reject_version);
  kite__handshake_log_refused(sh, "", from, "protocol version");
  if (sh->srv->cfg.versions & KITE_VERSION_2) {
    reject(sh, data + 8, KITE__REJECT_VERSION, from, local);
  } else {
    kite__ctrl r = {.type = KITE__CTRL_REJECT, .reason = KITE__REJECT_VERSION};
    memcpy(r.nonce, data + 8, sizeof(r.nonce));
    kite__shard_send_ctrl(sh, &r, from, local);
  }
}

void kite__handshake_dispatch(kite__shard *sh, const uint8_t *data, size_t len,
                              const kite__addr *from,
                              const kite__local *local) {
  unsigned versions = sh->srv->cfg.versions;
  uint8_t version = len > 5 ? data[5] : 0;
  if (version == KITE__V2_VERSION && (versions & KITE_VERSION_2))
    kite__v2_handshake_control(sh, data, len, from, local);
  else if (version == KITE__PROTO_VERSION && (versions & KITE_VERSION_1))
    kite__handshake_control(sh, data, len, from, local);
  else
    version_refused(sh, data, len, from, local);
}

/* The local address and port the CONNECT arrived on, as a token lists it
 * (step 6). */
static void local_entry(const kite__shard *sh, const kite__local *local,
                        kite__v2addr *out) {
  kite__addr a = sh->srv->bind;
  if (local->family == AF_INET) {
    a.v4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr = local->addr.v4};
  } else if (local->family == AF_INET6) {
    a.v6 = (struct sockaddr_in6){.sin6_family = AF_INET6,
                                 .sin6_addr = local->addr.v6};
  }
  kite__server_set_port(&a, sh->srv->port);
  kite__v2addr_from_sockaddr(&a.sa, out);
}

/* The idle timeout a token puts in force: its timeout_s, clamped, or the
 * server's own when it says 0. */
static uint32_t idle_for(const kite_server *srv, uint32_t timeout_s) {
  if (timeout_s == 0)
    return srv->cfg.idle_timeout_ms;
  uint64_t ms = (uint64_t)timeout_s * 1000u;
  if (ms < KITE__V2_IDLE_MIN_MS)
    ms = KITE__V2_IDLE_MIN_MS;
  if (ms > KITE__V2_IDLE_MAX_MS)
    ms = KITE__V2_IDLE_MAX_MS;
  return (uint32_t)ms;
}

static void refused(kite__shard *sh, const kite__v2ctl *c, uint8_t reason,
                    const kite__addr *from, const kite__local *local,
                    const char *why) {
  kite__handshake_log_refused(sh, "v2 ", from, why);
  reject(sh, c->nonce, reason, from, local);
}

/* Steps 7 to 9 for a token that opened: the record, the limits, the
 * session. */
static void admit(kite__shard *sh, const kite__v2ctl *c, const kite__addr *from,
                  const kite__local *local, uint64_t key, uint64_t now_s,
                  const kite__v2tok *tok) {
  kite_server *srv = sh->srv;
  const uint8_t *tag = c->sealed + KITE__V2TOK_SEALED - KITE__V2TOK_TAG;
  kite__v2addr who;
  kite__v2addr_from_sockaddr(&from->sa, &who);
  int rc = kite__tokens_check(&srv->tokens, tag, &who, now_s);
  if (rc == KITE__V2_EBOUND) { /* 7: someone else's now */
    KITE__STAT_INC(sh, v2_drop_token_bound);
    return;
  }
  if (rc == KITE__V2_EUSED) {
    KITE__STAT_INC(sh, v2_reject_used);
    refused(sh, c, KITE__REJECT_USED, from, local, "token used");
    return;
  }
  /* 8: shutting down, full (as v1's CONNECT counts them). */
  if (atomic_load_explicit(&srv->stopping, memory_order_relaxed) ||
      sh->stop_seen) {
    KITE__STAT_INC(sh, reject_shutdown);
    refused(sh, c, KITE__REJECT_SHUTDOWN, from, local, "shutting down");
    return;
  }
  if (kite__shard_overloaded(sh)) {
    KITE__STAT_INC(sh, reject_overload);
    refused(sh, c, KITE__REJECT_FULL, from, local, "overloaded");
    return;
  }
  kite__src_keys src = kite__srclimit_keys(&sh->srcs, &from->sa);
  int over = kite__srclimit_add(&sh->srcs, &src);
  if (over) {
    bool half = over == KITE__SRC_OVER_HALFOPEN;
    if (half)
      KITE__STAT_INC(sh, reject_per_source_halfopen);
    else
      KITE__STAT_INC(sh, reject_per_source);
    refused(sh, c, KITE__REJECT_FULL, from, local,
            half ? "half-open sessions per source" : "sessions per source");
    return;
  }
  uint32_t n = atomic_fetch_add_explicit(&srv->sessions, 1, memory_order_relaxed);
  const char *no_worker = NULL;
  kite__session *s =
      n < srv->cfg.max_sessions ? kite__session_claim(sh, &no_worker) : NULL;
  if (!s) {
    kite__srclimit_remove(&sh->srcs, &src, false);
    atomic_fetch_sub_explicit(&srv->sessions, 1, memory_order_relaxed);
    if (no_worker)
      KITE__STAT_INC(sh, reject_no_worker);
    else
      KITE__STAT_INC(sh, reject_full);
    refused(sh, c, KITE__REJECT_FULL, from, local, no_worker ? no_worker : "full");
    return;
  }
  /* 9: bind the tag (checked again under the stripe's lock: of two
   * handshakes racing with one token, one binds), then the session. */
  rc = kite__tokens_bind(&srv->tokens, tag, &who, c->expire_ts, now_s);
  if (rc == 0) {
    uint16_t mtu = (uint16_t)(c->mtu < srv->cfg.mtu ? c->mtu : srv->cfg.mtu);
    kite__v2_new nw = {.peer = from, .local = local, .nonce = c->nonce,
                       .hs_key = key, .mtu = mtu, .peer_rcv_wnd = c->rcv_wnd,
                       .idle_ms = idle_for(srv, tok->timeout_s), .tok = tok,
                       .tag = tag};
    if (kite__v2_session_new(sh, s, &nw) == 0) {
      s->src_keys = src;
      s->src_open = 0;
      KITE__STAT_INC(sh, v2_accept);
      kite__udp_tx_add(sh->tx, from, local, kite__v2_of(s)->accept,
                       KITE__V2CTL_ACCEPT);
      return;
    }
    rc = KITE__V2_EFULL; /* out of memory: the token is spent, say full */
  }
  kite__session_unclaim(s);
  kite__srclimit_remove(&sh->srcs, &src, false);
  atomic_fetch_sub_explicit(&srv->sessions, 1, memory_order_relaxed);
  if (rc == KITE__V2_EBOUND) {
    KITE__STAT_INC(sh, v2_drop_token_bound);
  } else if (rc == KITE__V2_EUSED) {
    KITE__STAT_INC(sh, v2_reject_used);
    refused(sh, c, KITE__REJECT_USED, from, local, "token used");
  } else {
    KITE__STAT_INC(sh, v2_reject_record_full);
    refused(sh, c, KITE__REJECT_FULL, from, local, "token record full");
  }
}

/* CONNECT v2 on its owner shard, from step 2. */
static void connect_owned(kite__shard *sh, const kite__v2ctl *c,
                          const kite__addr *from, const kite__local *local) {
  kite_server *srv = sh->srv;
  const uint8_t *tag = c->sealed + KITE__V2TOK_SEALED - KITE__V2TOK_TAG;
  uint64_t key = kite__handshake_key(srv, from, c->nonce);
  uint32_t slot;
  if (kite__map_get(&sh->hs, key, &slot)) {
    kite__session *s = &sh->slots[slot];
    bool v2 = kite__session_connected(s) && s->tr == &kite__transport_v2;
    if (v2 && kite__addr_equal(&kite__v2_of(s)->origin, from) &&
        memcmp(s->nonce, c->nonce, 8) == 0) {
      /* 2: the first ACCEPT was lost; the same bytes again. */
      if (sodium_memcmp(kite__v2_of(s)->tag, tag, KITE__V2TOK_TAG) == 0) {
        KITE__STAT_INC(sh, v2_accept_again);
        kite__udp_tx_add(sh->tx, from, local, kite__v2_of(s)->accept,
                         KITE__V2CTL_ACCEPT);
      } else {
        KITE__STAT_INC(sh, v2_drop_connect_tag);
      }
      return;
    }
    if (kite__session_connected(s) && kite__addr_equal(&s->peer, from) &&
        memcmp(s->nonce, c->nonce, 8) == 0) {
      KITE__STAT_INC(sh, v2_drop_connect_tag); /* a v1 session's: no tag */
      return;
    }
  }
  /* 3: the cookie, fresh and for this version, address, port, nonce. */
  uint32_t now_ms_s = sh->now / 1000;
  if (!kite__cookie_check(&sh->jar, KITE__V2_VERSION, &from->sa, c->nonce,
                          c->cookie, now_ms_s)) {
    KITE__STAT_INC(sh, reject_cookie);
    refused(sh, c, KITE__REJECT_COOKIE, from, local, "stale cookie");
    return;
  }
  /* 4 to 6: the time, the seal, the fields, our address. */
  uint64_t now_s = (uint64_t)time(NULL);
  kite__v2addr here;
  local_entry(sh, local, &here);
  kite__v2tok tok;
  int rc = kite__v2tok_verify(&srv->v2tok, now_s, &here, c->expire_ts,
                              c->token_nonce, c->sealed, &tok);
  if (rc < 0) {
    uint8_t reason = kite__v2tok_reject_reason(rc);
    if (reason == KITE__REJECT_EXPIRED)
      KITE__STAT_INC(sh, v2_reject_expired);
    else if (reason == KITE__REJECT_NOT_HERE)
      KITE__STAT_INC(sh, v2_reject_not_here);
    else
      KITE__STAT_INC(sh, v2_reject_invalid);
    refused(sh, c, reason ? reason : KITE__REJECT_INVALID, from, local,
            kite__v2_strerror(rc));
    return;
  }
  admit(sh, c, from, local, key, now_s, &tok);
  kite__v2tok_wipe(&tok);
}

/* Whether a cookie is one of ours for this client, whatever its age
 * (step 2 answers a repeated CONNECT however old its cookie). */
static bool cookie_genuine(kite__shard *sh, const kite__addr *from,
                           const kite__v2ctl *c, uint32_t now_s) {
  uint32_t ts = kite__get_le32(c->cookie);
  if ((int32_t)(ts - now_s) > KITE__COOKIE_FUTURE_S)
    return false;
  uint8_t again[KITE__COOKIE_BYTES];
  if (kite__cookie_make(&sh->jar, KITE__V2_VERSION, &from->sa, c->nonce, ts,
                        again) < 0)
    return false;
  return sodium_memcmp(again, c->cookie, sizeof(again)) == 0;
}

static void connect_v2(kite__shard *sh, const kite__v2ctl *c,
                       const uint8_t *data, size_t len, const kite__addr *from,
                       const kite__local *local) {
  kite_server *srv = sh->srv;
  /* Counted once: where it ends, here or at its owner after a hand-over
   * (which reads it again from the start). */
  /* 1: no client could work with these. */
  if (c->mtu < KITE__V2_MTU_MIN || c->rcv_wnd == 0) {
    KITE__STAT_INC(sh, v2_connect);
    KITE__STAT_INC(sh, v2_drop_connect);
    return;
  }
  uint32_t owner =
      (uint32_t)(kite__handshake_key(srv, from, c->nonce) >> 40) % srv->nshards;
  if (owner == sh->index) {
    KITE__STAT_INC(sh, v2_connect);
    connect_owned(sh, c, from, local);
    return;
  }
  if (!cookie_genuine(sh, from, c, sh->now / 1000)) {
    KITE__STAT_INC(sh, v2_connect);
    KITE__STAT_INC(sh, reject_cookie);
    refused(sh, c, KITE__REJECT_COOKIE, from, local, "bad cookie");
    return;
  }
  /* The owner reads it again from the start, and counts it; dropped here,
   * it is counted here. */
  if (!kite__shard_handoff(sh, owner, data, len, from, local))
    KITE__STAT_INC(sh, v2_connect);
}

void kite__v2_handshake_control(kite__shard *sh, const uint8_t *data,
                                size_t len, const kite__addr *from,
                                const kite__local *local) {
  kite__v2ctl c;
  if (kite__v2ctl_decode(data, len, &c) < 0 || !kite__v2ctl_to_server(c.type) ||
      c.type == KITE__CTRL_OPEN) { /* OPEN: TCP's */
    KITE__STAT_INC(sh, v2_drop_control);
    return;
  }
  if (c.type == KITE__CTRL_HELLO) {
    kite__v2ctl ch = {.type = KITE__CTRL_CHALLENGE};
    memcpy(ch.nonce, c.nonce, sizeof(ch.nonce));
    kite__cookie_make(&sh->jar, KITE__V2_VERSION, &from->sa, c.nonce,
                      sh->now / 1000, ch.cookie);
    KITE__STAT_INC(sh, v2_hello);
    send_v2(sh, &ch, from, local);
    return;
  }
  connect_v2(sh, &c, data, len, from, local);
}
