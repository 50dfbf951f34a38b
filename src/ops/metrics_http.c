/*
 * The metrics endpoint (ops/metrics_http.h). One thread, one epoll over
 * the listener, a stop eventfd and up to conns_max non-blocking
 * connections, each with its own deadline: a client that sends nothing,
 * or half a request, or never reads, costs a slot until its deadline, and
 * never the turn of the next scraper. The connections themselves are in
 * metrics_http_conn.c; this file runs the loop and owns the handle.
 */
#include "ops/metrics_http_internal.h"

#include "base/clock.h"
#include "kite/error.h"
#include "net/addr.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per wakeup, so a connect storm cannot keep the loop from the
 * connections it already holds. */
#define ACCEPTS_PER_WAKEUP 16
#define EVENTS_PER_WAIT 64

kite__http_kind kite__http_classify(const char *head) {
  const char *sp1 = strchr(head, ' ');
  const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  const char *eol = strchr(head, '\n');
  if (!sp1 || !sp2 || !eol || sp2 > eol || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
    return KITE__HTTP_BAD_REQUEST;
  if (sp1 - head != 3 || memcmp(head, "GET", 3) != 0)
    return KITE__HTTP_BAD_METHOD;
  const char *path = sp1 + 1;
  size_t plen = strcspn(path, "? ");
  if (plen != 8 || memcmp(path, "/metrics", 8) != 0)
    return KITE__HTTP_NOT_FOUND;
  return KITE__HTTP_METRICS;
}

/* The listener in or out of the epoll set: out for a moment after
 * accept() ran out of descriptors, since the connection stays queued and
 * a level-triggered listener would wake the loop at once. */
static void arm_listener(kite__metrics_http *m, bool on) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = on ? EPOLLIN : 0;
  ev.data.u64 = KITE__MH_EV_LISTEN;
  epoll_ctl(m->epfd, EPOLL_CTL_MOD, m->lfd, &ev);
  m->listen_paused = !on;
}

static void accept_ready(kite__metrics_http *m, uint64_t now_us) {
  for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
    int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      kite__mh_conn_open(m, fd, now_us);
      continue;
    }
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM) {
      kite__mh_count(m, KITE__MH_ST_accept_backoffs);
      arm_listener(m, false);
      m->listen_resume_us = now_us + KITE__METRICS_HTTP_BACKOFF_MS * 1000ull;
      return;
    }
    if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO)
      return; /* EAGAIN: the queue is empty */
  }
}

/* Milliseconds until the earliest deadline (a connection's, or the
 * listener's pause), rounded up; -1: none. */
static int wait_ms(const kite__metrics_http *m, uint64_t now_us) {
  uint64_t next = kite__mh_conns_next_deadline(m);
  if (m->listen_paused && m->listen_resume_us < next)
    next = m->listen_resume_us;
  if (next == UINT64_MAX)
    return -1;
  if (next <= now_us)
    return 0;
  uint64_t ms = (next - now_us + 999) / 1000;
  return ms > 60000 ? 60000 : (int)ms;
}

static void *run(void *arg) {
  kite__metrics_http *m = arg;
  struct epoll_event ev[EVENTS_PER_WAIT];
  for (;;) {
    uint64_t now = kite__now_us();
    kite__mh_conns_expire(m, now);
    if (m->listen_paused && now >= m->listen_resume_us)
      arm_listener(m, true);
    int n = epoll_wait(m->epfd, ev, EVENTS_PER_WAIT, wait_ms(m, now));
    if (n < 0 && errno != EINTR) {
      kite__logf(&m->log, KITE_LOG_ERROR, "metrics: epoll_wait() failed: %s",
                 strerror(errno));
      break;
    }
    now = kite__now_us();
    bool listen = false;
    for (int i = 0; i < n; i++) {
      if (ev[i].data.u64 == KITE__MH_EV_STOP)
        goto out;
      if (ev[i].data.u64 == KITE__MH_EV_LISTEN)
        listen = true;
      else
        kite__mh_conn_ready(m, (uint32_t)(ev[i].data.u64 - KITE__MH_EV_CONN),
                            ev[i].events, now);
    }
    /* Accepts last: one may close the oldest connection to make room and
     * give its slot to the new one, and an event of this batch for that
     * slot was the old connection's. */
    if (listen)
      accept_ready(m, now);
  }
out:
  kite__mh_conns_close_all(m);
  return NULL;
}

static int fail_sys(kite__metrics_http *m, const char *call) {
  kite__logf(&m->log, KITE_LOG_ERROR, "metrics: %s: %s", call, strerror(errno));
  return KITE_ESYS;
}

static void handle_free(kite__metrics_http *m) {
  if (m->lfd >= 0)
    close(m->lfd);
  if (m->stop_fd >= 0)
    close(m->stop_fd);
  if (m->epfd >= 0)
    close(m->epfd);
  kite__prom_free(&m->text);
  free(m->conns);
  free(m->reqs);
  free(m);
}

void kite__metrics_http_limits_init(kite__metrics_http_limits *lim) {
  lim->conns_max = KITE__METRICS_HTTP_CONNS_MAX;
  lim->deadline_ms = KITE__METRICS_HTTP_DEADLINE_MS;
  lim->unsent_max = KITE__METRICS_HTTP_UNSENT_MAX;
  lim->sndbuf = 0;
}

static int open_sockets(kite__metrics_http *m, const kite__addr *a) {
  int one = 1;
  m->lfd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m->lfd < 0)
    return fail_sys(m, "socket");
  if (setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
    return fail_sys(m, "setsockopt(SO_REUSEADDR)");
  if (bind(m->lfd, &a->sa, kite__addr_len(a)))
    return fail_sys(m, "bind");
  if (listen(m->lfd, KITE__METRICS_HTTP_BACKLOG))
    return fail_sys(m, "listen");
  if ((m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
    return fail_sys(m, "eventfd");
  if ((m->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    return fail_sys(m, "epoll_create1");
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.u64 = KITE__MH_EV_LISTEN;
  if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->lfd, &ev))
    return fail_sys(m, "epoll_ctl");
  ev.data.u64 = KITE__MH_EV_STOP;
  if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->stop_fd, &ev))
    return fail_sys(m, "epoll_ctl");
  kite__addr bound;
  socklen_t blen = sizeof(bound);
  if (getsockname(m->lfd, &bound.sa, &blen))
    return fail_sys(m, "getsockname");
  m->port = kite__addr_port(&bound);
  return 0;
}

int kite__metrics_http_start(kite__metrics_http **out, const char *addr,
                             kite__metrics_fn fn, void *user,
                             const kite__log *log,
                             const kite__metrics_http_limits *limits) {
  *out = NULL;
  kite__addr a;
  if (!fn || !addr || kite__addr_parse(&a, addr) != 0)
    return KITE_EINVAL;
  if (limits && (limits->conns_max == 0 || limits->deadline_ms == 0 ||
                 limits->conns_max > KITE__METRICS_HTTP_CONNS_LIMIT ||
                 limits->sndbuf < 0))
    return KITE_EINVAL;
  kite__metrics_http *m = calloc(1, sizeof(*m));
  if (!m)
    return KITE_ENOMEM;
  m->fn = fn;
  m->user = user;
  m->lfd = m->stop_fd = m->epfd = -1;
  if (limits)
    m->lim = *limits;
  else
    kite__metrics_http_limits_init(&m->lim);
  if (log)
    m->log = *log;
  else
    kite__log_init(&m->log, NULL, NULL, KITE_LOG_INFO);
  kite__prom_init(&m->text);
  for (int k = 0; k < KITE__MH_ST_COUNT; k++)
    atomic_init(&m->stats[k], 0);
  m->conns = calloc(m->lim.conns_max, sizeof(*m->conns));
  m->reqs = malloc((size_t)m->lim.conns_max * KITE__METRICS_HTTP_REQUEST_MAX);
  if (!m->conns || !m->reqs) {
    handle_free(m);
    return KITE_ENOMEM;
  }
  kite__mh_conns_init(m);
  int rc = open_sockets(m, &a);
  if (rc == 0) {
    /* Set before the thread starts: its callback may look at *out. */
    *out = m;
    /* Signals belong to the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&m->thread, NULL, run, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
      errno = e;
      rc = fail_sys(m, "pthread_create");
    }
  }
  if (rc != 0) {
    *out = NULL;
    handle_free(m);
    return rc;
  }
  kite__logf(&m->log, KITE_LOG_INFO, "metrics: serving GET /metrics on %s",
             addr);
  return 0;
}

int kite__metrics_http_port(const kite__metrics_http *m) { return m->port; }

void kite__metrics_http_stats_get(const kite__metrics_http *m,
                                  kite__metrics_http_stats *out) {
  uint64_t *field = (uint64_t *)out;
  for (int k = 0; k < KITE__MH_ST_COUNT; k++)
    field[k] = atomic_load_explicit(&m->stats[k], memory_order_relaxed);
}

void kite__metrics_http_stop(kite__metrics_http *m) {
  if (!m)
    return;
  uint64_t one = 1;
  ssize_t n = write(m->stop_fd, &one, sizeof(one));
  (void)n; /* a counter of 1 cannot overflow the eventfd */
  pthread_join(m->thread, NULL);
  handle_free(m);
}
