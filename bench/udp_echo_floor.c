/*
 * udp_echo_floor: the floor kite's server cost is measured against. The
 * same shape as a kite server (one thread per socket, SO_REUSEPORT, batches
 * of 64 with recvmmsg/sendmmsg, epoll) doing nothing but echo each datagram
 * to its sender: no protocol, no reliability, no sessions.
 *
 *   udp_echo_floor [--udp HOST:PORT] [--threads N]
 *
 * Prints "udp_echo_floor listening on port N", runs until SIGINT/SIGTERM.
 */
#include "net/udp.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static atomic_bool stopping;

typedef struct worker {
  int fd;
  pthread_t thread;
  kite__udp_rx rx;
  kite__udp_tx tx;
  uint64_t echoed;
} worker;

static void *run(void *arg) {
  worker *w = arg;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev);
  kite__udp_tx_init(&w->tx, w->fd);
  kite__udp_rx_init(&w->rx);
  while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
    if (epoll_wait(ep, &ev, 1, 200) <= 0)
      continue;
    int err, n;
    while ((n = kite__udp_recv(w->fd, &w->rx, &err)) > 0) {
      for (int i = 0; i < n; i++)
        kite__udp_tx_add(&w->tx, &w->rx.from[i], &w->rx.local[i], w->rx.buf[i],
                         w->rx.msgs[i].msg_len);
      kite__udp_tx_flush(&w->tx);
      w->echoed += (uint64_t)n;
      if (n < KITE__UDP_BATCH)
        break;
    }
  }
  close(ep);
  return NULL;
}

int main(int argc, char **argv) {
  const char *where = "127.0.0.1:7002";
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--udp"))
      where = argv[i + 1];
    else if (!strcmp(argv[i], "--threads"))
      threads = atoi(argv[i + 1]);
  }
  if (threads < 1 || threads > 64) {
    fprintf(stderr, "usage: udp_echo_floor [--udp HOST:PORT] [--threads N]\n");
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  kite__addr addr;
  if (kite__addr_parse(&addr, where) < 0) {
    fprintf(stderr, "udp_echo_floor: bad address %s\n", where);
    return 2;
  }
  worker *w = calloc((size_t)threads, sizeof(*w));
  int port = 0;
  for (int i = 0; i < threads; i++) {
    int err;
    const char *what;
    w[i].fd = kite__udp_open(&addr, true, &err, &what);
    if (w[i].fd < 0) {
      fprintf(stderr, "udp_echo_floor: %s: %s\n", what, strerror(err));
      return 1;
    }
    if (i == 0) {
      port = kite__udp_local_port(w[0].fd);
      addr.v4.sin_port = htons((uint16_t)port); /* IPv4 or the same offset */
      if (addr.sa.sa_family == AF_INET6)
        addr.v6.sin6_port = htons((uint16_t)port);
    }
  }
  for (int i = 0; i < threads; i++)
    pthread_create(&w[i].thread, NULL, run, &w[i]);
  printf("udp_echo_floor listening on port %d\n", port);
  fflush(stdout);
  int sig;
  sigwait(&sigs, &sig);
  atomic_store(&stopping, true);
  uint64_t total = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(w[i].thread, NULL);
    total += w[i].echoed;
    close(w[i].fd);
  }
  printf("udp_echo_floor stopped: %llu datagrams echoed\n", (unsigned long long)total);
  free(w);
  return 0;
}
