/*
 * kite server: players connect over KCP (PROTOCOL.md) or TCP (tcp_addr,
 * PROTOCOL.md section 5), each session owned by one shard thread for its
 * whole life. Both transports carry the same frames to the same handlers;
 * the functions below work alike on either.
 *
 *   kite_server_config cfg;
 *   kite_server_config_init(&cfg);
 *   cfg.udp_addr = "0.0.0.0:7001";
 *   cfg.on_message = handle;               // (server, session, msg_id, body, len)
 *   kite_server *srv;
 *   if (kite_server_create(&srv, &cfg) < 0) ...;   // binds, or says why not
 *   kite_server_start(srv);                // shard threads run
 *   ...                                    // kite_session_send() from anywhere
 *   kite_server_stop(srv);                 // graceful: flush, CLOSE, callbacks
 *   kite_server_destroy(srv);
 *
 * Threads. A session's callbacks run on its executor (include/kite/logic.h:
 * the shard thread that owns it, or a worker), one at a time and in order:
 * on_connect once, then on_message (or a routed handler) for each frame,
 * then on_disconnect once. Functions say which threads may call them.
 */
#ifndef KITE_SERVER_H
#define KITE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kite/export.h"
#include "kite/error.h"
#include "kite/log.h"
#include "kite/logic.h"
#include "kite/reason.h" /* kite_close_reason, shared with the client */
#include "kite/token.h"  /* KITE_TOKEN_KEY_BYTES, KITE_TOKEN_USER_DATA_MAX */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kite_server kite_server;

/* A session's id: never 0, never reused for another session (a generation
 * in the id tells a stale id from a newer session in the same slot), so an
 * id kept after on_disconnect is harmlessly refused with KITE_ENOTFOUND. */
typedef uint64_t kite_session_id;

/* Called on the session's executor: its shard thread (inline mode) or its
 * worker (kite/logic.h), one call at a time per session. |body| is valid
 * only during the call (copy what you keep). A callback may call any kite_session_*() and
 * kite_server_stats(), but not kite_server_stop() or _destroy(). */
typedef void (*kite_on_connect_fn)(kite_server *srv, kite_session_id id,
                                   void *user);
typedef void (*kite_on_message_fn)(kite_server *srv, kite_session_id id,
                                   uint16_t msg_id, const uint8_t *body,
                                   size_t len, void *user);
typedef void (*kite_on_disconnect_fn)(kite_server *srv, kite_session_id id,
                                      int reason, void *user);

/* Wire protocol versions, for kite_server_config.versions: OR-ed. */
#define KITE_VERSION_1 1u /* PROTOCOL.md: open to anyone, in clear; what
                             stock KCP clients speak */
#define KITE_VERSION_2 2u /* PROTOCOL-v2.md: connect tokens, encrypted and
                             authenticated sessions */

typedef struct kite_server_config {
  const char *udp_addr;     /* "HOST:PORT", "[::]:PORT"; port 0: any (NULL: 127.0.0.1:7001) */
  int threads;              /* shard threads; 0: one per CPU (0) */
  uint32_t max_sessions;    /* sessions at once, all shards (100000) */
  uint32_t idle_timeout_ms; /* nothing received this long: close (10000) */
  uint32_t handshake_timeout_ms; /* half-open with no segment: drop (5000) */
  uint32_t cookie_lifetime_s;    /* a CHALLENGE's cookie is valid (10) */
  uint32_t max_frame;       /* largest frame body accepted (65536) */
  uint32_t mtu;             /* largest datagram; CONNECT may lower it (1400) */
  uint32_t snd_wnd, rcv_wnd; /* KCP windows, in segments (128, 128) */
  uint32_t interval_ms;     /* KCP timer granularity (10) */
  uint32_t dead_link_ms;    /* no ack this long with data out: close (15000) */
  uint32_t send_queue_max;  /* segments queued per session (1024) */
  uint32_t shard_segments_max; /* KCP buffer budget per shard, segments (65536) */
  uint32_t inbox_max;       /* commands from other threads per shard (65536) */
  uint32_t stop_timeout_ms; /* graceful stop waits this long for acks (3000) */
  uint32_t close_timeout_ms; /* kite_session_close() waits this long for what
                                was sent before it to be acknowledged (3000) */
  /* CLOSE has no acknowledgement: a version 1 KCP session the server
   * closed is remembered this long, per shard, and a datagram for it from
   * its peer's address gets its CLOSE again, at most one per 100 ms
   * (close_resent), so a peer that lost all three copies still learns why.
   * 0 (either): not remembered. */
  uint32_t closed_linger_ms;  /* ms (10000; at most 600000) */
  uint32_t closed_linger_max; /* sessions remembered per shard (4096; at most
                                 2^20); more: the oldest is forgotten
                                 (close_linger_forgotten) */
  bool steering;            /* steer segments to their shard in the kernel (true) */
  uint32_t udp_rcvbuf, udp_sndbuf; /* each shard's UDP socket buffers asked
                               of the kernel, bytes (4 MiB each; 4 KiB..1 GiB).
                               It caps them at net.core.rmem_max / wmem_max:
                               the start-up log says what it granted. What it
                               drops when the receive buffer is full is
                               counted (rx_overflows) */
  uint32_t overload_refuse_ms; /* after the kernel dropped a shard's datagrams
                               (it is behind), its new sessions are refused
                               (REJECT full, counted reject_overload) this
                               long, so the players it has come first (1000;
                               0: never refuse for that) */
  /* Memory a burst left idle goes back (docs/RUNTIME.md, "Memory given
   * back"). Every trim_interval_ms each shard frees the KCP chunks and
   * window rings its pool held through the whole last interval without
   * needing them, down to the keeps below, and shrinks its handshake, conv,
   * per-source and (inline mode) game-timer tables once they are under 1/8
   * full; what it gives back is counted (pool_trimmed_bytes,
   * map_shrinks). Then, when it freed
   * something, grew nothing in the interval and malloc holds at least
   * malloc_trim_min bytes free, it calls malloc_trim(0) (glibc: returns
   * free pages in every thread's arena), at most once per
   * trim_interval_ms server-wide, counted (malloc_trims). */
  uint32_t trim_interval_ms;    /* ms (10000; 0: never; else 10..3600000) */
  uint32_t shard_segments_keep; /* KCP chunks a trim leaves a shard (256) */
  uint32_t shard_rings_keep;    /* KCP window rings likewise (64) */
  uint32_t malloc_trim_min;     /* bytes (4 MiB; 0: never call malloc_trim) */
  uint32_t wake_coalesce_us; /* under dense traffic (a wake-up served two
                               or more datagrams, or came within this long
                               of the last), a shard sleeps until this long
                               after its last wake-up began before it waits
                               again, so that one wake-up serves all that
                               arrived meanwhile: fewer wake-ups and system
                               calls per message. The price: what arrives
                               during the sleep (a datagram, a send or a
                               worker's reply from another thread, a timer
                               due) is served up to this much later. A shard
                               woken now and then for one datagram, that
                               read a full batch (64), or that the kernel
                               has been dropping datagrams for (as
                               overload_refuse_ms), never sleeps
                               (docs/RUNTIME.md; counted wake_holds).
                               0..10000 (1000; 0: serve every wake-up at once) */

  /* Sessions per source over UDP (docs/SECURITY.md): a CONNECT that would
   * pass one is refused with REJECT full and counted (reject_per_source,
   * reject_per_source_halfopen). A prefix is a /24 (IPv4) or /64 (IPv6).
   * Each limit holds per shard: a source's sessions spread over the shards
   * (the owner is a keyed hash of address, port and nonce), so it holds up
   * to a limit x shards in all. 0: no limit. The defaults leave room for
   * players behind one NAT or carrier-grade NAT (dozens per address,
   * hundreds per /24) while one host can no longer take every slot:
   * half-open sessions cost an attacker one CONNECT each, so their budget
   * is the tightest. Loopback load tests with thousands of sessions from
   * one address set them to 0. */
  uint32_t max_sessions_per_addr;   /* per shard, any state (64) */
  uint32_t max_sessions_per_prefix; /* per shard, any state (256) */
  uint32_t max_halfopen_per_addr;   /* per shard, half-open (16) */
  uint32_t max_halfopen_per_prefix; /* per shard, half-open (64) */

  /* Protocol version 2 (docs/PROTOCOL-v2.md): sessions opened with a
   * connect token the game's backend minted (kite/token.h) under the same
   * private key and protocol id; encrypted and authenticated both ways.
   * Served beside version 1 on the same ports. In production, serve
   * KITE_VERSION_2 alone: version 1 admits anyone, in clear. */
  unsigned versions;        /* KITE_VERSION_1 and/or KITE_VERSION_2; 0: 1,
                               and 2 as well when token_key_set (0). Serving
                               2 needs token_key_set */
  bool token_key_set;       /* token_key holds the game's private key */
  uint8_t token_key[KITE_TOKEN_KEY_BYTES]; /* copied at create; the server
                               never logs it and wipes its copy at destroy.
                               Wipe the caller's copy after create */
  uint64_t protocol_id;     /* the game's, as in its tokens (0) */
  const char *public_addr;  /* "HOST:PORT": an address tokens may list for
                               this server besides the local one a packet
                               arrived on (behind NAT or a load balancer);
                               NULL: the local one only (NULL). Copied */
  uint32_t token_record_max; /* per shard: tokens remembered until they
                               expire, so each opens one session here; full,
                               new v2 sessions are refused (REJECT full,
                               counted) (65536) */

  /* TCP (PROTOCOL.md section 5): the same frames, handlers, callbacks,
   * idle timeout, pings and session ids as KCP. Each shard listens on the
   * port (SO_REUSEPORT) and owns the connections it accepts for life. */
  const char *tcp_addr;     /* "HOST:PORT"; port 0: the UDP port's number,
                               so one port serves both (NULL: no TCP) */
  uint32_t tcp_send_max;    /* bytes queued per connection while the kernel's
                               buffer is full; past it sends get KITE_EFULL (1 MiB).
                               At least 12 + max_frame; serving version 2,
                               that sealed (18 more per 16 KiB) + 14 */
  uint32_t tcp_stall_ms;    /* queued output the peer takes none of this long:
                               close as a slow peer (10000) */
  uint32_t tcp_linger_ms;   /* a closed connection gets this long to write what
                               is queued and read the peer's rest (2000) */
  uint32_t tcp_preopen_max; /* per shard: accepted connections that have not
                               sent OPEN yet (they hold no session slot);
                               past it the oldest is dropped (1024) */
  uint32_t tcp_max_per_addr;   /* TCP connections one source address holds at
                                  once, server-wide; more are closed at
                                  accept (256; 0: no limit) */
  uint32_t tcp_max_per_prefix; /* likewise per IPv4 /24 or IPv6 /64 (1024;
                                  0: no limit) */
  /* WebSocket and HTTP on the TCP port (docs/WEBSOCKET.md): a connection
   * whose first bytes are an HTTP GET. */
  uint32_t http_head_max;   /* bytes of a request head, the blank line
                               included; more: 431 (8192) */
  uint32_t ws_max_message;  /* bytes of one WebSocket message, across its
                               fragments; more: close 1009 (262144) */
  const char *ws_origins;   /* comma-separated Origin values an upgrade must
                               carry one of, exactly; NULL: any (NULL) */
  const char *http_root;    /* a directory: a plain GET gets a regular file
                               under it (no symlinks, no ".."); NULL: 404
                               to every plain GET (NULL). Copied. */
  const char *metrics_addr; /* "HOST:PORT": Prometheus text on GET /metrics (NULL: off) */

  kite_worker_mode worker_mode; /* where callbacks run (KITE_WORKERS_INLINE) */
  int workers;              /* hash: pool size (0: one per CPU); bind: the
                               pool, so sessions at once (0: 64); dynamic:
                               the pool, then a temporary worker per session
                               past it, up to max_sessions (0: 64) */
  uint32_t mailbox_depth;   /* frames waiting per session for its worker, a
                               power of two, 2..4096 (256); a ring of as many
                               pointers per session that has had a frame */
  uint32_t mailbox_bytes;   /* frame bytes waiting per session for its worker (262144) */
  uint32_t unreliable_bytes_per_s; /* the snapshot lane's budget per v2 UDP
                               session: item bytes sent per second, one
                               second's worth of burst; past it messages are
                               dropped, counted (unreliable_drop_budget).
                               1024..2^30 (262144) */
  uint32_t unreliable_queue_max; /* per shard: unreliable messages on their
                               way from other threads to v2 UDP sessions, in
                               slots allocated once at create (0: 1024;
                               16..65536). Full: KITE_EFULL, counted */
  kite_unrouted unrouted;   /* a frame no route takes (KITE_UNROUTED_DROP) */
  uint32_t timers_max;      /* game timers per shard or worker at once (16384;
                               bind, dynamic workers: 256) */

  kite_on_connect_fn on_connect;       /* may be NULL */
  kite_on_message_fn on_message;       /* the default handler (kite_server_route
                                          first); NULL: the unrouted policy */
  kite_on_disconnect_fn on_disconnect; /* may be NULL */
  void *user;                          /* passed to the callbacks */

  kite_log_fn log;          /* NULL: kite_log_stderr */
  void *log_user;
  kite_log_level log_level; /* KITE_LOG_INFO */
} kite_server_config;

/* Fills |cfg| with the defaults above. */
KITE_API
void kite_server_config_init(kite_server_config *cfg);

/* Validates |cfg|, binds the sockets and allocates every table, so that
 * kite_server_start() cannot fail on resources. |cfg| is copied (udp_addr
 * and metrics_addr too). Returns 0 and sets *out, or:
 *   KITE_EINVAL  a bad value (the log says which field);
 *   KITE_ESYS    a socket call failed (the log names it and errno);
 *   KITE_ENOMEM. */
KITE_API
int kite_server_create(kite_server **out, const kite_server_config *cfg);

/* Starts the shard threads (and the metrics endpoint, when configured)
 * and returns. KITE_ESTATE if started already, KITE_ESYS if a thread cannot
 * start or metrics_addr cannot be bound (logged). Any thread but a
 * callback. */
KITE_API
int kite_server_start(kite_server *srv);

/* Graceful stop: new handshakes get REJECT (shutting down); each session's
 * queued data is flushed until acknowledged or stop_timeout_ms passes; each
 * gets CLOSE (reason 3; TCP: the close notice, then FIN) and
 * on_disconnect; game timers keep firing until the workers end, after the
 * last on_disconnect; then the threads end. Blocks until then. Any thread
 * but the server's own: from a callback (a shard's or a worker's thread)
 * it returns KITE_ESTATE at once, since it would wait for itself. A second
 * call, or one after another thread's, returns 0 at once. */
KITE_API
int kite_server_stop(kite_server *srv);

/* Stops (if running, as kite_server_stop()) and frees everything: the
 * server and every id, group broadcast target and timer id of it are gone
 * after it returns, so destroy a server's groups (kite_group_destroy())
 * before or after, but with no other thread still using them or |srv|.
 * The thread that created it, or any thread but the server's own: from a
 * callback it is refused (logged, nothing freed). NULL is ignored. */
KITE_API
void kite_server_destroy(kite_server *srv);

/* The UDP port bound (useful after asking for port 0). Any thread. */
KITE_API
int kite_server_udp_port(const kite_server *srv);

/* The TCP port bound, or 0 when tcp_addr is NULL. Any thread. */
KITE_API
int kite_server_tcp_port(const kite_server *srv);

/* The metrics endpoint's TCP port once started (port 0 picks one), or 0
 * when metrics_addr is NULL. Any thread. The text it serves on GET
 * /metrics is described in docs/OPERATIONS.md. */
KITE_API
int kite_server_metrics_port(const kite_server *srv);

/* Sends one frame (PROTOCOL.md section 4) to a session; |body| is copied.
 * Any thread, callbacks included; per-session order is kept for calls from
 * one thread. From the session's own shard it goes straight to KCP, and out
 * at the end of the current batch; from another thread it is handed over.
 * Returns 0, or
 *   KITE_ENOTFOUND  no such session (a stale id: on_disconnect has run);
 *   KITE_ECLOSED    the session is closing: kite_session_close() was
 *                   called (or its close taken effect: on_disconnect is
 *                   owed or running). Nothing is sent. (A send from
 *                   another thread racing a close may still return 0 and
 *                   be dropped: counted in drop_stale_cmd.)
 *   KITE_EFULL      the session's send queue (send_queue_max; on TCP,
 *                   tcp_send_max bytes) or the shard's inbox is full:
 *                   nothing sent; retry or shed (a queue that stays full
 *                   is a peer that does not read);
 *   KITE_ENOMEM     the shard's KCP memory budget (shard_segments_max) is
 *                   spent, whoever holds it: the server is overloaded, not
 *                   this peer slow. Nothing sent; shed load, do not blame
 *                   the player (counted kcp_no_buffer). From the session's
 *                   own shard only: a frame handed over from another
 *                   thread that meets it closes the session as below;
 *   KITE_EMSGSIZE   |len| above max_frame;
 *   KITE_EINVAL     msg_id 0 (ping) or in 0xFF00..0xFFFF (kite's own).
 * From another thread, room is reserved against send_queue_max counting
 * both frames still on their way and those in the session's KCP queue, so
 * KITE_EFULL comes back at once; a frame that still finds no room when it
 * reaches the shard (the queue and the KCP window both full) closes the
 * session as a slow peer (reason 6). */
KITE_API
int kite_session_send(kite_server *srv, kite_session_id id, uint16_t msg_id,
                      const void *body, size_t len);

/* kite_session_send_unreliable() and kite_group_broadcast_unreliable():
 * sequenced, the receiver drops a message older than the newest of its
 * msg_id it delivered (PROTOCOL-v2.md section 6). */
#ifndef KITE_UNRELIABLE_SEQUENCED
#define KITE_UNRELIABLE_SEQUENCED 0x1u /* as client.h's */
#endif

/* Sends one message on the session's unreliable lane (the snapshot lane:
 * PROTOCOL-v2.md section 6): never resent, never held by KCP's windows;
 * what is lost is lost, and a sequenced message (|flags|
 * KITE_UNRELIABLE_SEQUENCED) that arrives after a newer one of its msg_id
 * is dropped by the receiver. |body| is copied. Any thread, callbacks
 * included, as kite_session_send(). By the session's wire:
 *   version 2 over UDP  an UNRELIABLE item: it leaves with the next
 *                   datagram to the session at the end of the current batch
 *                   (beside KCP's acks and data when it fits), never waiting
 *                   for KCP's interval. Each session has a budget,
 *                   unreliable_bytes_per_s: past it the message is dropped
 *                   and counted (unreliable_drop_budget), as it is while the
 *                   session's new address is being validated
 *                   (unreliable_drop_path). From another thread the message
 *                   travels in one of the shard's unreliable_queue_max slots
 *                   (no allocation).
 *   version 2 over TCP or WebSocket  a frame with the unreliable flag (bit
 *                   2), in order with the rest; nothing is stale on an
 *                   ordered stream, so no sequencing is sent.
 *   version 1       an ordinary reliable frame (version 1 has no lane), with
 *                   kite_session_send()'s queue rules.
 * Returns 0, or
 *   KITE_EMSGSIZE   |len| above the session's max_unreliable (version 2:
 *                   what one datagram holds at its mtu, as its ACCEPT or
 *                   OPENED said; version 1: max_frame): nothing sent (never
 *                   a silent drop);
 *   KITE_EINVAL     msg_id 0 or 0xFF00..0xFFFF, or an unknown flag;
 *   KITE_ENOTFOUND, KITE_ECLOSED as kite_session_send();
 *   KITE_EFULL      from another thread, the shard's unreliable slots (v2
 *                   UDP) or the session's send queue (else) are full; from
 *                   the session's own shard, the budget dropped it (v2 UDP)
 *                   or the send queue is full. Counted; retry next tick.
 *   KITE_ENOMEM     no memory for the lane's datagram, or (sequenced, v2
 *                   UDP) for the first seq of a msg_id never sent before:
 *                   the sender keeps each msg_id's count for the session's
 *                   life (4 bytes a msg_id, the first send allocates).
 * A message accepted (0) may still be dropped on the way (budget, a close),
 * counted, as the network may drop it. */
KITE_API
int kite_session_send_unreliable(kite_server *srv, kite_session_id id,
                                 uint16_t msg_id, const void *body, size_t len,
                                 unsigned flags);

/* Closes a session (reason 4, kicked), after what was sent to it before
 * (ENet's disconnect_later). Frames sent after the call are never
 * delivered: from the session's own shard or callbacks they fail with
 * KITE_ECLOSED; from another thread one may still return 0 while the
 * close travels, and is dropped (counted in drop_stale_cmd). No handler
 * runs for the session after the close takes effect (kite/logic.h, "After
 * a close"). The frames sent before the call are delivered and, on KCP,
 * acknowledged (at most close_timeout_ms), then the peer is told why (KCP:
 * CLOSE; TCP: the close notice, then FIN), and on_disconnect (reason 4)
 * runs on the session's executor. So reply-then-close is safe: the reply
 * arrives before the client learns it was kicked. Any thread, callbacks
 * included; from another thread than the session's shard the close travels
 * through the shard's inbox. 0, or KITE_ENOTFOUND when it is gone or
 * closing already, or KITE_EFULL (the shard's inbox is full: retry). */
KITE_API
int kite_session_close(kite_server *srv, kite_session_id id);

/* The application's pointer for a session (NULL until set, and again
 * once on_disconnect has returned, so a timer or task that runs later on
 * the executor finds NULL, not what on_disconnect freed). From the
 * session's own callbacks only (on_connect, its handlers, on_disconnect):
 * elsewhere, timers included, set returns KITE_ENOTFOUND (as for a stale
 * id) and get returns NULL, as for a pointer never set; a timer's state
 * travels in its own |user| argument. */
KITE_API
int kite_session_set_user(kite_server *srv, kite_session_id id, void *user);
KITE_API
void *kite_session_user(kite_server *srv, kite_session_id id);

/* How a session reaches the server. */
typedef enum kite_transport {
  KITE_TRANSPORT_KCP = 1, /* KCP over UDP (PROTOCOL.md sections 2-4) */
  KITE_TRANSPORT_TCP = 2, /* TCP (PROTOCOL.md section 5) */
  KITE_TRANSPORT_WS = 3,  /* WebSocket on the TCP port (docs/WEBSOCKET.md) */
} kite_transport;

/* A copy of what the server knows of a session, as of the call. */
typedef struct kite_session_info {
  kite_transport transport;
  int version;               /* the wire protocol's version: 1 or 2 */
  /* Version 2 only (zero on version 1): who the game's backend said the
   * player is, from the connect token (sealed: a client cannot alter it). */
  uint64_t client_id;
  uint8_t user_data[KITE_TOKEN_USER_DATA_MAX]; /* the login payload, zero-padded */
  char peer[64];             /* "1.2.3.4:5678", "[::1]:5678" */
  uint32_t connected_ms;     /* since on_connect was queued (the session opened) */
  uint32_t idle_ms;          /* since the peer was last heard from */
  /* Round trip, refreshed at most once a second while the peer is heard
   * from (0 until the first refresh, a second after the session opened):
   * KCP's own estimates; on TCP the kernel's (TCP_INFO, microseconds
   * rounded down: under 1 ms, as on loopback, reads 0). */
  uint32_t srtt_ms, rttvar_ms, rto_ms;
  uint32_t retransmits;      /* on timeout and fast (TCP: the kernel's count) */
  uint64_t bytes_in, bytes_out;   /* frame bytes, headers included */
  uint64_t frames_in, frames_out; /* frames from the peer (pings included),
                                     frames queued for it */
} kite_session_info;

/* Copies what the server knows of session |id| into |out|. Any thread,
 * callbacks included (on_connect in any worker mode may log who it is);
 * it takes no lock the shard waits on and never blocks. 0, or
 * KITE_ENOTFOUND: no such open session (never opened, closed by the
 * application, disconnected, or a stale id); |out| is then untouched. */
KITE_API
int kite_session_get_info(kite_server *srv, kite_session_id id,
                          kite_session_info *out);

/* Server counters, summed over shards: X(name, help). */
#define KITE_SERVER_STATS(X)                                                 \
  X(sessions, "sessions open or half-open now")                              \
  X(sessions_opened, "sessions that reached on_connect")                     \
  X(closed_normal, "sessions closed by the peer")                            \
  X(closed_idle, "sessions closed for idleness")                             \
  X(closed_protocol, "sessions closed for a protocol error")                 \
  X(closed_shutdown, "sessions closed by a server stop")                     \
  X(closed_kicked, "sessions closed by the application")                     \
  X(closed_dead_link, "sessions closed for a dead link")                     \
  X(closed_slow_peer, "sessions closed for an output backlog")               \
  X(halfopen_expired, "accepted sessions that never sent a segment")         \
  X(hello, "HELLO packets answered")                                         \
  X(connect, "CONNECT packets received")                                     \
  X(accept, "ACCEPT packets sent for new sessions")                          \
  X(accept_again, "ACCEPT packets sent again for a repeated CONNECT")        \
  X(reject_full, "CONNECTs refused: server full")                            \
  X(reject_version, "handshakes refused: version")                           \
  X(reject_shutdown, "CONNECTs refused: shutting down")                      \
  X(reject_cookie, "CONNECTs refused: cookie invalid or stale")              \
  X(reject_no_worker, "handshakes refused: no free worker (bind mode)")     \
  X(reject_overload, "CONNECTs refused: the shard was dropping datagrams")   \
  X(reject_per_source, "CONNECTs refused: sessions per address or prefix")   \
  X(reject_per_source_halfopen,                                              \
    "CONNECTs refused: half-open sessions per address or prefix")            \
  X(dgrams_in, "datagrams received")                                         \
  X(dgrams_out, "datagrams sent")                                            \
  X(bytes_in, "UDP payload bytes received")                                  \
  X(bytes_out, "UDP payload bytes sent")                                     \
  X(dgrams_out_dropped, "datagrams the kernel refused to send")              \
  X(rx_overflows, "datagrams the kernel dropped: a shard's receive buffer was full") \
  X(wakeups, "shard loop iterations (epoll_wait calls)")                   \
  X(wake_holds, "times a shard held its next wait to serve more at once (wake_coalesce_us)") \
  X(retransmits, "KCP segments sent again")                                  \
  X(frames_in, "frames a handler or on_message took (after it returned)")    \
  X(frames_out, "frames queued by kite_session_send")                        \
  X(pings, "pings answered")                                                 \
  X(drop_short, "datagrams too short to be anything")                        \
  X(drop_truncated, "datagrams larger than a receive buffer")                \
  X(drop_control, "control packets malformed, of unknown type or misplaced") \
  X(drop_unknown_conv, "segments for no live session")                       \
  X(close_resent, "CLOSEs sent again to a peer of a closed session")        \
  X(close_linger_forgotten, "closed sessions forgotten early (closed_linger_max)") \
  X(drop_wrong_addr, "segments for a session from another address")          \
  X(drop_kcp, "segments the KCP engine refused")                             \
  X(drop_close, "CLOSE packets with a wrong conv, token or address")         \
  X(v2_hello, "HELLO v2 packets answered")                                 \
  X(v2_connect, "CONNECT v2 packets received")                             \
  X(v2_accept, "ACCEPT v2 packets sent for new sessions")                  \
  X(v2_accept_again, "ACCEPT v2 packets sent again for a repeated CONNECT") \
  X(v2_drop_control, "v2 control packets malformed, misplaced or of another size") \
  X(v2_drop_connect, "CONNECT v2 ignored: mtu under 576 or rcv_wnd 0")     \
  X(v2_drop_connect_tag,                                                   \
    "CONNECT v2 ignored: its address and nonce hold a session of another token") \
  X(v2_drop_token_bound,                                                   \
    "CONNECT v2 ignored: its token is bound to another address")           \
  X(v2_reject_expired, "CONNECT v2 refused: token expired or too far ahead") \
  X(v2_reject_invalid, "CONNECT v2 refused: token does not open or malformed") \
  X(v2_reject_not_here, "CONNECT v2 refused: token lists no address of ours") \
  X(v2_reject_used, "CONNECT v2 refused: token used here from this address") \
  X(v2_reject_record_full, "CONNECT v2 refused: the token record is full") \
  X(v2_drop_size,                                                          \
    "protected datagrams under 31 bytes, over the mtu, or numbered past 2^48") \
  X(v2_drop_addr, "protected datagrams from another address while half-open") \
  X(v2_drop_replay, "protected datagrams stale or duplicate (replay window)") \
  X(v2_drop_auth, "protected datagrams whose tag did not verify")          \
  X(v2_drop_items,                                                         \
    "protected datagrams with a malformed item (the session closed)")      \
  X(v2_items_skipped, "items of reserved types or from the wrong side, skipped") \
  X(v2_drop_unreliable,                                                    \
    "unreliable messages from peers dropped: kite's msg_ids, or the session closed") \
  X(unreliable_out, "unreliable messages sent as UNRELIABLE items")         \
  X(unreliable_in, "unreliable messages handed to the handlers")           \
  X(unreliable_drop_budget,                                                \
    "unreliable messages dropped over a session's unreliable_bytes_per_s") \
  X(unreliable_drop_path,                                                  \
    "unreliable messages dropped while a new address is validated")        \
  X(unreliable_drop_stale,                                                 \
    "sequenced unreliable messages older than the newest delivered")       \
  X(unreliable_drop_mailbox,                                               \
    "unreliable messages dropped over a full mailbox (no backpressure)")   \
  X(unreliable_drop_size,                                                  \
    "unreliable broadcasts over a member's max_unreliable, not sent to it") \
  X(unreliable_drop_queue,                                                 \
    "unreliable broadcasts to a member with a full send queue (v1, TCP)")   \
  X(unreliable_queue_full,                                                 \
    "unreliable sends refused: the shard's unreliable_queue_max was full")  \
  X(v2_unreliable_pings, "unreliable pings answered")                      \
  X(v2_migrations, "sessions whose peer address moved")                    \
  X(v2_path_challenges, "PATH_CHALLENGE items sent")                       \
  X(v2_path_validated, "new peer addresses validated by PATH_RESPONSE")    \
  X(v2_path_fallbacks, "moves undone: no PATH_RESPONSE within 2 s")        \
  X(v2_amplification_held,                                                 \
    "datagrams held back from an unvalidated address (anti-amplification)") \
  X(v2_closed_key_exhausted, "v2 sessions closed at the packet number limit") \
  X(drop_frame, "frames breaking the protocol (the session closed)")         \
  X(drop_stale_cmd, "commands for sessions gone before they ran")            \
  X(drop_after_close, "frames never handled: their session closed first")   \
  X(handoffs, "datagrams handed to their owning shard (steering off)")       \
  X(inbox_full, "hand-offs refused: a shard's inbox was full")               \
  X(kcp_no_buffer, "segments refused by a shard's KCP budget")               \
  X(unrouted, "frames no route or default handler took")                     \
  X(pool_bytes, "bytes the shards' KCP pools hold, as of their last trim pass") \
  X(pool_trimmed_bytes, "bytes of idle KCP chunks and rings the pools freed") \
  X(map_shrinks, "shard tables shrunk once mostly empty after a burst")        \
  X(malloc_trims, "malloc_trim() calls after a shard freed memory")           \
  X(backpressure, "times a session's mailbox was full (reading paused)")  \
  X(temp_workers, "temporary workers running now (dynamic mode)")          \
  X(temp_workers_started, "temporary workers started (dynamic mode)")      \
  X(tcp_accepted, "TCP connections accepted")                                \
  X(tcp_refused_nofd, "TCP connections refused: out of descriptors")         \
  X(tcp_accept_backoffs, "TCP listener pauses: out of descriptors")          \
  X(tcp_bad_open, "TCP connections closed for a bad OPEN preface")           \
  X(tcp_bytes_in, "TCP bytes received")                                      \
  X(tcp_bytes_out, "TCP bytes sent")                                         \
  X(tcp_send_full, "TCP sends refused: output over tcp_send_max")            \
  X(tcp_linger_cut, "lingering TCP closes cut short (deadline or bound)")   \
  X(tcp_preopen_evicted, "TCP connections dropped before OPEN: tcp_preopen_max") \
  X(tcp_refused_addr, "TCP connections refused: tcp_max_per_addr")          \
  X(tcp_refused_prefix, "TCP connections refused: tcp_max_per_prefix")       \
  X(v2_tcp_opens, "OPEN v2 read whole (TCP and WebSocket)")                \
  X(v2_tcp_opened, "OPENED v2 sent: v2 TCP sessions half-open")             \
  X(v2_tcp_reject_expired, "OPEN v2 refused: token expired (REJECT 5)")     \
  X(v2_tcp_reject_token, "OPEN v2 refused: token invalid (REJECT 6)")       \
  X(v2_tcp_reject_not_here, "OPEN v2 refused: not among its addresses (REJECT 7)") \
  X(v2_tcp_reject_used, "OPEN v2 refused: token used here (REJECT 8)")      \
  X(v2_tcp_reject_record_full, "OPEN v2 refused: token record full (REJECT 1)") \
  X(v2_tcp_ignored_bound, "OPEN v2 closed unanswered: token bound elsewhere") \
  X(v2_tcp_drop_record_len, "v2 TCP records of len 0 or over 16384 (closed)") \
  X(v2_tcp_drop_record_auth, "v2 TCP records that did not verify (closed)")  \
  X(v2_tcp_key_exhausted, "v2 TCP sessions closed at record 2^48-3 (reason 7)") \
  X(ws_upgrades, "WebSocket upgrades answered with 101")                    \
  X(ws_refused_origin, "WebSocket upgrades refused: Origin (403)")         \
  X(ws_refused_text, "WebSocket text frames (closed 1003)")                \
  X(ws_refused_too_big, "WebSocket messages over ws_max_message (1009)")   \
  X(ws_refused_proto, "WebSocket protocol errors, unmasked frames (1002)") \
  X(http_refused, "HTTP requests refused: malformed, over a limit, bad path") \
  X(http_not_found, "HTTP GETs answered 404")                              \
  X(http_static_served, "HTTP GETs answered with a file")

typedef struct kite_server_stats {
#define KITE__STAT_FIELD(name, help) uint64_t name;
  KITE_SERVER_STATS(KITE__STAT_FIELD)
#undef KITE__STAT_FIELD
} kite_server_stats;

/* A snapshot of the counters, summed over shards. Any thread; each counter
 * is read atomically, the set is not one instant. A frame is counted in
 * frames_in once its handler (a route, on_message, or the unrouted policy)
 * has returned, so a reply can reach the peer before the frame it answers
 * is counted: a peer's view is ahead of these counters, never behind. A
 * frame a close left unhandled is counted in drop_after_close instead:
 * never in both. */
KITE_API
void kite_server_stats_get(const kite_server *srv, kite_server_stats *out);

#ifdef __cplusplus
}
#endif
#endif
