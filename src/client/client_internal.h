/*
 * The client's insides, shared by its files:
 *
 *   client.c            the object: config, socket, tables, create, destroy
 *   client_poll.c       the poll loop: waits, timers, safe points
 *   client_udp.c        the UDP socket's datagrams, routed to sessions by
 *                       nonce (handshake replies) or conv (segments, CLOSE)
 *   client_conn.c       a session's life: connect, timer, close, free, and
 *                       the public kite_conn_* calls
 *   client_frames.c     what every transport carries: frames, pings, pongs,
 *                       the close notice
 *   client_handshake.c  KCP's HELLO / CHALLENGE / CONNECT / ACCEPT / REJECT
 *   client_kcp.c        the KCP transport: its block, CLOSE
 *   client_tcp.c        the TCP transport: connect, OPEN / OPENED, its
 *                       socket's reads and writes, the close notice
 *   client_v2.c         version 2 (PROTOCOL-v2.md): the token, the
 *                       addresses tried in order, the UDP handshake
 *   client_v2dg.c       version 2 over UDP once open: protected datagrams
 *                       and their items around the KCP block
 *   client_v2tcp.c      version 2 over TCP: OPEN / OPENED v2, records
 *
 * A session reaches its transport through one operations table
 * (kite__cli_transport, conn->tp): adding a transport adds a file and a
 * table, not branches in the others. Everything here runs on the client's
 * one thread.
 *
 * How work flows. Datagrams and timers never run a session's KCP flush
 * directly: they "touch" the session (a list), and the client services
 * every touched session at a safe point (after each receive batch, after
 * the timers): its transport's flush (KCP: read its frames, flush once),
 * then its timer re-armed. So a batch of 64 datagrams costs one flush per
 * session, acks included, and sends from callbacks ride in the same flush.
 * Closing is deferred the same way: a closed session leaves the maps and
 * the wheel at once, but its transport state and memory live until its
 * on_disconnect has run at the next safe point, so no callback up the
 * stack ever sees freed memory.
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
#include "proto/replay.h"
#include "proto/v2ctl.h"
#include "proto/v2pkt.h"
#include "proto/v2rec.h"
#include "proto/v2seq.h"
#include "proto/v2tok.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/uio.h>

enum kite__cli_conn_state {
  KITE__CONN_HELLO = 0, /* HELLO sent, waiting for CHALLENGE */
  KITE__CONN_CONNECT,   /* CONNECT sent, waiting for ACCEPT */
  KITE__CONN_TCP_CONNECT, /* TCP: connect() in progress */
  KITE__CONN_TCP_OPENING, /* TCP: OPEN sent, waiting for OPENED */
  KITE__CONN_OPEN,      /* ACCEPT or OPENED: frames flow; on_connect called */
  KITE__CONN_CLOSED,    /* on_disconnect runs at the next safe point */
};

#define KITE__CONN_NO_SLOT UINT32_MAX

/* A client transport: how a session's frames reach its server. The core
 * (connect, timer, close, frames, the poll loop) calls only these; each
 * runs on the client's thread, |conn| being one of this transport's. */
typedef struct kite__cli_transport {
  const char *name; /* for logs: "kcp", "tcp" */
  /* A datagram of the client's UDP socket for |conn| (routed by conv),
   * once open. NULL: the transport has no datagrams. */
  void (*input)(kite_conn *conn, const uint8_t *p, size_t len);
  /* epoll reported |events| on conn->fd. NULL: no descriptor of its own. */
  void (*on_event)(kite_conn *conn, uint32_t events);
  /* The session's timer fired before it opened: retransmit or give up. */
  void (*on_timer)(kite_conn *conn);
  /* Queues or writes one frame (|n| buffers, the unit whole or not at
   * all). 0, or a KITE_E* code as kite_conn_send() documents. */
  int (*send)(kite_conn *conn, const struct iovec *iov, int n);
  /* At a safe point, open: deliver what arrived, send what is due. NULL:
   * nothing waits for it (the transport reads and writes at once). */
  void (*flush)(kite_conn *conn);
  /* Open: the transport's own next deadline; false when it has none. */
  bool (*next_due)(const kite_conn *conn, uint32_t now, uint32_t *due);
  /* The session is ending (state CLOSED already): tell the server when
   * it was open or accepted and |wire_reason| >= 0, leave the maps and
   * give back what must go at once (a descriptor). Counts
   * closed_by_client. */
  void (*close)(kite_conn *conn, bool was_open, int wire_reason);
  /* Frees what close() kept (idempotent; also for a session never
   * started). */
  void (*free)(kite_conn *conn);
  /* srtt_ms, rto_ms and retransmits into |out| (zeroed by the caller). */
  void (*stats)(const kite_conn *conn, kite_conn_stats *out);
  /* Frames with msg_id KITE__MSG_CLOSE_NOTICE are the server's close
   * notice (PROTOCOL.md section 5), not a reserved id to drop. */
  bool close_notice;
} kite__cli_transport;

extern const kite__cli_transport kite__cli_kcp_transport;
extern const kite__cli_transport kite__cli_tcp_transport;

/* One address of a token tried (version 2): its nonce and where it went. */
typedef struct kite__cli_v2try {
  uint8_t nonce[KITE__CTRL_NONCE]; /* UDP: registered in by_nonce */
  kite__addr addr;                  /* UDP: v4-mapped on a v6 socket */
  bool connect_sent;                /* UDP: an ACCEPT may answer it */
  bool registered;                  /* UDP: |nonce| is in by_nonce */
  bool old;                         /* registered, attempt over: counted in
                                       cli->v2_old_nonces */
} kite__cli_v2try;

/* A version-2 session's state (client_v2*.c), NULL for version 1. Holds
 * secrets: wiped (sodium_memzero) before it is freed. Allocated at
 * connect, once per session. Every field is the client thread's. */
typedef struct kite__cli_v2 {
  kite__v2tok tok;        /* the token's public part, until it opens or ends */
  bool have_tok;
  uint32_t give_up_ms;    /* connect time + expire_ts - create_ts */
  uint8_t ntried;         /* addresses tried so far (tried[ntried - 1]: now) */
  kite__cli_v2try tried[KITE__V2TOK_ADDRS];
  int fail_reason;        /* what the last ended attempt reports */
  kite__v2keys keys;      /* traffic keys, from ACCEPT or OPENED on */
  kite__v2pn pn;          /* our datagrams' (or records') numbers */
  kite__replay win;       /* the server's datagrams */
  uint32_t mtu;           /* accepted */
  uint16_t max_unreliable;
  bool done;              /* CLOSE sent (or numbers ran out): nothing more */
  bool rd_live;           /* TCP: |rd| initialised */
  kite__v2seq seq_in;     /* UDP: the server's sequenced messages */
  kite__v2seq_out seq_out; /* UDP: ours, the next seq per msg_id, kept */
  kite__v2rec_reader rd;  /* TCP: the server's records */
} kite__cli_v2;

/* Every field is the client thread's. */
struct kite_conn {
  kite_client *cli;
  const kite__cli_transport *tp;
  void *user;
  uint32_t slot;     /* index in cli->conns; KITE__CONN_NO_SLOT once detached */
  uint8_t state;     /* kite__cli_conn_state */
  bool touched;      /* on cli->touched */
  int reason;        /* for on_disconnect, once CLOSED */
  kite__addr server; /* KCP: as the socket reports it (v4-mapped on a v6
                        socket); TCP: as given */

  /* Open, either transport. */
  uint32_t max_frame;       /* the server's (ACCEPT): the limit of our sends */
  uint32_t idle_timeout_ms; /* the server's (ACCEPT); 0: none */
  uint32_t ping_ms;
  uint32_t retry_due_ms; /* before open: the next retransmission or timeout */
  uint32_t last_rx_ms;   /* open: when the server was last heard */
  uint32_t ping_due_ms;  /* open: the next periodic ping */
  uint32_t last_rtt_ms;
  uint64_t frames_in, frames_out;
  bool notice_heard;      /* the server's close notice came (PROTOCOL.md 5) */
  uint8_t notice_reason;  /* its reason, reported at its end of stream */
  kite__timer timer;      /* the session's one timer */
  kite__frame_reader reader;
  kite_conn *touched_next;
  kite_conn *closed_next;

  /* KCP sessions (client_handshake.c, client_kcp.c). */
  bool accepted;     /* conv and token are the server's: CLOSE can be sent */
  bool in_conv_map;
  uint32_t tries;    /* sends of the current handshake packet */
  uint8_t nonce[KITE__CTRL_NONCE];
  uint8_t cookie[KITE__CTRL_COOKIE];
  uint8_t token[KITE__CTRL_TOKEN];
  uint32_t conv;
  kite__kcp *kcp;    /* from ACCEPT until freed */

  /* TCP sessions (client_tcp.c). retry_due_ms is the OPENED deadline. */
  bool stream_cut;        /* a frame went out in part: no close notice */
  uint8_t reply_have;     /* bytes of OPENED or REJECT gathered in |reply| */
  uint32_t watching;      /* the epoll events registered for |fd| */
  int fd;                 /* -1 once closed */
  kite__tcp_out out;
  uint8_t reply[KITE__V2CTL_OPENED]; /* OPENED v2, the longest reply */

  kite__cli_v2 *v2; /* version 2 (client_v2*.c); NULL: version 1 */
};

/* A 32-bit millisecond clock; tests inject a fake one. */
typedef uint32_t (*kite__cli_clock_fn)(void *user);

/* epoll events taken per wait: a budget, as KITE__CLIENT_RX_BATCHES is;
 * level-triggered, so the rest are reported by the next poll. */
#define KITE__CLIENT_EVENTS 64

/* A TCP connection closed on purpose, lingering (client_linger.c). */
typedef struct kite__cli_linger {
  int fd;          /* -1: ended (end of stream, error, deadline) */
  uint32_t due_ms; /* closed at this instant if still open */
} kite__cli_linger;

/* Every field is the client thread's. */
struct kite_client {
  kite_client_config cfg;
  kite__log log;
  int fd;
  int ep;        /* epoll: the UDP socket and every TCP connection */
  uint32_t ntcp; /* TCP descriptors open: poll(0) asks epoll only then */
  /* Lingering closes: a ring of max_sessions entries (allocated at the
   * first), the oldest at |linger_head| (client_linger.c). */
  kite__cli_linger *lingers;
  uint32_t linger_head, linger_n;
  bool v6;      /* AF_INET6 socket: IPv4 servers are kept v4-mapped */
  bool in_poll; /* inside kite_client_poll(): callbacks may be running */
  uint32_t now; /* the time of the step being handled */
  kite__cli_clock_fn clock;
  void *clock_user;

  kite__wheel wheel;
  kite__map by_nonce; /* nonce -> slot, connect until freed; room for
                         2 * max_sessions: one current nonce a session,
                         and at most max_sessions of v2 attempts over */
  uint32_t v2_old_nonces; /* v2 nonces kept for a late ACCEPT (client_v2.c) */
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
  /* Version 2: a datagram's items opened here, ours sealed there (no
   * allocation per packet), TCP records sealed in |v2rec| (allocated at
   * the first v2 TCP session, KITE__V2REC_OVERHEAD + KITE__V2REC_MAX). */
  uint8_t v2_in[KITE__UDP_DGRAM_MAX];
  uint8_t v2_out[KITE__UDP_DGRAM_MAX];
  uint8_t *v2rec;
};

/* ---- client.c ---- */

/* The time to use now: inside poll, the step's time; outside, a fresh
 * reading (kept in cli->now). */
uint32_t kite__cli_time(kite_client *cli);

/* Queues |conn| for service at the next safe point (its transport's
 * flush, its timer re-armed). Idempotent. */
void kite__cli_touch(kite_conn *conn);

/* Sets the epoll events of |conn|'s descriptor (reported with |conn| as
 * data.ptr): added when conn->watching is 0, removed when |events| is 0,
 * else modified; nothing when unchanged. Returns 0, or -1 with errno. */
int kite__cli_watch(kite_conn *conn, uint32_t events);

/* The session in |slot| of a map hit. */
static inline kite_conn *kite__cli_conn_at(kite_client *cli, uint32_t slot) {
  return cli->conns[slot];
}

/* Test hook: replaces the clock (NULL: the monotonic clock) and restarts
 * the wheel at the new time. Only while the client holds no session. */
void kite__cli_set_clock(kite_client *cli, kite__cli_clock_fn fn,
                         void *user);

/* ---- client_poll.c ---- */

/* Services every touched session: its transport's flush when open, then
 * its timer re-armed. Callbacks may touch more: runs until none is left. */
void kite__cli_service_touched(kite_client *cli);

/* ---- client_udp.c ---- */

/* Reads up to a budget of datagram batches and routes each (handshake
 * replies by nonce, segments and CLOSE by conv), servicing the sessions
 * touched after each batch. 0, or KITE_ESYS (recvmmsg failed). */
int kite__cli_udp_receive(kite_client *cli);

/* Encodes |k| and queues it to |conn|'s server, |copies| times. */
void kite__cli_udp_send_ctrl(kite_conn *conn, const kite__ctrl *k,
                             int copies);

/* The by_conv key of a session: conv and server address, so that two
 * servers that happen to pick the same conv never clash. */
uint64_t kite__cli_conv_key(uint32_t conv, const kite__addr *server);

/* ---- client_conn.c ---- */

/* A new session of transport |tp| in a free slot, counted, not started.
 * NULL when no slot is free (*rc KITE_EFULL) or on KITE_ENOMEM. */
kite_conn *kite__cli_conn_new(kite_client *cli, const kite__cli_transport *tp,
                              void *user, int *rc);

/* Re-arms |conn|'s timer from its state: before open, retry_due_ms; when
 * open, the earliest of its transport's deadline, its ping and its idle
 * deadline. */
void kite__cli_conn_schedule(kite_conn *conn);

/* The timer fired. */
void kite__cli_conn_on_timer(kite_conn *conn);

/* Ends |conn|: takes it out of the maps and the wheel at once, has its
 * transport tell the server (|wire_reason| >= 0: CLOSE, or the close
 * notice; for a normal close what KCP holds is flushed once first) and
 * queues its on_disconnect(|reason|) for the next safe point. No-op when
 * it is closed already. Never frees: see kite__cli_conn_free(). */
void kite__cli_conn_close(kite_conn *conn, int reason, int wire_reason);

/* Gives |conn|'s slot back (it leaves cli->conns) without freeing it:
 * done just before its on_disconnect. Idempotent. */
void kite__cli_conn_detach(kite_conn *conn);

/* Frees |conn| and its slot, transport state and reader (no callback). */
void kite__cli_conn_free(kite_conn *conn);

/* Draws a fresh random nonce into conn->nonce and registers it in
 * by_nonce for |conn|. 0, KITE_ENOMEM or KITE_EFULL. */
int kite__cli_conn_nonce(kite_conn *conn);

/* A dual-stack socket's form of an IPv4 address (::ffff:a.b.c.d). */
void kite__cli_v4_mapped(kite__addr *a);

/* ---- client_frames.c ---- */

/* The server accepted |conn| (ACCEPT, or OPENED on TCP): records its
 * limits, starts pings and the frame reader, sends the first ping and
 * calls on_connect (unless that ping found the connection broken). */
void kite__cli_frames_opened(kite_conn *conn, uint32_t idle_timeout_ms,
                             uint32_t max_frame);

/* Feeds |n| stream bytes to the session's frame reader (pings answered,
 * pongs timed, the close notice kept, the rest to on_message). Returns the
 * bytes used: fewer than |n| when a callback closed the session, or when
 * a bad frame (closed, reason 2) or no memory (closed, KITE_CLIENT_NOMEM)
 * ended it. */
size_t kite__cli_frames_feed(kite_conn *conn, const uint8_t *p, size_t n);

/* Queues a frame on the session's stream through its transport. Returns 0
 * or a KITE_E* code as kite_conn_send() documents (state and argument
 * checks are the caller's). */
int kite__cli_frames_send(kite_conn *conn, uint16_t msg_id, uint16_t flags,
                          const void *body, size_t len);

/* Queues a ping carrying the send time. */
int kite__cli_frames_ping(kite_conn *conn);

/* A pong's body (|len| bytes) came back: last_rtt_ms when it is ours. */
void kite__cli_frames_pong(kite_conn *conn, const uint8_t *body, size_t len);

/* ---- client_handshake.c ---- */

/* Sends the first HELLO and arms the retransmission timer. */
void kite__cli_hs_start(kite_conn *conn);

/* The handshake's timer: retransmits, or gives up (KITE_CONNECT_TIMEOUT). */
void kite__cli_hs_on_timer(kite_conn *conn);

/* CHALLENGE, ACCEPT or REJECT carrying |conn|'s nonce, from its server.
 * |k| is decoded; |version_reject| marks a REJECT whose header carried
 * another version (decode said EVERSION). */
void kite__cli_hs_on_packet(kite_conn *conn, const kite__ctrl *k,
                            bool version_reject);

/* REJECT |reason| refused the handshake (either transport). */
void kite__cli_hs_on_reject(kite_conn *conn, int reason);

/* ---- client_kcp.c ---- */

/* ACCEPT arrived for |conn| (state CONNECT; conv and token copied):
 * validates it, creates the KCP block, registers the conv, sends the ping
 * that opens the session (PROTOCOL.md section 2, step 5) and calls
 * on_connect. On failure the session is closed instead. */
void kite__cli_kcp_open(kite_conn *conn, const kite__ctrl *accept);

/* Creates |conn|'s KCP block (conv set) with KCP mtu |mtu| and the
 * server's window, its output through |ops|, and registers the conv. 0,
 * or the session is closed (protocol error, or KITE_CLIENT_NOMEM) and
 * -1 returned. */
int kite__cli_kcp_start(kite_conn *conn, uint32_t mtu, uint16_t peer_wnd,
                        const kite__kcp_ops *ops);

/* The KCP transport's parts version 2 shares (client_v2dg.c). */
void kite__cli_kcp_input(kite_conn *conn, const uint8_t *p, size_t len);
void kite__cli_kcp_read_frames(kite_conn *conn);
void kite__cli_kcp_flush(kite_conn *conn);
bool kite__cli_kcp_next_due(const kite_conn *conn, uint32_t now, uint32_t *due);
int kite__cli_kcp_send(kite_conn *conn, const struct iovec *iov, int n);
void kite__cli_kcp_free(kite_conn *conn);
void kite__cli_kcp_stats(const kite_conn *conn, kite_conn_stats *out);
void kite__cli_kcp_dead(kite__kcp *kcp, void *user);

/* A CLOSE from the session's server (conv and address matched): checks
 * the token in constant time, delivers what arrived before it, and ends
 * the session with its reason. */
void kite__cli_kcp_on_close(kite_conn *conn, const kite__ctrl *k);

/* ---- client_tcp.c ---- */

/* Opens the connection to conn->server (state TCP_CONNECT) and arms the
 * OPENED deadline. A failure closes |conn| (KITE_CONNECT_FAILED), or, on
 * version 2, tries the token's next address. */
void kite__cli_tcp_start(kite_conn *conn);

/* Version 2: gives the connection up (FIN, descriptor closed, output
 * freed) so that the next address can start afresh. */
void kite__cli_tcp_release(kite_conn *conn);

/* ---- client_linger.c ---- */

/* Keeps |fd| (notice and FIN sent) open in the client's poll loop, its
 * reads discarded, until the server's end of stream or tcp_linger_ms.
 * false: not kept (tcp_linger_ms 0, no memory, epoll refused): the caller
 * closes it. A full ring closes its oldest entry first. */
bool kite__cli_linger_start(kite_client *c, int fd);
/* true when |ptr|, an epoll data.ptr, is a lingering entry's. */
bool kite__cli_linger_owns(const kite_client *c, const void *ptr);
/* epoll reported the entry at |ptr|: reads and discards, ends at EOF. */
void kite__cli_linger_on_event(kite_client *c, void *ptr);
/* Closes every entry whose deadline c->now has reached. */
void kite__cli_linger_expire(kite_client *c);
/* |wait| (ms, -1: none) shortened to the next linger deadline. */
int kite__cli_linger_timeout_ms(const kite_client *c, uint32_t now, int wait);
/* Closes every lingering descriptor at once; frees the ring. */
void kite__cli_linger_free(kite_client *c);

/* Writes |n| buffers to the socket as they are (no records): OPEN v2. */
int kite__cli_tcp_send_raw(kite_conn *conn, const struct iovec *iov, int n);

/* The connection broke (errno |err|, or 0: end of stream). */
void kite__cli_tcp_broken(kite_conn *conn, const char *what, int err);

/* ---- client_v2.c ---- */

extern const kite__cli_transport kite__cli_v2udp_transport;

/* Reads |token| into a new conn->v2 (KITE_EINVAL when malformed,
 * KITE_ENOMEM), the give-up deadline from now. */
int kite__cli_v2_new(kite_conn *conn, const uint8_t *token, size_t len);

/* Starts the first address: UDP (HELLO v2) or TCP (connect, OPEN v2). */
void kite__cli_v2_start(kite_conn *conn);

/* The current attempt ended (a timeout, a REJECT, a failed connection, an
 * ACCEPT that breaks the table): tries the next address, or ends the
 * session with |reason| when none is left or the token's time is up. */
void kite__cli_v2_attempt_failed(kite_conn *conn, int reason);

/* The token's time ran out (checked by the session's timer): true when
 * the session was closed for it (KITE_CONNECT_EXPIRED). */
bool kite__cli_v2_expired(kite_conn *conn);

/* The earlier of |due| and the give-up deadline, before open. */
uint32_t kite__cli_v2_due(const kite_conn *conn, uint32_t due);

/* A handshake reply (version 1 or 2) whose nonce is one of |conn|'s. */
void kite__cli_v2_on_ctrl(kite_conn *conn, const uint8_t *p, size_t len,
                          const kite__addr *from);

/* The UDP handshake's timer (the v2 UDP transport's on_timer). */
void kite__cli_v2_hs_on_timer(kite_conn *conn);

/* Forgets every nonce of |conn| in by_nonce but attempt |keep|'s (-1:
 * all of them). */
void kite__cli_v2_unregister(kite_conn *conn, int keep);

/* Wipes the token: a session opened, or its attempt ended. */
void kite__cli_v2_drop_token(kite_conn *conn);

/* Wipes and frees conn->v2 (idempotent). */
void kite__cli_v2_free(kite_conn *conn);

/* ---- client_v2dg.c ---- */

/* ACCEPT |a| opened for attempt |i|: traffic keys, the KCP block, the
 * first ping, on_connect. */
void kite__cli_v2dg_open(kite_conn *conn, int i, const kite__v2accept *a,
                         const uint8_t accept_nonce[8]);

/* ---- the unreliable lane ---- */
/* client_frames.c: an unreliable message for the application (|flags|
 * KITE_UNRELIABLE_SEQUENCED or 0): on_unreliable, else on_message. */
void kite__cli_deliver_unreliable(kite_conn *conn, uint16_t msg_id,
                                  unsigned flags, const uint8_t *body,
                                  size_t len);
/* client_v2dg.c: one UNRELIABLE item in a datagram of its own, now. 0 or
 * KITE_ESTATE (the session sent its CLOSE). */
int kite__cli_v2dg_send_unreliable(kite_conn *conn, uint16_t msg_id,
                                   unsigned flags, const void *body,
                                   size_t len);

/* ---- client_v2tcp.c ---- */

/* The connection is up: sends OPEN v2. */
void kite__cli_v2tcp_send_open(kite_conn *conn);

/* The size of the reply whose header is in conn->reply (version 2). */
size_t kite__cli_v2tcp_reply_size(const kite_conn *conn);

/* conn->reply holds a whole reply to OPEN v2. */
void kite__cli_v2tcp_on_reply(kite_conn *conn);

/* Stream bytes of an open v2 session: records, then frames. */
void kite__cli_v2tcp_feed(kite_conn *conn, const uint8_t *p, size_t n);

/* A frame, as records. As the TCP transport's send. */
int kite__cli_v2tcp_send(kite_conn *conn, const struct iovec *iov, int n);

/* The CLOSE frame (msg_id 0xFF01) with |reason|, sealed, best effort. */
void kite__cli_v2tcp_send_close(kite_conn *conn, uint8_t reason);

#endif
