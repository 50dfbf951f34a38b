/*
 * libkite_cluster's insides (include/kite/cluster.h is the contract).
 *
 *   cluster.c         the calls any thread makes: config, create/destroy,
 *                     groups, broadcasts, holds; they only queue
 *   cluster_thread.c  the cluster thread: Redis connections, backoff,
 *                     registration, leases, publishes, the subscription
 *   cluster_dir.c     kite_directory: placement for a login service
 *   cluster_lua.h     the Lua scripts both sides run
 */
#ifndef KITE_CLUSTER_INTERNAL_H
#define KITE_CLUSTER_INTERNAL_H

#include "kite/cluster.h"
#include "kite/server.h"

#include "base/log.h"
#include "base/mpsc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct redisContext;

enum kite__clcmd_kind {
  KITE__CL_PUBLISH = 1, /* a broadcast for the other nodes */
  KITE__CL_HOLD,        /* take and keep a room's lease */
  KITE__CL_RELEASE,     /* give it back */
  KITE__CL_SUBSCRIBE,   /* a group was opened: listen on its channel */
};

/* One request to the cluster thread: made by any thread, then owned by
 * the cluster thread from the push on (it frees it). */
typedef struct kite__clcmd {
  uint8_t kind;
  kite_cluster_group *group;             /* PUBLISH, SUBSCRIBE */
  char name[KITE_CLUSTER_NAME_MAX + 1];  /* HOLD, RELEASE */
  size_t len;                            /* PUBLISH: bytes in data */
  uint8_t data[];                        /* PUBLISH: the message as sent */
} kite__clcmd;

/* Immutable after kite_cluster_group_open: readable from any thread. */
struct kite_cluster_group {
  kite_cluster *cl;
  kite_group *local;
  char name[KITE_CLUSTER_NAME_MAX + 1];
  char channel[KITE_CLUSTER_NAME_MAX + 40]; /* prefix "g:" name */
};

/* A room lease the node holds. The cluster thread's only. */
typedef struct kite__clroom {
  char name[KITE_CLUSTER_NAME_MAX + 1];
  bool ours; /* the last renewal found it ours */
} kite__clroom;

struct kite_cluster {
  kite_cluster_config cfg; /* strings below point into this struct */
  char redis_host[256];
  int redis_port;
  char node_id[KITE_CLUSTER_ID_MAX + 1];
  char public_addr[KITE_CLUSTER_ADDR_MAX + 1];
  char prefix[33];
  kite__log log;

  /* Any thread pushes, the cluster thread pops (kite__clcmd pointers). */
  kite__mpsc q;
  int wake_fd;           /* eventfd: written after a push, read by the thread */
  atomic_bool stop;      /* set by kite_cluster_destroy */
  pthread_t thread;

  /* Every group opened, for name checks and freeing: under |glock|
   * (opens are rare; never taken on the cluster thread). */
  pthread_mutex_t glock;
  kite_cluster_group **groups;
  uint32_t ngroups;

  /* The cluster thread's own. */
  struct redisContext *cmd, *sub;
  uint64_t next_try_ms, backoff_ms, next_renew_ms;
  bool warned; /* the loss of Redis was logged: next, its return */
  kite__clroom *rooms;
  uint32_t nrooms;
  const char **argv; /* a renewal's arguments: 11 + max_rooms */
  kite_cluster_group **subs; /* groups whose SUBSCRIBE came (max_groups) */
  uint32_t nsubs;

  /* Counters: written by whichever thread counts, read by stats_get. */
#define KITE__CLUSTER_STAT_ATOMIC(name, help) _Atomic uint64_t st_##name;
  KITE_CLUSTER_STATS_MAP(KITE__CLUSTER_STAT_ATOMIC)
#undef KITE__CLUSTER_STAT_ATOMIC
};

#define KITE__CL_COUNT(c, name) atomic_fetch_add(&(c)->st_##name, 1)

/* A message on a group's channel: origin node id, NUL, msg_id u16 LE,
 * body. The origin delivered it locally already and skips its own. */
#define KITE__CL_MSG_HEAD (KITE_CLUSTER_ID_MAX + 1 + 2)

/* cluster.c: true when |s| is a valid room or group name. */
bool kite__cl_name_ok(const char *s);
/* "HOST:PORT" into |host| (cap bytes) and *port. 0 or KITE_EINVAL. */
int kite__cl_split_addr(const char *addr, char *host, size_t cap, int *port);
uint64_t kite__cl_now_ms(void);

/* cluster_thread.c: the thread's body. */
void *kite__cl_thread(void *arg);

#endif
