/*
 * A TCP connection's first bytes (issue 15). Accepting claims no session
 * slot: a connection first sits on its shard's pre-session list, where it
 * costs a descriptor and this small struct, never a slot, until its first
 * bytes say what it is. Only a valid OPEN claims a slot (session_tcp.c;
 * an OPEN v2, whose 552 bytes are read here too, once its token opened:
 * tcp_v2.c);
 * a peer that connects and says nothing holds nothing a player needs:
 *  - the list holds at most tcp_preopen_max connections per shard: past
 *    that the oldest is dropped (counted in tcp_preopen_evicted), so a
 *    flood of bare connects cannot keep a prompt client out;
 *  - each gets handshake_timeout_ms to complete its OPEN (halfopen_expired);
 *  - each counts against its source's limits from accept to close
 *    (tcp_source.h): tcp_max_per_addr, tcp_max_per_prefix.
 * Every deadline is accept time + the same timeout, so the list, kept in
 * accept order, is in deadline order too: no timer wheel is needed.
 */
#include "server/server_internal.h"

#include "base/time.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKEUP 64
/* A listener that cannot accept pauses this long, doubling while it still
 * cannot, up to the bound: a spinning shard costs a core, a paused one a
 * few system calls a second, and a legitimate client waits at most the
 * bound once descriptors are free again. */
#define ACCEPT_BACKOFF_MIN_MS 100
#define ACCEPT_BACKOFF_MAX_MS 1000

static void pre_ready(kite__shard *sh, kite__tconn *c, uint32_t events);

static void pre_unlink(kite__shard *sh, kite__tconn *c) {
  if (c->pre_prev)
    c->pre_prev->pre_next = c->pre_next;
  else
    sh->pre_head = c->pre_next;
  if (c->pre_next)
    c->pre_next->pre_prev = c->pre_prev;
  else
    sh->pre_tail = c->pre_prev;
  c->pre_prev = c->pre_next = NULL;
  sh->npre--;
}

static void pre_append(kite__shard *sh, kite__tconn *c) {
  c->pre_prev = sh->pre_tail;
  c->pre_next = NULL;
  if (sh->pre_tail)
    sh->pre_tail->pre_next = c;
  else
    sh->pre_head = c;
  sh->pre_tail = c;
  sh->npre++;
}

/* Off the list and closed: it never had a session, and what it sent was
 * read, so close() sends a FIN. */
static void pre_drop(kite__shard *sh, kite__tconn *c) {
  pre_unlink(sh, c);
  kite__tconn_free(c);
}

void kite__tconn_pre_leave(kite__shard *sh, kite__tconn *c) { pre_unlink(sh, c); }
void kite__tconn_pre_drop(kite__shard *sh, kite__tconn *c) { pre_drop(sh, c); }

static void adopt(kite__shard *sh, int fd, const kite__addr *peer) {
  kite_server *srv = sh->srv;
  kite__src_hold hold;
  int why = kite__src_acquire(srv->tcp_src, peer, &hold);
  if (why != KITE__SRC_OK) {
    close(fd);
    if (why == KITE__SRC_ADDR)
      KITE__STAT_INC(sh, tcp_refused_addr);
    else
      KITE__STAT_INC(sh, tcp_refused_prefix);
    kite__handshake_log_refused(sh, "tcp ", peer,
                                why == KITE__SRC_ADDR ? "tcp_max_per_addr"
                                                      : "tcp_max_per_prefix");
    return;
  }
  kite__tconn *c = calloc(1, sizeof(*c));
  if (!c) {
    kite__src_release(srv->tcp_src, &hold);
    close(fd);
    return;
  }
  c->fd = fd;
  c->phase = KITE__TC_PRE;
  c->on_ready = pre_ready;
  c->src_limit = srv->tcp_src;
  c->src = hold;
  c->peer = *peer;
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
    kite__tconn_refuse(sh, c, KITE__REJECT_SHUTDOWN);
    return;
  }
  if (sh->npre >= srv->cfg.tcp_preopen_max) {
    KITE__STAT_INC(sh, tcp_preopen_evicted);
    pre_drop(sh, sh->pre_head); /* the oldest: the most likely mute */
  }
  c->pre_deadline_ms = sh->now + srv->cfg.handshake_timeout_ms;
  pre_append(sh, c);
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

/* OPEN v2's bytes, read within the same deadline as the header was.
 * Returns false once |c| has left the pre-session phase. */
static bool take_v2(kite__shard *sh, kite__tconn *c, const uint8_t *p,
                    size_t n) {
  size_t k = kite__tv2_collect(c, p, n);
  if (c->v2->open_have < KITE__V2_OPEN_BYTES)
    return true;
  pre_unlink(sh, c);
  kite__tv2_tcp_open(sh, c, p + k, n - k);
  return false;
}

/* The first bytes of |p| complete (or not yet) the OPEN preface. Returns
 * false once |c| has left the pre-session phase. */
static bool take_first(kite__shard *sh, kite__tconn *c, const uint8_t *p,
                       size_t n) {
  if (c->v2)
    return take_v2(sh, c, p, n);
  if (c->open_have == 0 && p[0] == 'G') /* never OPEN's first byte ('K') */
    return kite__wsconn_start(sh, c, p, n);
  size_t k = KITE__CTRL_HDR - c->open_have;
  if (k > n)
    k = n;
  memcpy(c->open_buf + c->open_have, p, k);
  c->open_have += (uint8_t)k;
  if (c->open_have < KITE__CTRL_HDR)
    return true;
  uint8_t version = 0;
  switch (kite__tv2_first(sh, c, c->open_buf, &version)) {
  case KITE__TV2_V2:
    if (!kite__tv2_begin(c, c->open_buf)) {
      pre_drop(sh, c);
      return false;
    }
    return take_v2(sh, c, p + k, n - k);
  case KITE__TV2_V1:
    pre_unlink(sh, c);
    kite__tconn_open(sh, c, p + k, n - k);
    return false;
  case KITE__TV2_REJECT:
    pre_unlink(sh, c);
    kite__tconn_refuse_ver(sh, c, KITE__REJECT_VERSION, version);
    return false;
  default:
    pre_unlink(sh, c);
    kite__tconn_linger(sh, c); /* silently */
    return false;
  }
}

static void pre_read(kite__shard *sh, kite__tconn *c) {
  for (;;) {
    ssize_t n = recv(c->fd, sh->tcp_rx, KITE__TCP_RX_BYTES, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) { /* EOF or a reset before a whole OPEN: nothing to say */
      pre_drop(sh, c);
      return;
    }
    KITE__STAT_ADD(sh, tcp_bytes_in, (uint64_t)n);
    if (!take_first(sh, c, sh->tcp_rx, (size_t)n))
      return;
    if (c->on_ready != pre_ready)
      return; /* an HTTP request: session_ws.c reads the rest */
  }
}

static void pre_ready(kite__shard *sh, kite__tconn *c, uint32_t events) {
  if (events & EPOLLERR)
    pre_drop(sh, c);
  else
    pre_read(sh, c); /* EPOLLHUP too: the read finds the EOF */
}

void kite__tconn_ready(kite__shard *sh, kite__tconn *c, uint32_t events) {
  c->on_ready(sh, c, events);
}

int kite__tconn_pre_timeout_ms(const kite__shard *sh) {
  if (!sh->pre_head)
    return -1;
  int32_t left = kite__ms_diff(sh->pre_head->pre_deadline_ms, sh->now);
  return left > 0 ? (int)left : 0;
}

void kite__tconn_pre_advance(kite__shard *sh) {
  while (sh->pre_head && kite__ms_reached(sh->now, sh->pre_head->pre_deadline_ms)) {
    KITE__STAT_INC(sh, halfopen_expired);
    pre_drop(sh, sh->pre_head);
  }
}

void kite__tconn_pre_free_all(kite__shard *sh) {
  while (sh->pre_head)
    pre_drop(sh, sh->pre_head);
}
