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
 *
 * The descriptor table is the process's, not the acceptor's: another
 * shard (or any thread) can take the slot the spare frees before this
 * accept does, and then the spare cannot be reopened either. The
 * connection stays queued and the caller is told so (KITE_ESYS, errno
 * EMFILE or ENFILE): it must stop polling the listener for a while (the
 * shard backs off, session_tcp.c). A lost spare is taken again at the
 * next call that finds a slot free, before any connection gets it.
 */
#ifndef KITE_NET_TCP_H
#define KITE_NET_TCP_H

#include "net/addr.h"

#include <stdbool.h>

/* Owned by the one thread that accepts on it (its shard): never shared. */
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
 *   KITE_ESYS    a failure that may leave a connection queued (errno says
 *                which: EMFILE or ENFILE when no descriptor was free and
 *                the spare could not make room, ENOBUFS, ENOMEM...): the
 *                listener stays readable, so calling again at once would
 *                spin; stop polling it for a while first.
 * The network errors accept(2) passes on from a new connection are
 * skipped, as that connection is gone. The calling thread owns |ac|. */
int kite__tcp_accept(kite__tcp_acceptor *ac, kite__addr *peer);

/* The port a listener is bound to (after binding port 0). */
int kite__tcp_local_port(const kite__tcp_acceptor *ac);

#endif
