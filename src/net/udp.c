#include "net/udp.h"

#include "kite/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <string.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

static int fail(int fd, int *err, const char **what, const char *call) {
  *err = errno;
  if (what)
    *what = call;
  if (fd >= 0)
    close(fd);
  return KITE_ESYS;
}

int kite__udp_open(const kite__addr *addr, bool reuseport, int *err,
                   const char **what) {
  int family = addr->sa.sa_family;
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail(-1, err, what, "socket()");
  int on = 1, off = 0;
  if (reuseport &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
    return fail(fd, err, what, "setsockopt(SO_REUSEPORT)");
  if (family == AF_INET6) {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) < 0)
      return fail(fd, err, what, "setsockopt(IPV6_RECVPKTINFO)");
  }
  /* Also on an IPv6 socket: v4-mapped datagrams carry IP_PKTINFO. */
  if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) < 0 &&
      family == AF_INET)
    return fail(fd, err, what, "setsockopt(IP_PKTINFO)");
  /* Large kernel buffers ride out bursts (best effort: the kernel caps them
   * at net.core.rmem_max / wmem_max). */
  kite__udp_set_buffers(fd, 4 << 20, 4 << 20, NULL, NULL);
  /* Each datagram then says how many the kernel dropped on this socket
   * for want of buffer (best effort: counted where the kernel says). */
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on));
  if (bind(fd, &addr->sa, kite__addr_len(addr)) < 0)
    return fail(fd, err, what, "bind()");
  return fd;
}

void kite__udp_set_buffers(int fd, int rcv, int snd, int *rcv_got,
                           int *snd_got) {
  if (rcv > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
  if (snd > 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
  socklen_t len = sizeof(int);
  if (rcv_got && getsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcv_got, &len) < 0)
    *rcv_got = 0;
  len = sizeof(int);
  if (snd_got && getsockopt(fd, SOL_SOCKET, SO_SNDBUF, snd_got, &len) < 0)
    *snd_got = 0;
}

int kite__udp_steer_by_first_byte(int fd, int *err) {
  /* A = payload[0]; return A. An index past the group falls back to the
   * kernel's hash. (cBPF word loads are big-endian; a byte load is not.) */
  struct sock_filter code[] = {
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 0},
      {BPF_RET | BPF_A, 0, 0, 0},
  };
  /* Zeroed whole: the padding after .len goes to the kernel too, and an
   * uninitialised byte there is what valgrind saw on every start. */
  struct sock_fprog prog;
  memset(&prog, 0, sizeof(prog));
  prog.len = 2;
  prog.filter = code;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
                 sizeof(prog)) < 0) {
    *err = errno;
    return KITE_ESYS;
  }
  return 0;
}

int kite__udp_local_port(int fd) {
  kite__addr a;
  socklen_t len = sizeof(a);
  if (getsockname(fd, &a.sa, &len) < 0)
    return -1;
  return kite__addr_port(&a);
}

/* The first pktinfo wins: on a dual-stack socket the kernel puts
 * IPV6_PKTINFO (a v4-mapped address for IPv4) first, and replies from a
 * v6 socket take that form. SO_RXQ_OVFL, when present, is the socket's
 * running count of datagrams dropped for want of buffer. */
static void parse_ctrl(struct msghdr *h, kite__local *local, uint32_t *drops) {
  local->family = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      uint32_t n;
      memcpy(&n, CMSG_DATA(c), sizeof(n));
      if ((int32_t)(n - *drops) > 0)
        *drops = n;
    } else if (local->family) {
      continue;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      local->family = AF_INET;
      local->ifindex = (uint32_t)pi.ipi_ifindex;
      local->addr.v4 = pi.ipi_addr;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      local->family = AF_INET6;
      local->ifindex = pi.ipi6_ifindex;
      local->addr.v6 = pi.ipi6_addr;
    }
  }
}

void kite__udp_rx_init(kite__udp_rx *rx) {
  for (int i = 0; i < KITE__UDP_BATCH; i++) {
    rx->iov[i] = (struct iovec){rx->buf[i], KITE__UDP_DGRAM_MAX};
    struct msghdr *h = &rx->msgs[i].msg_hdr;
    h->msg_name = &rx->from[i];
    h->msg_iov = &rx->iov[i];
    h->msg_iovlen = 1;
    h->msg_control = rx->ctrl[i];
  }
  rx->used = KITE__UDP_BATCH;
  rx->drops = 0;
}

int kite__udp_recv(int fd, kite__udp_rx *rx, int *err) {
  /* The kernel rewrites the lengths of the headers it fills; the rest are
   * as the last call left them. Resetting all 64 each call cost a quarter
   * of an idle shard's instructions (callgrind). */
  for (int i = 0; i < rx->used; i++) {
    struct msghdr *h = &rx->msgs[i].msg_hdr;
    h->msg_namelen = sizeof(rx->from[i]);
    h->msg_controllen = KITE__UDP_CTRL;
    h->msg_flags = 0;
  }
  int n;
  do
    n = recvmmsg(fd, rx->msgs, KITE__UDP_BATCH, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  rx->used = n > 0 ? n : 1; /* a failed call may still have touched the first */
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    *err = errno;
    return KITE_ESYS;
  }
  for (int i = 0; i < n; i++)
    parse_ctrl(&rx->msgs[i].msg_hdr, &rx->local[i], &rx->drops);
  return n;
}

void kite__udp_tx_init(kite__udp_tx *tx, int fd) {
  /* Not the 96 KiB of buffers; but the counters after them, which
   * account_tx() reads from the start. */
  memset(tx, 0, offsetof(kite__udp_tx, buf));
  tx->sent = tx->dropped = tx->bytes = 0;
  tx->fd = fd;
}

static size_t put_local(uint8_t *ctrl, const kite__addr *to,
                        const kite__local *local) {
  if (!local || local->family == 0)
    return 0;
  struct msghdr h = {.msg_control = ctrl, .msg_controllen = KITE__UDP_CTRL};
  struct cmsghdr *c = CMSG_FIRSTHDR(&h);
  memset(ctrl, 0, KITE__UDP_CTRL);
  if (local->family == AF_INET6 && to->sa.sa_family == AF_INET6) {
    struct in6_pktinfo pi = {.ipi6_addr = local->addr.v6,
                             .ipi6_ifindex = local->ifindex};
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(pi));
    memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    return CMSG_SPACE(sizeof(pi));
  }
  if (local->family == AF_INET) {
    /* ipi_spec_dst sets the source; ifindex 0 lets routing pick the way. */
    struct in_pktinfo pi = {.ipi_spec_dst = local->addr.v4};
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(pi));
    memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    return CMSG_SPACE(sizeof(pi));
  }
  return 0;
}

uint8_t *kite__udp_tx_slot(kite__udp_tx *tx) {
  if (tx->n == KITE__UDP_BATCH)
    kite__udp_tx_flush(tx);
  return tx->buf[tx->n];
}

void kite__udp_tx_add(kite__udp_tx *tx, const kite__addr *to,
                      const kite__local *local, const void *data, size_t len) {
  uint8_t *slot = kite__udp_tx_slot(tx);
  if (data != slot)
    memcpy(slot, data, len);
  kite__udp_tx_commit(tx, to, local, len);
}

void kite__udp_tx_commit(kite__udp_tx *tx, const kite__addr *to,
                         const kite__local *local, size_t len) {
  int i = tx->n++;
  tx->to[i] = *to;
  tx->iov[i] = (struct iovec){tx->buf[i], len};
  struct msghdr *h = &tx->msgs[i].msg_hdr;
  h->msg_name = &tx->to[i];
  h->msg_namelen = kite__addr_len(to);
  h->msg_iov = &tx->iov[i];
  h->msg_iovlen = 1;
  size_t clen = put_local(tx->ctrl[i], to, local);
  h->msg_control = clen ? tx->ctrl[i] : NULL;
  h->msg_controllen = clen;
  h->msg_flags = 0;
  tx->bytes += len;
}

void kite__udp_tx_flush(kite__udp_tx *tx) {
  int done = 0;
  while (done < tx->n) {
    int n = sendmmsg(tx->fd, tx->msgs + done, (unsigned)(tx->n - done), 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      /* EAGAIN, or an error for the first datagram (say, an unreachable
       * address): drop that one and go on with the rest. */
      tx->dropped++;
      done++;
      continue;
    }
    tx->sent += (uint64_t)n;
    done += n;
  }
  tx->n = 0;
}
