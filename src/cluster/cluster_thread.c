/*
 * The cluster thread: everything that talks to Redis for a node. Two
 * connections, both with every exchange bounded by timeout_ms: |cmd| for
 * the registration, the leases and the publishes, |sub| for the
 * subscription to the groups' channels. A failed or timed-out exchange
 * drops both; they are made again after a backoff that doubles up to
 * backoff_max_ms. Nothing here is reached from a shard or a worker: they
 * only push requests (cluster.c).
 */
#include "cluster/cluster_internal.h"
#include "cluster/cluster_lua.h"

#include "kite/error.h"
#include "kite/group.h"

#include <hiredis/hiredis.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS 100

static struct timeval tv_of(uint32_t ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  return tv;
}

static bool connected(const kite_cluster *c) { return c->cmd != NULL; }

/* Redis failed us: drop both connections, count, back off. */
static void fail(kite_cluster *c, const char *what) {
  const char *why = c->cmd && c->cmd->err ? c->cmd->errstr
                    : c->sub && c->sub->err ? c->sub->errstr
                                            : "no answer";
  KITE__CL_COUNT(c, redis_errors);
  if (!c->warned) /* once per outage; the counter has every failure */
    kite__logf(&c->log, KITE_LOG_WARN,
               "cluster: Redis %s:%d lost at %s (%s): the node keeps serving,"
               " its registration lapses; retrying",
               c->redis_host, c->redis_port, what, why);
  c->warned = true;
  if (c->cmd)
    redisFree(c->cmd);
  if (c->sub)
    redisFree(c->sub);
  c->cmd = c->sub = NULL;
  atomic_store(&c->st_connected, 0);
  c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_FIRST_MS;
  if (c->backoff_ms > c->cfg.backoff_max_ms)
    c->backoff_ms = c->cfg.backoff_max_ms;
  c->next_try_ms = kite__cl_now_ms() + c->backoff_ms;
}

/* Reads |n| replies pipelined on |cmd|. Script errors are counted; false
 * when the connection failed (dropped then). *ok_count: integer replies
 * equal to 1, for the caller that wants them (may be NULL). */
static bool replies(kite_cluster *c, uint32_t n, const char *what) {
  for (uint32_t i = 0; i < n; i++) {
    redisReply *r;
    if (redisGetReply(c->cmd, (void **)&r) != REDIS_OK || !r) {
      fail(c, what);
      return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      KITE__CL_COUNT(c, redis_errors);
      kite__logf(&c->log, KITE_LOG_WARN, "cluster: %s: %s", what, r->str);
    }
    freeReplyObject(r);
  }
  return true;
}

static void subscribe_one(kite_cluster *c, const kite_cluster_group *g) {
  redisAppendCommand(c->sub, "SUBSCRIBE %s", g->channel);
}

/* Sends what is appended on |sub| without waiting for the answers: the
 * confirmations come back on the subscription like any message. */
static bool sub_flush(kite_cluster *c) {
  int done = 0;
  while (!done)
    if (redisBufferWrite(c->sub, &done) != REDIS_OK) {
      fail(c, "subscribe");
      return false;
    }
  return true;
}

static void try_connect(kite_cluster *c) {
  struct timeval tv = tv_of(c->cfg.timeout_ms);
  c->cmd = redisConnectWithTimeout(c->redis_host, c->redis_port, tv);
  c->sub = redisConnectWithTimeout(c->redis_host, c->redis_port, tv);
  if (!c->cmd || !c->sub || c->cmd->err || c->sub->err) {
    fail(c, "connect");
    return;
  }
  redisSetTimeout(c->cmd, tv);
  redisSetTimeout(c->sub, tv);
  redisEnableKeepAlive(c->cmd);
  redisEnableKeepAlive(c->sub);
  redisReply *r = redisCommand(c->cmd, "PING"); /* a stopped Redis accepts
                                                   the connection, no more */
  if (!r) {
    fail(c, "ping");
    return;
  }
  freeReplyObject(r);
  for (uint32_t i = 0; i < c->nsubs; i++)
    subscribe_one(c, c->subs[i]);
  if (!sub_flush(c))
    return;
  KITE__CL_COUNT(c, connects);
  atomic_store(&c->st_connected, 1);
  if (c->warned)
    kite__logf(&c->log, KITE_LOG_INFO, "cluster: Redis %s:%d answers again",
               c->redis_host, c->redis_port);
  c->warned = false;
  c->backoff_ms = 0;
  c->next_renew_ms = 0; /* register now */
}

static void append_lease(kite_cluster *c, const char *room) {
  redisAppendCommand(c->cmd, "EVAL %s 0 %s %s %s %u", KITE__LUA_LEASE,
                     c->prefix, room, c->node_id, c->cfg.lease_ttl_ms);
}

/* The registration and every lease, renewed in one script (atomic). */
static void renew(kite_cluster *c) {
  kite_server_stats st;
  kite_server_stats_get(c->cfg.srv, &st);
  char seats[16], sessions[24], nrooms[16], node_ttl[16], lease_ttl[16];
  snprintf(seats, sizeof(seats), "%u", c->cfg.seats);
  snprintf(sessions, sizeof(sessions), "%llu", (unsigned long long)st.sessions);
  snprintf(nrooms, sizeof(nrooms), "%u", c->nrooms);
  snprintf(node_ttl, sizeof(node_ttl), "%u", c->cfg.node_ttl_ms);
  snprintf(lease_ttl, sizeof(lease_ttl), "%u", c->cfg.lease_ttl_ms);
  const char **argv = c->argv;
  size_t n = 0;
  argv[n++] = "EVAL";
  argv[n++] = KITE__LUA_REGISTER;
  argv[n++] = "0";
  argv[n++] = c->prefix;
  argv[n++] = c->node_id;
  argv[n++] = c->public_addr;
  argv[n++] = seats;
  argv[n++] = sessions;
  argv[n++] = nrooms;
  argv[n++] = node_ttl;
  argv[n++] = lease_ttl;
  for (uint32_t i = 0; i < c->nrooms; i++)
    argv[n++] = c->rooms[i].name;
  redisReply *r = redisCommandArgv(c->cmd, (int)n, argv, NULL);
  if (!r) {
    fail(c, "renewal");
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != c->nrooms) {
    KITE__CL_COUNT(c, redis_errors);
    kite__logf(&c->log, KITE_LOG_WARN, "cluster: renewal: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
    freeReplyObject(r);
    return;
  }
  for (uint32_t i = 0; i < c->nrooms; i++) {
    const redisReply *e = r->element[i];
    bool ours = e->type == REDIS_REPLY_INTEGER && e->integer == 1;
    if (!ours && c->rooms[i].ours) /* lost it, or never had it */
      kite__logf(&c->log, KITE_LOG_WARN,
                 "cluster: room %s is leased by another node", c->rooms[i].name);
    if (!ours)
      KITE__CL_COUNT(c, rooms_conflict);
    c->rooms[i].ours = ours;
  }
  freeReplyObject(r);
  KITE__CL_COUNT(c, renewals);
}

static int find_room(const kite_cluster *c, const char *name) {
  for (uint32_t i = 0; i < c->nrooms; i++)
    if (!strcmp(c->rooms[i].name, name))
      return (int)i;
  return -1;
}

/* One request: state changes now, Redis work appended on |cmd| (*n
 * counts the replies to read, *npub the publishes among them). */
static void handle(kite_cluster *c, kite__clcmd *cmd, uint32_t *n,
                   uint32_t *npub) {
  bool up = connected(c);
  switch (cmd->kind) {
  case KITE__CL_SUBSCRIBE:
    if (c->nsubs < c->cfg.max_groups) {
      c->subs[c->nsubs++] = cmd->group;
      if (up)
        subscribe_one(c, cmd->group);
    }
    break;
  case KITE__CL_PUBLISH:
    if (!up) {
      KITE__CL_COUNT(c, publish_dropped);
      break;
    }
    redisAppendCommand(c->cmd, "PUBLISH %s %b", cmd->group->channel,
                       cmd->data, cmd->len);
    (*n)++;
    (*npub)++;
    break;
  case KITE__CL_HOLD: {
    if (find_room(c, cmd->name) >= 0)
      break;
    if (c->nrooms == c->cfg.max_rooms) {
      KITE__CL_COUNT(c, rooms_refused);
      break;
    }
    kite__clroom *r = &c->rooms[c->nrooms++];
    memcpy(r->name, cmd->name, sizeof(r->name));
    r->ours = true; /* until a renewal says otherwise */
    atomic_store(&c->st_rooms_held, c->nrooms);
    if (up) {
      append_lease(c, r->name);
      (*n)++;
    }
    break;
  }
  case KITE__CL_RELEASE: {
    int i = find_room(c, cmd->name);
    if (i < 0)
      break;
    c->rooms[i] = c->rooms[--c->nrooms];
    atomic_store(&c->st_rooms_held, c->nrooms);
    if (up) {
      redisAppendCommand(c->cmd, "EVAL %s 0 %s %s %s", KITE__LUA_RELEASE,
                         c->prefix, cmd->name, c->node_id);
      (*n)++;
    }
    break;
  }
  }
}

/* Every request queued, in order, their replies read at the end. */
static void drain(kite_cluster *c) {
  uint32_t n = 0, npub = 0;
  kite__clcmd *cmd;
  while ((cmd = kite__mpsc_pop(&c->q))) {
    handle(c, cmd, &n, &npub);
    free(cmd);
  }
  if (connected(c) && n) {
    if (replies(c, n, "publish or lease")) /* Redis has them: counted */
      atomic_fetch_add(&c->st_published, npub);
    else
      atomic_fetch_add(&c->st_publish_dropped, npub);
  }
  if (connected(c))
    sub_flush(c);
}

/* A message from a group's channel: delivered to this node's members,
 * unless this node sent it (it delivered it already). */
static void deliver(kite_cluster *c, const redisReply *ch, const redisReply *m) {
  kite_cluster_group *g = NULL;
  for (uint32_t i = 0; i < c->nsubs && !g; i++)
    if (ch->len == strlen(c->subs[i]->channel) &&
        !memcmp(ch->str, c->subs[i]->channel, ch->len))
      g = c->subs[i];
  const uint8_t *p = (const uint8_t *)m->str;
  size_t len = m->len;
  const uint8_t *nul = memchr(p, 0, len < KITE_CLUSTER_ID_MAX + 1 ? len : KITE_CLUSTER_ID_MAX + 1);
  if (!g || !nul || (size_t)(nul - p) + 3 > len) {
    KITE__CL_COUNT(c, received_bad);
    return;
  }
  if (!strcmp((const char *)p, c->node_id))
    return; /* our own, delivered when it was sent */
  size_t at = (size_t)(nul - p) + 1;
  uint16_t msg_id = (uint16_t)(p[at] | p[at + 1] << 8);
  kite_group_broadcast(g->local, msg_id, p + at + 2, len - at - 2);
  KITE__CL_COUNT(c, received);
}

static void read_sub(kite_cluster *c) {
  if (redisBufferRead(c->sub) != REDIS_OK) {
    fail(c, "subscription");
    return;
  }
  for (;;) {
    redisReply *r = NULL;
    if (redisGetReplyFromReader(c->sub, (void **)&r) != REDIS_OK) {
      fail(c, "subscription");
      return;
    }
    if (!r)
      return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING &&
        !strcmp(r->element[0]->str, "message") &&
        r->element[2]->type == REDIS_REPLY_STRING)
      deliver(c, r->element[1], r->element[2]);
    freeReplyObject(r); /* subscribe confirmations: nothing to do */
  }
}

/* A graceful leave: the registration and the leases go now. */
static void leave(kite_cluster *c) {
  kite__clcmd *cmd;
  while ((cmd = kite__mpsc_pop(&c->q)))
    free(cmd);
  if (!connected(c))
    return;
  redisAppendCommand(c->cmd, "EVAL %s 0 %s %s", KITE__LUA_UNREGISTER,
                     c->prefix, c->node_id);
  for (uint32_t i = 0; i < c->nrooms; i++)
    redisAppendCommand(c->cmd, "EVAL %s 0 %s %s %s", KITE__LUA_RELEASE,
                       c->prefix, c->rooms[i].name, c->node_id);
  replies(c, 1 + c->nrooms, "leave");
}

void *kite__cl_thread(void *arg) {
  kite_cluster *c = arg;
  while (!atomic_load(&c->stop)) {
    uint64_t now = kite__cl_now_ms();
    if (!connected(c) && now >= c->next_try_ms)
      try_connect(c);
    if (connected(c) && now >= c->next_renew_ms) {
      c->next_renew_ms = now + c->cfg.renew_ms;
      renew(c);
    }
    drain(c);
    now = kite__cl_now_ms();
    uint64_t until = connected(c) ? c->next_renew_ms : c->next_try_ms;
    int wait = until > now ? (int)(until - now) : 0;
    if (wait > (int)c->cfg.renew_ms)
      wait = (int)c->cfg.renew_ms;
    struct pollfd pf[2] = {{.fd = c->wake_fd, .events = POLLIN},
                           {.fd = connected(c) ? c->sub->fd : -1, .events = POLLIN}};
    if (poll(pf, 2, wait) <= 0)
      continue;
    if (pf[0].revents & POLLIN) {
      uint64_t v;
      if (read(c->wake_fd, &v, sizeof(v)) < 0) { /* EAGAIN: nothing */
      }
    }
    if (connected(c) && pf[1].revents)
      read_sub(c);
  }
  leave(c);
  if (c->cmd)
    redisFree(c->cmd);
  if (c->sub)
    redisFree(c->sub);
  c->cmd = c->sub = NULL;
  return NULL;
}
