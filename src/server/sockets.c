/*
 * The server's sockets: one UDP socket per shard in a SO_REUSEPORT group
 * (steered by conv in the kernel when it can), each shard's TCP listener
 * on the same port number, and each shard's epoll set and eventfd.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

void kite__server_set_port(kite__addr *a, int port) {
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
    kite__server_set_port(&addr, srv->port);
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

void kite__server_close_sockets(kite_server *srv) {
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
    int rcv = 0, snd = 0;
    kite__udp_set_buffers(fd, (int)srv->cfg.udp_rcvbuf, (int)srv->cfg.udp_sndbuf,
                          &rcv, &snd);
    if (i == 0 && ((uint32_t)rcv < srv->cfg.udp_rcvbuf ||
                   (uint32_t)snd < srv->cfg.udp_sndbuf))
      kite__logf(&srv->log, KITE_LOG_INFO,
                 "udp buffers: asked %u/%u bytes (receive/send), the kernel "
                 "granted %d/%d (net.core.rmem_max, wmem_max cap them)",
                 srv->cfg.udp_rcvbuf, srv->cfg.udp_sndbuf, rcv, snd);
    if (i == 0) { /* port 0: every shard joins the port the first got */
      srv->port = kite__udp_local_port(fd);
      kite__server_set_port(&addr, srv->port);
    }
  }
  return 0;
}

int kite__server_open_sockets(kite_server *srv) {
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
    kite__server_close_sockets(srv);
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
