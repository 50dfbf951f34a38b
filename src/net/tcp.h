/*
 * TCP sockets for kite's shards and clients: listeners that share a port
 * across shards (SO_REUSEPORT), and an accept that survives running out
 * of descriptors.
 *
 * When accept() fails for want of a descriptor the connection stays in the
 * backlog, and a level-triggered epoll reports the listener readable again
 * at once: a busy loop. The acceptor keeps one spare descriptor: it gives
 * it up, accepts the connection, closes it (the peer sees the refusal),
 * and takes the spare back. So each waiting connection costs one refusal,
 * and the backlog empties.
 */
#ifndef KITE_NET_TCP_H
#define KITE_NET_TCP_H

#include "net/addr.h"

#include <stdbool.h>

typedef struct kite__tcp_acceptor {
  int fd;    /* the listener, non-blocking */
  int spare; /* an open descriptor kept for the EMFILE dance, or -1 */
} kite__tcp_acceptor;

/* Listens on |addr| with SO_REUSEADDR (a restart need not wait out
 * TIME_WAIT), SO_REUSEPORT when |reuseport| (every shard's listener joins
 * one group) and, for an IPv6 wildcard, IPv4 too. Returns 0, or KITE_ESYS
 * with |err| set to errno and |what| to the failing call. */
int kite__tcp_listen(kite__tcp_acceptor *ac, const kite__addr *addr,
                     bool reuseport, int backlog, int *err, const char **what);

void kite__tcp_acceptor_close(kite__tcp_acceptor *ac);

/* Accepts one connection: a non-blocking, close-on-exec descriptor with
 * TCP_NODELAY on, its peer in |*peer|. Or:
 *   KITE_EAGAIN  none waiting;
 *   KITE_EFULL   one was waiting but no descriptor was free: it was
 *                accepted and closed at once (count it), call again;
 *   KITE_ESYS    another failure (errno says which): the listener stays. */
int kite__tcp_accept(kite__tcp_acceptor *ac, kite__addr *peer);

/* The port a listener is bound to (after binding port 0). */
int kite__tcp_local_port(const kite__tcp_acceptor *ac);

#endif
