/*
 * A server-side WebSocket connection (RFC 6455) over wslay, for issue 17:
 * each binary message a browser sends carries bytes of the stream a kite
 * TCP session carries (OPEN, then frames: PROTOCOL.md sections 4 and 5),
 * and each message kite sends carries bytes of the stream back.
 *
 *   kite__ws ws;
 *   if (kite__ws_init(&ws, max_message, write_fn, conn, &shard->ws_stats))
 *     ...;                                   // KITE_ENOMEM
 *   ... after the 101 (proto/http_req.h), for each read:
 *   ptrdiff_t used = kite__ws_feed(&ws, buf, n, on_bytes, conn);
 *   if (used == KITE_ECLOSED) ...            // closing handshake done: close
 *   else if (used < 0) ...                   // refused (why: ws.close_sent)
 *   else if ((size_t)used < n) ...           // on_bytes stopped: keep the
 *                                            // rest, feed it again later
 *   ... to send kite's stream bytes (a frame, header first):
 *   kite__ws_send(&ws, iov, 2);              // one binary message
 *   kite__ws_close(&ws, KITE__WS_NORMAL, NULL, 0);
 *   kite__ws_free(&ws);
 *
 * Why wslay's frame API and not its event API (wslay_event_*): the event
 * API copies every queued message into a buffer malloc'd per message, keeps
 * its own output queue beside the connection's, reassembles fragmented
 * messages into more malloc'd buffers, and pulls input and pushes output
 * through callbacks meant to call recv() and send() themselves. A shard
 * writes straight to the socket and keeps only what the kernel refused, in
 * one bounded buffer (net/tcp_out.h, docs/TCP.md); reads into its own
 * buffer; and never allocates per message. The frame API fits that: it
 * parses headers and unmasks in place in one 4 KiB buffer allocated with
 * the context, and encodes headers; everything else is here, without
 * allocation:
 *   - input: bytes are copied once into wslay's buffer (the unmasking needs
 *     a writable copy anyway), and each payload piece goes to the caller's
 *     callback as it comes. A message's payload is a piece of a byte stream
 *     that kite's frame reader reassembles in any cut, so a fragmented
 *     message is passed on fragment by fragment, never gathered: the limit
 *     |max_message| still holds for the message's total (across its
 *     fragments), checked from each frame's header before any of its
 *     payload is passed on;
 *   - output: the header that wslay encodes and the caller's iovecs go to
 *     |write| as one gathered unit, which the owner hands to
 *     kite__tcp_out_send(): a direct write, the remainder queued, EPOLLOUT
 *     only while something waits, all bounded by tcp_send_max;
 *   - control frames: a ping is answered at once with a pong of the same
 *     payload (dropped and counted when the output is full: RFC 6455 section
 *     5.5.3 lets an endpoint answer only the latest ping), a pong is
 *     ignored, a close is answered with the same status code.
 *
 * Refusals, each with the close code sent and a counter:
 *   1002  an unmasked frame (section 5.1: a client MUST mask), RSV bits,
 *         an unknown opcode, a continuation without a message, a new message
 *         inside a fragmented one, a bad control frame or close payload;
 *   1003  a text frame: kite's stream is binary;
 *   1009  a message over |max_message| bytes.
 *
 * Not thread-safe: a connection and its stats belong to one thread (the
 * shard that owns the connection).
 */
#ifndef KITE_NET_WS_H
#define KITE_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Close codes (RFC 6455 section 7.4.1) kite sends. */
enum kite__ws_code {
  KITE__WS_NORMAL = 1000,
  KITE__WS_GOING_AWAY = 1001,    /* the server stops */
  KITE__WS_PROTOCOL = 1002,
  KITE__WS_UNSUPPORTED = 1003,   /* a text frame */
  KITE__WS_TOO_BIG = 1009,
  KITE__WS_INTERNAL = 1011,
};

/* Iovecs kite__ws_send() takes: 8 (kite__tcp_out_send()'s) less the header. */
#define KITE__WS_IOV_MAX 7

/* Counters, X(name, help). Plain integers, on the owner's thread. */
#define KITE__WS_STATS(X)                                                     \
  X(messages_in, "binary messages received whole")                            \
  X(bytes_in, "payload bytes passed on")                                      \
  X(fragments_in, "continuation frames received")                             \
  X(pings_in, "pings received")                                               \
  X(pongs_out, "pongs sent in answer")                                        \
  X(pongs_dropped, "pongs not sent: the output was full")                     \
  X(pongs_in, "pongs received (ignored)")                                     \
  X(closes_in, "close frames received")                                       \
  X(discarded_in, "payload bytes that came after our close: dropped")         \
  X(messages_out, "binary messages sent")                                     \
  X(refused_unmasked, "unmasked client frames (closed 1002)")                 \
  X(refused_text, "text frames (closed 1003)")                                \
  X(refused_too_big, "messages over max_message (closed 1009)")               \
  X(refused_proto, "other protocol errors (closed 1002)")

typedef struct kite__ws_stats {
#define KITE__WS_STAT_FIELD(name, help) uint64_t name;
  KITE__WS_STATS(KITE__WS_STAT_FIELD)
#undef KITE__WS_STAT_FIELD
} kite__ws_stats;

/* Writes one unit, all or nothing, as kite__tcp_out_send() does: 0, or
 * KITE_EFULL (nothing written: the output is full), or another negative
 * code (the connection is broken). Called from inside kite__ws_feed()
 * (pongs, the answer to a close, a refusal's close) and from
 * kite__ws_send() and kite__ws_close(). */
typedef int (*kite__ws_write_fn)(void *user, const struct iovec *iov, int n);

/* Takes |len| payload bytes of a binary message, in stream order. |data|
 * is valid during the call only. Returns how many it took: |len| to go on,
 * fewer to stop (the rest is held and passed again, first, by the next
 * kite__ws_feed()), or a negative code, which kite__ws_feed() returns. */
typedef ptrdiff_t (*kite__ws_data_fn)(void *user, const uint8_t *data,
                                      size_t len);

enum kite__ws_state {
  KITE__WS_OPEN = 0,
  KITE__WS_CLOSE_SENT,  /* ours went first: input is read until theirs */
  KITE__WS_CLOSED,      /* both sent: close the TCP connection */
  KITE__WS_FAILED,      /* refused, or the output broke */
};

/* Fields are private, but for the close codes, which the owner may read. */
typedef struct kite__ws {
  struct wslay_frame_context *fr;
  kite__ws_stats *stats;
  kite__ws_write_fn write;
  void *user;
  uint32_t max_message;
  uint8_t state; /* kite__ws_state */
  int err;       /* the sticky result of a failed feed */
  /* Input: the feed in progress. */
  const uint8_t *in;
  size_t in_len, in_off;
  /* The frame whose payload is being read. */
  bool in_frame, in_msg, frame_fin;
  uint8_t frame_op;
  uint64_t frame_len, frame_off;
  uint64_t msg_len;       /* payload of the data message so far */
  /* A payload piece not yet taken (points into wslay's buffer, valid
   * until the next wslay_frame_recv()), and whether it ends its frame. */
  const uint8_t *held;
  size_t held_len;
  bool held_ends_frame;
  uint8_t ctl_len;
  uint8_t ctl[125];       /* a control frame's payload */
  /* Output: the header wslay encodes, captured from its send callback. */
  bool capture;
  uint8_t ohdr_len;
  uint8_t ohdr[14];
  uint16_t close_sent;     /* the code we sent, 0 before */
  uint16_t close_received; /* theirs (1005: none in the frame), 0 before */
} kite__ws;

/* Prepares |ws| for a connection after its 101: messages up to
 * |max_message| bytes (at least 1), output through |write| with |user|,
 * counters in |stats| (not NULL; shared by the owner's connections, or the
 * connection's own). Allocates wslay's context (about 4.2 KiB) now, so that
 * nothing is allocated later. 0, or KITE_EINVAL, KITE_ENOMEM. */
int kite__ws_init(kite__ws *ws, uint32_t max_message, kite__ws_write_fn write,
                  void *user, kite__ws_stats *stats);

/* Frees wslay's context. |ws| itself is the caller's. */
void kite__ws_free(kite__ws *ws);

/* Reads the |len| bytes at |data| (NULL when |len| is 0: it then goes on
 * with what it holds, the piece |fn| left and bytes read before that
 * |fn| stopped for). Passes each binary payload piece to
 * |fn| with |user|, answers control frames, refuses what RFC 6455 or the
 * limits forbid. Returns the bytes of |data| taken: |len|, or fewer when
 * |fn| stopped (keep the rest and feed it again, after the held piece, with
 * the next call). Or, sticky:
 *   KITE_ECLOSED  the peer's close frame came (and was answered): the
 *                 closing handshake is done, close the TCP connection once
 *                 the output is written (the server closes first, section
 *                 7.1.1);
 *   KITE_EPROTO   refused: a close with ws->close_sent's code was written
 *                 (if the output took it); close the connection likewise;
 *   another negative code: what |fn| returned (the connection may still
 *                 send, e.g. kite's close notice, and close), or
 *                 |write|'s error other than KITE_EFULL (the connection is
 *                 broken: state KITE__WS_FAILED).
 * Not from inside |fn| or |write|. */
ptrdiff_t kite__ws_feed(kite__ws *ws, const uint8_t *data, size_t len,
                        kite__ws_data_fn fn, void *user);

/* Sends the |n| (at most KITE__WS_IOV_MAX) buffers of |iov| as one binary
 * message, through |write| as one unit with its header. Returns 0, or
 * KITE_ECLOSED (a close was sent or the connection failed: nothing more may
 * be sent), KITE_EINVAL (|n| out of range), or |write|'s error (KITE_EFULL:
 * nothing was sent). */
int kite__ws_send(kite__ws *ws, const struct iovec *iov, int n);

/* Starts the closing handshake: a close frame with |code| and up to 123
 * bytes of |reason| (UTF-8; NULL when |len| is 0). Input is then read for
 * the peer's close, and data in it dropped. Returns 0, KITE_ECLOSED (one
 * was sent already, or the connection failed), KITE_EINVAL (a code kite
 * may not send, or |len| over 123), or |write|'s error. */
int kite__ws_close(kite__ws *ws, uint16_t code, const char *reason,
                   size_t len);

/* Bytes of a payload piece held for |fn| (what it did not take). They
 * lie in wslay's 4 KiB input buffer: nothing is allocated for them. */
static inline size_t kite__ws_held(const kite__ws *ws) {
  return ws->held_len;
}

#endif
