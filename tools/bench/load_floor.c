/*
 * The floor: the same load as bare datagrams to a plain UDP echo server
 * (bench/udp_echo_floor), one datagram per frame, through the same batched
 * socket calls kite uses. No reliability: a lost datagram stays lost.
 */
#include "bench.h"
#include "driver.h"

#include "base/clock.h"
#include "net/udp.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct floor_io {
  driver *d;
  struct pollfd *pfd;
  int nsock;
  int *fds;
  kite__udp_tx *tx;
  kite__udp_rx *rx;
  kite__addr server;
} floor_io;

/* A datagram is [session u32][body]. */
static int floor_send(void *transport, uint32_t session, const uint8_t *body,
                      uint32_t len) {
  floor_io *io = transport;
  uint8_t dgram[KITE__UDP_DGRAM_MAX];
  if (len + 4 > sizeof(dgram))
    return -1;
  memcpy(dgram, &session, 4);
  memcpy(dgram + 4, body, len);
  int k = (int)(session % (uint32_t)io->nsock);
  kite__udp_tx_add(&io->tx[k], &io->server, NULL, dgram, len + 4);
  return 0;
}

/* Waits for echoes, reads them all, then sends what the driver queued. */
static void floor_wait(void *transport, int timeout_ms) {
  floor_io *io = transport;
  for (int k = 0; k < io->nsock; k++)
    kite__udp_tx_flush(&io->tx[k]);
  poll(io->pfd, (nfds_t)io->nsock, timeout_ms);
  uint64_t now = kite__now_us();
  for (int k = 0; k < io->nsock; k++) {
    int err, n;
    while ((n = kite__udp_recv(io->fds[k], io->rx, &err)) > 0) {
      for (int i = 0; i < n; i++) {
        uint32_t len = io->rx->msgs[i].msg_len, session;
        if (len < 4) {
          io->d->res->corrupt++;
          continue;
        }
        memcpy(&session, io->rx->buf[i], 4);
        driver_echo(io->d, session, io->rx->buf[i] + 4, len - 4, now);
      }
      if (n < KITE__UDP_BATCH)
        break;
    }
  }
}

int bench_run_floor(const bench_config *cfg, bench_result *res) {
  floor_io io = {0};
  if (kite__addr_parse(&io.server, cfg->server) < 0) {
    fprintf(stderr, "kite-bench: bad address %s\n", cfg->server);
    return -1;
  }
  io.nsock = (int)((cfg->sessions + cfg->per_socket - 1) / cfg->per_socket);
  io.fds = calloc((size_t)io.nsock, sizeof(int));
  io.tx = calloc((size_t)io.nsock, sizeof(kite__udp_tx));
  io.rx = malloc(sizeof(kite__udp_rx));
  if (!io.rx)
    return -1;
  kite__udp_rx_init(io.rx);
  struct pollfd *pfd = calloc((size_t)io.nsock, sizeof(*pfd));
  kite__addr any;
  kite__addr_parse(&any, io.server.sa.sa_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0");
  for (int k = 0; k < io.nsock; k++) {
    int err;
    const char *what;
    io.fds[k] = kite__udp_open(&any, false, &err, &what);
    if (io.fds[k] < 0) {
      fprintf(stderr, "kite-bench: %s failed\n", what);
      return -1;
    }
    kite__udp_tx_init(&io.tx[k], io.fds[k]);
    pfd[k] = (struct pollfd){.fd = io.fds[k], .events = POLLIN};
  }
  driver d;
  driver_init(&d, cfg, res);
  d.send = floor_send;
  d.transport = &io;
  for (uint32_t i = 0; i < cfg->sessions; i++)
    d.sess[i].ready = true;
  res->connected = cfg->sessions;
  io.d = &d;
  io.pfd = pfd;
  driver_run(&d, floor_wait);
  for (int k = 0; k < io.nsock; k++)
    close(io.fds[k]);
  driver_free(&d);
  free(io.fds);
  free(io.tx);
  free(io.rx);
  free(pfd);
  return 0;
}
