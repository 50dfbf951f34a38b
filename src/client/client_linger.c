/*
 * The client's lingering close of TCP (docs/TCP.md): a session closed on
 * purpose has sent its notice and its FIN; its descriptor is kept here,
 * and what the server still sends is read and discarded until its end of
 * stream or tcp_linger_ms, then closed. Closing at once with the server's
 * bytes unread would make the kernel answer with a reset, and a server
 * write that met it before the notice was read would end the session as a
 * dead link instead of the client's close.
 *
 * The session itself is gone (on_disconnect runs as before): only the
 * descriptor and its deadline stay, in a ring of max_sessions entries
 * allocated at the first linger. Every entry waits the same tcp_linger_ms,
 * so deadlines follow the ring's order and the head is the next one due;
 * one that ended early stays as a hole (fd -1) until the head passes it.
 * A full ring closes its oldest at once (tcp_linger_full). epoll reports
 * an entry with its address as data.ptr (client_poll.c tells it from a
 * session's by kite__cli_linger_owns()). Everything here is the client
 * thread's, as the rest of struct kite_client.
 */
#include "client/client_internal.h"

#include "base/time.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads per readiness report, as a session's (client_tcp.c). */
#define KITE__LINGER_READS 4

static void end(kite_client *c, kite__cli_linger *l) {
  if (l->fd < 0)
    return;
  /* By hand, not by close(): a forked child may share the socket. */
  epoll_ctl(c->ep, EPOLL_CTL_DEL, l->fd, NULL);
  close(l->fd);
  l->fd = -1;
  c->ntcp--;
}

/* Holes at the head leave with it, so the head is the next due or none. */
static void pop_ended(kite_client *c) {
  while (c->linger_n && c->lingers[c->linger_head].fd < 0) {
    c->linger_head = (c->linger_head + 1) % c->cfg.max_sessions;
    c->linger_n--;
  }
}

static bool room(kite_client *c) {
  if (!c->lingers) {
    c->lingers = malloc((size_t)c->cfg.max_sessions * sizeof(*c->lingers));
    if (!c->lingers)
      return false;
  }
  if (c->linger_n == c->cfg.max_sessions) {
    c->stats.tcp_linger_full++;
    end(c, &c->lingers[c->linger_head]);
    pop_ended(c);
  }
  return true;
}

bool kite__cli_linger_start(kite_client *c, int fd) {
  if (!c->cfg.tcp_linger_ms || !room(c))
    return false;
  uint32_t i = (c->linger_head + c->linger_n) % c->cfg.max_sessions;
  kite__cli_linger *l = &c->lingers[i];
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
  if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
    return false;
  l->fd = fd;
  l->due_ms = kite__cli_time(c) + c->cfg.tcp_linger_ms;
  c->linger_n++;
  c->stats.tcp_lingers++;
  return true;
}

bool kite__cli_linger_owns(const kite_client *c, const void *ptr) {
  const kite__cli_linger *l = ptr;
  return c->lingers && l >= c->lingers && l < c->lingers + c->cfg.max_sessions;
}

void kite__cli_linger_on_event(kite_client *c, void *ptr) {
  kite__cli_linger *l = ptr;
  for (int i = 0; i < KITE__LINGER_READS && l->fd >= 0; i++) {
    /* From the poll loop, no callback up the stack: scratch is free. */
    ssize_t r = recv(l->fd, c->scratch, c->scratch_cap, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (r <= 0) {
      end(c, l); /* the server's end of stream, or a reset: done */
      pop_ended(c);
      return;
    }
    c->stats.tcp_linger_bytes += (uint64_t)r;
  }
}

void kite__cli_linger_expire(kite_client *c) {
  while (c->linger_n &&
         kite__ms_reached(c->now, c->lingers[c->linger_head].due_ms)) {
    c->stats.tcp_linger_cut++;
    end(c, &c->lingers[c->linger_head]);
    pop_ended(c);
  }
}

int kite__cli_linger_timeout_ms(const kite_client *c, uint32_t now, int wait) {
  if (!c->linger_n)
    return wait;
  int32_t d = kite__ms_diff(c->lingers[c->linger_head].due_ms, now);
  if (d < 0)
    d = 0;
  return wait < 0 || d < wait ? d : wait;
}

void kite__cli_linger_free(kite_client *c) {
  while (c->linger_n) {
    end(c, &c->lingers[c->linger_head]);
    pop_ended(c);
  }
  free(c->lingers);
  c->lingers = NULL;
}
