/*
 * ENet peers (bench/compare's enet_echo): each frame is one reliable packet
 * on channel 0. ENet numbers a host's peers with 12 bits, so sessions are
 * spread over client hosts of at most 4,095 peers each (fewer with
 * --per-socket), one socket per host, all polled from this thread. Sessions
 * connect first, at most CONNECTING_MAX at once, then the driver runs.
 */
#include "bench.h"
#include "driver.h"

#include "base/clock.h"
#include "net/addr.h"

#include <enet/enet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#define CONNECTING_MAX 2000
#define CONNECT_TIMEOUT_US 120000000u

typedef struct enet_io {
  driver *d;
  ENetHost **hosts;
  ENetPeer **peers;
  struct pollfd *pfd;
  int nhost;
  uint32_t pending; /* connects in flight */
} enet_io;

static int enet_send(void *transport, uint32_t session, const uint8_t *body,
                     uint32_t len) {
  enet_io *io = transport;
  ENetPacket *p = enet_packet_create(body, len, ENET_PACKET_FLAG_RELIABLE);
  if (!p)
    return -1;
  if (enet_peer_send(io->peers[session], 0, p) < 0) {
    enet_packet_destroy(p);
    return -1;
  }
  return 0;
}

static void on_event(enet_io *io, const ENetEvent *ev, uint64_t now_us) {
  uint32_t session = (uint32_t)(uintptr_t)ev->peer->data;
  driver_session *s = &io->d->sess[session];
  switch (ev->type) {
  case ENET_EVENT_TYPE_CONNECT:
    s->ready = true;
    io->d->res->connected++;
    io->pending--;
    break;
  case ENET_EVENT_TYPE_RECEIVE:
    driver_echo(io->d, session, ev->packet->data, (uint32_t)ev->packet->dataLength, now_us);
    enet_packet_destroy(ev->packet);
    break;
  case ENET_EVENT_TYPE_DISCONNECT:
    if (!s->ready)
      io->pending--; /* refused or timed out while connecting */
    s->ready = false;
    io->d->res->failed++;
    if (!io->d->cfg->quiet)
      fprintf(stderr, "kite-bench: session %u: ENet peer disconnected\n", session);
    break;
  default:
    break;
  }
}

/* Sends what is queued, waits up to |timeout_ms| on every host, and serves
 * each (ENet reads, acks and resends inside enet_host_service()). */
static void enet_wait(void *transport, int timeout_ms) {
  enet_io *io = transport;
  for (int k = 0; k < io->nhost; k++)
    enet_host_flush(io->hosts[k]);
  poll(io->pfd, (nfds_t)io->nhost, timeout_ms);
  uint64_t now = kite__now_us();
  for (int k = 0; k < io->nhost; k++) {
    ENetEvent ev;
    while (enet_host_service(io->hosts[k], &ev, 0) > 0)
      on_event(io, &ev, now);
  }
}

/* ENet 1.3 speaks IPv4 only: the address in network order, the port not. */
static int parse_server(const char *s, ENetAddress *out) {
  kite__addr a;
  if (kite__addr_parse(&a, s) < 0 || a.sa.sa_family != AF_INET)
    return -1;
  out->host = a.v4.sin_addr.s_addr;
  out->port = kite__addr_port(&a);
  return 0;
}

int bench_run_enet(const bench_config *cfg, bench_result *res) {
  enet_io io = {0};
  ENetAddress server;
  if (enet_initialize() != 0 || parse_server(cfg->server, &server) < 0) {
    fprintf(stderr, "kite-bench: bad ENet address %s\n", cfg->server);
    return -1;
  }
  uint32_t per_host = cfg->per_socket < ENET_PROTOCOL_MAXIMUM_PEER_ID
                          ? cfg->per_socket : ENET_PROTOCOL_MAXIMUM_PEER_ID;
  driver d;
  if (driver_init(&d, cfg, res) < 0)
    return -1;
  io.d = &d;
  io.nhost = (int)((cfg->sessions + per_host - 1) / per_host);
  io.hosts = calloc((size_t)io.nhost, sizeof(*io.hosts));
  io.peers = calloc(cfg->sessions, sizeof(*io.peers));
  io.pfd = calloc((size_t)io.nhost, sizeof(*io.pfd));
  if (!io.hosts || !io.peers || !io.pfd)
    return -1;
  for (int k = 0; k < io.nhost; k++) {
    io.hosts[k] = enet_host_create(NULL, per_host, 1, 0, 0);
    if (!io.hosts[k]) {
      fprintf(stderr, "kite-bench: enet_host_create failed\n");
      return -1;
    }
    enet_socket_set_option(io.hosts[k]->socket, ENET_SOCKOPT_RCVBUF, 4 << 20);
    enet_socket_set_option(io.hosts[k]->socket, ENET_SOCKOPT_SNDBUF, 4 << 20);
    io.pfd[k] = (struct pollfd){.fd = io.hosts[k]->socket, .events = POLLIN};
  }

  uint64_t t0 = kite__now_us();
  uint32_t next = 0;
  while (next < cfg->sessions || io.pending > 0) {
    while (next < cfg->sessions && io.pending < CONNECTING_MAX) {
      io.peers[next] = enet_host_connect(io.hosts[next / per_host], &server, 1, 0);
      if (!io.peers[next]) {
        fprintf(stderr, "kite-bench: enet_host_connect failed\n");
        return -1;
      }
      io.peers[next]->data = (void *)(uintptr_t)next;
      io.pending++;
      next++;
    }
    enet_wait(&io, 10);
    if (kite__now_us() - t0 > CONNECT_TIMEOUT_US) {
      fprintf(stderr, "kite-bench: sessions still connecting after 120 s\n");
      break;
    }
  }
  res->connect_s = (double)(kite__now_us() - t0) / 1e6;

  d.send = enet_send;
  d.transport = &io;
  driver_run(&d, enet_wait);
  for (int k = 0; k < io.nhost; k++)
    enet_host_destroy(io.hosts[k]);
  enet_deinitialize();
  driver_free(&d);
  free(io.hosts);
  free(io.peers);
  free(io.pfd);
  return 0;
}
