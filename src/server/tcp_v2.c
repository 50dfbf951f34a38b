/*
 * Protocol version 2 on the TCP port: the layer raw TCP and WebSocket
 * share (tcp_v2.h says what it does and who owns what), and the transport
 * of v2 sessions over raw TCP (kite__transport_tcp_v2, at the end).
 */
#include "server/server_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>


size_t kite__tv2_seal_cap(uint32_t max_frame) {
  size_t f = KITE__FRAME_HDR + (size_t)max_frame;
  return f + KITE__V2REC_OVERHEAD * ((f + KITE__V2REC_MAX - 1) / KITE__V2REC_MAX);
}

size_t kite__tv2_shard_bytes(uint32_t max_frame) {
  return kite__tv2_seal_cap(max_frame) + KITE__V2REC_MAX;
}

/* Where a record whole in a read is opened: the shard's, hot in cache,
 * apart from what frames sent meanwhile (inline handlers) are sealed into.
 * Its plaintext is fed to the frame reader at once, which copies what it
 * keeps. */
static uint8_t *open_area(kite__shard *sh) {
  return sh->seal + kite__tv2_seal_cap(sh->srv->cfg.max_frame);
}

/* ---- the first bytes, and OPEN v2 ---- */

static int first_reject(kite__shard *sh, const kite__tconn *c,
                        uint8_t *version) {
  KITE__STAT_INC(sh, reject_version);
  kite__handshake_log_refused(sh, "tcp ", &c->peer, "protocol version");
  *version = (sh->srv->cfg.versions & KITE_VERSION_2) ? KITE__V2_VERSION
                                                      : KITE__PROTO_VERSION;
  return KITE__TV2_REJECT;
}

int kite__tv2_first(kite__shard *sh, const kite__tconn *c,
                    const uint8_t hdr[KITE__CTRL_HDR], uint8_t *version) {
  unsigned served = sh->srv->cfg.versions;
  kite__ctrl k;
  int rc = kite__ctrl_decode(hdr, KITE__CTRL_HDR, &k);
  if (rc == 0 && k.type == KITE__CTRL_OPEN)
    return (served & KITE_VERSION_1) ? KITE__TV2_V1
                                     : first_reject(sh, c, version);
  if (rc == KITE__CTRL_EVERSION && k.version == KITE__V2_VERSION &&
      k.type == KITE__CTRL_OPEN)
    return (served & KITE_VERSION_2) ? KITE__TV2_V2
                                     : first_reject(sh, c, version);
  /* Another version: its types may mean anything, so whatever the type
   * it is answered as an OPEN would be (PROTOCOL-v2.md section 1). */
  if (rc == KITE__CTRL_EVERSION && k.version != KITE__V2_VERSION)
    return first_reject(sh, c, version);
  /* No magic, a reserved type, a v1 or v2 type other than OPEN (those sent
   * only the other way included): closed without a word. */
  KITE__STAT_INC(sh, tcp_bad_open);
  kite__handshake_log_refused(sh, "tcp ", &c->peer, "no OPEN preface");
  return KITE__TV2_BAD;
}

bool kite__tv2_begin(kite__tconn *c, const uint8_t hdr[KITE__CTRL_HDR]) {
  kite__tv2 *v = calloc(1, sizeof(*v));
  uint8_t *open = malloc(KITE__V2_OPEN_BYTES);
  if (!v || !open) {
    free(v);
    free(open);
    return false;
  }
  v->open = open;
  memcpy(v->open, hdr, KITE__CTRL_HDR);
  v->open_have = KITE__CTRL_HDR;
  c->v2 = v;
  return true;
}

size_t kite__tv2_collect(kite__tconn *c, const uint8_t *p, size_t n) {
  kite__tv2 *v = c->v2;
  size_t k = KITE__V2_OPEN_BYTES - v->open_have;
  if (k > n)
    k = n;
  if (k)
    memcpy(v->open + v->open_have, p, k);
  v->open_have = (uint16_t)(v->open_have + k);
  return k;
}

/* OPEN's bytes, needed no more once answered (or refused). */
static void drop_open(kite__tv2 *v) {
  free(v->open);
  v->open = NULL;
}

static kite__session *refuse(kite__shard *sh, const kite__tconn *c,
                             uint8_t reason, const char *why,
                             uint8_t reply[KITE__V2CTL_OPENED],
                             size_t *reply_len) {
  kite__handshake_log_refused(sh, "tcp ", &c->peer, why);
  kite__ctrl k = {.type = KITE__CTRL_REJECT, .version = KITE__V2_VERSION,
                  .reason = reason};
  int n = kite__ctrl_encode(reply, KITE__V2CTL_OPENED, &k);
  *reply_len = n > 0 ? (size_t)n : 0;
  return NULL;
}

static kite__session *refuse_token(kite__shard *sh, const kite__tconn *c,
                                   int err, uint8_t reply[KITE__V2CTL_OPENED],
                                   size_t *reply_len) {
  uint8_t reason = kite__v2tok_reject_reason(err);
  switch (reason) {
  case KITE__REJECT_EXPIRED: KITE__STAT_INC(sh, v2_tcp_reject_expired); break;
  case KITE__REJECT_NOT_HERE: KITE__STAT_INC(sh, v2_tcp_reject_not_here); break;
  default: KITE__STAT_INC(sh, v2_tcp_reject_token); reason = KITE__REJECT_INVALID;
  }
  return refuse(sh, c, reason, kite__v2_strerror(err), reply, reply_len);
}

/* Step 7 and 9's refusals from the token record. */
static kite__session *refuse_record(kite__shard *sh, const kite__tconn *c,
                                    int err, uint8_t reply[KITE__V2CTL_OPENED],
                                    size_t *reply_len) {
  if (err == KITE__V2_EUSED) {
    KITE__STAT_INC(sh, v2_tcp_reject_used);
    return refuse(sh, c, KITE__REJECT_USED, "token used", reply, reply_len);
  }
  if (err == KITE__V2_EFULL) {
    KITE__STAT_INC(sh, v2_tcp_reject_record_full);
    KITE__STAT_INC(sh, reject_full);
    return refuse(sh, c, KITE__REJECT_FULL, "token record full", reply,
                  reply_len);
  }
  KITE__STAT_INC(sh, v2_tcp_ignored_bound); /* ignored: no reply */
  kite__handshake_log_refused(sh, "tcp ", &c->peer, "token bound elsewhere");
  return NULL;
}

static int v2_on_frame(void *user, const kite__frame_hdr *h,
                       const uint8_t *body);

/* The session is claimed: its keys, what it reports, its frames. */
static void keyed(kite__session *s, kite__tconn *c, const kite__v2tok *tok,
                  const kite__v2keys *keys) {
  kite__tv2 *v = c->v2;
  memcpy(v->s2c, keys->s2c, KITE__V2_KEY);
  v->keyed = true;
  v->ident.client_id = tok->client_id;
  v->ident.user_len = kite__v2ident_len(tok->user_data);
  memcpy(v->user, tok->user_data, v->ident.user_len);
  v->ident.user_data = v->user;
  kite__session_pub_lock(s);
  s->version = KITE__V2_VERSION;
  s->ident = &v->ident;
  kite__session_pub_unlock(s);
  c->on_frame = v2_on_frame;
}

kite__session *kite__tv2_open(kite__shard *sh, kite__tconn *c,
                              const kite__transport *tr,
                              uint8_t reply[KITE__V2CTL_OPENED],
                              size_t *reply_len) {
  kite_server *srv = sh->srv;
  kite__tv2 *v = c->v2;
  *reply_len = 0;
  KITE__STAT_INC(sh, v2_tcp_opens);
  kite__v2ctl ctl;
  kite__v2addr local, peer;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (kite__v2ctl_decode(v->open, KITE__V2_OPEN_BYTES, &ctl) < 0 ||
      ctl.type != KITE__CTRL_OPEN ||
      getsockname(c->fd, (struct sockaddr *)&ss, &sl) < 0 ||
      kite__v2addr_from_sockaddr((struct sockaddr *)&ss, &local) < 0 ||
      kite__v2addr_from_sockaddr(&c->peer.sa, &peer) < 0) {
    KITE__STAT_INC(sh, tcp_bad_open); /* cannot be: checked or accepted */
    drop_open(v);
    return NULL;
  }
  uint64_t now_s = (uint64_t)time(NULL); /* the backend's clock, in sync */
  kite__v2tok tok;
  int rc = kite__v2tok_verify(&srv->v2tok, now_s, &local, ctl.expire_ts,
                              ctl.token_nonce, ctl.sealed, &tok);
  if (rc < 0) /* steps 4 to 6 */
    return refuse_token(sh, c, rc, reply, reply_len);
  const uint8_t *tag = ctl.sealed + KITE__V2TOK_SEALED - KITE__V2TOK_TAG;
  kite__session *s = NULL;
  kite__v2keys keys;
  uint8_t accept_nonce[KITE__CTRL_NONCE];
  randombytes_buf(accept_nonce, sizeof(accept_nonce));
  kite__v2_traffic_keys(&keys, tok.c2s_key, tok.s2c_key, true, NULL,
                        accept_nonce);
  if ((rc = kite__tokens_check(&srv->tokens, tag, &peer, now_s)) < 0) {
    refuse_record(sh, c, rc, reply, reply_len); /* step 7 */
  } else if (sh->stop_seen) { /* step 8 */
    KITE__STAT_INC(sh, reject_shutdown);
    refuse(sh, c, KITE__REJECT_SHUTDOWN, "shutting down", reply, reply_len);
  } else if (!sh->free || atomic_load_explicit(&srv->sessions,
                                               memory_order_relaxed) >=
                              srv->cfg.max_sessions) {
    KITE__STAT_INC(sh, reject_full);
    refuse(sh, c, KITE__REJECT_FULL, "full", reply, reply_len);
  } else if (kite__v2rec_reader_init(&v->rd, keys.c2s) < 0) {
    /* no memory: nothing bound, nothing said */
  } else if ((rc = kite__tokens_bind(&srv->tokens, tag, &peer, ctl.expire_ts,
                                     now_s)) < 0) {
    refuse_record(sh, c, rc, reply, reply_len); /* step 9 lost a race */
  } else if (!(s = kite__tconn_claim(sh, c, tr))) { /* counted there */
    refuse(sh, c, KITE__REJECT_FULL, "full", reply, reply_len);
  } else {
    keyed(s, c, &tok, &keys);
    v->max_unreliable =
        kite__v2_max_unreliable((uint16_t)srv->cfg.mtu, srv->cfg.max_frame);
    atomic_store_explicit(&s->lane, KITE__LANE_FLAG, memory_order_relaxed);
    atomic_store_explicit(&s->max_unreliable, v->max_unreliable,
                          memory_order_relaxed);
    /* In force: the server's idle timeout (a token's timeout_s is clamped
     * to it: kite keeps one idle timeout per server). */
    kite__v2accept a = {.idle_timeout_ms = srv->cfg.idle_timeout_ms,
                        .max_frame = srv->cfg.max_frame,
                        .max_unreliable = v->max_unreliable};
    kite__v2ctl_opened_seal(reply, accept_nonce, &a, tok.s2c_key);
    *reply_len = KITE__V2CTL_OPENED;
    KITE__STAT_INC(sh, v2_tcp_opened);
  }
  kite__v2tok_wipe(&tok);
  sodium_memzero(&keys, sizeof(keys));
  drop_open(v); /* ctl pointed into it: read no more */
  return s;
}

/* ---- input ---- */

bool kite__tv2_reading(const kite__session *s) {
  return kite__session_connected(s) && !s->blocked &&
         s->close_pending == KITE__NO_CLOSE &&
         (s->state == KITE__S_OPEN || s->state == KITE__S_HALF_OPEN);
}

/* A protocol error the frame reader cannot see (section 8's frame rules):
 * counted and closed at the next safe point, as a v1 one. */
static void v2_protocol_error(kite__session *s, const char *why) {
  kite__shard *sh = s->shard;
  char who[64], more[48];
  uint32_t held;
  if (kite__ratelog_allow(&sh->log_protocol, sh->now, &held))
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "session %s: %s: closing (protocol error)%s",
               kite__addr_format(&s->peer, who, sizeof(who)), why,
               kite__ratelog_tail(more, sizeof(more), held));
  KITE__STAT_INC(sh, drop_frame);
  if (s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE_CLOSE_PROTOCOL;
}

static int v2_on_frame(void *user, const kite__frame_hdr *h,
                       const uint8_t *body) {
  kite__session *s = user;
  kite__tv2 *v = ((kite__tconn *)s->link)->v2;
  if (kite__v2_frame_check(h, v->max_unreliable) < 0) {
    v2_protocol_error(s, "an unreliable frame over max_unreliable");
    return 1;
  }
  if (h->msg_id == KITE__MSG_CLOSE_NOTICE) { /* the CLOSE frame */
    kite__session_heard(s, s->shard->now);
    s->peer_reason = kite__v2_close_frame_reason(body, h->len);
    return 0;
  }
  return kite__tconn_on_frame(user, h, body);
}

/* A record refused (len, tag, or 2^48 read): reason 2 at once, and not a
 * byte more goes out, the CLOSE frame included. */
static void record_refused(kite__session *s, ptrdiff_t err) {
  kite__shard *sh = s->shard;
  kite__tv2 *v = ((kite__tconn *)s->link)->v2;
  if (err == KITE__V2_EAUTH)
    KITE__STAT_INC(sh, v2_tcp_drop_record_auth);
  else
    KITE__STAT_INC(sh, v2_tcp_drop_record_len);
  v->mute = true;
  char who[64], more[48];
  uint32_t held;
  if (kite__ratelog_allow(&sh->log_protocol, sh->now, &held))
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "session %s: v2 record: %s: closing (protocol error)%s",
               kite__addr_format(&s->peer, who, sizeof(who)),
               kite__v2_strerror((int)err),
               kite__ratelog_tail(more, sizeof(more), held));
  if (s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE_CLOSE_PROTOCOL;
}

size_t kite__tv2_input(kite__session *s, const uint8_t *p, size_t n) {
  kite__tv2 *v = ((kite__tconn *)s->link)->v2;
  uint8_t *out = open_area(s->shard);
  size_t used = 0;
  while (used < n && kite__tv2_reading(s)) {
    const uint8_t *pt;
    size_t len;
    ptrdiff_t k =
        kite__v2rec_read_to(&v->rd, p + used, n - used, out, &pt, &len);
    if (k == KITE_ENOMEM) { /* no buffer for a record that spans reads */
      if (s->close_pending == KITE__NO_CLOSE)
        s->close_pending = KITE_CLOSE_SLOW_PEER;
      return n;
    }
    if (k < 0) {
      record_refused(s, k);
      return n; /* read no further */
    }
    used += (size_t)k;
    if (!pt)
      continue; /* the record goes on in the next read */
    kite__session_heard(s, s->shard->now);
    if (s->state == KITE__S_HALF_OPEN)
      kite__session_open(s); /* the client's first record that verifies */
    if (s->state == KITE__S_OPEN && s->close_pending == KITE__NO_CLOSE)
      kite__tconn_feed(s, pt, len);
  }
  return used;
}

/* ---- output ---- */

ptrdiff_t kite__tv2_seal(kite__shard *sh, kite__tv2 *v,
                         const struct iovec *iov, int n, size_t room,
                         const uint8_t **out) {
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  size_t nrec = (total + KITE__V2REC_MAX - 1) / KITE__V2REC_MAX;
  size_t sealed = total + KITE__V2REC_OVERHEAD * nrec;
  size_t cap = kite__tv2_seal_cap(sh->srv->cfg.max_frame);
  if (sealed > room)
    return KITE_EFULL;
  if (total == 0 || sealed > cap)
    return KITE_EMSGSIZE; /* never: a frame has a header, at most max_frame */
  /* The CLOSE frame alone may take 2^48 - 3, and nothing after it. */
  if (v->done || v->mute || v->pn.next + nrec > KITE__V2_PN_CLOSING)
    return KITE__V2_ELIMIT;
  uint8_t *o = sh->seal;
  int i = 0;
  size_t at = 0; /* bytes of iov[i] sealed already */
  for (size_t left = total; left;) {
    size_t len = left < KITE__V2REC_MAX ? left : KITE__V2REC_MAX;
    uint8_t *pt = o + KITE__V2REC_HDR;
    for (size_t got = 0; got < len;) {
      size_t take = iov[i].iov_len - at;
      if (take > len - got)
        take = len - got;
      memcpy(pt + got, (const uint8_t *)iov[i].iov_base + at, take);
      got += take;
      at += take;
      if (at == iov[i].iov_len) {
        i++;
        at = 0;
      }
    }
    uint64_t rn;
    kite__v2pn_take(&v->pn, &rn); /* below 2^48 - 3: checked above */
    int w = kite__v2rec_seal(o, cap - (size_t)(o - sh->seal), rn, v->s2c, pt,
                             len);
    o += w;
    left -= len;
  }
  *out = sh->seal;
  return (ptrdiff_t)sealed;
}

size_t kite__tv2_seal_close(kite__shard *sh, kite__tv2 *v, uint8_t reason,
                            const uint8_t **out) {
  if (!v->keyed || v->mute || v->done)
    return 0;
  uint8_t frame[KITE__FRAME_HDR + 1];
  frame[KITE__FRAME_HDR] = reason;
  kite__frame_header(frame, KITE__MSG_CLOSE_NOTICE, 0, frame + KITE__FRAME_HDR,
                     1, true);
  uint64_t rn;
  if (kite__v2pn_take(&v->pn, &rn) < 0)
    return 0;
  v->done = true; /* the last record, whatever its number */
  int w = kite__v2rec_seal(sh->seal, kite__tv2_seal_cap(sh->srv->cfg.max_frame),
                           rn, v->s2c, frame, sizeof(frame));
  *out = sh->seal;
  return w > 0 ? (size_t)w : 0;
}

void kite__tv2_unpublish(kite__session *s) {
  kite__tconn *c = s->link;
  kite__session_pub_lock(s);
  s->ident = NULL;
  kite__session_pub_unlock(s);
  if (c && c->v2) { /* the keys go with the session, not the linger */
    kite__v2rec_reader_free(&c->v2->rd);
    sodium_memzero(c->v2->s2c, sizeof(c->v2->s2c));
    c->v2->keyed = false;
    free(c->v2->held_ct);
    c->v2->held_ct = NULL;
    c->v2->held_ct_len = 0;
  }
}

void kite__tv2_free(kite__tv2 *v) {
  if (!v)
    return;
  kite__v2rec_reader_free(&v->rd);
  free(v->held_ct);
  free(v->open);
  sodium_memzero(v, sizeof(*v));
  free(v);
}

/* ---- raw TCP: the transport of v2 sessions ---- */

static kite__tconn *conn_of(const kite__session *s) { return s->link; }

/* Input the session did not take (its mailbox filled): kept for resume.
 * Held only while EPOLLIN is off, so never more than one read's worth. */
static void hold_ct(kite__session *s, const uint8_t *p, size_t n) {
  kite__tv2 *v = conn_of(s)->v2;
  uint8_t *b = malloc(n);
  if (!b) {
    if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = KITE_CLOSE_SLOW_PEER;
    return;
  }
  memcpy(b, p, n);
  free(v->held_ct);
  v->held_ct = b;
  v->held_ct_len = (uint32_t)n;
}

static void take(kite__session *s, const uint8_t *p, size_t n) {
  size_t used = kite__tv2_input(s, p, n);
  if (used < n && kite__session_connected(s) && s->blocked &&
      s->close_pending == KITE__NO_CLOSE)
    hold_ct(s, p + used, n - used);
}

/* A FIN proves nothing: reason 5 unless a CLOSE frame came. */
static const kite__tconn_input tcp2_in = {kite__tv2_reading, take,
                                          KITE_CLOSE_DEAD_LINK};

static void tcp2_ready(kite__shard *sh, kite__tconn *c, uint32_t events) {
  kite__tconn_session_events(sh, c, events, &tcp2_in);
}

void kite__tv2_tcp_open(kite__shard *sh, kite__tconn *c, const uint8_t *rest,
                        size_t n) {
  uint8_t reply[KITE__V2CTL_OPENED];
  size_t len;
  kite__session *s = kite__tv2_open(sh, c, &kite__transport_tcp_v2, reply,
                                    &len);
  struct iovec v = {reply, len};
  if (len) /* a failure shows at the next read */
    kite__tconn_write(sh, c, &v, 1);
  if (!s) { /* REJECT, or nothing, then the lingering close */
    kite__tconn_linger(sh, c);
    return;
  }
  c->on_ready = tcp2_ready;
  if (n) /* records cannot precede OPENED: these fail, reason 2 */
    take(s, rest, n);
  kite__session_schedule(s);
  kite__session_settle(s);
}

static int tcp2_sendv(kite__session *s, struct iovec *iov, int n) {
  kite__shard *sh = s->shard;
  kite__tconn *c = conn_of(s);
  uint32_t pending = kite__tcp_out_pending(&c->out);
  const uint8_t *bytes;
  ptrdiff_t k = kite__tv2_seal(sh, c->v2, iov, n, c->out.max - pending, &bytes);
  struct iovec w = {(void *)(uintptr_t)bytes, k > 0 ? (size_t)k : 0};
  int rc = k > 0 ? kite__tconn_write(sh, c, &w, 1) : (int)k;
  /* Numbers ran out (reason 7: the CLOSE frame is the last record), or
   * the stream is cut: the session ends at the next safe point. */
  uint8_t why = KITE_CLOSE_DEAD_LINK;
  if (k == KITE__V2_ELIMIT && !c->v2->mute) {
    KITE__STAT_INC(sh, v2_tcp_key_exhausted);
    why = KITE__CLOSE_KEY_EXHAUSTED;
  }
  return kite__tconn_sent(s, c, rc, pending != 0, why);
}

/* The plaintext the mailbox refused, then the records not read on. */
static void tcp2_resume(kite__session *s) {
  kite__tconn *c = conn_of(s);
  kite__tv2 *v = c->v2;
  uint8_t *held = c->held;
  uint32_t len = c->held_len;
  c->held = NULL;
  c->held_len = 0;
  if (len)
    kite__tconn_feed(s, held, len); /* may block again: it holds its copy */
  free(held);
  if (v->held_ct_len && kite__tv2_reading(s)) {
    uint8_t *ct = v->held_ct;
    uint32_t ct_len = v->held_ct_len;
    v->held_ct = NULL;
    v->held_ct_len = 0;
    take(s, ct, ct_len);
    free(ct);
  }
  if (kite__tv2_reading(s))
    kite__tconn_arm(s->shard, c, c->events | EPOLLIN);
}

/* The CLOSE frame (section 8), then the FIN of the lingering close. */
static void tcp2_notify_close(kite__session *s, uint8_t reason) {
  if (s->state == KITE__S_HALF_OPEN)
    return; /* never opened: closed without a word */
  const uint8_t *b = NULL;
  size_t k = kite__tv2_seal_close(s->shard, conn_of(s)->v2, reason, &b);
  struct iovec v = {(void *)(uintptr_t)b, k};
  if (k) /* past tcp_send_max the peer hears the FIN alone */
    kite__tconn_write(s->shard, conn_of(s), &v, 1);
}

static void tcp2_teardown(kite__session *s) {
  kite__tv2_unpublish(s);
  kite__tconn_teardown(s);
}

const kite__transport kite__transport_tcp_v2 = {
    .name = "tcp",
    .kind = KITE_TRANSPORT_TCP,
    .sendv = tcp2_sendv,
    .flush = kite__tconn_noflush,
    .next_due = kite__tconn_next_due,
    .on_timer = kite__tconn_on_timer,
    .resume = tcp2_resume,
    .drain = kite__tconn_drain,
    .queued = kite__tconn_queued,
    .unacked = kite__tconn_unacked,
    .notify_close = tcp2_notify_close,
    .teardown = tcp2_teardown,
    .rtt = kite__tconn_rtt,
};
