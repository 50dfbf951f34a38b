/*
 * Lingering closes. A TCP connection whose session has ended is not closed
 * at once: close() with unread input sends a reset, and a reset destroys
 * whatever the peer had not read yet, the last frames included. So the
 * connection first writes what is queued, then shuts its write side (the
 * peer reads a FIN after the last byte), then reads and discards until the
 * peer's EOF, and only then closes: within tcp_linger_ms, after which it
 * is closed as it stands (counted). The number lingering is bounded by the
 * shard's session slots; past that a connection is closed at once.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define DRAINS_PER_WAKEUP 4

void kite__tconn_free(kite__tconn *c) {
  kite__src_release(c->src_limit, &c->src);
  if (c->wsc)
    kite__wsconn_free(c->wsc);
  kite__tv2_free(c->v2);
  if (c->fd >= 0)
    close(c->fd); /* leaves the epoll set with it */
  kite__tcp_out_free(&c->out);
  kite__frame_reader_free(&c->reader);
  free(c->held);
  free(c);
}

static void finish(kite__shard *sh, kite__tconn *c) {
  kite__wheel_del(&sh->linger_wheel, &c->linger_timer);
  if (c->linger_prev)
    c->linger_prev->linger_next = c->linger_next;
  else
    sh->lingering = c->linger_next;
  if (c->linger_next)
    c->linger_next->linger_prev = c->linger_prev;
  sh->nlinger--;
  kite__tconn_free(c);
}

/* Writes what is queued; once it is out, sends the FIN. false: the
 * connection is finished (broken, or both sides done). */
static bool progress(kite__shard *sh, kite__tconn *c) {
  bool pollout = false;
  uint64_t before = c->out.bytes_out;
  if (kite__tcp_out_flush(&c->out, c->fd, sh->now, &pollout) < 0)
    return false;
  KITE__STAT_ADD(sh, tcp_bytes_out, c->out.bytes_out - before);
  if (pollout) {
    kite__tconn_arm(sh, c, (c->peer_eof ? 0 : EPOLLIN) | EPOLLOUT);
    return true;
  }
  if (c->peer_eof)
    return false; /* all written, and the peer said all it will */
  if (!c->shut_wr) {
    shutdown(c->fd, SHUT_WR);
    c->shut_wr = true;
  }
  kite__tconn_arm(sh, c, EPOLLIN);
  return true;
}

void kite__tconn_linger(kite__shard *sh, kite__tconn *c) {
  c->s = NULL;
  c->phase = KITE__TC_LINGER;
  c->on_ready = kite__tconn_linger_ready;
  if (sh->nlinger >= sh->nslots) {
    KITE__STAT_INC(sh, tcp_linger_cut);
    kite__tconn_free(c);
    return;
  }
  c->linger_prev = NULL;
  c->linger_next = sh->lingering;
  if (sh->lingering)
    sh->lingering->linger_prev = c;
  sh->lingering = c;
  sh->nlinger++;
  kite__wheel_add(&sh->linger_wheel, &c->linger_timer,
                  sh->now + sh->srv->cfg.tcp_linger_ms);
  if (!progress(sh, c))
    finish(sh, c);
}

/* Reads and drops the peer's rest. false: EOF or an error. */
static bool drain(kite__shard *sh, kite__tconn *c) {
  for (int i = 0; i < DRAINS_PER_WAKEUP; i++) {
    ssize_t n = recv(c->fd, sh->tcp_rx, KITE__TCP_RX_BYTES, MSG_DONTWAIT);
    if (n > 0)
      continue;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    if (n == 0)
      c->peer_eof = true;
    return false;
  }
  return true;
}

void kite__tconn_linger_ready(kite__shard *sh, kite__tconn *c,
                            uint32_t events) {
  if ((events & EPOLLERR) ||
      ((events & (EPOLLIN | EPOLLHUP)) && !drain(sh, c) && !c->peer_eof)) {
    finish(sh, c); /* reset: nothing more can be delivered */
    return;
  }
  if (!progress(sh, c))
    finish(sh, c);
}

static void on_deadline(kite__timer *t, void *user) {
  kite__shard *sh = user;
  kite__tconn *c =
      (kite__tconn *)((char *)t - offsetof(kite__tconn, linger_timer));
  KITE__STAT_INC(sh, tcp_linger_cut);
  finish(sh, c);
}

void kite__tconn_linger_advance(kite__shard *sh) {
  kite__wheel_advance(&sh->linger_wheel, sh->now, on_deadline, sh);
}

void kite__tconn_linger_free_all(kite__shard *sh) {
  while (sh->lingering)
    finish(sh, sh->lingering);
}
