#include "net/tcp.h"

#include "kite/error.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(int fd, int *err, const char **what, const char *call) {
  *err = errno;
  if (what)
    *what = call;
  if (fd >= 0)
    close(fd);
  return KITE_ESYS;
}

static int open_spare(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

int kite__tcp_listen(kite__tcp_acceptor *ac, const kite__addr *addr,
                     bool reuseport, int backlog, int *err, const char **what) {
  ac->fd = ac->spare = -1;
  int family = addr->sa.sa_family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail(-1, err, what, "socket()");
  int on = 1, off = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
    return fail(fd, err, what, "setsockopt(SO_REUSEADDR)");
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
    return fail(fd, err, what, "setsockopt(SO_REUSEPORT)");
  if (family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0)
    return fail(fd, err, what, "setsockopt(IPV6_V6ONLY)");
  if (bind(fd, &addr->sa, kite__addr_len(addr)) < 0)
    return fail(fd, err, what, "bind()");
  if (listen(fd, backlog) < 0)
    return fail(fd, err, what, "listen()");
  ac->fd = fd;
  ac->spare = open_spare(); /* best effort: without it, EMFILE waits */
  return 0;
}

void kite__tcp_acceptor_close(kite__tcp_acceptor *ac) {
  if (ac->fd >= 0)
    close(ac->fd);
  if (ac->spare >= 0)
    close(ac->spare);
  ac->fd = ac->spare = -1;
}

int kite__tcp_accept(kite__tcp_acceptor *ac, kite__addr *peer) {
  for (;;) {
    socklen_t len = sizeof(*peer);
    int fd = accept4(ac->fd, &peer->sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      int on = 1; /* frames are small and latency matters: no Nagle */
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
      return fd;
    }
    switch (errno) {
    case EINTR:
    case ECONNABORTED: /* gone before we took it: the next one */
      continue;
    case EAGAIN:
      return KITE_EAGAIN;
    case EMFILE:
    case ENFILE:
      if (ac->spare < 0 && (ac->spare = open_spare()) < 0)
        return KITE_EFULL; /* nothing to give up: it stays queued */
      /* Linux reports EMFILE before it looks at the backlog: only the
       * accept below says whether a connection was there at all. */
      close(ac->spare);
      fd = accept(ac->fd, NULL, NULL);
      int e = errno;
      if (fd >= 0)
        close(fd);
      ac->spare = open_spare();
      if (fd >= 0)
        return KITE_EFULL;
      return e == EAGAIN || e == EWOULDBLOCK ? KITE_EAGAIN : KITE_ESYS;
    default:
      return KITE_ESYS;
    }
  }
}

int kite__tcp_local_port(const kite__tcp_acceptor *ac) {
  kite__addr a;
  socklen_t len = sizeof(a);
  if (getsockname(ac->fd, &a.sa, &len) < 0)
    return -1;
  return kite__addr_port(&a);
}
