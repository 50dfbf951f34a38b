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

/* Out of descriptors: gives up the spare, accepts the connection waiting
 * (if any), closes it (the peer sees the refusal) and takes the spare
 * back. Every shard's acceptor shares the process's table, so the slot
 * the spare frees can go to another thread first: the accept then fails
 * too, the connection stays queued, and the caller must back off. */
static int refuse_one(kite__tcp_acceptor *ac) {
  if (ac->spare < 0 && (ac->spare = open_spare()) < 0)
    return KITE_ESYS; /* nothing to give up: it stays queued */
  close(ac->spare);
  int fd;
  do
    fd = accept4(ac->fd, NULL, NULL, SOCK_CLOEXEC);
  while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
  int e = errno;
  if (fd >= 0)
    close(fd);
  ac->spare = open_spare(); /* may fail too: taken again when it can be */
  if (fd >= 0)
    return KITE_EFULL;
  /* Linux reports EMFILE before it looks at the backlog: only this
   * accept says whether a connection was there at all. */
  if (e == EAGAIN || e == EWOULDBLOCK)
    return KITE_EAGAIN;
  errno = e;
  return KITE_ESYS;
}

int kite__tcp_accept(kite__tcp_acceptor *ac, kite__addr *peer) {
  if (ac->spare < 0) /* lost to a race, or never had: the first slot free */
    ac->spare = open_spare();
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
    /* The new connection's own network errors (accept(2), Linux): it is
     * gone from the backlog, so try the next one. */
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      continue;
    case EAGAIN:
      return KITE_EAGAIN;
    case EMFILE:
    case ENFILE:
      return refuse_one(ac);
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
