/*
 * Inside the metrics endpoint: the handle, shared by its loop
 * (metrics_http.c) and its connections (metrics_http_conn.c).
 */
#ifndef KITE_OPS_METRICS_HTTP_INTERNAL_H
#define KITE_OPS_METRICS_HTTP_INTERNAL_H

#include "ops/metrics_http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
#define KITE__MH_STAT_ENUM(name, help) KITE__MH_ST_##name,
  KITE__METRICS_HTTP_STATS(KITE__MH_STAT_ENUM)
#undef KITE__MH_STAT_ENUM
  KITE__MH_ST_COUNT
};

/* epoll data: the listener, the stop eventfd, then connection slot i as
 * KITE__MH_EV_CONN + i. */
enum { KITE__MH_EV_LISTEN, KITE__MH_EV_STOP, KITE__MH_EV_CONN };

typedef enum kite__mh_state {
  KITE__MH_FREE,   /* the slot is empty */
  KITE__MH_READ,   /* reading the request head */
  KITE__MH_WRITE,  /* the kernel has not taken the whole response yet */
  KITE__MH_LINGER, /* answered; reading what is left until the peer closes */
} kite__mh_state;

typedef struct kite__mh_conn {
  int fd;
  kite__mh_state state;
  uint32_t len;          /* request bytes in req */
  uint64_t accepted_us;  /* the oldest is closed first to make room */
  uint64_t deadline_us;  /* closed then; in LINGER, the end of lingering */
  char *req;             /* KITE__METRICS_HTTP_REQUEST_MAX bytes in m->reqs */
  char *unsent;          /* WRITE: what the kernel has not taken (malloc'd) */
  size_t unsent_len, unsent_off;
} kite__mh_conn;

struct kite__metrics_http {
  int lfd, stop_fd, epfd, port; /* set by start, closed by stop */
  pthread_t thread;
  kite__metrics_fn fn;
  void *user;
  kite__log log;
  kite__metrics_http_limits lim;
  /* Owned by the HTTP thread from its start to its end: */
  kite__prom text;      /* the last scrape's text, kept for its buffer */
  kite__mh_conn *conns; /* lim.conns_max slots */
  char *reqs;           /* their request buffers, in one allocation */
  uint32_t nconns;      /* slots in use */
  size_t unsent_total;  /* unsent bytes of all connections */
  bool listen_paused;   /* out of the epoll set until listen_resume_us */
  uint64_t listen_resume_us;
  /* Written by the HTTP thread, read by any (stats_get). */
  _Atomic uint64_t stats[KITE__MH_ST_COUNT];
};

static inline void kite__mh_count(kite__metrics_http *m, int k) {
  atomic_fetch_add_explicit(&m->stats[k], 1, memory_order_relaxed);
}

/* metrics_http_conn.c; all on the HTTP thread. */
/* Every slot free, each pointing at its request buffer. */
void kite__mh_conns_init(kite__metrics_http *m);
/* Takes an accepted |fd|: a free slot, or the oldest connection's (closed
 * and counted as an eviction) when all are in use. */
void kite__mh_conn_open(kite__metrics_http *m, int fd, uint64_t now_us);
/* epoll reported |events| on slot |i|. */
void kite__mh_conn_ready(kite__metrics_http *m, uint32_t i, uint32_t events,
                         uint64_t now_us);
/* Closes connections whose deadline has come (counted as timeouts unless
 * they were only lingering). */
void kite__mh_conns_expire(kite__metrics_http *m, uint64_t now_us);
/* The earliest deadline, or UINT64_MAX with no connection. */
uint64_t kite__mh_conns_next_deadline(const kite__metrics_http *m);
/* Closes every connection (the thread ends). */
void kite__mh_conns_close_all(kite__metrics_http *m);

#endif
