/*
 * kite client: sessions to a kite server over KCP (PROTOCOL.md), many of
 * them on one UDP socket, or over TCP (section 5), one connection each;
 * all driven from one thread by a poll call.
 *
 *   kite_client_config cfg;
 *   kite_client_config_init(&cfg);
 *   cfg.on_connect = ...; cfg.on_message = ...; cfg.on_disconnect = ...;
 *   kite_client *cli;
 *   if (kite_client_create(&cli, &cfg) < 0) ...;   // binds, or says why not
 *   kite_conn *conn;
 *   kite_client_connect(cli, "127.0.0.1:7001", my_state, &conn);  // async
 *   // or kite_client_connect_tcp(): the same session, over TCP
 *   // or kite_client_connect_token(cli, token, ...): version 2, from the
 *   // 800-byte token a game's backend minted (and _token_tcp())
 *   for (;;) kite_client_poll(cli, 100);     // I/O, timers and callbacks
 *   kite_client_destroy(cli);                // CLOSE for open sessions
 *
 * Threads. A client and all its sessions belong to the thread that polls
 * it: every function here must be called from that thread (or, for an
 * application with several threads, under one lock of its own), and
 * callbacks run on it, from inside kite_client_poll() only. Several clients
 * on several threads are independent.
 *
 * Callbacks. Per session, in order: on_connect once (if the handshake
 * succeeds), on_message for each frame, then on_disconnect exactly once for
 * every kite_client_connect() or kite_client_connect_tcp() that returned
 * 0, whether the session opened or not. Every frame that arrived before
 * the server's CLOSE (or, on TCP, before its end of stream) is delivered
 * before that on_disconnect, even when both came in one receive. A callback may call
 * kite_conn_send(), _ping(), _close(), _user(), _get_stats() on any
 * session, and kite_client_connect(), kite_client_connect_tcp(),
 * kite_client_fd(), kite_client_timeout_ms() and kite_client_stats_get();
 * not kite_client_poll() (KITE_ESTATE) nor kite_client_destroy() (ignored).
 * A close requested inside a callback takes effect at a safe point of the
 * same poll; a session's on_disconnect never runs inside another of its
 * callbacks.
 *
 * Lifetimes. A kite_conn pointer is valid from kite_client_connect() until
 * its on_disconnect returns (or until kite_client_destroy(), which runs no
 * callbacks); it must not be used afterwards. Pointers passed to callbacks
 * (|body|) are valid only during the call.
 */
#ifndef KITE_CLIENT_H
#define KITE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kite/export.h"
#include "kite/error.h"
#include "kite/log.h"
#include "kite/reason.h"
#include "kite/token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kite_client kite_client; /* one UDP socket, many sessions */
typedef struct kite_conn kite_conn;     /* one session */

/* Reasons for on_disconnect. 0..255: the CLOSE reasons of PROTOCOL.md
 * (kite_close_reason in kite/reason.h), either received from the server in
 * a CLOSE (the byte as received) or decided here, when this client sent
 * that CLOSE: KITE_CLOSE_NORMAL after kite_conn_close(), KITE_CLOSE_IDLE,
 * KITE_CLOSE_PROTOCOL, KITE_CLOSE_DEAD_LINK. TCP carries no CLOSE but a
 * close notice (PROTOCOL.md section 5, msg_id 0xFF01, never delivered to
 * on_message): a TCP session the server ends reports the reason of its
 * notice when its end of stream (or a reset) follows, KITE_CLOSE_NORMAL
 * for an end of stream without one; and when this client closes a TCP
 * session on purpose (the reasons it decides, above) it sends its own
 * notice ahead of its FIN.
 * From 0x100 up, outcomes that no CLOSE carries: */
enum kite_client_reason {
  /* The server refused the handshake: REJECT reason r is reported as
   * 0x100 + r (KITE_CONNECT_REJECTED(r)), whatever r is. */
  KITE_CONNECT_REJECTED_FULL = 0x101,     /* REJECT 1: server full */
  KITE_CONNECT_REJECTED_VERSION = 0x102,  /* REJECT 2: version (also a
                                             REJECT whose header carries
                                             another version) */
  KITE_CONNECT_REJECTED_SHUTDOWN = 0x103, /* REJECT 3: shutting down */
  KITE_CONNECT_REJECTED_COOKIE = 0x104,   /* REJECT 4: cookie invalid */
  /* Version 2 (PROTOCOL-v2.md section 12), for the last address tried: */
  KITE_CONNECT_REJECTED_EXPIRED = 0x105,  /* REJECT 5: token expired (or
                                             the clocks disagree) */
  KITE_CONNECT_REJECTED_INVALID = 0x106,  /* REJECT 6: token invalid here */
  KITE_CONNECT_REJECTED_NOT_LISTED = 0x107, /* REJECT 7: server not in it */
  KITE_CONNECT_REJECTED_USED = 0x108,     /* REJECT 8: token used already */
  /* No CHALLENGE or no ACCEPT after |retries| retransmissions; on TCP,
   * no OPENED within retry_ms * (retries + 1). */
  KITE_CONNECT_TIMEOUT = 0x200,
  /* This client ran out of memory for the session (its KCP block, a frame
   * spanning datagrams or TCP reads, or its TCP send buffer); CLOSE reason
   * 0 was sent if it was a KCP session and open. */
  KITE_CLIENT_NOMEM = 0x201,
  /* TCP: the connection could not be made (refused, unreachable, no
   * descriptor left), or was reset or ended before OPENED. */
  KITE_CONNECT_FAILED = 0x202,
  /* TCP: an open session's connection was reset or failed (a socket
   * error other than the server's orderly end of stream). */
  KITE_CONN_RESET = 0x203,
  /* Version 2: the token's lifetime (expire_ts - create_ts, counted from
   * kite_client_connect_token*()) ran out before a server accepted. */
  KITE_CONNECT_EXPIRED = 0x204,
};
#define KITE_CONNECT_REJECTED(r) (0x100 + (int)(r))

/* A static name for any on_disconnect reason (never NULL). Thread-safe. */
KITE_API
const char *kite_client_reason_name(int reason);

typedef struct kite_client_config {
  /* Local address. NULL: "[::]:0", dual-stack, so IPv4 and IPv6 servers
   * both work (falling back to "0.0.0.0:0" on a host without IPv6). An
   * IPv4 address here takes IPv4 servers only. (NULL) */
  const char *bind_addr;
  uint32_t max_sessions;   /* sessions at once, connecting or open (65536) */
  uint32_t mtu;            /* offered in CONNECT; 64..2048 (1400) */
  uint32_t snd_wnd, rcv_wnd; /* KCP windows in segments; 1..32768 (128, 128) */
  uint32_t interval_ms;    /* KCP timer granularity (10) */
  uint32_t retry_ms;       /* HELLO/CONNECT retransmission period (250) */
  uint32_t retries;        /* retransmissions of each, after the first (8) */
  /* Ping period once open; 0: min(idle_timeout_ms / 3, 15000) from ACCEPT
   * or OPENED (15000 when the server sends no idle timeout). (0) */
  uint32_t ping_ms;
  uint32_t send_queue_max; /* KCP segments queued per session (1024) */
  uint32_t dead_link_ms;   /* no ack this long with data out: close (15000) */
  /* Largest frame body accepted from the server; the limit used is the
   * smaller of this and ACCEPT's (or OPENED's) max_frame. Bounds what one
   * session may buffer for a frame that spans datagrams or reads. (1 MiB) */
  uint32_t max_frame;
  uint32_t segments_max;   /* KCP budget, all sessions, in segments (65536) */
  uint32_t socket_buffer;  /* SO_RCVBUF and SO_SNDBUF; 0: the system's (0) */
  bool crc;                /* set the CRC-32 of every frame sent (false) */
  /* Bytes queued per TCP session for a kernel buffer that is full; a send
   * beyond it is refused (KITE_EFULL). 64..1 GiB (1 MiB) */
  uint32_t tcp_send_max;
  /* TCP: after a close on purpose (notice and FIN sent), the connection
   * lingers this long at most, what the server still sends read and
   * discarded in kite_client_poll(), until the server's end of stream;
   * then it is closed. Closing at once with the server's bytes unread
   * would reset it, and a server that wrote before reading the notice
   * would count the quit as a dead link. At most max_sessions linger at
   * once (a newer one closes the oldest at once: tcp_linger_full);
   * kite_client_destroy() closes those still lingering at once. The
   * session is gone meanwhile: on_disconnect runs as without it.
   * 0: closed at once. 0..60000 (2000) */
  uint32_t tcp_linger_ms;

  /* Each may be NULL. |user| below is the client-wide pointer; the
   * session's own is kite_conn_user(). |body| is valid during the call. */
  void (*on_connect)(kite_conn *c, void *user);
  void (*on_message)(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                     size_t len, void *user);
  /* Messages of the unreliable lane (kite_conn_send_unreliable()): |flags|
   * has KITE_UNRELIABLE_SEQUENCED when it came sequenced (no older one of
   * its msg_id will follow it); over TCP never, even when the server sent
   * it sequenced: the stream is in order, so no sequencing is sent.
   * NULL: they go to on_message like any, the lane untold. Version 1 has
   * no lane: its frames all go to on_message. */
  void (*on_unreliable)(kite_conn *c, uint16_t msg_id, unsigned flags,
                        const uint8_t *body, size_t len, void *user);
  /* Exactly once per kite_client_connect() that returned 0. |c| is freed
   * when it returns. */
  void (*on_disconnect)(kite_conn *c, int reason, void *user);
  void *user;

  kite_log_fn log;          /* NULL: kite_log_stderr */
  void *log_user;
  kite_log_level log_level; /* KITE_LOG_INFO */
} kite_client_config;

/* Fills |cfg| with the defaults above. */
KITE_API
void kite_client_config_init(kite_client_config *cfg);

/* Validates |cfg| (copied; bind_addr is read only here), binds the socket
 * and allocates the tables for max_sessions, so that only the per-session
 * allocation of kite_client_connect() remains (and, now and then, the
 * growth of a session map, which doubles as sessions come). Returns 0 and
 * sets *out, or
 *   KITE_EINVAL  a bad value (the log says which field);
 *   KITE_ESYS    sodium_init(), a socket or an epoll call failed (the log
 *                says which);
 *   KITE_ENOMEM. */
KITE_API
int kite_client_create(kite_client **out, const kite_client_config *cfg);

/* Sends CLOSE (reason 0, three times) for every open KCP session, ends
 * every TCP connection as kite_conn_close() does, then frees the client
 * and every kite_conn. Runs no callbacks. NULL is ignored. Not from a
 * callback: there it logs an error and does nothing. */
KITE_API
void kite_client_destroy(kite_client *c);

/* Starts a session with the server at |server_addr| ("1.2.3.4:7001",
 * "[::1]:7001", or "host:7001", resolved here, blocking, first address):
 * sends HELLO and returns; the handshake goes on inside kite_client_poll().
 * |conn_user| is the session's pointer (kite_conn_user()). On 0, *out (if
 * |out| is not NULL) is the session, valid until its on_disconnect returns,
 * which will run exactly once. Or, and then no callback runs:
 *   KITE_EINVAL  bad address, port 0, or an IPv6 server on an IPv4 socket;
 *   KITE_EFULL   max_sessions sessions exist (a closed one counts until
 *                its on_disconnect is called: from there, reconnecting
 *                at the limit works);
 *   KITE_ENOMEM.
 * Callbacks may call it. */
KITE_API
int kite_client_connect(kite_client *c, const char *server_addr,
                        void *conn_user, kite_conn **out);

/* Starts a session with the server at |server_addr| over TCP (PROTOCOL.md
 * section 5): opens a non-blocking connection of its own and returns; the
 * connect, OPEN and OPENED go on inside kite_client_poll(). The rest is as
 * kite_client_connect(): the address forms, |conn_user|, *out and its
 * lifetime, the callbacks (on_disconnect exactly once for every 0
 * returned), the kite_conn_* calls, and the return codes:
 *   KITE_EINVAL  bad address or port 0 (either family: the connection does
 *                not depend on the UDP socket's);
 *   KITE_EFULL   max_sessions sessions exist (KCP and TCP together);
 *   KITE_ENOMEM.
 * A connection that cannot be made is not an error here but
 * on_disconnect(KITE_CONNECT_FAILED), so that every failure takes one
 * path. Then, by what happens:
 *   no OPENED within retry_ms * (retries + 1)   KITE_CONNECT_TIMEOUT
 *   REJECT r                                     KITE_CONNECT_REJECTED(r)
 *   refused, reset or ended before OPENED        KITE_CONNECT_FAILED
 *   a reply that is neither OPENED nor REJECT,
 *   or a bad frame from the server               KITE_CLOSE_PROTOCOL
 *   the server ends the stream after OPENED      its close notice's reason,
 *                                                or KITE_CLOSE_NORMAL
 *   a reset or socket error after OPENED         KITE_CONN_RESET (after a
 *                                                close notice: its reason)
 * and, as on KCP, KITE_CLOSE_IDLE, KITE_CLOSE_NORMAL after
 * kite_conn_close(), KITE_CLIENT_NOMEM. Pings follow the KCP rules
 * (ping_ms, or min(idle_timeout_ms / 3, 15 s) from OPENED). Callbacks may
 * call it. */
KITE_API
int kite_client_connect_tcp(kite_client *c, const char *server_addr,
                            void *conn_user, kite_conn **out);

/* Starts a session with protocol version 2 (PROTOCOL-v2.md; kite's
 * reading: docs/PROTOCOL-v2.md) from a connect token, the
 * KITE_TOKEN_BYTES (800) bytes a game's backend minted (kite/token.h,
 * kite_token_mint()) and handed this player. The session is authenticated
 * (only a server holding the game's private key can accept it) and every
 * datagram after the handshake is encrypted and authenticated.
 *
 * |token| is read and copied here: the caller may wipe its own copy when
 * this returns. The copy, which holds the token's keys, is wiped as soon
 * as the attempt ends (a server accepted, or every address failed); the
 * session's traffic keys are wiped when it is freed. Neither is logged.
 *
 * Over UDP (kite_client_connect_token()) the token's addresses are tried
 * in order, once each, each with a fresh nonce: HELLO v2, CHALLENGE,
 * CONNECT v2 (carrying the token's sealed part), retransmitted every
 * retry_ms up to |retries| times as on version 1. An address that gives no
 * answer in time, answers REJECT, or an ACCEPT that opens but breaks the
 * contract's table, ends that address's attempt and the next is tried; an
 * ACCEPT that opens from any address tried still wins, and stops the
 * others. The token's lifetime (expire_ts - create_ts seconds, by this
 * client's monotonic clock from this call) bounds the whole: past it the
 * session ends with KITE_CONNECT_EXPIRED. Over TCP
 * (kite_client_connect_token_tcp()) each address gets a connection and
 * OPEN v2 in turn under the same rules (a connection refused or reset
 * before OPENED, or no OPENED within retry_ms * (retries + 1), moves on).
 * A v2 client never falls back to version 1.
 *
 * The rest is kite_client_connect()'s and kite_client_connect_tcp()'s:
 * |conn_user|, *out and its lifetime, the callbacks (on_disconnect exactly
 * once for every 0 returned), the kite_conn_* calls. The on_disconnect
 * reason of a session that never opened is the last address's outcome:
 * KITE_CONNECT_REJECTED(r) (5 to 8 are version 2's reasons),
 * KITE_CONNECT_TIMEOUT, KITE_CONNECT_FAILED (TCP), KITE_CLOSE_PROTOCOL (an
 * ACCEPT that opened but broke the table; on TCP an OPENED that does not
 * open, or any other reply), or KITE_CONNECT_EXPIRED. A token that
 * opened a session already is bound to that session's address and port:
 * REJECT 8 (KITE_CONNECT_REJECTED_USED) answers only that address and
 * port (over UDP the same kite_client); from any other, every new TCP
 * connection included, it gets no answer, so the attempt ends
 * KITE_CONNECT_TIMEOUT (UDP) or KITE_CONNECT_FAILED (TCP). To reconnect,
 * a player needs a new token. Once open: the
 * reason of the server's CLOSE (over TCP its CLOSE frame; an end of
 * stream without one is KITE_CLOSE_DEAD_LINK, 5: a FIN is not
 * authenticated), KITE_CLOSE_PROTOCOL for a datagram or record that
 * verified but broke the protocol, reason 7 (key exhausted) when 2^48
 * packet numbers were used, and the rest as on version 1. Datagrams or
 * records that do not verify, replays and datagrams from any address but
 * the accepted server's are dropped and counted (v2_* counters), never
 * acted on; over TCP a record that does not verify ends the session
 * (KITE_CLOSE_PROTOCOL, nothing more sent). kite_conn_get_stats() says
 * version 2. Unreliable messages (section 6) from the server go to
 * on_unreliable (else on_message), a sequenced one older than the newest
 * of its msg_id dropped (unreliable_drop_stale); the server's unreliable
 * pings are answered, its pongs timed.
 *
 * Returns 0, or, and then no callback runs:
 *   KITE_EINVAL  |token| NULL or malformed (magic, version, sizes,
 *                create_ts not before expire_ts, addresses: the checks of
 *                section 2), this client's mtu under 576 (UDP), its
 *                tcp_send_max under 580 (TCP: OPEN v2 must fit), or no
 *                address this client's socket can reach (UDP: every one
 *                IPv6 on an IPv4 socket);
 *   KITE_EFULL, KITE_ENOMEM as kite_client_connect().
 * Callbacks may call them. */
KITE_API
int kite_client_connect_token(kite_client *c,
                              const uint8_t token[KITE_TOKEN_BYTES],
                              void *conn_user, kite_conn **out);

KITE_API
int kite_client_connect_token_tcp(kite_client *c,
                                  const uint8_t token[KITE_TOKEN_BYTES],
                                  void *conn_user, kite_conn **out);

/* Sends what is queued, then waits up to |timeout_ms| (0: not at all; -1:
 * until something happens) for datagrams, TCP connections or the next
 * timer, handles everything due (handshakes, KCP, frames, pings, timeouts)
 * and runs the callbacks. May return before |timeout_ms| has passed, as
 * soon as something was handled. Returns 0, or
 *   KITE_ESTATE  called from a callback;
 *   KITE_ESYS    epoll_wait() or recvmmsg() failed (errno in the log). */
KITE_API
int kite_client_poll(kite_client *c, int timeout_ms);

/* A descriptor for an outer event loop: the client's epoll instance, which
 * holds its UDP socket and every TCP connection, and is readable when any
 * of them has something for the client (datagrams, TCP bytes, a connect
 * finishing, room for queued output). When it is readable, or when
 * kite_client_timeout_ms() has passed, call kite_client_poll(c, 0): the
 * outer loop watches this one descriptor whatever the sessions. The client
 * owns it: do not read, add to or close it. */
KITE_API
int kite_client_fd(const kite_client *c);

/* Milliseconds until kite_client_poll() next has work without a datagram:
 * 0 when something waits already (data queued by calls made outside poll,
 * a close to report), -1 when nothing is scheduled. Never late; sometimes
 * early for a timer far ahead (the timer wheel wakes to re-file it), which
 * costs one poll that finds nothing to do. */
KITE_API
int kite_client_timeout_ms(const kite_client *c);

/* Queues one frame (PROTOCOL.md section 4) on the session's stream;
 * |body| (NULL when |len| is 0) is copied, so the caller keeps it. On KCP
 * it leaves at the end of the current poll, or at the next one when called
 * outside poll. On TCP it is written to the socket in this call; what the
 * kernel does not take waits (at most tcp_send_max bytes) and leaves as
 * the socket drains, inside kite_client_poll(). Returns 0, or
 *   KITE_ESTATE    before on_connect, or once closed (on_disconnect
 *                  pending; on TCP also when this write found the
 *                  connection broken: the session is closed now);
 *   KITE_EINVAL    msg_id 0 (ping) or 0xFF00..0xFFFF (kite's own);
 *   KITE_EMSGSIZE  |len| above the server's max_frame (from ACCEPT or
 *                  OPENED), or a frame that send_queue_max (KCP) or
 *                  tcp_send_max (TCP) could never hold;
 *   KITE_EFULL     the session's send queue (send_queue_max segments, or
 *                  tcp_send_max bytes waiting for the kernel) is full:
 *                  nothing queued; retry after the server has acked (KCP)
 *                  or read (TCP);
 *   KITE_ENOMEM    the client's KCP budget (segments_max) is spent; on TCP
 *                  the send buffer could not grow: part of the frame may
 *                  have left, so the session is closed (KITE_CLIENT_NOMEM).
 * Callbacks may call it. */
KITE_API
int kite_conn_send(kite_conn *conn, uint16_t msg_id, const void *body,
                   size_t len);

#ifndef KITE_UNRELIABLE_SEQUENCED
#define KITE_UNRELIABLE_SEQUENCED 0x1u /* as server.h's */
#endif

/* Sends one message on the session's unreliable lane (PROTOCOL-v2.md
 * section 6), |flags| KITE_UNRELIABLE_SEQUENCED or 0: never resent; a
 * sequenced one that arrives after a newer one of its msg_id is dropped by
 * the server. |body| is copied. By the session's wire:
 *   version 2 over UDP  an UNRELIABLE item in a datagram of its own, sent
 *                   now (with the current poll's batch), outside KCP's
 *                   windows; the application paces it;
 *   version 2 over TCP  a frame with the unreliable flag, in order;
 *   version 1       an ordinary reliable frame (kite_conn_send()).
 * Returns 0, or KITE_EINVAL (msg_id 0 or 0xFF00.., an unknown flag, NULL
 * body with |len|), KITE_ESTATE (not open), KITE_EMSGSIZE (|len| above the
 * server's max_unreliable from ACCEPT or OPENED; version 1: max_frame;
 * nothing sent), KITE_ENOMEM (sequenced, v2 UDP: no memory for the count
 * of a msg_id first sent; each msg_id's count is kept for the session's
 * life, 4 bytes a msg_id), or, for frames, kite_conn_send()'s. Callbacks
 * may call it. kite.js carries the lane as frames over WebSocket (a later issue). */
KITE_API
int kite_conn_send_unreliable(kite_conn *conn, uint16_t msg_id,
                              const void *body, size_t len, unsigned flags);

/* Queues an extra ping now; its pong updates last_rtt_ms. Pings also go
 * out every ping_ms on their own. 0, KITE_ESTATE (not open), KITE_EFULL or
 * KITE_ENOMEM as kite_conn_send(). Callbacks may call it. */
KITE_API
int kite_conn_ping(kite_conn *conn);

/* Closes the session: when open, what is queued gets one transmission (as
 * much as KCP's window allows; none is retransmitted) and CLOSE (reason 0,
 * with the token) follows three times, leaving with the current poll's
 * batch, or at once when called outside poll; no acknowledgement is
 * waited for. During the handshake nothing is sent. On TCP, what is
 * queued and the close notice (reason 0; left out when tcp_send_max is
 * full) are written as far as the kernel takes them without waiting, then
 * the connection is shut down (FIN) and lingers (tcp_linger_ms): closed
 * at the server's end of stream, at most tcp_linger_ms later. Its
 * on_disconnect(KITE_CLOSE_NORMAL) runs from the next poll (or from the
 * safe point of the current one, when called from a callback). Returns 0,
 * or KITE_ECLOSED when it is closed already. Callbacks may call it. */
KITE_API
int kite_conn_close(kite_conn *conn);

/* The |conn_user| given to kite_client_connect(). */
KITE_API
void *kite_conn_user(const kite_conn *conn);

/* On TCP the first three are the kernel's (TCP_INFO; 0 once closed). */
typedef struct kite_conn_stats {
  uint32_t srtt_ms, rto_ms; /* KCP's estimate (0 before ACCEPT) */
  uint32_t retransmits;     /* KCP segments sent again, timeout and fast */
  uint32_t last_rtt_ms;     /* from the last pong (0 until one arrives) */
  uint64_t frames_in, frames_out; /* application frames, pings excluded */
  uint32_t conv;            /* from ACCEPT (0 before, and on TCP) */
  uint8_t version;          /* the protocol: 1, or 2 (connected by token) */
  uint16_t max_unreliable;  /* version 2, from ACCEPT or OPENED (else 0) */
} kite_conn_stats;

KITE_API
void kite_conn_get_stats(const kite_conn *conn, kite_conn_stats *out);

/* Client counters: X(name, help). */
#define KITE_CLIENT_STATS(X)                                                 \
  X(sessions, "sessions now, from connect until on_disconnect returns")      \
  X(connected, "sessions that reached on_connect")                           \
  X(connect_timeouts, "handshakes that got no answer")                       \
  X(rejected, "handshakes refused by REJECT")                                \
  X(closed_by_server, "sessions ended by the server's CLOSE (TCP: its end "  \
                      "of stream)")                                          \
  X(closed_by_client, "sessions ended by a CLOSE this client sent (TCP: "    \
                      "its FIN)")                                            \
  X(hello_sent, "HELLO packets sent, retransmissions included")              \
  X(connect_sent, "CONNECT packets sent, retransmissions included")          \
  X(dgrams_in, "datagrams received")                                         \
  X(dgrams_out, "datagrams the kernel took")                                 \
  X(dgrams_out_dropped, "datagrams the kernel refused")                      \
  X(bytes_in, "UDP payload bytes received")                                  \
  X(bytes_out, "UDP payload bytes queued for sending")                       \
  X(frames_in, "frames delivered to on_message")                             \
  X(frames_out, "frames queued by kite_conn_send")                           \
  X(pings_sent, "pings sent")                                                \
  X(pongs_sent, "pings of the server answered")                              \
  X(drop_short, "datagrams too short to be anything")                        \
  X(drop_truncated, "datagrams larger than a receive buffer")                \
  X(drop_control, "control packets malformed, unknown, or out of place")     \
  X(drop_unknown, "segments, CLOSEs or replies for no session (of that "     \
                  "address, for segments and CLOSE)")                        \
  X(drop_wrong_addr, "handshake replies with a session's nonce from another "\
                     "address")                                              \
  X(drop_kcp, "segments the KCP engine refused")                             \
  X(drop_close, "CLOSE packets with a wrong token")                          \
  X(drop_reserved, "frames with a msg_id reserved for kite")                \
  X(tcp_connect_failed, "TCP connections refused, reset or ended before "    \
                        "OPENED")                                            \
  X(tcp_resets, "open TCP sessions ended by a reset or socket error")        \
  X(tcp_bytes_in, "TCP stream bytes received")                               \
  X(tcp_bytes_out, "TCP stream bytes the kernel took")                     \
  X(tcp_lingers, "TCP sessions closed on purpose that lingered after "      \
                 "their FIN (tcp_linger_ms)")                              \
  X(tcp_linger_cut, "lingering TCP connections closed at tcp_linger_ms, " \
                    "the server's end unseen")                             \
  X(tcp_linger_full, "lingering TCP connections closed early: "            \
                     "max_sessions were lingering")                        \
  X(tcp_linger_bytes, "TCP bytes read and discarded while lingering")      \
  X(v2_attempts, "version 2: token addresses tried (HELLO or connect)")     \
  X(v2_drop_size, "version 2: datagrams under 31 bytes, over the mtu, or "  \
                  "with a packet number at or past 2^48")                  \
  X(v2_drop_replay, "version 2: datagrams stale or duplicate by the "       \
                    "replay window")                                        \
  X(v2_drop_auth, "version 2: datagrams or records whose tag failed")       \
  X(v2_accept_bad, "version 2: ACCEPT or OPENED bodies that did not open "  \
                   "under the token's key")                                 \
  X(v2_items_skipped, "version 2: items of reserved types, or PATH items "  \
                      "in the wrong direction")                             \
  X(v2_unreliable_dropped, "version 2: unreliable messages not delivered "  \
                           "(kite's msg_ids)")                              \
  X(unreliable_in, "version 2: unreliable messages delivered")              \
  X(unreliable_out, "version 2: unreliable messages sent as items")         \
  X(unreliable_drop_stale, "version 2: sequenced unreliable messages older " \
                           "than the newest delivered")                     \
  X(v2_path_responses, "version 2: PATH_CHALLENGEs answered")

typedef struct kite_client_stats {
#define KITE__CLIENT_STAT_FIELD(name, help) uint64_t name;
  KITE_CLIENT_STATS(KITE__CLIENT_STAT_FIELD)
#undef KITE__CLIENT_STAT_FIELD
} kite_client_stats;

/* A snapshot of the counters. */
KITE_API
void kite_client_stats_get(const kite_client *c, kite_client_stats *out);

#ifdef __cplusplus
}
#endif
#endif
