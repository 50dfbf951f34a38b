/*
 * The metrics endpoint: a tiny HTTP/1.x server on its own thread that
 * answers GET /metrics with the Prometheus text format (ops/metrics.h), so
 * a studio's Prometheus can scrape a kite server.
 *
 *   static void write_metrics(void *user, kite__prom *p) {
 *     kite_server_stats s;
 *     kite_server_stats_get(user, &s);          // atomics: any thread
 *     kite__prom_family(p, "kite_sessions", "gauge", "sessions open now");
 *     kite__prom_sample(p, "kite_sessions", NULL, NULL, (double)s.sessions);
 *   }
 *   kite__metrics_http *m;
 *   if (kite__metrics_http_start(&m, "0.0.0.0:9464", write_metrics, srv,
 *                                &log, NULL) < 0) ...;
 *   ...
 *   kite__metrics_http_stop(m);
 *
 * One thread serves every connection at once (epoll, non-blocking), so a
 * client that sends nothing, half a request, or never reads holds one slot
 * and never the next scraper's turn. Bounded (kite__metrics_http_limits):
 * at most conns_max connections open, the oldest closed to make room for a
 * new one (counted: evictions); deadline_ms from accept to close for each
 * (counted: timeouts); a request head of KITE__METRICS_HTTP_REQUEST_MAX
 * bytes; and at most unsent_max bytes of responses copied for slow readers
 * (past it the connection is closed, counted: unsent_cut). Every response
 * closes the connection.
 *
 *   GET /metrics[?...]       200, text/plain; version=0.0.4; charset=utf-8
 *   GET anything else        404
 *   another method           405 (Allow: GET)
 *   malformed, or a request
 *   head over 8 KiB          400
 *   the text passed 1 MiB    500 (logged: a runaway label set)
 *
 * No allocation per request: the request buffers are allocated with the
 * handle and the text buffer is kept from one scrape to the next; only a
 * response the kernel does not take at once is copied (that remainder).
 */
#ifndef KITE_OPS_METRICS_HTTP_H
#define KITE_OPS_METRICS_HTTP_H

#include <stdint.h>

#include "base/log.h"
#include "ops/metrics.h"

/* The defaults of kite__metrics_http_limits. */
#define KITE__METRICS_HTTP_CONNS_MAX 32
#define KITE__METRICS_HTTP_DEADLINE_MS 2000
#define KITE__METRICS_HTTP_UNSENT_MAX ((size_t)4 << 20)
/* The most conns_max may be: each connection holds a request buffer. */
#define KITE__METRICS_HTTP_CONNS_LIMIT 4096
/* The listen() backlog: connections the kernel queues for the next
 * wakeup (the loop takes 16 a wakeup). */
#define KITE__METRICS_HTTP_BACKLOG 128
/* The request line and headers, per connection; a longer request gets
 * 400. */
#define KITE__METRICS_HTTP_REQUEST_MAX 8192
/* The pause after accept() fails for want of descriptors or memory: the
 * connection stays queued, so retrying at once would spin. */
#define KITE__METRICS_HTTP_BACKOFF_MS 100

typedef struct kite__metrics_http kite__metrics_http;

/* The endpoint's bounds; kite__metrics_http_limits_init() sets the
 * defaults above. */
typedef struct kite__metrics_http_limits {
  uint32_t conns_max;   /* connections open at once (1..CONNS_LIMIT); a new
                           one past it closes the oldest; each holds
                           REQUEST_MAX bytes, allocated at start */
  uint32_t deadline_ms; /* from accept to close, per connection (> 0) */
  size_t unsent_max;    /* response bytes copied for slow readers, all
                           connections together */
  int sndbuf;           /* SO_SNDBUF of each connection; 0: the kernel's
                           (on loopback it takes a whole 1 MiB text) */
} kite__metrics_http_limits;

void kite__metrics_http_limits_init(kite__metrics_http_limits *lim);

typedef enum kite__http_kind {
  KITE__HTTP_METRICS,     /* GET /metrics, with or without a query */
  KITE__HTTP_NOT_FOUND,   /* GET of another path */
  KITE__HTTP_BAD_METHOD,  /* a well-formed request line, not GET */
  KITE__HTTP_BAD_REQUEST, /* no "METHOD PATH HTTP/1.x" first line */
} kite__http_kind;

/* What a request head asks for, from its first line. |head| is
 * NUL-terminated; only the request line is read. Pure: the fuzz target
 * fuzz/http_head.c drives it. */
kite__http_kind kite__http_classify(const char *head);

/* Called on the HTTP thread for each scrape, one call at a time: write the
 * families into |p| (empty on entry; do not keep it). It runs while the
 * application runs, so it may read only what is safe from another thread
 * (kite_server_stats_get() is). It must not call kite__metrics_http_stop(). */
typedef void (*kite__metrics_fn)(void *user, kite__prom *p);

/* The endpoint's own counters: X(name, help). */
#define KITE__METRICS_HTTP_STATS(X)                                          \
  X(scrapes, "GET /metrics answered (200)")                                  \
  X(not_found, "requests for another path (404)")                            \
  X(bad_method, "requests with a method other than GET (405)")               \
  X(bad_requests, "malformed or oversized requests (400)")                   \
  X(too_large, "scrapes whose text passed 1 MiB (500)")                      \
  X(timeouts, "connections closed at the deadline: slow or silent clients")  \
  X(send_errors, "responses cut short: the client reset the connection")     \
  X(accept_backoffs, "pauses after accept() ran out of descriptors or memory") \
  X(evictions, "oldest connections closed to make room: conns_max were open") \
  X(unsent_cut, "responses cut: slow readers held unsent_max bytes already")

typedef struct kite__metrics_http_stats {
#define KITE__METRICS_HTTP_STAT_FIELD(name, help) uint64_t name;
  KITE__METRICS_HTTP_STATS(KITE__METRICS_HTTP_STAT_FIELD)
#undef KITE__METRICS_HTTP_STAT_FIELD
} kite__metrics_http_stats;

/* Binds |addr| ("HOST:PORT", "[::]:PORT"; port 0: any) with SO_REUSEADDR,
 * so a restart does not wait out TIME_WAIT, listens and starts the thread
 * (which blocks every signal, so the application's handlers run on its own
 * threads). |fn| (not NULL) and |user| are called until
 * kite__metrics_http_stop() returns. |log| is copied; its sink must stay
 * valid as long; NULL logs to stderr. |limits| is copied; NULL: the
 * defaults. Any thread. *out is set before the thread starts, so |fn| may
 * read it. Returns 0 and sets *out, or (with *out NULL, nothing left open):
 *   KITE_EINVAL  |addr| does not parse, |fn| is NULL, or a limit is out of
 *                its range;
 *   KITE_ESYS    socket(), setsockopt(), bind(), listen(), eventfd(),
 *                epoll_create1(), epoll_ctl(), getsockname() or
 *                pthread_create() failed: logged with the call and errno;
 *   KITE_ENOMEM. */
int kite__metrics_http_start(kite__metrics_http **out, const char *addr,
                             kite__metrics_fn fn, void *user,
                             const kite__log *log,
                             const kite__metrics_http_limits *limits);

/* The TCP port bound (the one picked, after asking for port 0). Any thread. */
int kite__metrics_http_port(const kite__metrics_http *m);

/* A snapshot of the counters. Any thread; each counter is read atomically,
 * the set is not one instant. */
void kite__metrics_http_stats_get(const kite__metrics_http *m,
                                  kite__metrics_http_stats *out);

/* Stops the thread and frees everything. It wakes the thread through an
 * eventfd (closing a descriptor another thread polls is a race with its
 * reuse), which also closes every connection in progress; it waits for a
 * scrape callback already running. Any thread but the callback's; once.
 * NULL is ignored. */
void kite__metrics_http_stop(kite__metrics_http *m);

#endif
