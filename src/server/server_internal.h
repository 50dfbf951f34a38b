/*
 * The runtime's shared structures: the server, its shards, their sessions
 * and the commands other threads hand a shard. Only src/server includes it.
 *
 * Ownership: a shard thread alone touches its sessions, wheel, pool, maps
 * and batches. Other threads reach a shard only through its inbox (a
 * bounded MPSC queue) and its eventfd, and read only the atomic fields
 * marked so below.
 */
#ifndef KITE_SERVER_INTERNAL_H
#define KITE_SERVER_INTERNAL_H

#include "kite/server.h"

#include "base/log.h"
#include "base/map.h"
#include "base/mpsc.h"
#include "kcp/kcp.h"
#include "logic/logic.h"
#include "logic/mailbox.h"
#include "logic/timers.h"
#include "net/tcp.h"
#include "net/tcp_out.h"
#include "net/udp.h"
#include "proto/frame.h"
#include "proto/control.h"
#include "server/cookie.h"
#include "base/wheel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct kite__shard kite__shard;

enum kite__session_state {
  KITE__S_FREE = 0,
  KITE__S_HALF_OPEN, /* accepted; no segment yet: the app has not heard */
  KITE__S_OPEN,
  KITE__S_CLOSING,   /* server stopping: flushing until acked or deadline */
  KITE__S_ZOMBIE,    /* closed: its worker still owes on_disconnect */
};

#define KITE__NO_CLOSE 0xFF

/* What a shard's epoll reports: its UDP socket, its eventfd, its TCP
 * listener, or else a kite__tcp_conn pointer. */
enum kite__ev_source {
  KITE__EV_UDP = 1,
  KITE__EV_WAKE = 2,
  KITE__EV_LISTEN = 3,
};

typedef struct kite__session kite__session;

/* A TCP connection (session_tcp.c). Allocated at accept and owned by its
 * shard; while |s| is set it carries that session, and once the session
 * closes it lingers on its own (tcp_linger.c): queued output written, the
 * write side shut, input drained to EOF, then closed, so the peer never
 * gets a reset with data still queued. */
typedef struct kite__tcp_conn {
  int fd;
  uint32_t events;    /* the epoll mask armed now */
  kite__session *s;   /* NULL once lingering */
  kite__frame_reader reader;
  kite__tcp_out out;
  uint8_t *held;      /* input cut short by backpressure, to feed again */
  uint32_t held_len;
  uint8_t open_have;  /* bytes of the OPEN preface read */
  uint8_t open_buf[KITE__CTRL_HDR];
  bool shut_wr;       /* lingering: FIN sent */
  bool peer_eof;      /* lingering: the peer's FIN read */
  uint32_t linger_deadline_ms;
  kite__timer linger_timer;
  struct kite__tcp_conn *linger_prev, *linger_next;
} kite__tcp_conn;

struct kite__session {
  kite__timer timer; /* one per session: min(kcp due, idle, deadline) */
  kite__kcp *kcp;       /* a KCP session's engine, or NULL */
  kite__tcp_conn *tcp;  /* a TCP session's connection, or NULL */
  kite__shard *shard;
  struct kite__session *free_next;
  struct kite__session *dirty_next; /* to flush at the end of the batch */
  void *user;
  kite__addr peer;
  kite__local local; /* where the peer's datagrams arrive: replies leave here */
  uint64_t hs_key;   /* in the shard's handshake map: (addr, port, nonce) */
  _Atomic uint32_t generation; /* read by other threads to check ids */
  _Atomic uint32_t pending;    /* segments in the inbox for this slot */
  _Atomic uint32_t queued;     /* segments in KCP's send queue (shard writes) */
  _Atomic uint32_t queue_max;  /* send_queue_max, or tcp_send_max in segments */
  _Atomic uint8_t live;        /* open or closing: the app may address it */
  uint32_t conv;
  uint32_t slot;
  uint32_t last_rx_ms;
  uint32_t deadline_ms; /* half-open: handshake; closing: stop */
  uint16_t mtu, peer_rcv_wnd;
  uint8_t token[8];
  uint8_t nonce[8];
  uint8_t state;
  uint8_t opened;        /* on_connect ran: on_disconnect is owed */
  uint8_t dirty;         /* on the dirty list */
  uint8_t in_callback;   /* closes are deferred to a safe point */
  uint8_t close_pending; /* KITE__NO_CLOSE or a kite_close_reason */
  uint8_t blocked;       /* its mailbox was full: frames wait in KCP */
  uint64_t frames_in, frames_out, bytes_in, bytes_out;
  kite__mailbox mb;      /* to its worker (worker modes) */
};

/* Per-shard counters, written by the shard alone (relaxed load + store:
 * plain moves, no locked instruction), read by any thread. */
enum kite__stat {
#define KITE__STAT_ENUM(name, help) KITE__ST_##name,
  KITE_SERVER_STATS(KITE__STAT_ENUM)
#undef KITE__STAT_ENUM
  KITE__ST_COUNT
};

#define KITE__STAT_ADD(sh, name, n)                                          \
  atomic_store_explicit(&(sh)->stats[KITE__ST_##name],                       \
                        atomic_load_explicit(&(sh)->stats[KITE__ST_##name],  \
                                             memory_order_relaxed) + (n),    \
                        memory_order_relaxed)
#define KITE__STAT_INC(sh, name) KITE__STAT_ADD(sh, name, 1)

/* A frame encoded once and shared by every shard a broadcast reaches. */
typedef struct kite__shared_frame {
  _Atomic uint32_t refs;
  uint32_t bytes; /* header + body */
  uint8_t data[];
} kite__shared_frame;

enum kite__cmd_type {
  KITE__CMD_BROADCAST, /* a shared frame for |count| sessions (ids in data) */
  KITE__CMD_SEND,    /* a frame from another thread */
  KITE__CMD_CLOSE,   /* kite_session_close() from another thread */
  KITE__CMD_DGRAM,   /* a datagram that reached the wrong shard */
  KITE__CMD_CONNECT, /* a CONNECT whose owner is this shard */
};

typedef struct kite__cmd {
  uint8_t type;
  uint8_t fresh;  /* CONNECT: the cookie is within its lifetime */
  uint8_t reason; /* CLOSE: why */
  uint16_t msg_id;
  uint32_t len;  /* bytes in data */
  uint32_t segs; /* SEND: segments reserved in the session's pending */
  kite_session_id id;
  kite__shared_frame *frame; /* BROADCAST */
  uint32_t count;            /* BROADCAST: ids in data */
  kite__addr from;
  kite__local local;
  kite__ctrl ctrl;
  uint8_t data[];
} kite__cmd;

static inline void kite__shared_frame_put(kite__shared_frame *f) {
  if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
    free(f);
}

struct kite__shard {
  kite_server *srv;
  uint32_t index;
  int fd, epfd, evfd;
  pthread_t thread;
  bool thread_started;

  kite__kcp_pool *pool;
  kite__kcp_config kcp_cfg; /* the server's; mtu and peer window per session */
  kite__wheel wheel;
  kite__timers timers; /* game timers of inline mode */
  kite__cookie_jar jar;
  kite__map hs; /* (addr, port, nonce) -> slot, for idempotent CONNECT */

  kite__session *slots;
  uint32_t nslots, nsessions;
  kite__session *free;
  kite__session *dirty;

  kite__mpsc inbox;
  kite__mpsc notices; /* sessions its workers unblocked or finished */
  atomic_int wake_pending; /* an eventfd write is on its way */

  kite__udp_rx *rx;
  kite__udp_tx *tx;
  kite__tcp_acceptor tcp_ls;  /* this shard's listener in the port's group */
  uint8_t *tcp_rx;            /* reads land here: frames are cut in place */
  kite__wheel linger_wheel;   /* lingering connections' deadlines */
  kite__tcp_conn *lingering;  /* list of them */
  uint32_t nlinger;
  uint8_t *scratch; /* header + max_frame: frames that span segments */
  uint32_t now;     /* ms, refreshed once per loop iteration */
  bool stop_seen;
  kite__ratelog log_refused, log_backpressure, log_protocol; /* floods */
  kite__ratelog log_nofd;

  _Atomic uint64_t stats[KITE__ST_COUNT];
};

struct kite_server {
  kite_server_config cfg;
  char *udp_addr; /* cfg.udp_addr's copy */
  char *metrics_addr; /* cfg.metrics_addr's copy, or NULL */
  kite__log log;
  kite__addr bind;
  int port;
  char *tcp_addr;   /* cfg.tcp_addr's copy, or NULL: no TCP */
  kite__addr tcp_bind;
  int tcp_port;
  uint32_t tcp_queue_max; /* tcp_send_max in the segments reservations count */
  uint32_t nshards;
  kite__shard *shards;
  uint32_t slot_bits; /* conv: shard (8) | slot (slot_bits) | random */
  uint8_t master[KITE__COOKIE_MASTER_BYTES];
  uint8_t route_key[16]; /* keyed hash: owner choice, handshake map */
  bool steering;         /* the kernel steers segments to their shard */
  _Atomic uint32_t sessions; /* all shards: for max_sessions */
  atomic_bool stopping;
  bool started, stopped;
  kite__logic logic;
  struct kite__metrics_http *metrics; /* cfg.metrics_addr's endpoint, or NULL */
  pthread_mutex_t stop_lock;
};

/* session.c */
kite__session *kite__session_by_id(kite_server *srv, kite_session_id id);
kite_session_id kite__session_id(const kite__session *s);
kite__session *kite__session_new(kite__shard *sh, const kite__addr *peer,
                                 const kite__local *local,
                                 const uint8_t nonce[8], uint64_t hs_key,
                                 uint16_t mtu, uint16_t peer_rcv_wnd,
                                 const char **no_worker);
void kite__session_input(kite__shard *sh, kite__session *s,
                         const uint8_t *data, size_t len);
int kite__session_send_frame(kite__session *s, uint16_t msg_id,
                             uint16_t flags, const void *body, size_t len);
/* Queues a frame already encoded (header included): broadcasts. */
int kite__session_send_encoded(kite__session *s, const uint8_t *frame,
                               size_t bytes);
/* Closes now, or at the next safe point when a callback or the engine is
 * running on the session. Sends CLOSE (|reason|) unless the peer closed. */
void kite__session_close(kite__session *s, uint8_t reason);
/* The peer's CLOSE: on_disconnect gets its reason, and no CLOSE goes back. */
void kite__session_close_by_peer(kite__session *s, uint8_t reason);
void kite__session_schedule(kite__session *s);
void kite__session_mark_dirty(kite__session *s);
void kite__session_on_timer(kite__timer *t, void *user);
/* After a flush or callbacks: carries out a deferred close. */
void kite__session_settle(kite__session *s);
/* Publishes the KCP send queue's depth for senders on other threads. */
void kite__session_publish_queue(kite__session *s);

/* Any thread: closes a session on its shard with |reason|. */
int kite__session_close_any(kite_server *srv, kite_session_id id, uint8_t reason);
/* Another thread's send: the KCP segments a frame of |frame_bytes| takes,
 * and room for them in the session's queue, reserved (frames on their way
 * through the inbox plus those in KCP's queue, as the shard last published
 * it) or refused when send_queue_max would be passed. The shard gives the
 * reservation back once the frame is in KCP; a sender that gives up before
 * posting gives it back with kite__session_unreserve(). */
uint32_t kite__frame_segs(const kite_server *srv, size_t frame_bytes);
bool kite__session_reserve(kite__session *s, uint32_t segs);
void kite__session_unreserve(kite__session *s, uint32_t segs);
/* Frees a closed session's slot (its on_disconnect has run). */
void kite__session_release(kite__session *s);
/* Reads frames out of KCP again (a full mailbox has room). */
void kite__session_resume(kite__session *s);

/* handshake.c */
void kite__handshake_control(kite__shard *sh, const uint8_t *data, size_t len,
                             const kite__addr *from, const kite__local *local);
void kite__handshake_connect(kite__shard *sh, const kite__ctrl *c,
                             const kite__addr *from, const kite__local *local,
                             bool fresh);
void kite__handshake_send_accept(kite__session *s);
void kite__handshake_send_close(kite__session *s, uint8_t reason);
/* A refused handshake, at warn, at most one line a second per shard with
 * the count held back; |transport| prefixes the line ("" or "tcp "). */
void kite__handshake_log_refused(kite__shard *sh, const char *transport,
                                 const kite__addr *from, const char *why);

/* session.c, for both transports */
/* A free slot made ready for a new session (not yet counted), or NULL:
 * *no_worker says why when the logic layer had no worker for it (bind,
 * dynamic: counted as reject_no_worker, not reject_full). */
kite__session *kite__session_claim(kite__shard *sh, const char **no_worker);
/* Counts a claimed slot in as a live half-open session. */
void kite__session_admit(kite__session *s, const kite__addr *peer);
/* One frame from the peer: pings answered, the rest to the logic layer.
 * false: the session's mailbox is full, the caller keeps the frame. */
bool kite__session_deliver(kite__session *s, const kite__frame_hdr *h,
                           const uint8_t *body);
/* The session opens: the application hears of it. */
void kite__session_open(kite__session *s);
/* A protocol error in the peer's stream: logged (rate-limited), counted,
 * and the session closed at the next safe point. */
void kite__session_protocol_error(kite__session *s, int why);

/* session_tcp.c */
#define KITE__TCP_RX_BYTES 65536 /* one read() into the shard's buffer */
/* Accepts what waits on the shard's listener, within a budget. */
void kite__tcp_accept_ready(kite__shard *sh);
/* epoll reported |events| on |c|. */
void kite__tcp_conn_ready(kite__shard *sh, kite__tcp_conn *c, uint32_t events);
int kite__tcp_session_sendv(kite__session *s, struct iovec *iov, int n);
void kite__tcp_session_schedule(kite__session *s);
void kite__tcp_session_on_timer(kite__session *s);
void kite__tcp_session_resume(kite__session *s);
/* The session is closing: its connection lingers on its own from here. */
void kite__tcp_session_teardown(kite__session *s);
/* Arms the epoll mask |events| for |c| (no call when unchanged). */
void kite__tcp_conn_arm(kite__shard *sh, kite__tcp_conn *c, uint32_t events);

/* tcp_linger.c */
/* Takes |c| (its session gone): writes what is queued, shuts the write
 * side, reads to EOF, then closes; all within tcp_linger_ms. When as many
 * linger as the shard has session slots it is closed at once instead. */
void kite__tcp_linger(kite__shard *sh, kite__tcp_conn *c);
void kite__tcp_linger_ready(kite__shard *sh, kite__tcp_conn *c,
                            uint32_t events);
void kite__tcp_linger_advance(kite__shard *sh);
/* Closes every lingering connection (the shard is going away). */
void kite__tcp_linger_free_all(kite__shard *sh);
/* Closes |c|'s descriptor and frees it. */
void kite__tcp_conn_free(kite__tcp_conn *c);

/* shard.c */
int kite__shard_init(kite__shard *sh, kite_server *srv, uint32_t index);
void kite__shard_free(kite__shard *sh);
void *kite__shard_main(void *arg);
/* Any thread: queues |cmd| (owned by the shard on success) and wakes the
 * shard. false when the inbox is full (the caller still owns |cmd|). */
bool kite__shard_post(kite__shard *sh, kite__cmd *cmd);
/* Runs a command on the calling shard (|sh| must be current); frees it. */
void kite__shard_run_command(kite__shard *sh, kite__cmd *cmd);
/* A broadcast command the inbox refused: its members miss the frame, so
 * they are closed as slow peers; frees it. Any thread. */
void kite__shard_run_abandoned(kite__shard *sh, kite__cmd *cmd);
/* A worker's word for the session's shard: its mailbox has room again, or
 * its on_disconnect ran. At most once queued per session (a flag). */
void kite__shard_notice(kite__session *s);
/* Any thread: wakes the shard's loop (one eventfd write per wake-up). */
void kite__shard_wake(kite__shard *sh);
/* The shard the calling thread runs, or NULL. */
kite__shard *kite__shard_current(void);
void kite__shard_dispatch(kite__shard *sh, const uint8_t *data, size_t len,
                          const kite__addr *from, const kite__local *local);
/* Sends one control packet from this shard's socket. */
void kite__shard_send_ctrl(kite__shard *sh, const kite__ctrl *c,
                           const kite__addr *to, const kite__local *local);

#endif
