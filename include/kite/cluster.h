/*
 * kite past one machine (docs/CLUSTER.md): kite nodes that share a Redis
 * directory. In libkite_cluster (not libkite: only games that scale out
 * link hiredis); link kite::kite_cluster, which brings libkite with it.
 *
 * Two sides:
 *
 *   kite_cluster    a game server's membership. It registers the node
 *                   (its public address and load, renewed every renew_ms
 *                   under an expiry), holds the leases of the rooms the
 *                   node hosts, and carries cluster-wide groups: a
 *                   broadcast is delivered here at once and published on
 *                   Redis once; every other node delivers it to its own
 *                   members, exactly once, with one encode per node.
 *   kite_directory  a login service's view (kite-lobby, or a game's own
 *                   backend): places a player on the node holding the room
 *                   or on the least-loaded node, reserving a seat, in one
 *                   Redis Lua script. The caller then mints a connect
 *                   token for the address (kite/token.h).
 *
 *   kite_cluster_config cc;
 *   kite_cluster_config_init(&cc);
 *   cc.srv = srv; cc.redis_addr = "10.0.0.5:6379";
 *   cc.node_id = "eu-1"; cc.public_addr = "203.0.113.7:7001";
 *   kite_cluster *cl;
 *   if (kite_cluster_create(&cl, &cc) < 0) ...;   // Redis need not be up
 *   kite_cluster_group *world = kite_cluster_group_open(cl, "world", g);
 *   kite_cluster_broadcast(world, MSG_SAID, text, len);  // any thread
 *   kite_cluster_room_hold(cl, "arena");      // first player in
 *   kite_cluster_room_release(cl, "arena");   // last player out
 *   ...
 *   kite_cluster_destroy(cl);   // before kite_server_destroy()
 *
 * Threads. All Redis work runs on the cluster's own thread, never on a
 * shard or a worker: every call below only queues (a bounded lock-free
 * queue, KITE_EFULL when full) and returns, from any thread, callbacks
 * included. A Redis outage never stalls the game: the node goes on
 * serving, the thread reconnects with a doubling backoff (counted), the
 * node's registration and leases lapse after their expiry, and come back
 * at the first renewal once Redis answers. Publishes made while Redis is
 * away are delivered on this node only (counted as dropped for the rest).
 *
 * Keys (prefix "kite:" by default; docs/CLUSTER.md): node:<id> (hash:
 * addr, seats, sessions, rooms; PEXPIRE node_ttl_ms), nodes (sorted set,
 * score = load), resv:<id> (seats the directory reserved lately), room:<name>
 * (the holder's node id; PEXPIRE lease_ttl_ms), channel g:<name> (pub/sub).
 */
#ifndef KITE_CLUSTER_H
#define KITE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kite/export.h"
#include "kite/log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kite_server kite_server;
typedef struct kite_group kite_group;
typedef struct kite_cluster kite_cluster;
typedef struct kite_cluster_group kite_cluster_group;
typedef struct kite_directory kite_directory;

#define KITE_CLUSTER_ID_MAX 32    /* node id: 1..32 of [A-Za-z0-9._-] */
#define KITE_CLUSTER_NAME_MAX 64  /* room and group names: 1..64 bytes, no
                                     space or control byte */
#define KITE_CLUSTER_ADDR_MAX 63  /* "HOST:PORT" */

typedef struct kite_cluster_config {
  kite_server *srv;        /* the node's server: its sessions are the load,
                              and broadcasts reach its members (required) */
  const char *redis_addr;  /* "HOST:PORT" of Redis (required) */
  const char *node_id;     /* unique in the cluster (required) */
  const char *public_addr; /* "HOST:PORT" players are sent to (required) */
  const char *prefix;      /* key and channel prefix, 1..32 bytes ("kite:") */
  uint32_t seats;          /* players the directory places here (10000) */
  uint32_t renew_ms;       /* registration and lease renewal period (1000) */
  uint32_t node_ttl_ms;    /* registration expiry; > renew_ms (3000) */
  uint32_t lease_ttl_ms;   /* room lease expiry; > renew_ms (3000) */
  uint32_t timeout_ms;     /* bound on one Redis exchange (500) */
  uint32_t backoff_max_ms; /* reconnect backoff ceiling (2000) */
  uint32_t max_rooms;      /* room leases held at once (1024) */
  uint32_t max_groups;     /* cluster-wide groups (64) */
  uint32_t queue_max;      /* requests waiting for the cluster thread (4096) */
  uint32_t max_body;       /* largest broadcast body (4096) */
  kite_log_fn log;         /* NULL: kite_log_stderr; called from the
                              cluster thread and the calls below */
  void *log_user;
  kite_log_level log_level; /* KITE_LOG_INFO */
} kite_cluster_config;

/* Fills |cfg| with the defaults above (required fields NULL). */
KITE_API
void kite_cluster_config_init(kite_cluster_config *cfg);

/* Validates |cfg| (copied, strings included), starts the cluster thread
 * and returns 0 with *out; Redis is connected from that thread, so an
 * unreachable Redis is no error here. Or KITE_EINVAL (a missing or bad
 * field; the log says which), KITE_ENOMEM, KITE_ESYS (thread or
 * eventfd). Any thread. */
KITE_API
int kite_cluster_create(kite_cluster **out, const kite_cluster_config *cfg);

/* Stops the thread; if Redis answers within timeout_ms, first removes the
 * node's registration and releases its leases (a node that dies instead
 * lapses). Frees every kite_cluster_group. Call before destroying the
 * server, from a thread that no other cluster call races. NULL ignored. */
KITE_API
void kite_cluster_destroy(kite_cluster *c);

/* Makes the cluster-wide group |name| (1..64 bytes) deliver to |local|,
 * this node's members of it (a kite_group the caller keeps alive until
 * kite_cluster_destroy). The handle lives until kite_cluster_destroy.
 * Returns NULL for a bad name, a name opened already, over max_groups, a
 * full queue or no memory. Any thread. */
KITE_API
kite_cluster_group *kite_cluster_group_open(kite_cluster *c, const char *name,
                                            kite_group *local);

/* Sends a frame to every member of the group on every node, once each:
 * to this node's members now (kite_group_broadcast on |local|), and to the
 * other nodes by one PUBLISH from the cluster thread (|body| is copied
 * into one allocation, freed once published: a broadcast is a game event,
 * not a packet).
 * Returns the local count (as kite_group_broadcast), or KITE_EINVAL,
 * KITE_EMSGSIZE (len over max_body), KITE_ENOMEM, or KITE_EFULL (the
 * queue is full: delivered locally only, counted in publish_dropped and
 * queue_full).
 * Any thread. */
KITE_API
int kite_cluster_broadcast(kite_cluster_group *g, uint16_t msg_id,
                           const void *body, size_t len);

/* The node hosts room |name| from now on: the cluster thread takes its
 * lease (SET NX PX) and renews it while held. A lease found held by
 * another node is counted (rooms_conflict) and retried at each renewal.
 * Returns 0, KITE_EINVAL (bad name), KITE_EFULL (queue full), KITE_ENOMEM.
 * Holding past max_rooms is refused on the cluster thread (counted). Any
 * thread; holds are not counted: hold once, release once. */
KITE_API
int kite_cluster_room_hold(kite_cluster *c, const char *name);

/* The node stops hosting |name|: the lease is deleted if still this
 * node's. Returns as kite_cluster_room_hold. Any thread. */
KITE_API
int kite_cluster_room_release(kite_cluster *c, const char *name);

/* X(field, help): every counter of a kite_cluster. */
#define KITE_CLUSTER_STATS_MAP(X)                                             \
  X(connected, "1 while Redis answers, else 0")                               \
  X(connects, "connections to Redis made")                                    \
  X(redis_errors, "Redis exchanges that failed or timed out")                 \
  X(renewals, "registrations renewed")                                        \
  X(rooms_held, "room leases held now")                                       \
  X(rooms_conflict, "room leases found held by another node")                 \
  X(rooms_refused, "room holds refused over max_rooms")                       \
  X(published, "broadcasts Redis accepted for the other nodes")               \
  X(publish_dropped, "broadcasts not published (queue full, Redis away)")     \
  X(received, "broadcasts received from other nodes and delivered")           \
  X(received_bad, "pub/sub messages refused as malformed or unknown")         \
  X(queue_full, "requests refused for a full queue")

typedef struct kite_cluster_stats {
#define KITE__CLUSTER_STAT_FIELD(name, help) uint64_t name;
  KITE_CLUSTER_STATS_MAP(KITE__CLUSTER_STAT_FIELD)
#undef KITE__CLUSTER_STAT_FIELD
} kite_cluster_stats;

/* A snapshot of the counters. Any thread. */
KITE_API
void kite_cluster_stats_get(kite_cluster *c, kite_cluster_stats *out);

/* ---- the directory: placement for a login service ---- */

/* Connects to Redis at |redis_addr| with |prefix| (NULL: "kite:") and a
 * bound of |timeout_ms| per exchange (0: 500). Returns 0 with *out, or
 * KITE_EINVAL, KITE_ENOMEM. An unreachable Redis is no error here: each
 * kite_directory_place reconnects as needed. A directory belongs to one
 * thread at a time (several threads: one each). */
KITE_API
int kite_directory_open(kite_directory **out, const char *redis_addr,
                        const char *prefix, uint32_t timeout_ms);

/* Closes the connection and frees |d|. NULL ignored. */
KITE_API
void kite_directory_close(kite_directory *d);

typedef struct kite_placement {
  char node_id[KITE_CLUSTER_ID_MAX + 1];
  char addr[KITE_CLUSTER_ADDR_MAX + 1]; /* the node's public "HOST:PORT" */
  bool held;      /* the room was on that node already (else: new lease) */
} kite_placement;

/* Places a player for room |name| in one Lua script: the node holding the
 * room's lease if it is registered, else the least-loaded registered node
 * (which then takes the room's lease for lease_ms, 0: 3000); a seat is
 * reserved on it (its load rises by one at once). Returns 0 with *out, or
 *   KITE_EINVAL    a bad name;
 *   KITE_ENOTFOUND no node is registered;
 *   KITE_EFULL     every node has its seats taken;
 *   KITE_EAGAIN    Redis did not answer (down, stopped, timed out): retry.
 * The directory's thread only; blocks for at most about 2 x timeout_ms. */
KITE_API
int kite_directory_place(kite_directory *d, const char *name,
                         uint32_t lease_ms, kite_placement *out);

#ifdef __cplusplus
}
#endif
#endif
