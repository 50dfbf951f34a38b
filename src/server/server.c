/*
 * The server object's life: create (configuration checked, shards and
 * sockets set up), start (workers, shard threads, metrics), a graceful
 * stop, destroy; and the counters summed over shards.
 */
#include "server/server_internal.h"

#include "ops/metrics_http.h"
#include "proto/frame.h"
#include "server/metrics_export.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int kite_server_create(kite_server **out, const kite_server_config *cfg) {
  *out = NULL;
  if (sodium_init() < 0)
    return KITE_ESYS;
  kite_server *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return KITE_ENOMEM;
  srv->cfg = *cfg;
  srv->http_root_fd = -1;
  srv->cfg.http_root = NULL; /* its descriptor is what is kept */
  kite__log_init(&srv->log, cfg->log, cfg->log_user, cfg->log_level);
  pthread_mutex_init(&srv->stop_lock, NULL);
  int rc = kite__server_config_check(cfg, &srv->log);
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
  /* Version 2: 0 means 1, and 2 as well when there is a key. */
  if (!srv->cfg.versions)
    srv->cfg.versions = KITE_VERSION_1 | (cfg->token_key_set ? KITE_VERSION_2 : 0);
  if (cfg->public_addr) {
    srv->public_addr = strdup(cfg->public_addr);
    srv->cfg.public_addr = srv->public_addr;
    if (!srv->public_addr) {
      rc = KITE_ENOMEM;
      goto fail;
    }
    if (kite__addr_parse(&srv->public_bind, srv->public_addr) < 0) {
      kite__logf(&srv->log, KITE_LOG_ERROR,
                 "config: public_addr \"%s\" is not HOST:PORT", srv->public_addr);
      rc = KITE_EINVAL;
      goto fail;
    }
  }
  if (cfg->ws_origins) {
    srv->ws_origins = strdup(cfg->ws_origins);
    srv->cfg.ws_origins = srv->ws_origins;
    if (!srv->ws_origins) {
      rc = KITE_ENOMEM;
      goto fail;
    }
  }
  if (cfg->http_root) {
    srv->http_root_fd = open(cfg->http_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srv->http_root_fd < 0) {
      kite__logf(&srv->log, KITE_LOG_ERROR, "config: http_root \"%s\": %s",
                 cfg->http_root, strerror(errno));
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
                              : (uint32_t)(cpus > 0 ? (cpus < KITE__SHARDS_MAX ? cpus : KITE__SHARDS_MAX) : 1);
  /* Slots per shard: twice a fair share, so an unlucky spread still fits. */
  uint32_t per_shard = cfg->max_sessions / srv->nshards * 2 + 64;
  if (per_shard > cfg->max_sessions)
    per_shard = cfg->max_sessions;
  srv->slots_per_shard = per_shard;
  srv->tcp_queue_max = kite__frame_segs(srv, cfg->tcp_send_max);
  if (srv->tcp_addr && (cfg->tcp_max_per_addr || cfg->tcp_max_per_prefix)) {
    srv->tcp_src = kite__src_limit_new(cfg->tcp_max_per_addr,
                                       cfg->tcp_max_per_prefix);
    if (!srv->tcp_src) {
      rc = KITE_ENOMEM;
      goto fail;
    }
  }
  if ((srv->cfg.versions & KITE_VERSION_2) &&
      (rc = kite__tokens_init(&srv->tokens, srv->nshards,
                              cfg->token_record_max)) < 0)
    goto fail;
  srv->v2tok.protocol_id = cfg->protocol_id;
  srv->v2tok.key = srv->cfg.token_key;
  if (srv->public_addr) {
    if (kite__v2addr_from_sockaddr(&srv->public_bind.sa, &srv->v2public) < 0) {
      kite__logf(&srv->log, KITE_LOG_ERROR,
                 "config: public_addr \"%s\" cannot be a token's address",
                 srv->public_addr);
      rc = KITE_EINVAL;
      goto fail;
    }
    srv->v2tok.public_addrs = &srv->v2public;
    srv->v2tok.n_public = 1;
  }
  randombytes_buf(srv->master, sizeof(srv->master));
  randombytes_buf(srv->route_key, sizeof(srv->route_key));
  atomic_init(&srv->sessions, 0);
  atomic_init(&srv->bcast_refused, 0);
  atomic_init(&srv->stopping, false);
  atomic_init(&srv->started, false);
  srv->shards = calloc(srv->nshards, sizeof(*srv->shards));
  if (!srv->shards) {
    rc = KITE_ENOMEM;
    goto fail;
  }
  if ((rc = kite__logic_create(&srv->logic, srv, &srv->cfg, srv->nshards,
                               per_shard)) < 0)
    goto fail;
  for (uint32_t i = 0; i < srv->nshards; i++)
    if ((rc = kite__shard_init(&srv->shards[i], srv, i)) < 0)
      goto fail;
  if ((rc = kite__server_open_sockets(srv)) < 0)
    goto fail;
  *out = srv;
  return 0;
fail:
  kite_server_destroy(srv);
  return rc;
}

int kite_server_start(kite_server *srv) {
  if (atomic_exchange(&srv->started, true))
    return KITE_ESTATE;
  if (kite__logic_start(srv->logic) < 0) {
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
    kite__server_set_port(&t, srv->tcp_port);
    snprintf(tcp, sizeof(tcp), ", tcp %s (port %d)",
             kite__addr_format(&t, b, sizeof(b)), srv->tcp_port);
  }
  kite__logf(&srv->log, KITE_LOG_INFO,
             "listening on udp %s (port %d)%s, %u shards, steering %s, workers %s (%u)",
             kite__addr_format(&srv->bind, a, sizeof(a)), srv->port, tcp,
             srv->nshards, srv->steering ? "on" : "off (hand-offs)",
             kite_worker_mode_name(kite__logic_mode(srv->logic)),
             kite__logic_workers(srv->logic));
  return 0;
}

/* Whether the calling thread is one the server runs callbacks on: a
 * shard's or (worker modes) a worker's. Stopping or destroying from one
 * would wait for itself. */
static bool on_own_thread(const kite_server *srv) {
  return kite__shard_current() || (srv->logic && kite__logic_on_worker(srv->logic));
}

int kite_server_stop(kite_server *srv) {
  if (on_own_thread(srv))
    return KITE_ESTATE; /* from a callback: it would wait for itself */
  pthread_mutex_lock(&srv->stop_lock);
  if (srv->stopped || !atomic_load(&srv->started)) {
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
  kite__logic_stop(srv->logic);
  srv->stopped = true;
  pthread_mutex_unlock(&srv->stop_lock);
  kite__logf(&srv->log, KITE_LOG_INFO, "stopped");
  return 0;
}

void kite_server_destroy(kite_server *srv) {
  if (!srv)
    return;
  if (on_own_thread(srv)) { /* it would wait for, then free, itself */
    kite__logf(&srv->log, KITE_LOG_ERROR,
               "kite_server_destroy() from a callback's thread: refused");
    return;
  }
  kite_server_stop(srv);
  if (srv->shards)
    for (uint32_t i = 0; i < srv->nshards; i++)
      kite__shard_free(&srv->shards[i]);
  kite__logic_free(srv->logic);
  free(srv->shards);
  free(srv->udp_addr);
  free(srv->tcp_addr);
  kite__src_limit_free(srv->tcp_src); /* after the shards: they count in it */
  free(srv->ws_origins);
  free(srv->public_addr);
  kite__tokens_free(&srv->tokens); /* after the shards: they bind in it */
  sodium_memzero(srv->cfg.token_key, sizeof(srv->cfg.token_key));
  if (srv->http_root_fd >= 0)
    close(srv->http_root_fd);
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

void kite_server_stats_get(const kite_server *srv, kite_server_stats *out) {
  memset(out, 0, sizeof(*out));
  uint64_t *field = (uint64_t *)out;
  for (uint32_t i = 0; i < srv->nshards; i++)
    for (int k = 0; k < KITE__ST_COUNT; k++)
      field[k] += atomic_load_explicit(&srv->shards[i].stats[k],
                                       memory_order_relaxed);
  kite__logic_stats(srv->logic, out);
  out->inbox_full += atomic_load_explicit(&srv->bcast_refused, memory_order_relaxed);
}
