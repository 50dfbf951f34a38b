/*
 * WebSocket sessions on the TCP port (issue 17, docs/WEBSOCKET.md). A
 * connection whose first byte is 'G' comes here from the pre-session phase
 * (tcp_pre.c) and stays on the pre-session list, under the same deadline
 * (handshake_timeout_ms) and bound, while
 *   1. its request head comes (proto/http_req.h, at most http_head_max):
 *      a refusal is answered (4xx, 505) and the connection lingers; a
 *      plain GET goes to the static route (http_static.c); an upgrade
 *      whose Origin the allow-list takes (ws_origins) gets its 101;
 *   2. its OPEN comes, in binary messages (net/ws.h): only then is a
 *      session slot claimed, and OPENED goes back in a message.
 * From then on the session is an ordinary kite session on
 * kite__transport_ws: each binary message carries bytes of the stream a
 * TCP session carries, cut anywhere, and kite__frame_reader cuts frames
 * from the payload pieces. Output: one message per frame, written straight
 * to the socket as TCP's is (kite__tcp_out, bounded by tcp_send_max).
 * Backpressure as on TCP: the frame the mailbox refused is held, and so is
 * the input the WebSocket did not take; EPOLLIN is off until resume.
 */
#include "server/server_internal.h"

#include "net/ws.h"
#include "proto/http_req.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>


struct kite__wsconn {
  kite__shard *sh;
  bool upgraded;
  kite__ws ws;        /* after the 101 */
  kite__ws_stats wst; /* the connection's own (the shard's thread) */
  uint8_t *rest;      /* input the WebSocket did not take: backpressure */
  uint32_t rest_len;
  kite__http_req req; /* before the 101: the head so far */
};

static kite__wsconn *wsc_of(const kite__session *s) {
  return ((kite__tconn *)s->link)->wsc;
}

void kite__wsconn_free(kite__wsconn *w) {
  if (w->upgraded)
    kite__ws_free(&w->ws);
  free(w->rest);
  free(w);
}

static int ws_write(void *user, const struct iovec *iov, int n) {
  kite__tconn *c = user;
  return kite__tconn_write(c->wsc->sh, c, iov, n);
}

/* One message with one control packet (OPENED, REJECT). */
static void send_ctrl(kite__tconn *c, const kite__ctrl *k) {
  uint8_t buf[KITE__CTRL_MAX];
  int n = kite__ctrl_encode(buf, sizeof(buf), k);
  struct iovec v = {buf, (size_t)n};
  if (n > 0)
    kite__ws_send(&c->wsc->ws, &v, 1);
}

/* The WebSocket ends, with |code|, and the connection lingers. */
static void ws_refuse(kite__shard *sh, kite__tconn *c, uint16_t code) {
  kite__ws_close(&c->wsc->ws, code, NULL, 0);
  kite__tconn_linger(sh, c);
}

static void count_refusal(kite__shard *sh, const kite__ws *ws) {
  switch (ws->close_sent) {
  case KITE__WS_UNSUPPORTED: KITE__STAT_INC(sh, ws_refused_text); break;
  case KITE__WS_TOO_BIG: KITE__STAT_INC(sh, ws_refused_too_big); break;
  default: KITE__STAT_INC(sh, ws_refused_proto); break;
  }
}

/* Answers an HTTP refusal (or the static route's 404) and lingers. */
void kite__wsconn_answer(kite__shard *sh, kite__tconn *c, int status) {
  char head[256];
  int n = kite__http_resp_error(head, sizeof(head), status);
  struct iovec v = {head, (size_t)n};
  if (n > 0)
    kite__tconn_write(sh, c, &v, 1);
  kite__tconn_linger(sh, c);
}

static bool origin_allowed(const kite_server *srv, const kite__http_req *r) {
  const char *list = srv->cfg.ws_origins;
  if (!list)
    return true;
  size_t len = strlen(r->origin);
  if (!r->has_origin || !len)
    return false;
  for (const char *p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == len && memcmp(p, r->origin, n) == 0)
      return true;
    if (!end)
      break;
    p = end + 1;
  }
  return false;
}

/* ---- the session's input ---- */

static bool reading(const kite__session *s) {
  if (!kite__session_connected(s))
    return false; /* torn down: no link to look at */
  if (((const kite__tconn *)s->link)->v2)
    return kite__tv2_reading(s); /* half-open until its first record */
  return !s->blocked && s->close_pending == KITE__NO_CLOSE &&
         s->state == KITE__S_OPEN;
}

/* Payload bytes of the session's stream: frames for the logic layer. */
static ptrdiff_t session_bytes(kite__session *s, const uint8_t *p, size_t n) {
  if (!reading(s))
    return 0; /* held by the WebSocket until resume */
  kite__tconn *c = s->link;
  if (c->v2) { /* records (tcp_v2.h); a refused one stops the feed */
    size_t used = kite__tv2_input(s, p, n);
    return c->v2->mute ? KITE_EINVAL : (ptrdiff_t)used;
  }
  int why = 0;
  ptrdiff_t used = kite__frame_reader_feed(&c->reader, p, n,
                                           kite__tconn_on_frame, s, &why);
  if (used < 0) {
    if (used == KITE_EPROTO)
      kite__session_protocol_error(s, why);
    else if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = KITE_CLOSE_SLOW_PEER;
    return KITE_EINVAL; /* the session closes: stop */
  }
  return used;
}

static void session_ready(kite__shard *sh, kite__tconn *c, uint32_t events);

/* A whole OPEN in the stream: the session, or a refusal. Returns the
 * bytes of |p| that followed it and were taken, or a negative code. */
static ptrdiff_t open_session(kite__shard *sh, kite__tconn *c,
                              const uint8_t *p, size_t n) {
  kite__tconn_pre_leave(sh, c);
  kite__session *s = kite__tconn_claim(sh, c, &kite__transport_ws);
  if (!s) {
    kite__ctrl k = {.type = KITE__CTRL_REJECT, .reason = KITE__REJECT_FULL};
    send_ctrl(c, &k);
    c->phase = KITE__TC_LINGER; /* off the list: the caller lingers it */
    return KITE_EINVAL;
  }
  c->on_ready = session_ready;
  kite__ctrl opened = {.type = KITE__CTRL_OPENED,
                       .idle_timeout_ms = sh->srv->cfg.idle_timeout_ms,
                       .max_frame = sh->srv->cfg.max_frame};
  send_ctrl(c, &opened);
  kite__session_open(s);
  kite__session_schedule(s);
  return n ? session_bytes(s, p, n) : 0;
}

/* A whole OPEN v2 (tcp_v2.h): the session and OPENED in a message, or a
 * REJECT in one, or nothing; then the WebSocket's close. */
static ptrdiff_t open_v2(kite__shard *sh, kite__tconn *c, const uint8_t *p,
                         size_t n) {
  kite__tconn_pre_leave(sh, c);
  uint8_t reply[KITE__V2CTL_OPENED];
  size_t len;
  kite__session *s = kite__tv2_open(sh, c, &kite__transport_ws, reply, &len);
  struct iovec v = {reply, len};
  if (len)
    kite__ws_send(&c->wsc->ws, &v, 1);
  if (!s) {
    c->phase = KITE__TC_LINGER; /* off the list: the caller lingers it */
    return KITE_EINVAL;
  }
  c->on_ready = session_ready;
  kite__session_schedule(s);
  return n ? session_bytes(s, p, n) : 0;
}

/* OPEN v2's bytes after its header. */
static ptrdiff_t take_v2(kite__tconn *c, const uint8_t *p, size_t n) {
  size_t k = kite__tv2_collect(c, p, n);
  if (c->v2->open_have < KITE__V2_OPEN_BYTES)
    return (ptrdiff_t)n;
  ptrdiff_t more = open_v2(c->wsc->sh, c, p + k, n - k);
  return more < 0 ? more : (ptrdiff_t)k + more;
}

/* kite__ws_feed()'s callback: the OPEN's bytes first, then frames. */
static ptrdiff_t on_bytes(void *user, const uint8_t *p, size_t n) {
  kite__tconn *c = user;
  if (c->phase == KITE__TC_SESSION)
    return session_bytes(c->s, p, n);
  if (c->v2)
    return take_v2(c, p, n);
  size_t k = KITE__CTRL_HDR - c->open_have;
  if (k > n)
    k = n;
  memcpy(c->open_buf + c->open_have, p, k);
  c->open_have += (uint8_t)k;
  if (c->open_have < KITE__CTRL_HDR)
    return (ptrdiff_t)n;
  kite__shard *sh = c->wsc->sh;
  uint8_t version = 0;
  switch (kite__tv2_first(sh, c, c->open_buf, &version)) {
  case KITE__TV2_V1: {
    ptrdiff_t more = open_session(sh, c, p + k, n - k);
    return more < 0 ? more : (ptrdiff_t)k + more;
  }
  case KITE__TV2_V2: {
    if (!kite__tv2_begin(c, c->open_buf))
      return KITE_ENOMEM;
    ptrdiff_t more = take_v2(c, p + k, n - k);
    return more < 0 ? more : (ptrdiff_t)k + more;
  }
  case KITE__TV2_REJECT: {
    kite__ctrl r = {.type = KITE__CTRL_REJECT, .version = version,
                    .reason = KITE__REJECT_VERSION};
    send_ctrl(c, &r);
    return KITE_EINVAL;
  }
  default:
    return KITE_EINVAL;
  }
}

/* Feeds |p| to the WebSocket; keeps what it did not take. Returns its
 * result (kite__ws_feed()'s). */
static ptrdiff_t ws_input(kite__tconn *c, const uint8_t *p, size_t n) {
  kite__wsconn *w = c->wsc;
  ptrdiff_t used = kite__ws_feed(&w->ws, n ? p : NULL, n, on_bytes, c);
  if (used >= 0 && (size_t)used < n) {
    size_t rest = n - (size_t)used;
    uint8_t *b = malloc(rest); /* only under backpressure */
    if (!b)
      return KITE_ENOMEM;
    memcpy(b, p + used, rest);
    free(w->rest);
    w->rest = b;
    w->rest_len = (uint32_t)rest;
  }
  return used;
}

/* What a feed's result means for a session. */
static void session_after(kite__shard *sh, kite__session *s, ptrdiff_t rc) {
  kite__tconn *c = s->link;
  if (rc == KITE_ECLOSED) { /* their close: the reason their notice gave */
    kite__session_close_by_peer(
        s, s->peer_reason != KITE__NO_CLOSE ? s->peer_reason
           : c->v2 ? KITE_CLOSE_DEAD_LINK /* v2: no CLOSE frame, reason 5 */
                   : KITE_CLOSE_NORMAL);
  } else if (rc == KITE_EPROTO) {
    count_refusal(sh, &c->wsc->ws);
    kite__session_close(s, KITE_CLOSE_PROTOCOL);
  } else if (rc == KITE_ENOMEM) {
    kite__session_close(s, KITE_CLOSE_SLOW_PEER);
  } else if (rc < 0 && s->close_pending == KITE__NO_CLOSE &&
             kite__session_connected(s)) {
    kite__session_close(s, KITE_CLOSE_DEAD_LINK); /* the output broke */
  }
  if (kite__session_connected(s) && s->blocked)
    kite__tconn_arm(sh, c, c->events & ~(uint32_t)EPOLLIN);
}

static void ws_take(kite__session *s, const uint8_t *p, size_t n) {
  session_after(s->shard, s, ws_input(s->link, p, n));
}

/* An end of stream without a WebSocket close: dead link, as on TCP v2
 * (v1 sessions read their close notice first, when one came). */
static const kite__tconn_input ws_in = {reading, ws_take, KITE_CLOSE_DEAD_LINK};

static void session_ready(kite__shard *sh, kite__tconn *c, uint32_t events) {
  kite__tconn_session_events(sh, c, events, &ws_in);
}

/* ---- before the session: the head, the 101, the OPEN ---- */

static void pre_ready(kite__shard *sh, kite__tconn *c, uint32_t events);

/* A feed's result before the OPEN was whole (or the OPEN refused). */
static bool pre_after(kite__shard *sh, kite__tconn *c, ptrdiff_t rc) {
  if (c->phase == KITE__TC_SESSION) {
    session_after(sh, c->s, rc);
    kite__session_publish_rtt(c->s, sh->now);
    kite__session_settle(c->s);
    return false;
  }
  if (rc >= 0)
    return true; /* the OPEN is not whole yet */
  if (c->phase == KITE__TC_PRE)
    kite__tconn_pre_leave(sh, c);
  if (rc == KITE_EPROTO)
    count_refusal(sh, &c->wsc->ws);
  if (rc == KITE_ECLOSED || rc == KITE_EPROTO)
    kite__tconn_linger(sh, c); /* the closing handshake is done or sent */
  else /* a bad OPEN, a refused one, or the output broke */
    ws_refuse(sh, c, rc == KITE_EINVAL ? KITE__WS_PROTOCOL : KITE__WS_INTERNAL);
  return false;
}

/* The end of the head: its verdict. Returns false once |c| left PRE. */
static bool head_done(kite__shard *sh, kite__tconn *c) {
  kite__wsconn *w = c->wsc;
  int status = 400;
  int v = kite__http_req_verdict(&w->req, &status);
  if (v == KITE__HTTP_REFUSE) {
    KITE__STAT_INC(sh, http_refused);
    kite__tconn_pre_leave(sh, c);
    kite__wsconn_answer(sh, c, status);
    return false;
  }
  if (v == KITE__HTTP_GET) {
    kite__tconn_pre_leave(sh, c);
    kite__http_static(sh, c, &w->req);
    return false;
  }
  if (!origin_allowed(sh->srv, &w->req)) {
    KITE__STAT_INC(sh, ws_refused_origin);
    kite__tconn_pre_leave(sh, c);
    kite__wsconn_answer(sh, c, 403);
    return false;
  }
  char head[256];
  int n = kite__http_resp_101(head, sizeof(head), w->req.key);
  struct iovec io = {head, (size_t)n};
  if (n <= 0 || kite__tconn_write(sh, c, &io, 1) < 0 ||
      kite__ws_init(&w->ws, sh->srv->cfg.ws_max_message, ws_write, c,
                    &w->wst) < 0) {
    kite__tconn_pre_drop(sh, c);
    return false;
  }
  w->upgraded = true;
  KITE__STAT_INC(sh, ws_upgrades);
  return true;
}

static bool pre_take(kite__shard *sh, kite__tconn *c, const uint8_t *p,
                     size_t n) {
  kite__wsconn *w = c->wsc;
  if (!w->upgraded) {
    size_t used = 0;
    int rc = kite__http_req_feed(&w->req, p, n, &used);
    if (rc == KITE_EAGAIN)
      return true;
    if (rc < 0) {
      KITE__STAT_INC(sh, http_refused);
      kite__tconn_pre_leave(sh, c);
      kite__wsconn_answer(sh, c, kite__http_why_status(w->req.why));
      return false;
    }
    if (!head_done(sh, c))
      return false;
    p += used;
    n -= used;
    if (!n)
      return true;
  }
  return pre_after(sh, c, ws_input(c, p, n));
}

static void pre_ready(kite__shard *sh, kite__tconn *c, uint32_t events) {
  if (events & EPOLLERR) {
    kite__tconn_pre_drop(sh, c);
    return;
  }
  if ((events & EPOLLOUT) && c->wsc->upgraded) {
    bool pollout = true;
    if (kite__tcp_out_flush(&c->out, c->fd, sh->now, &pollout) < 0) {
      kite__tconn_pre_drop(sh, c);
      return;
    }
    if (!pollout)
      kite__tconn_arm(sh, c, c->events & ~(uint32_t)EPOLLOUT);
  }
  for (;;) {
    ssize_t n = recv(c->fd, sh->tcp_rx, KITE__TCP_RX_BYTES, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      kite__tconn_pre_drop(sh, c);
      return;
    }
    KITE__STAT_ADD(sh, tcp_bytes_in, (uint64_t)n);
    if (!pre_take(sh, c, sh->tcp_rx, (size_t)n))
      return;
  }
}

bool kite__wsconn_start(kite__shard *sh, kite__tconn *c, const uint8_t *p,
                        size_t n) {
  kite__wsconn *w = calloc(1, sizeof(*w));
  if (!w) {
    kite__tconn_pre_drop(sh, c);
    return false;
  }
  w->sh = sh;
  kite__http_limits lim;
  kite__http_limits_init(&lim);
  lim.head_max = sh->srv->cfg.http_head_max;
  if (lim.line_max > lim.head_max)
    lim.line_max = lim.head_max;
  kite__http_req_init(&w->req, &lim);
  c->wsc = w;
  c->on_ready = pre_ready;
  return pre_take(sh, c, p, n);
}

/* ---- the transport ---- */

/* A v2 session's frame sealed as records (tcp_v2.h), in one message. */
static int ws_send_v2(kite__session *s, struct iovec *iov, int n) {
  kite__tconn *c = s->link;
  size_t room = c->out.max - kite__tcp_out_pending(&c->out);
  const uint8_t *bytes;
  ptrdiff_t k = kite__tv2_seal(s->shard, c->v2, iov, n,
                               room > 14 ? room - 14 : 0, &bytes); /* header */
  if (k == KITE__V2_ELIMIT && !c->v2->mute) {
    KITE__STAT_INC(s->shard, v2_tcp_key_exhausted);
    if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = KITE__CLOSE_KEY_EXHAUSTED;
    kite__session_mark_dirty(s);
    return 0;
  }
  if (k < 0)
    return (int)k;
  struct iovec v = {(void *)(uintptr_t)bytes, (size_t)k};
  return kite__ws_send(&c->wsc->ws, &v, 1);
}

static int ws_sendv(kite__session *s, struct iovec *iov, int n) {
  kite__tconn *c = s->link;
  bool was_pending = kite__tcp_out_pending(&c->out) != 0;
  int rc = c->v2 ? ws_send_v2(s, iov, n) : kite__ws_send(&c->wsc->ws, iov, n);
  /* An error other than full: closed or broken. */
  return kite__tconn_sent(s, c, rc, was_pending, KITE_CLOSE_DEAD_LINK);
}

/* The frame the mailbox refused, then the input the WebSocket held. */
static void ws_resume(kite__session *s) {
  kite__tconn *c = s->link;
  kite__wsconn *w = c->wsc;
  uint8_t *held = c->held;
  uint32_t len = c->held_len;
  c->held = NULL;
  c->held_len = 0;
  int why = 0;
  if (len && kite__frame_reader_feed(&c->reader, held, len, c->on_frame, s,
                                     &why) ==
                 KITE_EPROTO)
    kite__session_protocol_error(s, why);
  free(held);
  if (!reading(s))
    return;
  uint8_t *rest = w->rest;
  uint32_t rest_len = w->rest_len;
  w->rest = NULL;
  w->rest_len = 0;
  session_after(s->shard, s, ws_input(c, rest, rest_len));
  free(rest);
  if (reading(s))
    kite__tconn_arm(s->shard, c, c->events | EPOLLIN);
}

static void ws_drain(kite__session *s) {
  kite__tconn *c = s->link;
  uint8_t *held = c->held;
  uint32_t len = c->held_len;
  c->held = NULL;
  c->held_len = 0;
  int why = 0;
  if (len)
    kite__frame_reader_feed(&c->reader, held, len, c->on_frame, s, &why);
  free(held);
}

static uint16_t close_code(uint8_t reason) {
  switch (reason) {
  case KITE_CLOSE_SHUTDOWN: return KITE__WS_GOING_AWAY;
  case KITE_CLOSE_PROTOCOL: return KITE__WS_PROTOCOL;
  default: return KITE__WS_NORMAL;
  }
}

/* kite's close notice in a message, then the WebSocket's close. */
static void ws_notify_close(kite__session *s, uint8_t reason) {
  kite__tconn *c = s->link;
  if (c->v2) { /* the CLOSE frame, sealed: the last record */
    if (s->state == KITE__S_HALF_OPEN || c->v2->mute)
      return; /* closed without a word */
    const uint8_t *b = NULL;
    size_t k = kite__tv2_seal_close(s->shard, c->v2, reason, &b);
    struct iovec v = {(void *)(uintptr_t)b, k};
    if (k)
      kite__ws_send(&c->wsc->ws, &v, 1);
    kite__ws_close(&c->wsc->ws, close_code(reason), NULL, 0);
    return;
  }
  uint8_t frame[KITE__FRAME_HDR + 1];
  frame[KITE__FRAME_HDR] = reason;
  kite__frame_header(frame, KITE__MSG_CLOSE_NOTICE, 0, frame + KITE__FRAME_HDR,
                     1, true);
  struct iovec v = {frame, sizeof(frame)};
  kite__ws *ws = &wsc_of(s)->ws;
  kite__ws_send(ws, &v, 1);
  kite__ws_close(ws, close_code(reason), NULL, 0);
}

static void ws_teardown(kite__session *s) {
  kite__tconn *c = s->link;
  if (c->v2)
    kite__tv2_unpublish(s); /* its keys and user_data go with it */
  kite__frame_reader_free(&c->reader);
  free(c->held);
  c->held = NULL;
  c->held_len = 0;
  kite__tconn_linger(s->shard, c);
}

const kite__transport kite__transport_ws = {
    .name = "ws",
    .kind = KITE_TRANSPORT_WS,
    .sendv = ws_sendv,
    .flush = kite__tconn_noflush,
    .next_due = kite__tconn_next_due,
    .on_timer = kite__tconn_on_timer,
    .resume = ws_resume,
    .drain = ws_drain,
    .queued = kite__tconn_queued,
    .unacked = kite__tconn_unacked,
    .notify_close = ws_notify_close,
    .teardown = ws_teardown,
    .rtt = kite__tconn_rtt,
};
