/*
 * A shard: one thread, its sockets, its epoll loop and the sessions it
 * owns (shard.c), with the handshake it runs (handshake.c).
 *
 * Ownership: the shard thread alone touches its sessions, wheels, pool,
 * maps and batches. Other threads reach a shard only through its inbox (a
 * bounded MPSC queue), its notice queue and its eventfd, and read only the
 * atomic fields marked so below.
 */
#ifndef KITE_SERVER_SHARD_H
#define KITE_SERVER_SHARD_H

#include "kite/server.h"

#include "base/log.h"
#include "base/map.h"
#include "base/mpsc.h"
#include "base/wheel.h"
#include "kcp/kcp.h"
#include "net/tcp.h"
#include "net/udp.h"
#include "proto/control.h"
#include "server/cmd.h"
#include "server/conv.h"
#include "server/cookie.h"
#include "server/session.h"
#include "server/closed.h"
#include "server/srclimit.h"
#include "server/upool.h"
#include "server/tcp_conn.h"

#include <pthread.h>
#include <stdatomic.h>

/* What a shard's epoll reports: its UDP socket, its eventfd, its TCP
 * listener, or else a kite__tconn pointer. */
enum kite__ev_source {
  KITE__EV_UDP = 1,
  KITE__EV_WAKE = 2,
  KITE__EV_LISTEN = 3,
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
/* A counter other threads bump (never the shard's plain store above):
 * unreliable_queue_full, counted by the senders. */
#define KITE__STAT_ADD_ANY(sh, name, n)                                      \
  atomic_fetch_add_explicit(&(sh)->stats[KITE__ST_##name], (n),             \
                            memory_order_relaxed)

struct kite__shard {
  kite_server *srv;
  uint32_t index;
  int fd, epfd, evfd;
  pthread_t thread;
  bool thread_started;

  kite__kcp_pool *pool;
  kite__kcp_config kcp_cfg; /* the server's; mtu and peer window per session */
  kite__wheel wheel;
  kite__cookie_jar jar;
  kite__map hs; /* (addr, port, nonce) -> slot, for idempotent CONNECT */
  kite__map convs; /* kite__conv_key(conv) -> slot: the KCP sessions with
                      a network side (half-open, open, closing) */
  kite__closed closed; /* v1 sessions it closed, whose CLOSE may be lost */
  kite__srclimit srcs; /* KCP sessions per source address and prefix */

  kite__session *slots;
  uint32_t nslots, nsessions;
  kite__session *free;
  kite__session *dirty;

  kite__mpsc inbox;
  kite__upool upool; /* unreliable messages from other threads (upool.h):
                        any thread takes a slot, this shard gives it back */
  kite__mpsc notices; /* sessions its workers unblocked or finished */
  atomic_int wake_pending; /* an eventfd write is on its way */

  kite__udp_rx *rx;
  kite__udp_tx *tx;
  kite__tcp_acceptor tcp_ls;  /* this shard's listener in the port's group */
  /* Out of descriptors the listener leaves the epoll set until
   * accept_resume_ms, after a pause that doubles while accept keeps
   * failing (session_tcp.c). Owned by the shard thread. */
  bool accept_paused;
  uint32_t accept_resume_ms;
  uint32_t accept_backoff_ms; /* the last pause; 0 once accept progressed */
  uint8_t *tcp_rx;            /* reads land here: frames are cut in place */
  /* Accepted connections that have not sent their OPEN yet, oldest
   * (first deadline) first; at most tcp_preopen_max (tcp_pre.c). Owned by
   * the shard thread. */
  kite__tconn *pre_head, *pre_tail;
  uint32_t npre;
  kite__wheel linger_wheel;   /* lingering connections' deadlines */
  kite__tconn *lingering;  /* list of them */
  uint32_t nlinger;
  uint8_t *scratch; /* header + max_frame: frames that span segments */
  uint8_t *seal;    /* v2 TCP: one frame sealed as records, then a record
                       read whole opened (tcp_v2.c); NULL without TCP or
                       version 2 */
  uint32_t now;     /* ms, refreshed once per loop iteration */
  bool stop_seen;
  /* Floods: one line a second each; kite__shard_logs_flush() reports what
   * they held back once the second is over. */
  kite__ratelog log_refused, log_backpressure, log_protocol;
  kite__ratelog log_nofd, log_overflow;
  uint32_t rx_drops_seen; /* the socket's SO_RXQ_OVFL count, counted so far */
  uint32_t overload_until_ms; /* the kernel dropped datagrams: new sessions
                                 are refused until then (0: not overloaded) */
  uint32_t logs_due_ms; /* the next look at what the ratelogs held back */
  uint32_t tokens_due_ms; /* the next expiry of its token record stripe */
  /* Giving memory back (shard_trim.c), the shard thread's alone: when the
   * next trim pass runs (0: not scheduled yet), and the most sessions the
   * shard held since the last one (a fall from it: memory was freed). */
  uint32_t trim_due_ms;
  uint32_t trim_sessions_peak;
  /* Wake-up coalescing (server/wake.h, wake_coalesce_us). Owned by the
   * shard thread. */
  uint64_t io_last_us;    /* start of the last iteration that read datagrams */
  uint64_t hold_until_us; /* sleep until then before the next epoll_wait
                             (0: no sleep) */
  bool rx_full; /* this iteration read a whole batch: more may be waiting */

  _Atomic uint64_t stats[KITE__ST_COUNT];
};

/* handshake_v2.c: a control packet on the UDP port, by its version (byte
 * 5) and the versions served (PROTOCOL-v2.md section 1). */
void kite__handshake_dispatch(kite__shard *sh, const uint8_t *data, size_t len,
                              const kite__addr *from,
                              const kite__local *local);

/* handshake.c: version 1's */
void kite__handshake_control(kite__shard *sh, const uint8_t *data, size_t len,
                             const kite__addr *from, const kite__local *local);
void kite__handshake_connect(kite__shard *sh, const kite__ctrl *c,
                             const kite__addr *from, const kite__local *local,
                             bool fresh);
/* The keyed hash of (address, port, client_nonce): the key of a
 * session in its shard's handshake map, and (>> 40, mod shards) its
 * owner. Both versions' CONNECTs use it. */
uint64_t kite__handshake_key(const kite_server *srv, const kite__addr *a,
                             const uint8_t nonce[8]);
void kite__handshake_send_accept(kite__session *s);
void kite__handshake_send_close(kite__session *s, uint8_t reason);
/* A datagram of |len| bytes for |conv|, which has no session, came from
 * |from|: the CLOSE again if the shard closed that session lately and the
 * datagram comes from its peer (closed.h). */
void kite__handshake_closed_heard(kite__shard *sh, uint32_t conv,
                                  const kite__addr *from, size_t len);
/* A refused handshake, at warn, at most one line a second per shard with
 * the count held back; |transport| prefixes the line ("" or "tcp "). */
void kite__handshake_log_refused(kite__shard *sh, const char *transport,
                                 const kite__addr *from, const char *why);

/* Whether the shard is refusing new sessions because the kernel dropped
 * some of its datagrams in the last overload_refuse_ms (it is behind): the
 * sessions it has come before new ones. */
static inline bool kite__shard_overloaded(const kite__shard *sh) {
  return sh->overload_until_ms &&
         (int32_t)(sh->overload_until_ms - sh->now) > 0;
}

/* shard_log.c */
/* Logs the count each of the shard's rate-limited warnings held back, once
 * its second is over (never a count of 0). Cheap: once per loop iteration,
 * after the events, with sh->now fresh. */
void kite__shard_logs_flush(kite__shard *sh);

/* shard_trim.c */
/* From the loop, every iteration with sh->now fresh: cheap until a trim
 * pass is due (trim_interval_ms), then runs it (kite__shard_trim). */
void kite__shard_trim_tick(kite__shard *sh);
/* A trim pass: the pool's idle chunks and rings, the tables once mostly
 * empty, then maybe malloc_trim (kite_server_config.trim_interval_ms).
 * Counts what it gave back. Returns the bytes the pool and tables freed. */
size_t kite__shard_trim(kite__shard *sh);

/* shard.c */
/* The open, half-open or closing UDP session (version 1 or 2) |conv|
 * names, or NULL: every
 * datagram asks, so inline; one probe of the shard's conv map (load at
 * most 1/2, keys the server's random bits, so short runs whatever convs a
 * sender tries). */
static inline kite__session *kite__shard_session_by_conv(kite__shard *sh,
                                                         uint32_t conv) {
  uint32_t slot;
  if (!kite__map_get(&sh->convs, kite__conv_key(conv), &slot))
    return NULL;
  kite__session *s = &sh->slots[slot];
  /* The map holds only live KCP sessions; the checks are a second lock. */
  if (!kite__session_connected(s) ||
      (s->tr != &kite__transport_kcp && s->tr != &kite__transport_v2) ||
      s->conv != conv)
    return NULL;
  return s;
}
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
/* A worker's word for the session's shard (kite__port_notice): its
 * mailbox has room again, or its on_disconnect ran. The logic layer
 * queues each session at most once (its mailbox's NOTICE flag). */
void kite__shard_notice(kite__session *s);
/* Any thread: wakes the shard's loop (one eventfd write per wake-up). */
void kite__shard_wake(kite__shard *sh);
/* The shard the calling thread runs, or NULL. */
kite__shard *kite__shard_current(void);
/* Shard thread: hands a datagram this shard read to shard |owner|, which
 * reads it again from the start (the kernel did not steer it there). true
 * when posted; false when the copy could not be made or the owner's inbox
 * was full (counted inbox_full): dropped. */
bool kite__shard_handoff(kite__shard *sh, uint32_t owner, const uint8_t *data,
                         size_t len, const kite__addr *from,
                         const kite__local *local);
void kite__shard_dispatch(kite__shard *sh, const uint8_t *data, size_t len,
                          const kite__addr *from, const kite__local *local);
/* Sends one control packet from this shard's socket. */
void kite__shard_send_ctrl(kite__shard *sh, const kite__ctrl *c,
                           const kite__addr *to, const kite__local *local);


#endif
