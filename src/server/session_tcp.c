/*
 * TCP sessions on their shard (PROTOCOL.md section 5): accept, the OPEN
 * preface, frames cut in place out of the shard's read buffer, direct
 * writes that wait for EPOLLOUT only while the kernel's buffer is full,
 * and the session's one timer (handshake, idle, output stalled).
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

#define ACCEPTS_PER_WAKEUP 64
/* A listener that cannot accept pauses this long, doubling while it still
 * cannot, up to the bound: a spinning shard costs a core, a paused one a
 * few system calls a second, and a legitimate client waits at most the
 * bound once descriptors are free again. */
#define ACCEPT_BACKOFF_MIN_MS 100
#define ACCEPT_BACKOFF_MAX_MS 1000
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
static int conn_write(kite__shard *sh, kite__tconn *c,
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
    conn_write(sh, c, &v, 1); /* a failure shows at the next read */
}

/* REJECT with a zero nonce (section 5), then the connection lingers. */
static void refuse(kite__shard *sh, kite__tconn *c, uint8_t reason) {
  kite__ctrl k = {.type = KITE__CTRL_REJECT, .reason = reason};
  send_ctrl(sh, c, &k);
}

static void adopt(kite__shard *sh, int fd, const kite__addr *peer) {
  kite_server *srv = sh->srv;
  kite__tconn *c = calloc(1, sizeof(*c));
  if (!c) {
    close(fd);
    return;
  }
  c->fd = fd;
  kite__tcp_out_init(&c->out, srv->cfg.tcp_send_max);
  kite__frame_reader_init(&c->reader, srv->cfg.max_frame);
  kite__timer_init(&c->linger_timer);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    kite__tconn_free(c);
    return;
  }
  c->events = EPOLLIN;
  if (sh->stop_seen) {
    KITE__STAT_INC(sh, reject_shutdown);
    refuse(sh, c, KITE__REJECT_SHUTDOWN);
    kite__tconn_linger(sh, c);
    return;
  }
  uint32_t n = atomic_fetch_add_explicit(&srv->sessions, 1, memory_order_relaxed);
  const char *no_worker = NULL;
  kite__session *s =
      n < srv->cfg.max_sessions ? kite__session_claim(sh, &no_worker) : NULL;
  if (!s) {
    atomic_fetch_sub_explicit(&srv->sessions, 1, memory_order_relaxed);
    if (no_worker)
      KITE__STAT_INC(sh, reject_no_worker);
    else
      KITE__STAT_INC(sh, reject_full);
    kite__handshake_log_refused(sh, "tcp ", peer, no_worker ? no_worker : "full");
    refuse(sh, c, KITE__REJECT_FULL);
    kite__tconn_linger(sh, c);
    return;
  }
  c->s = s;
  kite__session_admit(s, &kite__transport_tcp, c, peer);
  memset(&s->local, 0, sizeof(s->local));
  s->conv = 0; /* no UDP segment or CLOSE ever matches it: see dispatch */
  kite__session_schedule(s);
}

/* accept() failed and the connection may still be queued: the listener
 * leaves the epoll set (a level-triggered listener would report it again
 * at once) until the shard's loop puts it back. */
static void accept_pause(kite__shard *sh, int err) {
  uint32_t ms = sh->accept_backoff_ms ? 2 * sh->accept_backoff_ms
                                      : ACCEPT_BACKOFF_MIN_MS;
  if (ms > ACCEPT_BACKOFF_MAX_MS)
    ms = ACCEPT_BACKOFF_MAX_MS;
  sh->accept_backoff_ms = ms;
  sh->accept_paused = true;
  sh->accept_resume_ms = sh->now + ms;
  epoll_ctl(sh->epfd, EPOLL_CTL_DEL, sh->tcp_ls.fd, NULL);
  KITE__STAT_INC(sh, tcp_accept_backoffs);
  uint32_t held;
  if (kite__ratelog_allow(&sh->log_nofd, sh->now, &held))
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "shard %u: accept() failed: %s: the TCP listener pauses %u ms "
               "(%u more in the last second)",
               sh->index, strerror(err), ms, held);
}

void kite__tconn_accept_ready(kite__shard *sh) {
  if (sh->accept_paused)
    return; /* an event from before the pause */
  for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
    kite__addr peer;
    int fd = kite__tcp_accept(&sh->tcp_ls, &peer);
    if (fd == KITE_EAGAIN) {
      sh->accept_backoff_ms = 0;
      return;
    }
    if (fd == KITE_EFULL) {
      sh->accept_backoff_ms = 0;
      KITE__STAT_INC(sh, tcp_refused_nofd);
      uint32_t held;
      char more[48];
      if (kite__ratelog_allow(&sh->log_nofd, sh->now, &held))
        kite__logf(&sh->srv->log, KITE_LOG_WARN,
                   "shard %u: out of descriptors: a TCP connection was "
                   "refused%s", sh->index,
                   kite__ratelog_tail(more, sizeof(more), held));
      continue;
    }
    if (fd < 0) {
      accept_pause(sh, errno);
      return;
    }
    sh->accept_backoff_ms = 0;
    KITE__STAT_INC(sh, tcp_accepted);
    adopt(sh, fd, &peer);
  }
}

int kite__tconn_accept_timeout_ms(const kite__shard *sh) {
  if (!sh->accept_paused)
    return -1;
  int32_t left = kite__ms_diff(sh->accept_resume_ms, sh->now);
  return left > 0 ? (int)left : 0;
}

void kite__tconn_accept_advance(kite__shard *sh) {
  if (!sh->accept_paused || !kite__ms_reached(sh->now, sh->accept_resume_ms))
    return;
  sh->accept_paused = false;
  if (sh->tcp_ls.fd < 0)
    return; /* closed by a stop meanwhile */
  struct epoll_event el = {.events = EPOLLIN, .data.u64 = KITE__EV_LISTEN};
  if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->tcp_ls.fd, &el) < 0)
    accept_pause(sh, errno); /* no memory for it: try again later */
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

static int on_frame(void *user, const kite__frame_hdr *h, const uint8_t *body) {
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
static void feed(kite__session *s, const uint8_t *p, size_t n) {
  kite__tconn *c = conn_of(s);
  int why = 0;
  ptrdiff_t used = kite__frame_reader_feed(&c->reader, p, n, on_frame, s, &why);
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

/* The OPEN preface: OPENED back and the session opens, or it goes. Returns
 * the bytes of |p| it took. */
static size_t take_open(kite__session *s, const uint8_t *p, size_t n) {
  kite__shard *sh = s->shard;
  kite__tconn *c = conn_of(s);
  size_t k = KITE__CTRL_HDR - c->open_have;
  if (k > n)
    k = n;
  memcpy(c->open_buf + c->open_have, p, k);
  c->open_have += (uint8_t)k;
  if (c->open_have < KITE__CTRL_HDR)
    return k;
  kite__ctrl ctl;
  int rc = kite__ctrl_decode(c->open_buf, KITE__CTRL_HDR, &ctl);
  if (rc == KITE__CTRL_EVERSION) {
    KITE__STAT_INC(sh, reject_version);
    kite__handshake_log_refused(sh, "tcp ", &s->peer, "protocol version");
    refuse(sh, c, KITE__REJECT_VERSION);
    s->close_pending = KITE_CLOSE_PROTOCOL; /* silently: never opened */
    return n;
  }
  if (rc < 0 || ctl.type != KITE__CTRL_OPEN) {
    KITE__STAT_INC(sh, tcp_bad_open);
    kite__handshake_log_refused(sh, "tcp ", &s->peer, "no OPEN preface");
    s->close_pending = KITE_CLOSE_PROTOCOL;
    return n;
  }
  kite__ctrl opened = {.type = KITE__CTRL_OPENED,
                       .idle_timeout_ms = sh->srv->cfg.idle_timeout_ms,
                       .max_frame = sh->srv->cfg.max_frame};
  send_ctrl(sh, c, &opened);
  kite__session_heard(s, sh->now);
  kite__session_open(s);
  return k;
}

static void take(kite__session *s, const uint8_t *p, size_t n) {
  if (s->state == KITE__S_HALF_OPEN) {
    size_t used = take_open(s, p, n);
    p += used;
    n -= used;
    if (s->state != KITE__S_OPEN || s->close_pending != KITE__NO_CLOSE)
      return;
  }
  if (n)
    feed(s, p, n);
}

static bool reading(const kite__session *s) {
  return kite__session_connected(s) && !s->blocked && s->close_pending == KITE__NO_CLOSE &&
         (s->state == KITE__S_HALF_OPEN || s->state == KITE__S_OPEN);
}

static void conn_read(kite__shard *sh, kite__session *s) {
  for (int i = 0; i < READS_PER_WAKEUP && reading(s); i++) {
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
                                         ? s->peer_reason : KITE_CLOSE_NORMAL);
      return;
    }
    KITE__STAT_ADD(sh, tcp_bytes_in, (uint64_t)n);
    take(s, sh->tcp_rx, (size_t)n);
    if (n < KITE__TCP_RX_BYTES)
      return;
  }
}

static void conn_flush(kite__shard *sh, kite__session *s) {
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

void kite__tconn_ready(kite__shard *sh, kite__tconn *c, uint32_t events) {
  kite__session *s = c->s;
  if (!s) {
    kite__tconn_linger_ready(sh, c, events);
    return;
  }
  if (events & EPOLLOUT)
    conn_flush(sh, s);
  if (s->link == c && (c->events & EPOLLIN) &&
      (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    conn_read(sh, s);
  else if (s->link == c && (events & (EPOLLHUP | EPOLLERR)))
    kite__session_close(s, KITE_CLOSE_DEAD_LINK); /* paused, and broken */
  kite__session_publish_rtt(s, sh->now);
  kite__session_settle(s);
}

static int tcp_sendv(kite__session *s, struct iovec *iov, int n) {
  kite__shard *sh = s->shard;
  kite__tconn *c = conn_of(s);
  bool was_pending = kite__tcp_out_pending(&c->out) != 0;
  int rc = conn_write(sh, c, iov, n);
  if (rc == KITE_EFULL) {
    KITE__STAT_INC(sh, tcp_send_full);
    return KITE_EFULL;
  }
  if (rc < 0) {
    /* The stream is cut (reset, or no memory for the rest): the session
     * ends at the next safe point, and this frame with it. */
    if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = KITE_CLOSE_DEAD_LINK;
    kite__session_mark_dirty(s);
    return 0;
  }
  if (!was_pending && kite__tcp_out_pending(&c->out))
    kite__session_schedule(s); /* the stall deadline starts */
  kite__session_publish_queue(s);
  return 0;
}

static bool tcp_next_due(kite__session *s, uint32_t now_ms, uint32_t *due_ms) {
  (void)now_ms;
  kite__tconn *c = conn_of(s);
  if (!kite__tcp_out_pending(&c->out))
    return false;
  *due_ms = c->out.progress_ms + s->shard->srv->cfg.tcp_stall_ms;
  return true;
}

static void tcp_on_timer(kite__session *s, uint32_t now_ms) {
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
    feed(s, held, len); /* may block again: it then holds its own copy */
  free(held);
  if (reading(s))
    kite__tconn_arm(s->shard, c, c->events | EPOLLIN);
}

/* Frames held back by backpressure, read and dropped (counted). What the
 * kernel still holds is the lingering close's to discard. */
static void tcp_drain(kite__session *s) {
  kite__tconn *c = conn_of(s);
  uint8_t *held = c->held;
  uint32_t len = c->held_len;
  c->held = NULL;
  c->held_len = 0;
  if (len)
    feed(s, held, len);
  free(held);
}

static void tcp_flush(kite__session *s) { (void)s; } /* writes are direct */

static uint32_t tcp_queued(const kite__session *s) {
  /* in the unit reservations count: segments */
  return kite__frame_segs(s->shard->srv, kite__tcp_out_pending(&conn_of(s)->out));
}

/* Queued output is the lingering close's to write: nothing to wait for. */
static uint32_t tcp_unacked(const kite__session *s) {
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
  conn_write(s->shard, c, &v, 1);
}

static void tcp_teardown(kite__session *s) {
  kite__tconn *c = conn_of(s);
  c->s = NULL;
  kite__frame_reader_free(&c->reader);
  free(c->held);
  c->held = NULL;
  c->held_len = 0;
  kite__tconn_linger(s->shard, c);
}

static void tcp_rtt(const kite__session *s, kite__rtt *out) {
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
    .flush = tcp_flush,
    .next_due = tcp_next_due,
    .on_timer = tcp_on_timer,
    .resume = tcp_resume,
    .drain = tcp_drain,
    .queued = tcp_queued,
    .unacked = tcp_unacked,
    .notify_close = tcp_notify_close,
    .teardown = tcp_teardown,
    .rtt = tcp_rtt,
};
