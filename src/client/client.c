/*
 * The client object: its configuration, its UDP socket, its epoll, its
 * tables and counters; created and destroyed here. The poll loop that
 * drives it is client_poll.c's (client_internal.h tells the flow).
 */
#include "client/client_internal.h"

#include "base/clock.h"
#include "base/time.h"
#include "kite/error.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The most stream bytes read out of one session's KCP at a time. */
#define KITE__CLIENT_SCRATCH_MAX (4u << 20)

/* The least scratch: a TCP read takes this much at once, whatever the
 * KCP windows (the default ones need 176 KiB anyway). */
#define KITE__CLIENT_SCRATCH_MIN (64u << 10)

void kite_client_config_init(kite_client_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  kite__kcp_config kc; /* KCP's defaults live with the engine */
  kite__kcp_config_default(&kc);
  cfg->max_sessions = 65536;
  cfg->mtu = kc.mtu;
  cfg->snd_wnd = kc.snd_wnd;
  cfg->rcv_wnd = kc.rcv_wnd;
  cfg->interval_ms = kc.interval_ms;
  cfg->retry_ms = 250;
  cfg->retries = 8;
  cfg->send_queue_max = kc.snd_queue_max;
  cfg->dead_link_ms = kc.dead_link_ms;
  cfg->max_frame = 1u << 20;
  cfg->segments_max = 65536;
  cfg->tcp_send_max = 1u << 20;
  cfg->tcp_linger_ms = 2000;
  cfg->log_level = KITE_LOG_INFO;
}

const char *kite_client_reason_name(int reason) {
  switch (reason) {
  case KITE_CONNECT_REJECTED_FULL: return "rejected: server full";
  case KITE_CONNECT_REJECTED_VERSION: return "rejected: version";
  case KITE_CONNECT_REJECTED_SHUTDOWN: return "rejected: shutting down";
  case KITE_CONNECT_REJECTED_COOKIE: return "rejected: cookie";
  case KITE_CONNECT_REJECTED_EXPIRED: return "rejected: token expired";
  case KITE_CONNECT_REJECTED_INVALID: return "rejected: token invalid";
  case KITE_CONNECT_REJECTED_NOT_LISTED: return "rejected: server not in token";
  case KITE_CONNECT_REJECTED_USED: return "rejected: token used";
  case KITE_CONNECT_TIMEOUT: return "connect timeout";
  case KITE_CLIENT_NOMEM: return "out of memory";
  case KITE_CONNECT_FAILED: return "connect failed";
  case KITE_CONN_RESET: return "connection reset";
  case KITE_CONNECT_EXPIRED: return "token expired before a server accepted";
  }
  if (reason >= 0x100 && reason <= 0x1FF)
    return "rejected";
  return kite_close_reason_name(reason);
}

static uint32_t monotonic_ms(void *user) {
  (void)user;
  return kite__now_ms();
}

uint32_t kite__cli_time(kite_client *cli) {
  if (!cli->in_poll)
    cli->now = cli->clock(cli->clock_user);
  return cli->now;
}

void kite__cli_set_clock(kite_client *cli, kite__cli_clock_fn fn,
                         void *user) {
  cli->clock = fn ? fn : monotonic_ms;
  cli->clock_user = fn ? user : NULL;
  cli->now = cli->clock(cli->clock_user);
  kite__wheel_init(&cli->wheel, cli->now);
}

void kite__cli_touch(kite_conn *conn) {
  if (conn->touched)
    return;
  kite_client *cli = conn->cli;
  conn->touched = true;
  conn->touched_next = cli->touched;
  cli->touched = conn;
}

/* ---- create and destroy ---- */

static int bad(kite_client *c, const char *field) {
  kite__logf(&c->log, KITE_LOG_ERROR, "kite_client_create: bad %s", field);
  return KITE_EINVAL;
}

static int check_config(kite_client *c, const kite_client_config *cfg) {
  if (cfg->max_sessions < 1 || cfg->max_sessions > (1u << 24))
    return bad(c, "max_sessions (1..16777216)");
  if (cfg->mtu < 64 || cfg->mtu > KITE__UDP_DGRAM_MAX)
    return bad(c, "mtu (64..2048)");
  if (cfg->snd_wnd < 1 || cfg->snd_wnd > 32768)
    return bad(c, "snd_wnd (1..32768)");
  if (cfg->rcv_wnd < 1 || cfg->rcv_wnd > 32768)
    return bad(c, "rcv_wnd (1..32768)");
  if (cfg->interval_ms < 1 || cfg->interval_ms > 5000)
    return bad(c, "interval_ms (1..5000)");
  if (cfg->retry_ms < 1 || cfg->retry_ms > 60000)
    return bad(c, "retry_ms (1..60000)");
  if (cfg->retries > 1000)
    return bad(c, "retries (0..1000)");
  if (cfg->ping_ms > 3600000)
    return bad(c, "ping_ms (0..3600000)");
  if (cfg->send_queue_max < 1 || cfg->send_queue_max > 65535)
    return bad(c, "send_queue_max (1..65535)");
  if (cfg->dead_link_ms < 1 || cfg->dead_link_ms > 3600000)
    return bad(c, "dead_link_ms (1..3600000)");
  if (cfg->segments_max < 16)
    return bad(c, "segments_max (16..)");
  if (cfg->socket_buffer > (1u << 30))
    return bad(c, "socket_buffer");
  /* Room at least for the longest pong (12 + 32 bytes): below that the
   * server's pings could never be answered. */
  if (cfg->tcp_send_max < 64 || cfg->tcp_send_max > (1u << 30))
    return bad(c, "tcp_send_max (64..1073741824)");
  if (cfg->tcp_linger_ms > 60000)
    return bad(c, "tcp_linger_ms (0..60000)");
  return 0;
}

static void set_buffers(kite_client *c) {
  int size = (int)c->cfg.socket_buffer;
  if (size == 0)
    return;
  /* Without privileges the kernel caps these at rmem_max / wmem_max: a
   * smaller buffer only costs drops under load, so warn and go on. */
  if (setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0 ||
      setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) < 0)
    kite__logf(&c->log, KITE_LOG_WARN,
               "setsockopt(SO_RCVBUF/SO_SNDBUF) failed: %s", strerror(errno));
}

static int open_socket(kite_client *c, const char *bind_addr) {
  kite__addr a;
  int err = 0;
  const char *what = "socket()";
  if (bind_addr) {
    if (kite__addr_parse(&a, bind_addr) < 0)
      return bad(c, "bind_addr");
    c->fd = kite__udp_open(&a, false, &err, &what);
  } else {
    /* Dual-stack by default, so that one client reaches IPv4 and IPv6
     * servers; a kernel without IPv6 refuses the socket itself. */
    kite__addr_parse(&a, "[::]:0");
    c->fd = kite__udp_open(&a, false, &err, &what);
    if (c->fd < 0 && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL)) {
      kite__addr_parse(&a, "0.0.0.0:0");
      c->fd = kite__udp_open(&a, false, &err, &what);
    }
  }
  if (c->fd < 0) {
    kite__logf(&c->log, KITE_LOG_ERROR, "kite_client_create: %s failed: %s",
               what, strerror(err));
    return KITE_ESYS;
  }
  c->v6 = a.sa.sa_family == AF_INET6;
  set_buffers(c);
  /* One descriptor for an outer loop to watch, whatever the sessions:
   * the UDP socket (data.ptr NULL) and, later, each TCP connection. */
  c->ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (c->ep < 0 || epoll_ctl(c->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
    kite__logf(&c->log, KITE_LOG_ERROR, "kite_client_create: %s failed: %s",
               c->ep < 0 ? "epoll_create1()" : "epoll_ctl()", strerror(errno));
    return KITE_ESYS;
  }
  return 0;
}

int kite__cli_watch(kite_conn *conn, uint32_t events) {
  if (events == conn->watching)
    return 0;
  int op = !conn->watching ? EPOLL_CTL_ADD
           : !events       ? EPOLL_CTL_DEL
                           : EPOLL_CTL_MOD;
  struct epoll_event ev = {.events = events, .data.ptr = conn};
  if (epoll_ctl(conn->cli->ep, op, conn->fd, &ev) < 0)
    return -1;
  conn->watching = events;
  return 0;
}

static int alloc_tables(kite_client *c) {
  uint32_t max = c->cfg.max_sessions;
  c->conns = calloc(max, sizeof(*c->conns));
  c->free_slots = malloc((size_t)max * sizeof(*c->free_slots));
  c->rx = malloc(sizeof(*c->rx));
  if (c->rx)
    kite__udp_rx_init(c->rx);
  c->tx = malloc(sizeof(*c->tx));
  /* Everything a session's receive queue can hold, read in one go: a
   * frame whose bytes have all arrived is then delivered straight from
   * here, and only one still arriving is gathered by the frame reader. */
  c->scratch_cap = (size_t)c->cfg.rcv_wnd * (c->cfg.mtu - KITE_KCP_OVERHEAD);
  if (c->scratch_cap > KITE__CLIENT_SCRATCH_MAX)
    c->scratch_cap = KITE__CLIENT_SCRATCH_MAX; /* huge windows: feed in parts */
  if (c->scratch_cap < KITE__CLIENT_SCRATCH_MIN)
    c->scratch_cap = KITE__CLIENT_SCRATCH_MIN;
  c->scratch = malloc(c->scratch_cap);
  if (!c->conns || !c->free_slots || !c->rx || !c->tx || !c->scratch)
    return KITE_ENOMEM;
  for (uint32_t i = 0; i < max; i++)
    c->free_slots[i] = max - 1 - i; /* slot 0 is taken first */
  c->nfree = max;
  /* Twice: version 2 keeps the nonces of addresses it tried (bounded to
   * max_sessions in all, client_v2.c) beside every session's current one. */
  if (kite__map_init(&c->by_nonce, 2 * max) < 0)
    return KITE_ENOMEM;
  if (kite__map_init(&c->by_conv, max) < 0)
    return KITE_ENOMEM;
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  pc.mtu = c->cfg.mtu;
  pc.wnd_max =
      c->cfg.snd_wnd > c->cfg.rcv_wnd ? c->cfg.snd_wnd : c->cfg.rcv_wnd;
  pc.max_segments = c->cfg.segments_max;
  pc.reserve = pc.max_segments / 4;
  c->pool = kite__kcp_pool_create(&pc);
  if (!c->pool)
    return KITE_ENOMEM;
  kite__udp_tx_init(c->tx, c->fd);
  return 0;
}

static void free_all(kite_client *c) {
  kite__cli_linger_free(c); /* before the epoll they are removed from */
  if (c->ep >= 0)
    close(c->ep);
  if (c->fd >= 0)
    close(c->fd);
  if (c->pool)
    kite__kcp_pool_destroy(c->pool);
  kite__map_free(&c->by_nonce);
  kite__map_free(&c->by_conv);
  free(c->conns);
  free(c->free_slots);
  free(c->rx);
  free(c->tx);
  free(c->scratch);
  free(c->v2rec);
  free(c);
}

int kite_client_create(kite_client **out, const kite_client_config *cfg) {
  if (!out)
    return KITE_EINVAL;
  *out = NULL;
  if (!cfg)
    return KITE_EINVAL;
  kite_client *c = calloc(1, sizeof(*c));
  if (!c)
    return KITE_ENOMEM;
  c->fd = c->ep = -1;
  c->cfg = *cfg;
  c->cfg.bind_addr = NULL; /* read below only: not kept */
  kite__log_init(&c->log, cfg->log, cfg->log_user, cfg->log_level);
  int rc = check_config(c, cfg);
  if (rc == 0 && sodium_init() < 0) {
    kite__logf(&c->log, KITE_LOG_ERROR,
               "kite_client_create: sodium_init() failed");
    rc = KITE_ESYS;
  }
  if (rc == 0)
    rc = open_socket(c, cfg->bind_addr);
  if (rc == 0)
    rc = alloc_tables(c);
  if (rc < 0) {
    free_all(c);
    return rc;
  }
  kite__cli_set_clock(c, NULL, NULL);
  *out = c;
  return 0;
}

void kite_client_destroy(kite_client *c) {
  if (!c)
    return;
  if (c->in_poll) {
    kite__logf(&c->log, KITE_LOG_ERROR,
               "kite_client_destroy() called from a callback: ignored");
    return;
  }
  kite__cli_time(c);
  /* Every session is freed by slot below, reported or not: the lists
   * would only point into freed memory. */
  for (uint32_t i = 0; i < c->cfg.max_sessions; i++) {
    kite_conn *conn = c->conns[i];
    if (!conn)
      continue;
    kite__cli_conn_close(conn, KITE_CLOSE_NORMAL, KITE__CLOSE_NORMAL);
    c->closing = c->closing_tail = NULL;
    kite__cli_conn_free(conn);
  }
  c->touched = NULL;
  kite__udp_tx_flush(c->tx);
  free_all(c);
}

int kite_client_fd(const kite_client *c) { return c->ep; }

void kite_client_stats_get(const kite_client *c, kite_client_stats *out) {
  *out = c->stats;
  out->dgrams_out = c->tx->sent;
  out->dgrams_out_dropped = c->tx->dropped;
  out->bytes_out = c->tx->bytes;
}
