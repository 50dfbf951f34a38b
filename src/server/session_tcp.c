/*
 * TCP sessions on their shard (PROTOCOL.md section 5), from the OPEN the
 * pre-session phase (tcp_pre.c) read: frames cut in place out of the shard's read buffer, direct
 * writes that wait for EPOLLOUT only while the kernel's buffer is full,
 * and the session's one timer (idle, output stalled).
 *
 * A session's bytes are read only while its handlers keep up: when its
 * mailbox is full the frame that did not fit, and whatever followed it in
 * the same read, are held, EPOLLIN is dropped, and the kernel's receive
 * buffer and the peer's window do the waiting (backpressure, as KCP's
 * window does on UDP).
 */
#include "server/server_internal.h"

#include "base/time.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#define READS_PER_WAKEUP 4 /* 4 x 64 KiB per connection, then the others */

static kite__tconn *conn_of(const kite__session *s) { return s->link; }

void kite__tconn_arm(kite__shard *sh, kite__tconn *c, uint32_t events) {
  if (c->events == events)
    return;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(sh->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
    c->events = events;
}

static void account_out(kite__shard *sh, kite__tconn *c, uint64_t before) {
  KITE__STAT_ADD(sh, tcp_bytes_out, c->out.bytes_out - before);
}

/* Writes (or queues) one unit and arms EPOLLOUT when bytes wait. Returns
 * kite__tcp_out_send()'s code. */
int kite__tconn_write(kite__shard *sh, kite__tconn *c,
                      const struct iovec *iov, int n) {
  bool pollout = false;
  uint64_t before = c->out.bytes_out;
  int rc = kite__tcp_out_send(&c->out, c->fd, iov, n, sh->now, &pollout);
  account_out(sh, c, before);
  if (rc == 0 && pollout)
    kite__tconn_arm(sh, c, c->events | EPOLLOUT);
  return rc;
}

/* The bytes of one control packet, queued like any output. */
static void send_ctrl(kite__shard *sh, kite__tconn *c, const kite__ctrl *k) {
  uint8_t buf[KITE__CTRL_MAX];
  int n = kite__ctrl_encode(buf, sizeof(buf), k);
  struct iovec v = {buf, (size_t)n};
  if (n > 0)
    kite__tconn_write(sh, c, &v, 1); /* a failure shows at the next read */
}

void kite__tconn_refuse_ver(kite__shard *sh, kite__tconn *c, uint8_t reason,
                            uint8_t version) {
  kite__ctrl k = {.type = KITE__CTRL_REJECT, .version = version,
                  .reason = reason};
  send_ctrl(sh, c, &k);
  kite__tconn_linger(sh, c);
}

void kite__tconn_refuse(kite__shard *sh, kite__tconn *c, uint8_t reason) {
  kite__tconn_refuse_ver(sh, c, reason, KITE__PROTO_VERSION);
}

/* Keeps the frame the mailbox refused, re-encoded, for the next feed. */
static int hold_frame(kite__tconn *c, const kite__frame_hdr *h,
                      const uint8_t *body) {
  c->held = malloc(KITE__FRAME_HDR + (size_t)h->len);
  if (!c->held)
    return KITE_ENOMEM;
  kite__frame_hdr_encode(c->held, h);
  memcpy(c->held + KITE__FRAME_HDR, body, h->len);
  c->held_len = KITE__FRAME_HDR + h->len;
  return 0;
}

int kite__tconn_on_frame(void *user, const kite__frame_hdr *h,
                         const uint8_t *body) {
  kite__session *s = user;
  kite__session_heard(s, s->shard->now);
  if (!kite__session_deliver(s, h, body)) {
    if (hold_frame(conn_of(s), h, body) < 0 && s->close_pending == KITE__NO_CLOSE)
      s->close_pending = KITE_CLOSE_SLOW_PEER; /* cannot keep its input */
    return 1;
  }
  return s->close_pending != KITE__NO_CLOSE || s->state != KITE__S_OPEN;
}

/* Feeds the stream; on backpressure holds the rest and stops reading. */
void kite__tconn_feed(kite__session *s, const uint8_t *p, size_t n) {
  kite__tconn *c = conn_of(s);
  int why = 0;
  ptrdiff_t used = kite__frame_reader_feed(&c->reader, p, n, c->on_frame, s, &why);
  if (used < 0) {
    if (used == KITE_EPROTO)
      kite__session_protocol_error(s, why);
    else if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = KITE_CLOSE_SLOW_PEER;
    return;
  }
  if (!s->blocked || !kite__session_connected(s))
    return;
  size_t rest = n - (size_t)used;
  if (rest) {
    uint8_t *b = realloc(c->held, c->held_len + rest);
    if (!b) {
      if (s->close_pending == KITE__NO_CLOSE)
        s->close_pending = KITE_CLOSE_SLOW_PEER;
      return;
    }
    memcpy(b + c->held_len, p + used, rest);
    c->held = b;
    c->held_len += (uint32_t)rest;
  }
  kite__tconn_arm(s->shard, c, c->events & ~(uint32_t)EPOLLIN);
}

static void take(kite__session *s, const uint8_t *p, size_t n) {
  if (n && s->state == KITE__S_OPEN && s->close_pending == KITE__NO_CLOSE)
    kite__tconn_feed(s, p, n);
}

kite__session *kite__tconn_claim(kite__shard *sh, kite__tconn *c,
                                 const kite__transport *tr) {
  kite_server *srv = sh->srv;
  uint32_t k = atomic_fetch_add_explicit(&srv->sessions, 1, memory_order_relaxed);
  const char *no_worker = NULL;
  kite__session *s =
      k < srv->cfg.max_sessions ? kite__session_claim(sh, &no_worker) : NULL;
  if (!s) {
    atomic_fetch_sub_explicit(&srv->sessions, 1, memory_order_relaxed);
    if (no_worker)
      KITE__STAT_INC(sh, reject_no_worker);
    else
      KITE__STAT_INC(sh, reject_full);
    kite__handshake_log_refused(sh, "tcp ", &c->peer,
                                no_worker ? no_worker : "full");
    return NULL;
  }
  c->phase = KITE__TC_SESSION;
  c->s = s;
  c->on_frame = kite__tconn_on_frame;
  kite__session_admit(s, tr, c, &c->peer);
  memset(&s->local, 0, sizeof(s->local));
  s->conv = 0; /* no UDP segment or CLOSE ever matches it: see dispatch */
  return s;
}

void kite__tconn_open(kite__shard *sh, kite__tconn *c, const uint8_t *rest,
                      size_t n) {
  kite_server *srv = sh->srv;
  kite__session *s = kite__tconn_claim(sh, c, &kite__transport_tcp);
  if (!s) {
    kite__tconn_refuse(sh, c, KITE__REJECT_FULL);
    return;
  }
  c->on_ready = kite__tconn_session_ready;
  kite__ctrl opened = {.type = KITE__CTRL_OPENED,
                       .idle_timeout_ms = srv->cfg.idle_timeout_ms,
                       .max_frame = srv->cfg.max_frame};
  send_ctrl(sh, c, &opened);
  kite__session_open(s);
  take(s, rest, n);
  kite__session_schedule(s);
  kite__session_publish_rtt(s, sh->now);
  kite__session_settle(s);
}

static bool reading(const kite__session *s) {
  return kite__session_connected(s) && !s->blocked &&
         s->close_pending == KITE__NO_CLOSE && s->state == KITE__S_OPEN;
}

/* Up to READS_PER_WAKEUP reads of the session's bytes into |in|. */
static void conn_read(kite__shard *sh, kite__session *s,
                      const kite__tconn_input *in) {
  for (int i = 0; i < READS_PER_WAKEUP && in->reading(s); i++) {
    ssize_t n = recv(conn_of(s)->fd, sh->tcp_rx, KITE__TCP_RX_BYTES, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        kite__session_close(s, KITE_CLOSE_DEAD_LINK); /* reset */
      return;
    }
    if (n == 0) { /* the reason its close notice gave, if one came */
      kite__session_close_by_peer(s, s->peer_reason != KITE__NO_CLOSE
                                         ? s->peer_reason : in->eof_reason);
      return;
    }
    KITE__STAT_ADD(sh, tcp_bytes_in, (uint64_t)n);
    in->take(s, sh->tcp_rx, (size_t)n);
    if (n < KITE__TCP_RX_BYTES)
      return;
  }
}

void kite__tconn_flush(kite__shard *sh, kite__session *s) {
  kite__tconn *c = conn_of(s);
  bool pollout = true;
  uint64_t before = c->out.bytes_out;
  if (kite__tcp_out_flush(&c->out, c->fd, sh->now, &pollout) < 0) {
    kite__session_close(s, KITE_CLOSE_DEAD_LINK);
    return;
  }
  account_out(sh, c, before);
  if (!pollout) {
    kite__tconn_arm(sh, c, c->events & ~(uint32_t)EPOLLOUT);
    kite__session_schedule(s); /* no stall deadline any more */
  }
  kite__session_publish_queue(s);
}

void kite__tconn_session_events(kite__shard *sh, kite__tconn *c,
                                uint32_t events,
                                const kite__tconn_input *in) {
  kite__session *s = c->s;
  if (events & EPOLLOUT)
    kite__tconn_flush(sh, s);
  if (s->link == c && (c->events & EPOLLIN) &&
      (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    conn_read(sh, s, in);
  else if (s->link == c && (events & (EPOLLHUP | EPOLLERR)))
    kite__session_close(s, KITE_CLOSE_DEAD_LINK); /* paused, and broken */
  kite__session_publish_rtt(s, sh->now);
  kite__session_settle(s);
}

/* v1: an end of stream after no close notice is a normal close. */
static const kite__tconn_input tcp_input = {reading, take, KITE_CLOSE_NORMAL};

void kite__tconn_session_ready(kite__shard *sh, kite__tconn *c,
                               uint32_t events) {
  kite__tconn_session_events(sh, c, events, &tcp_input);
}

int kite__tconn_sent(kite__session *s, kite__tconn *c, int rc,
                     bool was_pending, uint8_t why) {
  if (rc == KITE_EFULL) {
    KITE__STAT_INC(s->shard, tcp_send_full);
    return KITE_EFULL;
  }
  if (rc < 0) {
    /* The stream is cut (reset, or no memory for the rest): the session
     * ends at the next safe point, and this frame with it. */
    if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = why;
    kite__session_mark_dirty(s);
    return 0;
  }
  if (!was_pending && kite__tcp_out_pending(&c->out))
    kite__session_schedule(s); /* the stall deadline starts */
  kite__session_publish_queue(s);
  return 0;
}

static int tcp_sendv(kite__session *s, struct iovec *iov, int n) {
  kite__tconn *c = conn_of(s);
  bool was_pending = kite__tcp_out_pending(&c->out) != 0;
  int rc = kite__tconn_write(s->shard, c, iov, n);
  return kite__tconn_sent(s, c, rc, was_pending, KITE_CLOSE_DEAD_LINK);
}

bool kite__tconn_next_due(kite__session *s, uint32_t now_ms, uint32_t *due_ms) {
  (void)now_ms;
  kite__tconn *c = conn_of(s);
  if (!kite__tcp_out_pending(&c->out))
    return false;
  *due_ms = c->out.progress_ms + s->shard->srv->cfg.tcp_stall_ms;
  return true;
}

void kite__tconn_on_timer(kite__session *s, uint32_t now_ms) {
  if (kite__tcp_out_stalled_ms(&conn_of(s)->out, now_ms) >=
      s->shard->srv->cfg.tcp_stall_ms)
    kite__session_close(s, KITE_CLOSE_SLOW_PEER); /* it reads nothing */
}

static void tcp_resume(kite__session *s) {
  kite__tconn *c = conn_of(s);
  uint8_t *held = c->held;
  uint32_t len = c->held_len;
  c->held = NULL;
  c->held_len = 0;
  if (len)
    kite__tconn_feed(s, held, len); /* may block again: it holds its own copy */
  free(held);
  if (reading(s))
    kite__tconn_arm(s->shard, c, c->events | EPOLLIN);
}

/* Frames held back by backpressure, read and dropped (counted). What the
 * kernel still holds is the lingering close's to discard. */
void kite__tconn_drain(kite__session *s) {
  kite__tconn *c = conn_of(s);
  uint8_t *held = c->held;
  uint32_t len = c->held_len;
  c->held = NULL;
  c->held_len = 0;
  if (len)
    kite__tconn_feed(s, held, len);
  free(held);
}

void kite__tconn_noflush(kite__session *s) { (void)s; } /* writes are direct */

uint32_t kite__tconn_queued(const kite__session *s) {
  /* in the unit reservations count: segments */
  return kite__frame_segs(s->shard->srv, kite__tcp_out_pending(&conn_of(s)->out));
}

/* Queued output is the lingering close's to write: nothing to wait for. */
uint32_t kite__tconn_unacked(const kite__session *s) {
  (void)s;
  return 0;
}

/* The close notice (PROTOCOL.md section 5): the reason, then the FIN the
 * lingering close sends once what is queued has been written. */
static void tcp_notify_close(kite__session *s, uint8_t reason) {
  if (s->state == KITE__S_HALF_OPEN)
    return; /* never opened: a refusal said so already, or nothing to say */
  uint8_t frame[KITE__FRAME_HDR + 1];
  frame[KITE__FRAME_HDR] = reason;
  kite__frame_header(frame, KITE__MSG_CLOSE_NOTICE, 0, frame + KITE__FRAME_HDR,
                     1, true);
  struct iovec v = {frame, sizeof(frame)};
  kite__tconn *c = conn_of(s);
  /* Past tcp_send_max the queue takes no more: the peer reads nothing
   * anyway, and hears the FIN (or the linger deadline's reset). */
  kite__tconn_write(s->shard, c, &v, 1);
}

void kite__tconn_teardown(kite__session *s) {
  kite__tconn *c = conn_of(s);
  kite__frame_reader_free(&c->reader);
  free(c->held);
  c->held = NULL;
  c->held_len = 0;
  kite__tconn_linger(s->shard, c);
}

void kite__tconn_rtt(const kite__session *s, kite__rtt *out) {
  struct tcp_info ti;
  socklen_t len = sizeof(ti);
  memset(&ti, 0, sizeof(ti));
  getsockopt(conn_of(s)->fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
  out->srtt_ms = ti.tcpi_rtt / 1000; /* the kernel's figures, in us */
  out->rttvar_ms = ti.tcpi_rttvar / 1000;
  out->rto_ms = ti.tcpi_rto / 1000;
  out->retransmits = ti.tcpi_total_retrans;
}

const kite__transport kite__transport_tcp = {
    .name = "tcp",
    .kind = KITE_TRANSPORT_TCP,
    .sendv = tcp_sendv,
    .flush = kite__tconn_noflush,
    .next_due = kite__tconn_next_due,
    .on_timer = kite__tconn_on_timer,
    .resume = tcp_resume,
    .drain = kite__tconn_drain,
    .queued = kite__tconn_queued,
    .unacked = kite__tconn_unacked,
    .notify_close = tcp_notify_close,
    .teardown = kite__tconn_teardown,
    .rtt = kite__tconn_rtt,
};
