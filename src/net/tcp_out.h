/*
 * A TCP connection's output: write straight to the socket, and keep only
 * what the kernel did not take.
 *
 * Most sends find the queue empty and the kernel buffer with room: one
 * gathered write (header and body in one writev), nothing copied, nothing
 * allocated. What the kernel refuses is copied into a buffer that grows by
 * doubling up to |max| bytes and is freed as soon as it drains, so an idle
 * connection holds no output memory and a stuck one at most |max|. While
 * the buffer holds bytes, later sends append to it (order is kept) and the
 * owner waits for EPOLLOUT; kite__tcp_out_flush() then writes it out.
 *
 *   bool pollout;
 *   int rc = kite__tcp_out_send(&o, fd, iov, 2, now, &pollout);
 *   if (rc == KITE_EFULL) ...            // over |max|: nothing was sent
 *   else if (rc < 0) ...                 // the socket is broken: close
 *   if (pollout) arm EPOLLOUT;
 *   ... on EPOLLOUT:
 *   rc = kite__tcp_out_flush(&o, fd, now, &pollout);
 *   if (!pollout) disarm EPOLLOUT;
 *
 * A peer that reads nothing: kite__tcp_out_stalled_ms() says how long the
 * queue has waited without the kernel taking a byte, for the slow-peer
 * close. Not thread-safe: a connection belongs to its shard.
 */
#ifndef KITE_NET_TCP_OUT_H
#define KITE_NET_TCP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct kite__tcp_out {
  uint8_t *buf;        /* NULL while empty */
  uint32_t start, end; /* queued bytes are buf[start..end) */
  uint32_t cap, max;
  uint32_t progress_ms; /* when the kernel last took a byte of the queue */
  uint64_t bytes_out;   /* bytes the kernel took, direct or queued */
} kite__tcp_out;

/* An empty queue bounded to |max| bytes. Allocates nothing. */
void kite__tcp_out_init(kite__tcp_out *o, uint32_t max);
void kite__tcp_out_free(kite__tcp_out *o);

/* Bytes waiting for the kernel. */
static inline uint32_t kite__tcp_out_pending(const kite__tcp_out *o) {
  return o->end - o->start;
}

/* Sends the |n| (at most 8) buffers of |iov| as one unit, after whatever
 * is queued. Returns 0 with *pollout saying whether bytes wait for
 * EPOLLOUT, or:
 *   KITE_EFULL   they would take the queue over |max|: nothing was written
 *                or queued (the unit is all or nothing);
 *   KITE_ENOMEM  the buffer could not grow: nothing was queued, but part
 *                may have been written, so the stream is cut: close;
 *   KITE_ESYS    the socket refused (a reset, a closed peer): close.
 * |now_ms| starts the stall clock when bytes are first queued. */
int kite__tcp_out_send(kite__tcp_out *o, int fd, const struct iovec *iov,
                       int n, uint32_t now_ms, bool *pollout);

/* Writes what is queued (on EPOLLOUT). 0 with *pollout false when all of
 * it went (the buffer is freed), true when some still waits; KITE_ESYS
 * when the socket refused: close. */
int kite__tcp_out_flush(kite__tcp_out *o, int fd, uint32_t now_ms,
                        bool *pollout);

/* How long queued bytes have waited for the kernel to take any of them;
 * 0 when nothing is queued. */
uint32_t kite__tcp_out_stalled_ms(const kite__tcp_out *o, uint32_t now_ms);

#endif
