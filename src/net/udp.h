/*
 * UDP sockets for kite's shards and clients: non-blocking, batched with
 * recvmmsg/sendmmsg, and carrying each datagram's local address
 * (IP_PKTINFO / IPV6_RECVPKTINFO) so that a reply leaves from the address
 * its request arrived on (PROTOCOL.md section 1; kcp-go drops others).
 *
 * A batch is a fixed array allocated once with its owner: nothing here
 * allocates per datagram.
 */
#ifndef KITE_NET_UDP_H
#define KITE_NET_UDP_H

#include "net/addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KITE__UDP_BATCH 64       /* datagrams per recvmmsg / sendmmsg */
#define KITE__UDP_DGRAM_MAX 2048 /* bytes a receive slot holds */
/* Room for both pktinfo messages and the drop count: an IPv4 datagram on
 * a dual-stack socket carries IPV6_PKTINFO (40 bytes), IP_PKTINFO (32)
 * and SO_RXQ_OVFL (24). */
#define KITE__UDP_CTRL 128

/* A non-blocking UDP socket bound to |addr|, with SO_REUSEPORT when
 * |reuseport| (every shard's socket joins one group) and pktinfo on.
 * An IPv6 wildcard also takes IPv4 (v6only off). Returns the fd, or
 * KITE_ESYS with |err| set to errno and |what| to the failing call. */
int kite__udp_open(const kite__addr *addr, bool reuseport, int *err,
                   const char **what);

/* Steers each datagram of the group to the socket whose index (the order
 * the sockets joined) is its first byte: kite's conv carries the owning
 * shard there (PROTOCOL.md section 1: the conv's lowest byte is the first
 * on the wire). A first byte >= the group's size falls back to the
 * kernel's hash, which is how control packets ("K" = 75) spread. Attach to
 * one socket after all joined. Returns 0 or KITE_ESYS (errno in |err|). */
int kite__udp_steer_by_first_byte(int fd, int *err);

/* Asks for kernel buffers of |rcv| and |snd| bytes (<= 0: leave as is);
 * the kernel caps them at net.core.rmem_max / wmem_max and doubles them
 * for its bookkeeping. What it granted goes to |rcv_got| and |snd_got|
 * (either may be NULL). */
void kite__udp_set_buffers(int fd, int rcv, int snd, int *rcv_got,
                           int *snd_got);

/* The port |fd| is bound to (after binding port 0). */
int kite__udp_local_port(int fd);

typedef struct kite__udp_rx {
  int used; /* headers the last read filled: only they need resetting */
  uint32_t drops; /* the socket's SO_RXQ_OVFL count, as last seen */
  struct mmsghdr msgs[KITE__UDP_BATCH];
  struct iovec iov[KITE__UDP_BATCH];
  kite__addr from[KITE__UDP_BATCH];
  kite__local local[KITE__UDP_BATCH];
  _Alignas(struct cmsghdr) uint8_t ctrl[KITE__UDP_BATCH][KITE__UDP_CTRL];
  uint8_t buf[KITE__UDP_BATCH][KITE__UDP_DGRAM_MAX];
} kite__udp_rx;

/* Points every header at its buffers, once: call before the first read. */
void kite__udp_rx_init(kite__udp_rx *rx);

/* Reads up to KITE__UDP_BATCH datagrams. Returns how many (0 when none is
 * waiting) or KITE_ESYS (errno in |err|). Datagram i: rx->buf[i],
 * rx->msgs[i].msg_len bytes (truncated ones are flagged MSG_TRUNC and
 * should be dropped), from rx->from[i], to rx->local[i]. */
int kite__udp_recv(int fd, kite__udp_rx *rx, int *err);

typedef struct kite__udp_tx {
  int fd;
  int n;
  struct mmsghdr msgs[KITE__UDP_BATCH];
  struct iovec iov[KITE__UDP_BATCH];
  kite__addr to[KITE__UDP_BATCH];
  _Alignas(struct cmsghdr) uint8_t ctrl[KITE__UDP_BATCH][KITE__UDP_CTRL];
  uint8_t buf[KITE__UDP_BATCH][KITE__UDP_DGRAM_MAX];
  uint64_t sent, dropped, bytes; /* datagrams; dropped: kernel refused */
} kite__udp_tx;

void kite__udp_tx_init(kite__udp_tx *tx, int fd);

/* Copies one datagram into the batch, to |to| from |local| (NULL: the
 * socket's address); sends the batch first when it is full. |len| must be
 * at most KITE__UDP_DGRAM_MAX. */
void kite__udp_tx_add(kite__udp_tx *tx, const kite__addr *to,
                      const kite__local *local, const void *data, size_t len);

/* Writing a datagram in place (sealing it there, say): the next slot's
 * buffer (KITE__UDP_DGRAM_MAX bytes), the batch sent first when it is
 * full; then _commit() adds the |len| bytes written there to the batch.
 * Nothing else may touch |tx| in between. */
uint8_t *kite__udp_tx_slot(kite__udp_tx *tx);
void kite__udp_tx_commit(kite__udp_tx *tx, const kite__addr *to,
                         const kite__local *local, size_t len);

/* Sends what the batch holds. A datagram the kernel will not take now
 * (EAGAIN: the send buffer is full) is dropped and counted: UDP may lose
 * it anyway, and KCP retransmits. */
void kite__udp_tx_flush(kite__udp_tx *tx);

#endif
