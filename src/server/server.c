/*
 * The server object: configuration, sockets and threads, and the public
 * calls that route to the shard owning a session.
 */
#include "server/server_internal.h"

#include "ops/metrics_http.h"
#include "proto/frame.h"
#include "server/metrics_export.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SHARDS_MAX 64 /* conv's first byte names the shard */

const char *kite_close_reason_name(int reason) {
  switch (reason) {
  case KITE_CLOSE_NORMAL: return "normal";
  case KITE_CLOSE_IDLE: return "idle timeout";
  case KITE_CLOSE_PROTOCOL: return "protocol error";
  case KITE_CLOSE_SHUTDOWN: return "server shutdown";
  case KITE_CLOSE_KICKED: return "kicked";
  case KITE_CLOSE_DEAD_LINK: return "dead link";
  case KITE_CLOSE_SLOW_PEER: return "slow peer";
  }
  return "unknown";
}

void kite_server_config_init(kite_server_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->udp_addr = "127.0.0.1:7001";
  cfg->max_sessions = 100000;
  cfg->idle_timeout_ms = 10000;
  cfg->handshake_timeout_ms = 5000;
  cfg->cookie_lifetime_s = 10;
  cfg->max_frame = 65536;
  cfg->mtu = 1400;
  cfg->snd_wnd = 128;
  cfg->rcv_wnd = 128;
  cfg->interval_ms = 10;
  cfg->dead_link_ms = 15000;
  cfg->send_queue_max = 1024;
  cfg->shard_segments_max = 65536;
  cfg->inbox_max = 65536;
  cfg->stop_timeout_ms = 3000;
  cfg->steering = true;
  cfg->tcp_send_max = 1u << 20;
  cfg->tcp_stall_ms = 10000;
  cfg->tcp_linger_ms = 2000;
  cfg->mailbox_depth = 256;
  cfg->mailbox_bytes = 262144;
  cfg->timers_max = 16384;
  cfg->log_level = KITE_LOG_INFO;
}

/* Every field with its bounds; the log names the one that is wrong. */
static int validate(const kite_server_config *c, kite__log *log) {
#define CHECK(cond, field)                                                   \
  do {                                                                       \
    if (!(cond)) {                                                           \
      kite__logf(log, KITE_LOG_ERROR, "config: %s is out of range", field);  \
      return KITE_EINVAL;                                                    \
    }                                                                        \
  } while (0)
  CHECK(c->threads >= 0 && c->threads <= SHARDS_MAX, "threads");
  CHECK(c->max_sessions >= 1 && c->max_sessions <= (1u << 24), "max_sessions");
  CHECK(c->idle_timeout_ms >= 100, "idle_timeout_ms");
  CHECK(c->handshake_timeout_ms >= 100, "handshake_timeout_ms");
  CHECK(c->cookie_lifetime_s >= 1 && c->cookie_lifetime_s <= 3600, "cookie_lifetime_s");
  CHECK(c->mtu >= 200 && c->mtu <= KITE__UDP_DGRAM_MAX, "mtu");
  CHECK(c->snd_wnd >= 4 && c->snd_wnd <= 4096, "snd_wnd");
  CHECK(c->rcv_wnd >= 4 && c->rcv_wnd <= 4096, "rcv_wnd");
  CHECK(c->interval_ms >= 1 && c->interval_ms <= 1000, "interval_ms");
  CHECK(c->dead_link_ms >= 100, "dead_link_ms");
  CHECK(c->send_queue_max >= 16 && c->send_queue_max <= 65535, "send_queue_max");
  CHECK(c->shard_segments_max >= 64, "shard_segments_max");
  CHECK(c->inbox_max >= 16, "inbox_max");
  CHECK(c->tcp_send_max >= c->max_frame + KITE__FRAME_HDR && c->tcp_send_max <= (1u << 30),
        "tcp_send_max (must hold a max_frame)");
  CHECK(c->tcp_stall_ms >= 100, "tcp_stall_ms");
  CHECK(c->tcp_linger_ms <= 600000, "tcp_linger_ms");
  CHECK(c->worker_mode >= KITE_WORKERS_INLINE && c->worker_mode <= KITE_WORKERS_DYNAMIC,
        "worker_mode");
  CHECK(c->workers >= 0 && c->workers <= 4096, "workers");
  CHECK(c->mailbox_depth >= KITE__MAILBOX_DEPTH_MIN &&
            c->mailbox_depth <= KITE__MAILBOX_DEPTH_MAX &&
            (c->mailbox_depth & (c->mailbox_depth - 1)) == 0,
        "mailbox_depth (a power of two, 2..4096)");
  CHECK(c->mailbox_bytes >= 1024, "mailbox_bytes");
  CHECK(c->timers_max >= 1 && c->timers_max <= (1u << 24), "timers_max");
  CHECK(c->unrouted == KITE_UNROUTED_DROP || c->unrouted == KITE_UNROUTED_CLOSE,
        "unrouted");
  /* A frame must fit the peer's receive window whole, or it never arrives
   * (frames wait in KCP until complete), and the send queue. */
  uint64_t mss = c->mtu - KITE_KCP_OVERHEAD;
  CHECK(c->max_frame >= KITE__PING_BODY_MAX &&
            c->max_frame + KITE__FRAME_HDR <= (uint64_t)(c->rcv_wnd - 1) * mss &&
            c->max_frame + KITE__FRAME_HDR <= (uint64_t)c->send_queue_max * mss,
        "max_frame (must fit rcv_wnd and send_queue_max segments)");
#undef CHECK
  return 0;
}

static void set_port(kite__addr *a, int port) {
  if (a->sa.sa_family == AF_INET)
    a->v4.sin_port = htons((uint16_t)port);
  else
    a->v6.sin6_port = htons((uint16_t)port);
}

/* Every shard's TCP listener on one port (SO_REUSEPORT): the kernel spreads
 * connections over them, and each shard owns what it accepts. Port 0 is
 * the UDP port's number. */
static int open_listeners(kite_server *srv, bool quiet_in_use, int *err) {
  kite__addr addr = srv->tcp_bind;
  if (kite__addr_port(&addr) == 0)
    set_port(&addr, srv->port);
  for (uint32_t i = 0; i < srv->nshards; i++) {
    const char *what = "";
    if (kite__tcp_listen(&srv->shards[i].tcp_ls, &addr, true, 1024, err, &what) < 0) {
      char a[64];
      if (!quiet_in_use || *err != EADDRINUSE)
        kite__logf(&srv->log, KITE_LOG_ERROR, "%s on tcp %s failed: %s", what,
                   kite__addr_format(&addr, a, sizeof(a)), strerror(*err));
      return KITE_ESYS;
    }
  }
  srv->tcp_port = kite__tcp_local_port(&srv->shards[0].tcp_ls);
  return 0;
}

static void close_sockets(kite_server *srv) {
  for (uint32_t i = 0; i < srv->nshards; i++) {
    kite__tcp_acceptor_close(&srv->shards[i].tcp_ls);
    if (srv->shards[i].fd >= 0)
      close(srv->shards[i].fd);
    srv->shards[i].fd = -1;
  }
}

static int open_udp(kite_server *srv) {
  kite__addr addr = srv->bind;
  for (uint32_t i = 0; i < srv->nshards; i++) {
    int err = 0;
    const char *what = "";
    int fd = kite__udp_open(&addr, true, &err, &what);
    if (fd < 0) {
      char a[64];
      kite__logf(&srv->log, KITE_LOG_ERROR, "%s on %s failed: %s", what,
                 kite__addr_format(&addr, a, sizeof(a)), strerror(err));
      return KITE_ESYS;
    }
    srv->shards[i].fd = fd;
    if (i == 0) { /* port 0: every shard joins the port the first got */
      srv->port = kite__udp_local_port(fd);
      set_port(&addr, srv->port);
    }
  }
  return 0;
}

static int open_sockets(kite_server *srv) {
  /* UDP and TCP on one port number: when the system picks UDP's, TCP's
   * may be taken already; then try another. */
  bool retry = srv->tcp_addr && kite__addr_port(&srv->bind) == 0 &&
               kite__addr_port(&srv->tcp_bind) == 0;
  for (int attempt = 0;; attempt++) {
    int rc = open_udp(srv);
    if (rc < 0)
      return rc;
    if (!srv->tcp_addr)
      break;
    int err = 0;
    if ((rc = open_listeners(srv, retry && attempt < 16, &err)) == 0)
      break;
    if (!retry || err != EADDRINUSE || attempt == 16)
      return rc;
    close_sockets(srv);
  }
  /* Steering goes on once every socket has joined, so indexes are final. */
  srv->steering = false;
  if (srv->cfg.steering && srv->nshards > 1) {
    int err = 0;
    if (kite__udp_steer_by_first_byte(srv->shards[0].fd, &err) == 0)
      srv->steering = true;
    else
      kite__logf(&srv->log, KITE_LOG_WARN,
                 "setsockopt(SO_ATTACH_REUSEPORT_CBPF) failed: %s; shards hand "
                 "segments over instead",
                 strerror(err));
  }
  for (uint32_t i = 0; i < srv->nshards; i++) {
    kite__shard *sh = &srv->shards[i];
    sh->epfd = epoll_create1(EPOLL_CLOEXEC);
    sh->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sh->epfd < 0 || sh->evfd < 0) {
      kite__logf(&srv->log, KITE_LOG_ERROR, "epoll/eventfd failed: %s",
                 strerror(errno));
      return KITE_ESYS;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KITE__EV_UDP};
    struct epoll_event ew = {.events = EPOLLIN, .data.u64 = KITE__EV_WAKE};
    struct epoll_event el = {.events = EPOLLIN, .data.u64 = KITE__EV_LISTEN};
    if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->fd, &ev) < 0 ||
        epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->evfd, &ew) < 0 ||
        (sh->tcp_ls.fd >= 0 &&
         epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->tcp_ls.fd, &el) < 0)) {
      kite__logf(&srv->log, KITE_LOG_ERROR, "epoll_ctl() failed: %s",
                 strerror(errno));
      return KITE_ESYS;
    }
    kite__udp_tx_init(sh->tx, sh->fd);
  }
  return 0;
}

int kite_server_create(kite_server **out, const kite_server_config *cfg) {
  *out = NULL;
  if (sodium_init() < 0)
    return KITE_ESYS;
  kite_server *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return KITE_ENOMEM;
  srv->cfg = *cfg;
  kite__log_init(&srv->log, cfg->log, cfg->log_user, cfg->log_level);
  pthread_mutex_init(&srv->stop_lock, NULL);
  int rc = validate(cfg, &srv->log);
  if (rc < 0)
    goto fail;
  srv->udp_addr = strdup(cfg->udp_addr ? cfg->udp_addr : "127.0.0.1:7001");
  srv->cfg.udp_addr = srv->udp_addr;
  if (!srv->udp_addr) {
    rc = KITE_ENOMEM;
    goto fail;
  }
  if (kite__addr_parse(&srv->bind, srv->udp_addr) < 0) {
    kite__logf(&srv->log, KITE_LOG_ERROR, "config: udp_addr \"%s\" is not HOST:PORT",
               srv->udp_addr);
    rc = KITE_EINVAL;
    goto fail;
  }
  if (cfg->tcp_addr) {
    srv->tcp_addr = strdup(cfg->tcp_addr);
    srv->cfg.tcp_addr = srv->tcp_addr;
    if (!srv->tcp_addr) {
      rc = KITE_ENOMEM;
      goto fail;
    }
    if (kite__addr_parse(&srv->tcp_bind, srv->tcp_addr) < 0) {
      kite__logf(&srv->log, KITE_LOG_ERROR,
                 "config: tcp_addr \"%s\" is not HOST:PORT", srv->tcp_addr);
      rc = KITE_EINVAL;
      goto fail;
    }
  }
  if (cfg->metrics_addr) {
    kite__addr m;
    srv->metrics_addr = strdup(cfg->metrics_addr);
    srv->cfg.metrics_addr = srv->metrics_addr;
    if (!srv->metrics_addr) {
      rc = KITE_ENOMEM;
      goto fail;
    }
    if (kite__addr_parse(&m, srv->metrics_addr) < 0) {
      kite__logf(&srv->log, KITE_LOG_ERROR,
                 "config: metrics_addr \"%s\" is not HOST:PORT", srv->metrics_addr);
      rc = KITE_EINVAL;
      goto fail;
    }
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  srv->nshards = cfg->threads ? (uint32_t)cfg->threads
                              : (uint32_t)(cpus > 0 ? (cpus < SHARDS_MAX ? cpus : SHARDS_MAX) : 1);
  uint32_t per_shard = cfg->max_sessions / srv->nshards * 2 + 64;
  if (per_shard > cfg->max_sessions)
    per_shard = cfg->max_sessions;
  while ((1u << srv->slot_bits) < per_shard)
    srv->slot_bits++;
  srv->tcp_queue_max = kite__frame_segs(srv, cfg->tcp_send_max);
  randombytes_buf(srv->master, sizeof(srv->master));
  randombytes_buf(srv->route_key, sizeof(srv->route_key));
  atomic_init(&srv->sessions, 0);
  atomic_init(&srv->stopping, false);
  srv->shards = calloc(srv->nshards, sizeof(*srv->shards));
  if (!srv->shards) {
    rc = KITE_ENOMEM;
    goto fail;
  }
  for (uint32_t i = 0; i < srv->nshards; i++)
    if ((rc = kite__shard_init(&srv->shards[i], srv, i)) < 0)
      goto fail;
  if ((rc = kite__logic_init(&srv->logic, srv)) < 0)
    goto fail;
  if ((rc = open_sockets(srv)) < 0)
    goto fail;
  *out = srv;
  return 0;
fail:
  kite_server_destroy(srv);
  return rc;
}

int kite_server_start(kite_server *srv) {
  if (srv->started)
    return KITE_ESTATE;
  srv->started = true;
  if (kite__logic_start(&srv->logic) < 0) {
    kite_server_stop(srv);
    return KITE_ESYS;
  }
  for (uint32_t i = 0; i < srv->nshards; i++) {
    kite__shard *sh = &srv->shards[i];
    int err = pthread_create(&sh->thread, NULL, kite__shard_main, sh);
    if (err) {
      kite__logf(&srv->log, KITE_LOG_ERROR, "pthread_create() failed: %s",
                 strerror(err));
      kite_server_stop(srv);
      return KITE_ESYS;
    }
    sh->thread_started = true;
  }
  int rc = kite__metrics_export_start(srv);
  if (rc < 0) {
    kite_server_stop(srv);
    return rc;
  }
  char a[64], tcp[96] = "";
  if (srv->tcp_addr) {
    char b[64];
    kite__addr t = srv->tcp_bind;
    set_port(&t, srv->tcp_port);
    snprintf(tcp, sizeof(tcp), ", tcp %s (port %d)",
             kite__addr_format(&t, b, sizeof(b)), srv->tcp_port);
  }
  kite__logf(&srv->log, KITE_LOG_INFO,
             "listening on udp %s (port %d)%s, %u shards, steering %s, workers %s (%u)",
             kite__addr_format(&srv->bind, a, sizeof(a)), srv->port, tcp,
             srv->nshards, srv->steering ? "on" : "off (hand-offs)",
             kite_worker_mode_name(srv->logic.mode), srv->logic.nworkers);
  return 0;
}

int kite_server_stop(kite_server *srv) {
  if (kite__shard_current())
    return KITE_ESTATE; /* from a callback: it would wait for itself */
  pthread_mutex_lock(&srv->stop_lock);
  if (srv->stopped || !srv->started) {
    srv->stopped = true;
    pthread_mutex_unlock(&srv->stop_lock);
    return 0;
  }
  atomic_store_explicit(&srv->stopping, true, memory_order_release);
  kite__metrics_export_stop(srv);
  for (uint32_t i = 0; i < srv->nshards; i++) {
    uint64_t one = 1;
    ssize_t w = write(srv->shards[i].evfd, &one, sizeof(one));
    (void)w;
  }
  for (uint32_t i = 0; i < srv->nshards; i++)
    if (srv->shards[i].thread_started)
      pthread_join(srv->shards[i].thread, NULL);
  /* Every session was released, so every on_disconnect has run. */
  kite__logic_stop(&srv->logic);
  srv->stopped = true;
  pthread_mutex_unlock(&srv->stop_lock);
  kite__logf(&srv->log, KITE_LOG_INFO, "stopped");
  return 0;
}

void kite_server_destroy(kite_server *srv) {
  if (!srv)
    return;
  kite_server_stop(srv);
  if (srv->shards)
    for (uint32_t i = 0; i < srv->nshards; i++)
      kite__shard_free(&srv->shards[i]);
  kite__logic_free(&srv->logic);
  free(srv->shards);
  free(srv->udp_addr);
  free(srv->tcp_addr);
  free(srv->metrics_addr);
  sodium_memzero(srv->master, sizeof(srv->master));
  pthread_mutex_destroy(&srv->stop_lock);
  free(srv);
}

int kite_server_udp_port(const kite_server *srv) { return srv->port; }

int kite_server_tcp_port(const kite_server *srv) { return srv->tcp_port; }

int kite_server_metrics_port(const kite_server *srv) {
  return srv->metrics ? kite__metrics_http_port(srv->metrics) : 0;
}

int kite_session_send(kite_server *srv, kite_session_id id, uint16_t msg_id,
                      const void *body, size_t len) {
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN)
    return KITE_EINVAL;
  if (len > srv->cfg.max_frame)
    return KITE_EMSGSIZE;
  kite__session *s = kite__session_by_id(srv, id);
  if (!s)
    return KITE_ENOTFOUND;
  kite__shard *sh = s->shard;
  if (kite__shard_current() == sh) {
    if (s->state == KITE__S_ZOMBIE || s->close_pending != KITE__NO_CLOSE ||
        (kite__mailbox_flags(&s->mb) & KITE__MB_CLOSING))
      return KITE_ECLOSED; /* nothing more goes out (logic.h) */
    if (s->state != KITE__S_OPEN && s->state != KITE__S_CLOSING)
      return KITE_ENOTFOUND;
    int rc = kite__session_send_frame(s, msg_id, 0, body, len);
    if (rc == 0)
      KITE__STAT_INC(sh, frames_out);
    return rc;
  }
  if (kite__logic_closing(s))
    return KITE_ECLOSED;
  /* Another thread: reserve room in the session's queue, then hand over. */
  uint32_t segs = kite__frame_segs(srv, KITE__FRAME_HDR + len);
  if (!kite__session_reserve(s, segs))
    return KITE_EFULL;
  kite__cmd *cmd = malloc(sizeof(*cmd) + len);
  if (!cmd) {
    kite__session_unreserve(s, segs);
    return KITE_ENOMEM;
  }
  cmd->type = KITE__CMD_SEND;
  cmd->msg_id = msg_id;
  cmd->len = (uint32_t)len;
  cmd->segs = segs;
  cmd->id = id;
  if (len) /* body may be NULL then */
    memcpy(cmd->data, body, len);
  if (!kite__shard_post(sh, cmd)) {
    kite__session_unreserve(s, segs);
    free(cmd);
    return KITE_EFULL;
  }
  return 0;
}

int kite_session_close(kite_server *srv, kite_session_id id) {
  return kite__session_close_any(srv, id, KITE_CLOSE_KICKED);
}

/* The session, when the caller is its executor (its callbacks). The
 * executor test comes first: only the executor may read the state. */
static kite__session *own_session(kite_server *srv, kite_session_id id) {
  kite__session *s = kite__session_by_id(srv, id);
  if (!s || !kite__logic_on_executor(&srv->logic, s) || s->state == KITE__S_FREE)
    return NULL;
  return s;
}

int kite_session_set_user(kite_server *srv, kite_session_id id, void *user) {
  kite__session *s = own_session(srv, id);
  if (!s)
    return KITE_ENOTFOUND;
  s->user = user;
  return 0;
}

void *kite_session_user(kite_server *srv, kite_session_id id) {
  kite__session *s = own_session(srv, id);
  return s ? s->user : NULL;
}

int kite_session_get_stats(kite_server *srv, kite_session_id id,
                           kite_session_stats *out) {
  kite__session *s = kite__session_by_id(srv, id);
  if (!s || !atomic_load_explicit(&s->live, memory_order_relaxed))
    return KITE_ENOTFOUND;
  if (kite__shard_current() != s->shard)
    return srv->logic.mode == KITE_WORKERS_INLINE ? KITE_ENOTFOUND : KITE_ESTATE;
  if (s->tcp) {
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    getsockopt(s->tcp->fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
    out->srtt_ms = ti.tcpi_rtt / 1000; /* the kernel's figures, in us */
    out->rttvar_ms = ti.tcpi_rttvar / 1000;
    out->rto_ms = ti.tcpi_rto / 1000;
    out->retransmits = ti.tcpi_total_retrans;
  } else {
    kite__kcp_stats st;
    kite__kcp_get_stats(s->kcp, &st);
    out->srtt_ms = st.srtt_ms;
    out->rttvar_ms = st.rttvar_ms;
    out->rto_ms = st.rto_ms;
    out->retransmits = st.retransmits + st.fast_retransmits;
  }
  out->bytes_in = s->bytes_in;
  out->bytes_out = s->bytes_out;
  out->frames_in = s->frames_in;
  out->frames_out = s->frames_out;
  kite__addr_format(&s->peer, out->peer, sizeof(out->peer));
  return 0;
}

void kite_server_stats_get(const kite_server *srv, kite_server_stats *out) {
  memset(out, 0, sizeof(*out));
  uint64_t *field = (uint64_t *)out;
  for (uint32_t i = 0; i < srv->nshards; i++)
    for (int k = 0; k < KITE__ST_COUNT; k++)
      field[k] += atomic_load_explicit(&srv->shards[i].stats[k],
                                       memory_order_relaxed);
  const kite__logic *lg = &srv->logic;
  out->unrouted = atomic_load_explicit(&lg->unrouted, memory_order_relaxed);
  out->drop_after_close = atomic_load_explicit(&lg->drop_after_close, memory_order_relaxed);
  out->temp_workers = atomic_load_explicit(&lg->temps_running, memory_order_relaxed);
  out->temp_workers_started = atomic_load_explicit(&lg->temps_started, memory_order_relaxed);
  out->inbox_full += atomic_load_explicit(&srv->logic.posts_refused, memory_order_relaxed);
}
