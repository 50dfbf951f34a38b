/*
 * The metrics endpoint (ops/metrics_http.h). One thread, one poll() over
 * the listener and a stop eventfd; a connection is served to the end
 * (or its deadline) before the next accept, which keeps the state to one
 * request buffer and one text buffer.
 */
#include "ops/metrics_http.h"

#include "base/clock.h"
#include "kite/error.h"
#include "net/addr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long a closing connection's leftover input is read. */
#define LINGER_MS 200

enum {
#define STAT_ENUM(name, help) ST_##name,
  KITE__METRICS_HTTP_STATS(STAT_ENUM)
#undef STAT_ENUM
  ST_COUNT
};

struct kite__metrics_http {
  int lfd, stop_fd, port;
  pthread_t thread;
  kite__metrics_fn fn;
  void *user;
  kite__log log;
  kite__prom text;
  char req[KITE__METRICS_HTTP_REQUEST_MAX];
  _Atomic uint64_t stats[ST_COUNT];
};

static void count(kite__metrics_http *m, int k) {
  atomic_fetch_add_explicit(&m->stats[k], 1, memory_order_relaxed);
}

/* Waits for |events| on |fd| until |deadline_us|; false at the deadline,
 * on stop, or on an error. */
static bool wait_for(kite__metrics_http *m, int fd, short events,
                     uint64_t deadline_us, bool *timed_out) {
  for (;;) {
    uint64_t now = kite__now_us();
    if (now >= deadline_us) {
      *timed_out = true;
      return false;
    }
    struct pollfd p[2] = {{.fd = fd, .events = events},
                          {.fd = m->stop_fd, .events = POLLIN}};
    int ms = (int)((deadline_us - now + 999) / 1000);
    int n = poll(p, 2, ms);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || p[1].revents)
      return false;
    if (p[0].revents)
      return true;
  }
}

/* Reads the request head (up to the blank line). Returns its length, 0
 * when it is malformed or too long, -1 when the connection is to be
 * dropped (timeout, stop, reset). */
static int read_head(kite__metrics_http *m, int fd, uint64_t deadline_us,
                     bool *timed_out) {
  size_t len = 0;
  for (;;) {
    if (!wait_for(m, fd, POLLIN, deadline_us, timed_out))
      return -1;
    ssize_t n = recv(fd, m->req + len, sizeof(m->req) - 1 - len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (n <= 0)
      return len ? 0 : -1; /* closed mid-head: malformed; silent: drop */
    len += (size_t)n;
    m->req[len] = 0;
    if (strstr(m->req, "\r\n\r\n") || strstr(m->req, "\n\n"))
      return (int)len;
    if (len == sizeof(m->req) - 1)
      return 0;
  }
}

static bool send_all(kite__metrics_http *m, int fd, const char *p, size_t n,
                     uint64_t deadline_us, bool *timed_out) {
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(m, fd, POLLOUT, deadline_us, timed_out))
        return false;
      continue;
    }
    if (k <= 0)
      return false;
    p += k;
    n -= (size_t)k;
  }
  return true;
}

static void respond(kite__metrics_http *m, int fd, uint64_t deadline_us,
                    int status, const char *extra, const char *ctype,
                    const char *body, size_t len, bool *timed_out) {
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
  if (!send_all(m, fd, head, (size_t)h, deadline_us, timed_out) ||
      !send_all(m, fd, body, len, deadline_us, timed_out)) {
    if (!*timed_out)
      count(m, ST_send_errors);
  }
}

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

/* Closing a socket with unread input sends a reset, which can destroy the
 * response before the client reads it (a refused oversized request).
 * So: end our side, and read what is left until the client closes, for a
 * moment at most. */
static void linger_close(kite__metrics_http *m, int fd, uint64_t deadline_us) {
  shutdown(fd, SHUT_WR);
  uint64_t end = kite__now_us() + LINGER_MS * 1000ull;
  if (end > deadline_us)
    end = deadline_us;
  bool timed_out = false;
  char sink[512];
  while (wait_for(m, fd, POLLIN, end, &timed_out)) {
    ssize_t n = recv(fd, sink, sizeof(sink), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      break;
  }
}

static void serve(kite__metrics_http *m, int fd) {
  uint64_t deadline = kite__now_us() + KITE__METRICS_HTTP_DEADLINE_MS * 1000ull;
  bool timed_out = false;
  int len = read_head(m, fd, deadline, &timed_out);
  static const char text_plain[] = "text/plain; charset=utf-8";
  if (len < 0) {
    if (timed_out)
      count(m, ST_timeouts);
    return;
  }
  kite__http_kind kind = len ? kite__http_classify(m->req) : KITE__HTTP_BAD_REQUEST;
  if (kind == KITE__HTTP_METRICS) {
    kite__prom_reset(&m->text);
    m->fn(m->user, &m->text);
    if (m->text.oom) {
      kind = KITE__HTTP_BAD_REQUEST + 1; /* answered 500 below */
      kite__logf(&m->log, KITE_LOG_ERROR,
                 "metrics: the text passed %zu bytes; scrape refused",
                 (size_t)KITE__PROM_MAX);
    }
  }
  switch ((int)kind) {
  case KITE__HTTP_METRICS:
    count(m, ST_scrapes);
    respond(m, fd, deadline, 200, "", "text/plain; version=0.0.4; charset=utf-8",
            m->text.buf ? m->text.buf : "", m->text.len, &timed_out);
    break;
  case KITE__HTTP_NOT_FOUND:
    count(m, ST_not_found);
    respond(m, fd, deadline, 404, "", text_plain, "not found\n", 10, &timed_out);
    break;
  case KITE__HTTP_BAD_METHOD:
    count(m, ST_bad_method);
    respond(m, fd, deadline, 405, "Allow: GET\r\n", text_plain,
            "method not allowed\n", 19, &timed_out);
    break;
  case KITE__HTTP_BAD_REQUEST:
    count(m, ST_bad_requests);
    respond(m, fd, deadline, 400, "", text_plain, "bad request\n", 12, &timed_out);
    break;
  default:
    count(m, ST_too_large);
    respond(m, fd, deadline, 500, "", text_plain, "too large\n", 10, &timed_out);
  }
  if (timed_out) {
    count(m, ST_timeouts);
    return;
  }
  linger_close(m, fd, deadline);
}

static void *run(void *arg) {
  kite__metrics_http *m = arg;
  for (;;) {
    struct pollfd p[2] = {{.fd = m->lfd, .events = POLLIN},
                          {.fd = m->stop_fd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      break;
    if (p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        count(m, ST_accept_backoffs);
        poll(&p[1], 1, KITE__METRICS_HTTP_BACKOFF_MS);
      }
      continue;
    }
    serve(m, fd);
    close(fd);
  }
  return NULL;
}

static int fail_sys(kite__metrics_http *m, const char *call) {
  kite__logf(&m->log, KITE_LOG_ERROR, "metrics: %s: %s", call, strerror(errno));
  return KITE_ESYS;
}

int kite__metrics_http_start(kite__metrics_http **out, const char *addr,
                             kite__metrics_fn fn, void *user,
                             const kite__log *log) {
  *out = NULL;
  kite__addr a;
  if (!fn || !addr || kite__addr_parse(&a, addr) != 0)
    return KITE_EINVAL;
  kite__metrics_http *m = calloc(1, sizeof(*m));
  if (!m)
    return KITE_ENOMEM;
  m->fn = fn;
  m->user = user;
  m->lfd = m->stop_fd = -1;
  if (log)
    m->log = *log;
  else
    kite__log_init(&m->log, NULL, NULL, KITE_LOG_INFO);
  kite__prom_init(&m->text);
  int rc = 0, one = 1;
  m->lfd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m->lfd < 0) {
    rc = fail_sys(m, "socket");
  } else if (setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) {
    rc = fail_sys(m, "setsockopt(SO_REUSEADDR)");
  } else if (bind(m->lfd, &a.sa, kite__addr_len(&a))) {
    rc = fail_sys(m, "bind");
  } else if (listen(m->lfd, 16)) {
    rc = fail_sys(m, "listen");
  } else if ((m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    rc = fail_sys(m, "eventfd");
  }
  if (rc == 0) {
    kite__addr bound;
    socklen_t blen = sizeof(bound);
    getsockname(m->lfd, &bound.sa, &blen);
    m->port = kite__addr_port(&bound);
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
    if (m->lfd >= 0)
      close(m->lfd);
    if (m->stop_fd >= 0)
      close(m->stop_fd);
    free(m);
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
  for (int k = 0; k < ST_COUNT; k++)
    field[k] = atomic_load_explicit(&m->stats[k], memory_order_relaxed);
}

void kite__metrics_http_stop(kite__metrics_http *m) {
  if (!m)
    return;
  uint64_t one = 1;
  ssize_t n = write(m->stop_fd, &one, sizeof(one));
  (void)n; /* a counter of 1 cannot overflow the eventfd */
  pthread_join(m->thread, NULL);
  close(m->lfd);
  close(m->stop_fd);
  kite__prom_free(&m->text);
  free(m);
}
