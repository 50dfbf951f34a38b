/*
 * The server object and everything the runtime's files share: src/server
 * includes it, nothing else does (the logic layer is reached through
 * logic/logic.h).
 *
 * Ownership: the fields of struct kite_server are written before the
 * shards start and read-only after, except those marked atomic.
 */
#ifndef KITE_SERVER_INTERNAL_H
#define KITE_SERVER_INTERNAL_H

#include "kite/server.h"

#include "base/log.h"
#include "logic/logic.h"
#include "server/cookie.h"
#include "server/session.h"
#include "server/shard.h"
#include "server/tcp_v2.h"
#include "server/tokens.h"
#include "proto/v2tok.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct kite_server {
  /* cfg: written at create, read-only after (any thread). cfg.versions is
   * resolved (never 0); cfg.token_key is wiped at destroy. */
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
  /* Per-source TCP connection counts, or NULL (no TCP, or both limits
   * off); shared by every shard through atomics (tcp_source.h). */
  kite__src_limit *tcp_src;
  int http_root_fd; /* cfg.http_root opened (O_DIRECTORY), or -1 */
  char *ws_origins; /* cfg.ws_origins' copy, or NULL */
  char *public_addr; /* cfg.public_addr's copy, or NULL */
  kite__addr public_bind; /* public_addr parsed (when set) */
  /* Version 2's token record (tokens.h: shared by the shards, striped,
   * each stripe under its lock); n == 0 when version 2 is not served. */
  kite__tokens tokens;
  /* What a v2 token is checked against (steps 4 to 6,
   * kite__v2tok_verify): protocol id, cfg.token_key, the public address.
   * Written at create, read-only after (any thread). */
  kite__v2tok_server v2tok;
  kite__v2addr v2public; /* public_addr as a token entry (v2tok's list) */
  uint32_t nshards;
  kite__shard *shards;
  uint8_t master[KITE__COOKIE_MASTER_BYTES];
  uint8_t route_key[16]; /* keyed hash: owner choice, handshake map */
  bool steering;         /* the kernel steers segments to their shard */
  _Atomic uint32_t sessions; /* all shards: for max_sessions */
  atomic_bool stopping;
  atomic_bool started; /* kite_server_start() ran: read by any thread */
  bool stopped;        /* under stop_lock */
  kite__logic *logic;          /* the layer above: logic/logic.h */
  uint32_t slots_per_shard;
  _Atomic uint64_t bcast_refused; /* broadcast hand-overs an inbox refused */
  /* When a shard last called malloc_trim() (its clock, ms, | 1; 0: never):
   * any shard reads it, the one that wins a compare-exchange on it calls
   * malloc_trim, so at most one call per trim_interval_ms (shard_trim.c). */
  _Atomic uint32_t malloc_trim_ms;
  struct kite__metrics_http *metrics; /* cfg.metrics_addr's endpoint, or NULL */
  pthread_mutex_t stop_lock;
};

#define KITE__SHARDS_MAX 64 /* conv's first byte names the shard */

/* config.c: every field within its bounds; the log names the one that
 * is not. 0 or KITE_EINVAL. */
int kite__server_config_check(const kite_server_config *cfg, kite__log *log);

/* sockets.c */
/* Opens every shard's UDP socket, TCP listener (when tcp_addr is set),
 * epoll set and eventfd; steering goes on once all have joined. */
int kite__server_open_sockets(kite_server *srv);
void kite__server_close_sockets(kite_server *srv);
void kite__server_set_port(kite__addr *a, int port);

/* session_api.c */
/* kite_session_send() once |s| is found for |id| (checked): the frame with
 * |fflags| (KITE__FRAME_F_UNRELIABLE for a v2 TCP unreliable one). */
int kite__session_send_any(kite_server *srv, kite__session *s,
                           kite_session_id id, uint16_t msg_id,
                           uint16_t fflags, const void *body, size_t len);

/* lane.c */
/* Runs a KITE__CMD_UNRELIABLE or KITE__CMD_UBROADCAST command on |sh|
 * (current) and gives it back (its slot, or its memory and share). */
void kite__lane_run(kite__shard *sh, kite__cmd *cmd);
/* The largest unreliable body a datagram of the server's mtu holds. */
uint16_t kite__lane_max(const kite_server *srv);

/* session_kcp.c */
/* A KCP session for a CONNECT: claimed, admitted half-open, scheduled; or
 * NULL (*no_worker as kite__session_claim() says). */
kite__session *kite__kcp_session_new(kite__shard *sh, const kite__addr *peer,
                                     const kite__local *local,
                                     const uint8_t nonce[8], uint64_t hs_key,
                                     uint16_t mtu, uint16_t peer_rcv_wnd,
                                     const char **no_worker);
/* A datagram for the session (its conv and address checked). */
void kite__kcp_session_input(kite__shard *sh, kite__session *s,
                             const uint8_t *data, size_t len);
/* What every session on a KCP engine does alike, version 1 or 2 (the
 * engine is |kcp|, whatever carries its segments): hands the whole frames
 * KCP holds to the application while it takes them (a broken one is a
 * protocol error, a refused one waits in KCP: backpressure); queues a
 * frame (0, or KITE_EFULL: the queue, the window or the shard's budget);
 * reads the engine's round-trip figures. Shard thread. */
void kite__kcp_pump_frames(kite__session *s, kite__kcp *kcp);
int kite__kcp_session_sendv(kite__session *s, kite__kcp *kcp,
                            struct iovec *iov, int n);
void kite__kcp_session_rtt(const kite__kcp *kcp, kite__rtt *out);

#endif
