/*
 * kite sessions through the C client library: several client objects (one
 * socket each, --per-socket sessions per socket), all polled from this one
 * thread. Sessions connect first (the connect rate is reported), then the
 * driver's schedule runs; idle sessions (--rate 0) only ping, which the
 * library does by itself. With a token key (version 2) each session mints
 * its own token for the server, as a backend would per login, and
 * connects with it.
 */
#include "bench.h"
#include "driver.h"

#include "kite/client.h"
#include "kite/token.h"

#include "base/clock.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_MSG_ID 1
#define CONNECTING_MAX 2000 /* handshakes in flight at once */

typedef struct kite_io {
  struct pollfd *pfd;
  int nclient;
  kite_client **clients;
  kite_conn **conns;
  driver *d;
  uint32_t pending; /* handshakes in flight */
} kite_io;

static int kite_send(void *transport, uint32_t session, const uint8_t *body,
                     uint32_t len) {
  kite_io *io = transport;
  return kite_conn_send(io->conns[session], BENCH_MSG_ID, body, len);
}

/* Starts session |next|: by address (version 1), or by a token minted
 * for it (version 2). */
static int start(const bench_config *cfg, kite_client *c, uint32_t next,
                 kite_conn **out) {
  void *user = (void *)(uintptr_t)next;
  bool tcp = cfg->mode == BENCH_KITE_TCP;
  if (!cfg->v2)
    return tcp ? kite_client_connect_tcp(c, cfg->server, user, out)
               : kite_client_connect(c, cfg->server, user, out);
  uint8_t token[KITE_TOKEN_BYTES];
  const char *addrs[] = {cfg->server};
  kite_token_params p = {.protocol_id = cfg->protocol_id,
                         .client_id = next,
                         .ttl_s = 120,
                         .addrs = addrs,
                         .naddrs = 1};
  int rc = kite_token_mint(token, cfg->token_key, &p);
  if (rc == 0)
    rc = tcp ? kite_client_connect_token_tcp(c, token, user, out)
             : kite_client_connect_token(c, token, user, out);
  memset(token, 0, sizeof(token));
  return rc;
}

static void on_connect(kite_conn *c, void *user) {
  kite_io *io = user;
  uint32_t session = (uint32_t)(uintptr_t)kite_conn_user(c);
  io->d->sess[session].ready = true;
  io->d->res->connected++;
  io->pending--;
}

static void on_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                       size_t len, void *user) {
  kite_io *io = user;
  uint32_t session = (uint32_t)(uintptr_t)kite_conn_user(c);
  if (msg_id != BENCH_MSG_ID) {
    io->d->res->corrupt++;
    return;
  }
  driver_echo(io->d, session, body, (uint32_t)len, kite__now_us());
}

static void on_disconnect(kite_conn *c, int reason, void *user) {
  kite_io *io = user;
  uint32_t session = (uint32_t)(uintptr_t)kite_conn_user(c);
  if (!io->d->sess[session].ready)
    io->pending--;
  io->d->sess[session].ready = false;
  io->conns[session] = NULL;
  io->d->res->failed++;
  if (!io->d->cfg->quiet)
    fprintf(stderr, "kite-bench: session %u ended: %s\n", session,
            kite_client_reason_name(reason));
}

/* Polls every client once, waiting up to |timeout_ms| on all sockets. */
static void poll_all(kite_io *io, struct pollfd *pfd, int timeout_ms) {
  for (int k = 0; k < io->nclient; k++) {
    int t = kite_client_timeout_ms(io->clients[k]);
    if (t >= 0 && t < timeout_ms)
      timeout_ms = t;
  }
  poll(pfd, (nfds_t)io->nclient, timeout_ms);
  for (int k = 0; k < io->nclient; k++)
    kite_client_poll(io->clients[k], 0);
}

static void kite_wait(void *transport, int timeout_ms) {
  kite_io *io = transport;
  poll_all(io, io->pfd, timeout_ms);
}

int bench_run_kite(const bench_config *cfg, bench_result *res) {
  kite_io io = {0};
  driver d;
  if (driver_init(&d, cfg, res) < 0)
    return -1;
  d.send = kite_send;
  d.transport = &io;
  io.d = &d;
  io.nclient = (int)((cfg->sessions + cfg->per_socket - 1) / cfg->per_socket);
  io.clients = calloc((size_t)io.nclient, sizeof(*io.clients));
  io.conns = calloc(cfg->sessions, sizeof(*io.conns));
  struct pollfd *pfd = calloc((size_t)io.nclient, sizeof(*pfd));
  for (int k = 0; k < io.nclient; k++) {
    kite_client_config cc;
    kite_client_config_init(&cc);
    cc.max_sessions = cfg->per_socket;
    cc.socket_buffer = 4 << 20;
    if (cfg->ping_ms)
      cc.ping_ms = cfg->ping_ms;
    cc.on_connect = on_connect;
    cc.on_message = on_message;
    cc.on_disconnect = on_disconnect;
    cc.user = &io;
    cc.log_level = KITE_LOG_WARN;
    if (kite_client_create(&io.clients[k], &cc) < 0) {
      fprintf(stderr, "kite-bench: kite_client_create failed\n");
      return -1;
    }
    pfd[k] = (struct pollfd){.fd = kite_client_fd(io.clients[k]), .events = POLLIN};
  }

  /* Connect, at most CONNECTING_MAX handshakes in flight. */
  uint64_t t0 = kite__now_us();
  uint32_t next = 0;
  while (res->connected + res->failed < cfg->sessions) {
    while (next < cfg->sessions && io.pending < CONNECTING_MAX) {
      kite_client *c = io.clients[next / cfg->per_socket];
      int rc = start(cfg, c, next, &io.conns[next]);
      if (rc < 0) {
        fprintf(stderr, "kite-bench: connect: %s\n", kite_strerror(rc));
        return -1;
      }
      io.pending++;
      next++;
    }
    poll_all(&io, pfd, 10);
    if (kite__now_us() - t0 > 120000000) {
      fprintf(stderr, "kite-bench: sessions still connecting after 120 s\n");
      break;
    }
  }
  res->connect_s = (double)(kite__now_us() - t0) / 1e6;

  io.pfd = pfd;
  driver_run(&d, kite_wait);
  for (int k = 0; k < io.nclient; k++)
    kite_client_destroy(io.clients[k]);
  driver_free(&d);
  free(io.clients);
  free(io.conns);
  free(pfd);
  return 0;
}
