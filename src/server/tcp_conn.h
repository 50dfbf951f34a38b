/*
 * A TCP connection on its shard (tcp_pre.c, session_tcp.c, tcp_linger.c).
 * Allocated at accept and owned by its shard thread, it goes through
 * three phases:
 *   PRE      accepted, no session slot: it reads its first bytes within
 *            handshake_timeout_ms, on the shard's pre-session list (at
 *            most tcp_preopen_max, the oldest dropped first); only a
 *            valid OPEN claims a slot (tcp_pre.c);
 *   SESSION  |s| set: it carries that session (the session's |link|);
 *   LINGER   the session closed, or the connection was refused: queued
 *            output written, the write side shut, input drained to EOF,
 *            then closed, so the peer never gets a reset with data still
 *            queued (tcp_linger.c).
 * From accept to close it counts against its source's limits (|src|).
 */
#ifndef KITE_SERVER_TCP_CONN_H
#define KITE_SERVER_TCP_CONN_H

#include "base/wheel.h"
#include "net/addr.h"
#include "net/tcp_out.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "server/tcp_source.h"
#include "server/transport.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct kite__shard kite__shard;
typedef struct kite__session kite__session;

enum kite__tconn_phase {
  KITE__TC_PRE = 0,
  KITE__TC_SESSION,
  KITE__TC_LINGER,
};

typedef struct kite__wsconn kite__wsconn;
typedef struct kite__tv2 kite__tv2;
typedef struct kite__tconn kite__tconn;
typedef void (*kite__tconn_ready_fn)(kite__shard *sh, kite__tconn *c,
                                     uint32_t events);

struct kite__tconn {
  int fd;
  kite__tconn_ready_fn on_ready; /* its phase's (and transport's) handler */
  kite__wsconn *wsc;  /* HTTP, then WebSocket (session_ws.c), or NULL */
  kite__tv2 *v2;      /* version 2 (tcp_v2.c): from OPEN v2's header, or NULL */
  uint8_t phase;      /* enum kite__tconn_phase */
  uint32_t events;    /* the epoll mask armed now */
  kite__session *s;   /* set in the SESSION phase only */
  kite__src_limit *src_limit; /* the server's, or NULL: no limits */
  kite__src_hold src; /* what it counts there, given back at free */
  kite__addr peer;
  kite__frame_reader reader;
  kite__frame_fn on_frame; /* what the reader hands frames to: the
                              version's (kite__tconn_on_frame, or v2's) */
  kite__tcp_out out;
  uint8_t *held;      /* input cut short by backpressure, to feed again */
  uint32_t held_len;
  uint8_t open_have;  /* PRE: bytes of the OPEN preface read */
  uint8_t open_buf[KITE__CTRL_HDR];
  uint32_t pre_deadline_ms; /* PRE: handshake_timeout_ms after accept */
  struct kite__tconn *pre_prev, *pre_next; /* PRE: the shard's list */
  bool shut_wr;       /* lingering: FIN sent */
  bool peer_eof;      /* lingering: the peer's FIN read */
  uint32_t linger_deadline_ms;
  kite__timer linger_timer;
  struct kite__tconn *linger_prev, *linger_next;
};

#define KITE__TCP_RX_BYTES 65536 /* one read() into the shard's buffer */

/* tcp_pre.c */
/* Accepts what waits on the shard's listener, within a budget. When
 * accept fails and leaves the connection queued (out of descriptors with
 * no spare to give up), takes the listener out of the epoll set for a
 * back-off instead of spinning on it. */
void kite__tconn_accept_ready(kite__shard *sh);
/* Milliseconds until a paused listener is polled again, or -1. */
int kite__tconn_accept_timeout_ms(const kite__shard *sh);
/* Puts a paused listener back once its pause is over. */
void kite__tconn_accept_advance(kite__shard *sh);
/* epoll reported |events| on |c|: handed to its phase. */
void kite__tconn_ready(kite__shard *sh, kite__tconn *c, uint32_t events);
/* Milliseconds until the oldest pre-session connection's deadline, or -1. */
int kite__tconn_pre_timeout_ms(const kite__shard *sh);
/* Drops the pre-session connections past their deadline (counted in
 * halfopen_expired). */
void kite__tconn_pre_advance(kite__shard *sh);
/* Drops every pre-session connection (a stop, or the shard going away). */
void kite__tconn_pre_free_all(kite__shard *sh);

/* session_tcp.c */
/* |c| (off the pre-session list) sent a valid OPEN: a session slot is
 * claimed and opened on it, OPENED goes back and |rest| (what followed
 * the OPEN in the same read) is fed to the session; or the server is
 * full and it gets REJECT and lingers. */
void kite__tconn_open(kite__shard *sh, kite__tconn *c, const uint8_t *rest,
                      size_t n);
/* Pieces the WebSocket transport (session_ws.c) shares. */
/* A session slot for |c| (phase SESSION, admitted with |tr|), or NULL:
 * the server is full or no worker is free (counted, logged). */
kite__session *kite__tconn_claim(kite__shard *sh, kite__tconn *c,
                                 const kite__transport *tr);
int kite__tconn_write(kite__shard *sh, kite__tconn *c, const struct iovec *iov,
                      int n);
int kite__tconn_on_frame(void *user, const kite__frame_hdr *h,
                         const uint8_t *body);
void kite__tconn_flush(kite__shard *sh, kite__session *s);
void kite__tconn_noflush(kite__session *s);
bool kite__tconn_next_due(kite__session *s, uint32_t now_ms, uint32_t *due_ms);
void kite__tconn_on_timer(kite__session *s, uint32_t now_ms);
uint32_t kite__tconn_queued(const kite__session *s);
uint32_t kite__tconn_unacked(const kite__session *s);
void kite__tconn_rtt(const kite__session *s, kite__rtt *out);
/* REJECT |reason| with a zero nonce (PROTOCOL.md section 5), then the
 * lingering close. */
void kite__tconn_refuse(kite__shard *sh, kite__tconn *c, uint8_t reason);
/* The same with the header's |version| (1 or 2). */
void kite__tconn_refuse_ver(kite__shard *sh, kite__tconn *c, uint8_t reason,
                            uint8_t version);
/* Plaintext of the session's stream to c->on_frame; on backpressure holds
 * the rest in c->held and stops reading (EPOLLIN off). */
void kite__tconn_feed(kite__session *s, const uint8_t *p, size_t n);
/* The TCP transport's drain and teardown (the v2 one shares them). */
void kite__tconn_drain(kite__session *s);
void kite__tconn_teardown(kite__session *s);
/* epoll reported |events| on |c|, in its SESSION phase. */
void kite__tconn_session_ready(kite__shard *sh, kite__tconn *c,
                               uint32_t events);
/* How a transport on a TCP connection (TCP, WebSocket, TCP v2) reads its
 * session's bytes: whether it reads now, where the bytes go, and the
 * close reason of an end of stream that no close notice preceded. */
typedef struct kite__tconn_input {
  bool (*reading)(const kite__session *s);
  void (*take)(kite__session *s, const uint8_t *p, size_t n);
  uint8_t eof_reason;
} kite__tconn_input;
/* The session's epoll events for any of them: output flushed, then up to
 * 4 reads of 64 KiB while |in| reads (a reset: dead link; an end of
 * stream: the notice's reason, else in->eof_reason), or a broken
 * connection closed while reading is paused. */
void kite__tconn_session_events(kite__shard *sh, kite__tconn *c,
                                uint32_t events,
                                const kite__tconn_input *in);
/* What a transport's sendv returns after writing a frame's bytes to |c|
 * (|rc| from the write; |was_pending|: output was queued before it):
 * KITE_EFULL counted and passed on; another error means the stream is cut
 * and the session ends with |why| at the next safe point (the frame goes
 * with it: 0); else 0, the stall deadline started if output now waits. */
int kite__tconn_sent(kite__session *s, kite__tconn *c, int rc,
                     bool was_pending, uint8_t why);
/* Arms the epoll mask |events| for |c| (no call when unchanged). */
void kite__tconn_arm(kite__shard *sh, kite__tconn *c, uint32_t events);

/* tcp_pre.c, for session_ws.c */
/* |c| leaves the pre-session list (its phase changes next). */
void kite__tconn_pre_leave(kite__shard *sh, kite__tconn *c);
/* |c| leaves the list and is closed at once (FIN). */
void kite__tconn_pre_drop(kite__shard *sh, kite__tconn *c);

/* session_ws.c */
/* The first byte read was 'G': an HTTP request. |c| stays on the
 * pre-session list while its head and (after a 101) its OPEN come; its
 * reads go to the WebSocket side from now on. |p| holds the first read.
 * Returns false once |c| has left the pre-session phase. */
bool kite__wsconn_start(kite__shard *sh, kite__tconn *c, const uint8_t *p,
                        size_t n);
void kite__wsconn_free(kite__wsconn *w);
/* An empty answer with |status| (400 403 404 405 414 426 431 505), then
 * the lingering close. |c| is off the pre-session list. */
void kite__wsconn_answer(kite__shard *sh, kite__tconn *c, int status);

/* http_static.c */
struct kite__http_req;
/* A plain GET: the file under http_root, or a refusal, or 404; then the
 * lingering close. |c| is off the pre-session list. */
void kite__http_static(kite__shard *sh, kite__tconn *c,
                       const struct kite__http_req *req);

/* tcp_linger.c */
/* Takes |c| (its session gone): writes what is queued, shuts the write
 * side, reads to EOF, then closes; all within tcp_linger_ms. When as many
 * linger as the shard has session slots it is closed at once instead. */
void kite__tconn_linger(kite__shard *sh, kite__tconn *c);
void kite__tconn_linger_ready(kite__shard *sh, kite__tconn *c,
                            uint32_t events);
void kite__tconn_linger_advance(kite__shard *sh);
/* Closes every lingering connection (the shard is going away). */
void kite__tconn_linger_free_all(kite__shard *sh);
/* Closes |c|'s descriptor and frees it. */
void kite__tconn_free(kite__tconn *c);

#endif
