/*
 * The client's insides, shared by its files:
 *
 *   client.c            the object: socket, poll loop, demux, safe points
 *   client_conn.c       a session's life: connect, timer, close, free, and
 *                       the public kite_conn_* calls
 *   client_handshake.c  HELLO / CHALLENGE / CONNECT / ACCEPT / REJECT
 *   client_stream.c     an open session: KCP, frames, pings
 *   client_tcp.c        a session over TCP: connect, OPEN / OPENED, its
 *                       socket's reads and writes
 *
 * Everything here runs on the client's one thread.
 *
 * How work flows. Datagrams and timers never run a session's KCP flush
 * directly: they "touch" the session (a list), and the client services
 * every touched session at a safe point (after each receive batch, after
 * the timers): read its frames, flush its KCP once, re-arm its timer. So a
 * batch of 64 datagrams costs one flush per session, acks included, and
 * sends from callbacks ride in the same flush. Closing is deferred the
 * same way: a closed session leaves the maps and the wheel at once, but
 * its KCP block and memory live until its on_disconnect has run at the
 * next safe point, so no callback up the stack ever sees freed memory.
 *
 * TCP sessions take the same path from OPENED on (frames, pings, timer,
 * deferred close), with two differences: their bytes arrive on their own
 * descriptor, which the client's epoll reports with the session as
 * data.ptr (the UDP socket's is NULL), and a send is written at once
 * (kite__tcp_out) rather than flushed at the safe point. A closed TCP
 * session gives its descriptor back at once, like its maps and timer.
 */
#ifndef KITE_CLIENT_INTERNAL_H
#define KITE_CLIENT_INTERNAL_H

#include "kite/client.h"

#include "base/log.h"
#include "base/map.h"
#include "base/wheel.h"
#include "kcp/kcp.h"
#include "net/tcp_out.h"
#include "net/udp.h"
#include "proto/control.h"
#include "proto/frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/uio.h>

enum kite__conn_state {
  KITE__CONN_HELLO = 0, /* HELLO sent, waiting for CHALLENGE */
  KITE__CONN_CONNECT,   /* CONNECT sent, waiting for ACCEPT */
  KITE__CONN_TCP_CONNECT, /* TCP: connect() in progress */
  KITE__CONN_TCP_OPENING, /* TCP: OPEN sent, waiting for OPENED */
  KITE__CONN_OPEN,      /* ACCEPT or OPENED: frames flow; on_connect called */
  KITE__CONN_CLOSED,    /* on_disconnect runs at the next safe point */
};

#define KITE__CONN_NO_SLOT UINT32_MAX

struct kite_conn {
  kite_client *cli;
  void *user;
  uint32_t slot;     /* index in cli->conns; KITE__CONN_NO_SLOT once detached */
  uint8_t state;     /* kite__conn_state */
  bool touched;      /* on cli->touched */
  bool accepted;     /* conv and token are the server's: CLOSE can be sent */
  bool in_conv_map;
  uint32_t tries;    /* sends of the current handshake packet */
  int reason;        /* for on_disconnect, once CLOSED */

  kite__addr server; /* as the socket reports it (v4-mapped on a v6 socket) */
  uint8_t nonce[KITE__CTRL_NONCE];
  uint8_t cookie[KITE__CTRL_COOKIE];
  uint8_t token[KITE__CTRL_TOKEN];
  uint32_t conv;
  uint32_t max_frame;       /* the server's (ACCEPT): the limit of our sends */
  uint32_t idle_timeout_ms; /* the server's (ACCEPT); 0: none */
  uint32_t ping_ms;

  uint32_t retry_due_ms; /* handshake: the next retransmission or timeout */
  uint32_t last_rx_ms;   /* open: when the server was last heard */
  uint32_t ping_due_ms;  /* open: the next periodic ping */
  uint32_t last_rtt_ms;
  uint64_t frames_in, frames_out;

  kite__timer timer;     /* the session's one timer */
  kite__kcp *kcp;        /* from ACCEPT until freed */
  kite__frame_reader reader;
  kite_conn *touched_next;
  kite_conn *closed_next;

  /* TCP sessions only (|tcp| set). retry_due_ms is the OPENED deadline. */
  bool tcp;
  bool notice_heard;      /* the server's close notice came (PROTOCOL.md 5) */
  uint8_t notice_reason;  /* its reason, reported at its end of stream */
  bool stream_cut;        /* a frame went out in part: no close notice */
  uint8_t reply_have;     /* bytes of OPENED or REJECT gathered in |reply| */
  uint32_t watching;      /* the epoll events registered for |fd| */
  int fd;                 /* -1 once closed */
  kite__tcp_out out;
  uint8_t reply[KITE__CTRL_HDR + KITE__CTRL_NONCE + 1]; /* REJECT, the longest */
};

/* A 32-bit millisecond clock; tests inject a fake one. */
typedef uint32_t (*kite__client_clock_fn)(void *user);

/* epoll events taken per wait: a budget, as KITE__CLIENT_RX_BATCHES is;
 * level-triggered, so the rest are reported by the next poll. */
#define KITE__CLIENT_EVENTS 64

struct kite_client {
  kite_client_config cfg;
  kite__log log;
  int fd;
  int ep;        /* epoll: the UDP socket and every TCP connection */
  uint32_t ntcp; /* TCP descriptors open: poll(0) asks epoll only then */
  bool v6;      /* AF_INET6 socket: IPv4 servers are kept v4-mapped */
  bool in_poll; /* inside kite_client_poll(): callbacks may be running */
  uint32_t now; /* the time of the step being handled */
  kite__client_clock_fn clock;
  void *clock_user;

  kite__wheel wheel;
  kite__map by_nonce; /* nonce -> slot, connect until freed */
  kite__map by_conv;  /* (conv, server address) -> slot, while open */
  kite_conn **conns;  /* max_sessions slots */
  uint32_t *free_slots, nfree;
  kite__kcp_pool *pool;

  kite_conn *touched;                /* to service at the next safe point */
  kite_conn *closing, *closing_tail; /* on_disconnect pending, in order */

  uint8_t *scratch; /* frames are read out of KCP, or off TCP, into this */
  size_t scratch_cap;
  kite__udp_rx *rx;
  kite__udp_tx *tx;
  kite_client_stats stats;
  struct epoll_event events[KITE__CLIENT_EVENTS];
};

/* ---- client.c ---- */

/* The time to use now: inside poll, the step's time; outside, a fresh
 * reading (kept in cli->now). */
uint32_t kite__client_time(kite_client *cli);

/* Queues |conn| for service at the next safe point (frames read, KCP
 * flushed, timer re-armed). Idempotent. */
void kite__client_touch(kite_conn *conn);

/* Encodes |k| and queues it to |conn|'s server, |copies| times. */
void kite__client_send_ctrl(kite_conn *conn, const kite__ctrl *k, int copies);

/* The by_conv key of a session: conv and server address, so that two
 * servers that happen to pick the same conv never clash. */
uint64_t kite__client_conv_key(uint32_t conv, const kite__addr *server);

/* Sets the epoll events of |conn|'s TCP descriptor (reported with |conn|
 * as data.ptr): added when conn->watching is 0, removed when |events| is
 * 0, else modified; nothing when unchanged. Returns 0, or -1 with errno. */
int kite__client_watch(kite_conn *conn, uint32_t events);

/* The session in |slot| of a map hit. */
static inline kite_conn *kite__client_conn_at(kite_client *cli,
                                              uint32_t slot) {
  return cli->conns[slot];
}

/* Test hook: replaces the clock (NULL: the monotonic clock) and restarts
 * the wheel at the new time. Only while the client holds no session. */
void kite__client_set_clock(kite_client *cli, kite__client_clock_fn fn,
                            void *user);

/* ---- client_conn.c ---- */

/* A new session in a free slot, counted, with no transport yet. NULL when
 * no slot is free (*rc KITE_EFULL) or on KITE_ENOMEM. */
kite_conn *kite__conn_new(kite_client *cli, void *user, int *rc);

/* Re-arms |conn|'s timer from its state: the handshake's next
 * retransmission; or, when open, the earliest of its KCP flush, its ping
 * and its idle deadline. */
void kite__conn_schedule(kite_conn *conn);

/* The timer fired. */
void kite__conn_on_timer(kite_conn *conn);

/* Ends |conn|: takes it out of the maps and the wheel at once and queues
 * its on_disconnect(|reason|) for the next safe point. When it was
 * accepted and |wire_reason| >= 0, CLOSE(|wire_reason|) goes out three
 * times; for a normal close what KCP holds is flushed once first. No-op
 * when it is closed already. Never frees: see kite__conn_free(). */
void kite__conn_close(kite_conn *conn, int reason, int wire_reason);

/* A CLOSE from the session's server (conv and address matched): checks
 * the token in constant time, and ends the session with its reason. */
void kite__conn_on_close_pkt(kite_conn *conn, const kite__ctrl *k);

/* Gives |conn|'s slot back (it leaves cli->conns) without freeing it:
 * done just before its on_disconnect. Idempotent. */
void kite__conn_detach(kite_conn *conn);

/* Frees |conn| and its slot, KCP block and reader (no callback). */
void kite__conn_free(kite_conn *conn);

/* ---- client_handshake.c ---- */

/* Sends the first HELLO and arms the retransmission timer. */
void kite__hs_start(kite_conn *conn);

/* The handshake's timer: retransmits, or gives up (KITE_CONNECT_TIMEOUT). */
void kite__hs_on_timer(kite_conn *conn);

/* CHALLENGE, ACCEPT or REJECT carrying |conn|'s nonce, from its server.
 * |k| is decoded; |version_reject| marks a REJECT whose header carried
 * another version (decode said EVERSION). */
void kite__hs_on_packet(kite_conn *conn, const kite__ctrl *k,
                        bool version_reject);

/* REJECT |reason| refused the handshake (either transport). */
void kite__hs_on_reject(kite_conn *conn, int reason);

/* ---- client_stream.c ---- */

/* ACCEPT arrived for |conn| (state CONNECT; conv and token copied):
 * validates it, creates the KCP block, registers the conv, sends the ping
 * that opens the session (PROTOCOL.md section 2, step 5) and calls
 * on_connect. On failure the session is closed instead. */
void kite__stream_open(kite_conn *conn, const kite__ctrl *accept);

/* The server accepted |conn| (ACCEPT, or OPENED on TCP): records its
 * limits, starts pings and the frame reader, sends the first ping and
 * calls on_connect (unless that ping found the connection broken). */
void kite__stream_opened(kite_conn *conn, uint32_t idle_timeout_ms,
                         uint32_t max_frame);

/* The frame reader's callback for both transports (user: the session):
 * pings answered, pongs timed, the rest to on_message. Nonzero once the
 * session is closed, which stops the reader. */
int kite__stream_on_frame(void *user, const kite__frame_hdr *h,
                          const uint8_t *body);

/* One KCP datagram for |conn| (open). */
void kite__stream_input(kite_conn *conn, const uint8_t *p, size_t len);

/* Reads the frames KCP holds (on_message, pongs): stops early when a
 * callback closes the session, or on a bad frame (closed, reason 2). */
void kite__stream_read(kite_conn *conn);

/* Reads the frames KCP holds (on_message, pongs), then flushes KCP. */
void kite__stream_service(kite_conn *conn);

/* Queues a frame on the session's stream (KCP, or written to TCP).
 * Returns 0 or a KITE_E* code as kite_conn_send() documents (state and
 * argument checks are the caller's). */
int kite__stream_send(kite_conn *conn, uint16_t msg_id, uint16_t flags,
                      const void *body, size_t len);

/* Queues a ping carrying the send time. */
int kite__stream_ping(kite_conn *conn);

/* ---- client_tcp.c ---- */

/* Opens the connection to conn->server (state TCP_CONNECT) and arms the
 * OPENED deadline. A failure closes |conn| (KITE_CONNECT_FAILED). */
void kite__tcp_start(kite_conn *conn);

/* epoll reported |events| for |conn|'s descriptor. */
void kite__tcp_on_event(kite_conn *conn, uint32_t events);

/* The timer of a TCP session not yet open: the OPENED deadline. */
void kite__tcp_on_timer(kite_conn *conn);

/* Writes one frame (|n| buffers, the unit all or nothing). 0, or
 * KITE_EMSGSIZE, KITE_EFULL, KITE_ENOMEM or KITE_ESTATE as
 * kite_conn_send() documents; the last two close the session. */
int kite__tcp_sendv(kite_conn *conn, const struct iovec *iov, int n);

/* A frame of the server's with msg_id KITE__MSG_CLOSE_NOTICE: its reason
 * is kept for the end of stream; a body other than 1 byte is counted
 * (drop_reserved) and ignored. */
void kite__tcp_on_notice(kite_conn *conn, const kite__frame_hdr *h,
                         const uint8_t *body);

/* Queues the close notice with |reason| (PROTOCOL.md section 5) ahead of
 * the FIN of a close made on purpose; best effort: not when a frame went
 * out in part, nor when tcp_send_max is full (then the FIN alone says
 * it, as reason 0). */
void kite__tcp_send_notice(kite_conn *conn, uint8_t reason);

/* At close: writes what is queued (best effort, no waiting), sends FIN,
 * closes the descriptor and frees the output buffer. Idempotent. */
void kite__tcp_close(kite_conn *conn);

/* srtt_ms, rto_ms and retransmits from the kernel (TCP_INFO). */
void kite__tcp_get_stats(const kite_conn *conn, kite_conn_stats *out);

#endif
