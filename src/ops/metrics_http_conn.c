/*
 * The metrics endpoint's connections (ops/metrics_http_internal.h): read
 * a request head, answer it, linger, close; never blocking, each within
 * its deadline. The text is rendered into the one shared buffer and sent
 * at once; only what the kernel does not take then is copied for that
 * connection (a slow reader), within unsent_max bytes for all of them.
 */
#include "ops/metrics_http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* How long a closing connection's leftover input is read. */
#define LINGER_MS 200

static void conn_close(kite__metrics_http *m, kite__mh_conn *c) {
  close(c->fd); /* also leaves the epoll set: the descriptor is not shared */
  m->unsent_total -= c->unsent_len - c->unsent_off;
  free(c->unsent);
  c->unsent = NULL;
  c->unsent_len = c->unsent_off = 0;
  c->fd = -1;
  c->state = KITE__MH_FREE;
  m->nconns--;
}

static bool conn_arm(kite__metrics_http *m, kite__mh_conn *c, int op,
                     uint32_t events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.u64 = KITE__MH_EV_CONN + (uint64_t)(c - m->conns);
  return epoll_ctl(m->epfd, op, c->fd, &ev) == 0;
}

void kite__mh_conns_init(kite__metrics_http *m) {
  for (uint32_t i = 0; i < m->lim.conns_max; i++) {
    m->conns[i].fd = -1;
    m->conns[i].state = KITE__MH_FREE;
    m->conns[i].req = m->reqs + (size_t)i * KITE__METRICS_HTTP_REQUEST_MAX;
  }
}

void kite__mh_conn_open(kite__metrics_http *m, int fd, uint64_t now_us) {
  kite__mh_conn *slot = NULL, *oldest = NULL;
  for (uint32_t i = 0; i < m->lim.conns_max && !slot; i++) {
    kite__mh_conn *c = &m->conns[i];
    if (c->state == KITE__MH_FREE)
      slot = c;
    else if (!oldest || c->accepted_us < oldest->accepted_us)
      oldest = c;
  }
  if (!slot) {
    /* Full: the oldest goes. A scraper sends its request as it connects
     * and is answered in the same wakeup, so what is old here is idle, and
     * a pile of idle connections can delay a scrape by nothing. */
    kite__mh_count(m, KITE__MH_ST_evictions);
    conn_close(m, oldest);
    slot = oldest;
  }
  if (m->lim.sndbuf) /* best effort, as a hint to the kernel */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &m->lim.sndbuf, sizeof(m->lim.sndbuf));
  slot->fd = fd;
  slot->state = KITE__MH_READ;
  slot->len = 0;
  slot->accepted_us = now_us;
  slot->deadline_us = now_us + m->lim.deadline_ms * 1000ull;
  m->nconns++;
  if (!conn_arm(m, slot, EPOLL_CTL_ADD, EPOLLIN))
    conn_close(m, slot);
}

/* Ends our side and reads what the peer still sends until it closes, for
 * LINGER_MS at most: closing a socket with unread input sends a reset,
 * which can destroy the response before the client reads it (a refused
 * oversized request). */
static void start_linger(kite__metrics_http *m, kite__mh_conn *c,
                         uint64_t now_us) {
  shutdown(c->fd, SHUT_WR);
  uint64_t end = now_us + LINGER_MS * 1000ull;
  if (end < c->deadline_us)
    c->deadline_us = end;
  c->state = KITE__MH_LINGER;
  if (!conn_arm(m, c, EPOLL_CTL_MOD, EPOLLIN))
    conn_close(m, c);
}

/* Sends |iov| now; keeps a copy of what the kernel does not take. */
static void send_response(kite__metrics_http *m, kite__mh_conn *c,
                          struct iovec *iov, int niov, uint64_t now_us) {
  size_t total = 0;
  for (int i = 0; i < niov; i++)
    total += iov[i].iov_len;
  struct msghdr h;
  memset(&h, 0, sizeof(h));
  h.msg_iov = iov;
  h.msg_iovlen = (size_t)niov;
  ssize_t n;
  do
    n = sendmsg(c->fd, &h, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    kite__mh_count(m, KITE__MH_ST_send_errors);
    conn_close(m, c);
    return;
  }
  size_t sent = n > 0 ? (size_t)n : 0;
  if (sent == total) {
    start_linger(m, c, now_us);
    return;
  }
  size_t rest = total - sent;
  char *copy = NULL;
  if (m->unsent_total + rest <= m->lim.unsent_max)
    copy = malloc(rest);
  if (!copy) {
    kite__mh_count(m, KITE__MH_ST_unsent_cut);
    conn_close(m, c);
    return;
  }
  size_t at = 0;
  for (int i = 0; i < niov; i++) {
    size_t len = iov[i].iov_len;
    const char *p = iov[i].iov_base;
    if (sent >= len) {
      sent -= len;
      continue;
    }
    memcpy(copy + at, p + sent, len - sent);
    at += len - sent;
    sent = 0;
  }
  c->unsent = copy;
  c->unsent_len = rest;
  c->unsent_off = 0;
  m->unsent_total += rest;
  c->state = KITE__MH_WRITE;
  if (!conn_arm(m, c, EPOLL_CTL_MOD, EPOLLOUT))
    conn_close(m, c);
}

static void respond(kite__metrics_http *m, kite__mh_conn *c, int status,
                    const char *extra, const char *ctype, const char *body,
                    size_t len, uint64_t now_us) {
  const char *why = status == 200   ? "OK"
                    : status == 404 ? "Not Found"
                    : status == 405 ? "Method Not Allowed"
                    : status == 400 ? "Bad Request"
                                    : "Internal Server Error";
  char head[256];
  int h = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                   "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                   status, why, ctype, len, extra);
  struct iovec iov[2] = {{head, (size_t)h}, {(void *)(uintptr_t)body, len}};
  send_response(m, c, iov, len ? 2 : 1, now_us);
}

/* Answers |c|: its head is in (|complete|), or it was cut short by the
 * peer or passed the bound (a 400). */
static void answer(kite__metrics_http *m, kite__mh_conn *c, bool complete,
                   uint64_t now_us) {
  static const char text_plain[] = "text/plain; charset=utf-8";
  kite__http_kind kind =
      complete ? kite__http_classify(c->req) : KITE__HTTP_BAD_REQUEST;
  if (kind == KITE__HTTP_METRICS) {
    kite__prom_reset(&m->text);
    m->fn(m->user, &m->text);
    if (m->text.oom) {
      kite__mh_count(m, KITE__MH_ST_too_large);
      kite__logf(&m->log, KITE_LOG_ERROR,
                 "metrics: the text passed %zu bytes; scrape refused",
                 (size_t)KITE__PROM_MAX);
      respond(m, c, 500, "", text_plain, "too large\n", 10, now_us);
      return;
    }
    kite__mh_count(m, KITE__MH_ST_scrapes);
    respond(m, c, 200, "", "text/plain; version=0.0.4; charset=utf-8",
            m->text.buf ? m->text.buf : "", m->text.len, now_us);
    return;
  }
  switch (kind) {
  case KITE__HTTP_NOT_FOUND:
    kite__mh_count(m, KITE__MH_ST_not_found);
    respond(m, c, 404, "", text_plain, "not found\n", 10, now_us);
    break;
  case KITE__HTTP_BAD_METHOD:
    kite__mh_count(m, KITE__MH_ST_bad_method);
    respond(m, c, 405, "Allow: GET\r\n", text_plain, "method not allowed\n",
            19, now_us);
    break;
  default:
    kite__mh_count(m, KITE__MH_ST_bad_requests);
    respond(m, c, 400, "", text_plain, "bad request\n", 12, now_us);
  }
}

static void read_head(kite__metrics_http *m, kite__mh_conn *c,
                      uint64_t now_us) {
  const size_t cap = KITE__METRICS_HTTP_REQUEST_MAX - 1;
  for (;;) {
    ssize_t n = recv(c->fd, c->req + c->len, cap - c->len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n < 0 || (n == 0 && c->len == 0)) {
      conn_close(m, c); /* reset, or closed without a word: nothing to say */
      return;
    }
    if (n == 0) {
      answer(m, c, false, now_us); /* closed mid-head */
      return;
    }
    c->len += (uint32_t)n;
    c->req[c->len] = 0;
    if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
      answer(m, c, true, now_us);
      return;
    }
    if (c->len == cap) {
      answer(m, c, false, now_us); /* a head past the bound */
      return;
    }
  }
}

static void write_rest(kite__metrics_http *m, kite__mh_conn *c,
                       uint64_t now_us) {
  while (c->unsent_off < c->unsent_len) {
    ssize_t n = send(c->fd, c->unsent + c->unsent_off,
                     c->unsent_len - c->unsent_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      kite__mh_count(m, KITE__MH_ST_send_errors);
      conn_close(m, c);
      return;
    }
    c->unsent_off += (size_t)n;
    m->unsent_total -= (size_t)n;
  }
  free(c->unsent);
  c->unsent = NULL;
  c->unsent_len = c->unsent_off = 0;
  start_linger(m, c, now_us);
}

static void drain(kite__metrics_http *m, kite__mh_conn *c) {
  char sink[512];
  for (;;) {
    ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      conn_close(m, c);
      return;
    }
  }
}

void kite__mh_conn_ready(kite__metrics_http *m, uint32_t i, uint32_t events,
                         uint64_t now_us) {
  if (i >= m->lim.conns_max)
    return;
  kite__mh_conn *c = &m->conns[i];
  (void)events; /* EPOLLHUP and EPOLLERR show in the call that follows */
  switch (c->state) {
  case KITE__MH_READ:
    read_head(m, c, now_us);
    break;
  case KITE__MH_WRITE:
    write_rest(m, c, now_us);
    break;
  case KITE__MH_LINGER:
    drain(m, c);
    break;
  case KITE__MH_FREE:
    break;
  }
}

void kite__mh_conns_expire(kite__metrics_http *m, uint64_t now_us) {
  for (uint32_t i = 0; i < m->lim.conns_max && m->nconns; i++) {
    kite__mh_conn *c = &m->conns[i];
    if (c->state == KITE__MH_FREE || now_us < c->deadline_us)
      continue;
    if (c->state != KITE__MH_LINGER)
      kite__mh_count(m, KITE__MH_ST_timeouts);
    conn_close(m, c);
  }
}

uint64_t kite__mh_conns_next_deadline(const kite__metrics_http *m) {
  uint64_t next = UINT64_MAX;
  for (uint32_t i = 0; i < m->lim.conns_max && m->nconns; i++)
    if (m->conns[i].state != KITE__MH_FREE && m->conns[i].deadline_us < next)
      next = m->conns[i].deadline_us;
  return next;
}

void kite__mh_conns_close_all(kite__metrics_http *m) {
  for (uint32_t i = 0; i < m->lim.conns_max && m->nconns; i++)
    if (m->conns[i].state != KITE__MH_FREE)
      conn_close(m, &m->conns[i]);
}
