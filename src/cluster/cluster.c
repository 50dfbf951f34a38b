/*
 * The calls any thread makes on a kite_cluster: they validate, queue a
 * request for the cluster thread and return (include/kite/cluster.h).
 */
#include "cluster/cluster_internal.h"

#include "base/clock.h"
#include "kite/error.h"
#include "kite/group.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void kite_cluster_config_init(kite_cluster_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->prefix = "kite:";
  cfg->seats = 10000;
  cfg->renew_ms = 1000;
  cfg->node_ttl_ms = 3000;
  cfg->lease_ttl_ms = 3000;
  cfg->timeout_ms = 500;
  cfg->backoff_max_ms = 2000;
  cfg->max_rooms = 1024;
  cfg->max_groups = 64;
  cfg->queue_max = 4096;
  cfg->max_body = 4096;
  cfg->log_level = KITE_LOG_INFO;
}

uint64_t kite__cl_now_ms(void) { return kite__now_us() / 1000u; }

bool kite__cl_name_ok(const char *s) {
  if (!s)
    return false;
  size_t n = strnlen(s, KITE_CLUSTER_NAME_MAX + 1);
  if (n == 0 || n > KITE_CLUSTER_NAME_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7F)
      return false;
  return true;
}

static bool id_ok(const char *s) {
  size_t n = s ? strnlen(s, KITE_CLUSTER_ID_MAX + 1) : 0;
  if (n == 0 || n > KITE_CLUSTER_ID_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
      return false;
  }
  return true;
}

int kite__cl_split_addr(const char *addr, char *host, size_t cap, int *port) {
  const char *colon = addr ? strrchr(addr, ':') : NULL;
  if (!colon || colon == addr)
    return KITE_EINVAL;
  const char *h = addr;
  size_t hl = (size_t)(colon - addr);
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [v6]:port */
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl >= cap)
    return KITE_EINVAL;
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (*end || errno || p <= 0 || p > 65535)
    return KITE_EINVAL;
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = (int)p;
  return 0;
}

static int bad(kite_cluster *c, const char *why) {
  kite__logf(&c->log, KITE_LOG_ERROR, "cluster: %s", why);
  return KITE_EINVAL;
}

static int check(kite_cluster *c, const kite_cluster_config *cfg) {
  if (!cfg->srv)
    return bad(c, "srv is required");
  if (kite__cl_split_addr(cfg->redis_addr, c->redis_host,
                          sizeof(c->redis_host), &c->redis_port) < 0)
    return bad(c, "redis_addr must be HOST:PORT");
  if (!id_ok(cfg->node_id))
    return bad(c, "node_id is 1 to 32 of A-Z a-z 0-9 . _ -");
  char host[256];
  int port;
  if (!cfg->public_addr || strlen(cfg->public_addr) > KITE_CLUSTER_ADDR_MAX ||
      kite__cl_split_addr(cfg->public_addr, host, sizeof(host), &port) < 0)
    return bad(c, "public_addr must be HOST:PORT (at most 63 bytes)");
  if (!cfg->prefix || !*cfg->prefix || strlen(cfg->prefix) > 32)
    return bad(c, "prefix is 1 to 32 bytes");
  if (cfg->renew_ms == 0 || cfg->node_ttl_ms <= cfg->renew_ms ||
      cfg->lease_ttl_ms <= cfg->renew_ms)
    return bad(c, "node_ttl_ms and lease_ttl_ms must exceed renew_ms > 0");
  if (cfg->timeout_ms == 0 || cfg->backoff_max_ms == 0 || cfg->seats == 0 ||
      cfg->max_rooms == 0 || cfg->max_groups == 0 || cfg->queue_max == 0 ||
      cfg->max_body == 0 || cfg->max_body > (1u << 20))
    return bad(c, "timeout_ms, backoff_max_ms, seats, max_rooms, max_groups,"
                  " queue_max must be > 0; max_body 1..1 MiB");
  return 0;
}

int kite_cluster_create(kite_cluster **out, const kite_cluster_config *cfg) {
  if (!out || !cfg)
    return KITE_EINVAL;
  *out = NULL;
  kite_cluster *c = calloc(1, sizeof(*c));
  if (!c)
    return KITE_ENOMEM;
  kite__log_init(&c->log, cfg->log ? cfg->log : kite_log_stderr, cfg->log_user,
                 cfg->log_level);
  int rc = check(c, cfg);
  if (rc < 0) {
    free(c);
    return rc;
  }
  c->cfg = *cfg;
  snprintf(c->node_id, sizeof(c->node_id), "%s", cfg->node_id);
  snprintf(c->public_addr, sizeof(c->public_addr), "%s", cfg->public_addr);
  snprintf(c->prefix, sizeof(c->prefix), "%s", cfg->prefix);
  c->cfg.node_id = c->node_id;
  c->cfg.public_addr = c->public_addr;
  c->cfg.prefix = c->prefix;
  c->cfg.redis_addr = NULL; /* kept split: redis_host, redis_port */
  c->wake_fd = -1;
  pthread_mutex_init(&c->glock, NULL);
  rc = KITE_ENOMEM;
  c->groups = calloc(cfg->max_groups, sizeof(*c->groups));
  c->subs = calloc(cfg->max_groups, sizeof(*c->subs));
  c->rooms = calloc(cfg->max_rooms, sizeof(*c->rooms));
  c->argv = calloc(11 + (size_t)cfg->max_rooms, sizeof(*c->argv));
  if (!c->groups || !c->subs || !c->rooms || !c->argv || kite__mpsc_init(&c->q, cfg->queue_max) < 0)
    goto fail;
  rc = KITE_ESYS;
  c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (c->wake_fd < 0) {
    kite__logf(&c->log, KITE_LOG_ERROR, "cluster: eventfd: %s", strerror(errno));
    goto fail;
  }
  if (pthread_create(&c->thread, NULL, kite__cl_thread, c) != 0) {
    kite__logf(&c->log, KITE_LOG_ERROR, "cluster: cannot start its thread");
    goto fail;
  }
  *out = c;
  return 0;
fail:
  if (c->wake_fd >= 0)
    close(c->wake_fd);
  if (c->q.slots)
    kite__mpsc_free(&c->q);
  free(c->groups);
  free(c->subs);
  free(c->rooms);
  free(c->argv);
  pthread_mutex_destroy(&c->glock);
  free(c);
  return rc;
}

void kite_cluster_destroy(kite_cluster *c) {
  if (!c)
    return;
  atomic_store(&c->stop, true);
  uint64_t one = 1;
  if (write(c->wake_fd, &one, sizeof(one)) < 0) { /* full counter: awake */
  }
  pthread_join(c->thread, NULL);
  kite__clcmd *cmd;
  while ((cmd = kite__mpsc_pop(&c->q)))
    free(cmd);
  kite__mpsc_free(&c->q);
  close(c->wake_fd);
  for (uint32_t i = 0; i < c->ngroups; i++)
    free(c->groups[i]);
  free(c->groups);
  free(c->subs);
  free(c->rooms);
  free(c->argv);
  pthread_mutex_destroy(&c->glock);
  free(c);
}

/* Hands |cmd| to the cluster thread, or frees it: 0 or KITE_EFULL. */
static int push(kite_cluster *c, kite__clcmd *cmd) {
  if (!kite__mpsc_push(&c->q, cmd)) {
    KITE__CL_COUNT(c, queue_full);
    free(cmd);
    return KITE_EFULL;
  }
  uint64_t one = 1;
  if (write(c->wake_fd, &one, sizeof(one)) < 0) { /* EAGAIN: awake already */
  }
  return 0;
}

kite_cluster_group *kite_cluster_group_open(kite_cluster *c, const char *name,
                                            kite_group *local) {
  if (!c || !local || !kite__cl_name_ok(name))
    return NULL;
  kite_cluster_group *g = calloc(1, sizeof(*g));
  kite__clcmd *cmd = calloc(1, sizeof(*cmd));
  if (!g || !cmd) {
    free(g);
    free(cmd);
    return NULL;
  }
  g->cl = c;
  g->local = local;
  snprintf(g->name, sizeof(g->name), "%s", name);
  snprintf(g->channel, sizeof(g->channel), "%sg:%s", c->prefix, name);
  cmd->kind = KITE__CL_SUBSCRIBE;
  cmd->group = g;
  pthread_mutex_lock(&c->glock);
  bool ok = c->ngroups < c->cfg.max_groups;
  for (uint32_t i = 0; ok && i < c->ngroups; i++)
    ok = strcmp(c->groups[i]->name, name) != 0;
  if (ok && push(c, cmd) == 0)
    c->groups[c->ngroups++] = g;
  else if (ok)
    ok = false; /* push freed cmd */
  else
    free(cmd);
  pthread_mutex_unlock(&c->glock);
  if (!ok) {
    kite__logf(&c->log, KITE_LOG_WARN, "cluster: group %s not opened", name);
    free(g);
    return NULL;
  }
  return g;
}

int kite_cluster_broadcast(kite_cluster_group *g, uint16_t msg_id,
                           const void *body, size_t len) {
  if (!g || (!body && len))
    return KITE_EINVAL;
  kite_cluster *c = g->cl;
  if (len > c->cfg.max_body)
    return KITE_EMSGSIZE;
  int n = kite_group_broadcast(g->local, msg_id, body, len);
  if (n < 0)
    return n;
  kite__clcmd *cmd = malloc(sizeof(*cmd) + KITE__CL_MSG_HEAD + len);
  if (!cmd) {
    KITE__CL_COUNT(c, publish_dropped);
    return KITE_ENOMEM;
  }
  cmd->kind = KITE__CL_PUBLISH;
  cmd->group = g;
  size_t idl = strlen(c->node_id);
  memcpy(cmd->data, c->node_id, idl + 1);
  cmd->data[idl + 1] = (uint8_t)msg_id;
  cmd->data[idl + 2] = (uint8_t)(msg_id >> 8);
  if (len)
    memcpy(cmd->data + idl + 3, body, len);
  cmd->len = idl + 3 + len;
  if (push(c, cmd) < 0) {
    KITE__CL_COUNT(c, publish_dropped);
    return KITE_EFULL;
  }
  return n;
}

static int room_cmd(kite_cluster *c, const char *name, uint8_t kind) {
  if (!c || !kite__cl_name_ok(name))
    return KITE_EINVAL;
  kite__clcmd *cmd = malloc(sizeof(*cmd));
  if (!cmd)
    return KITE_ENOMEM;
  cmd->kind = kind;
  cmd->group = NULL;
  cmd->len = 0;
  snprintf(cmd->name, sizeof(cmd->name), "%s", name);
  return push(c, cmd);
}

int kite_cluster_room_hold(kite_cluster *c, const char *name) {
  return room_cmd(c, name, KITE__CL_HOLD);
}

int kite_cluster_room_release(kite_cluster *c, const char *name) {
  return room_cmd(c, name, KITE__CL_RELEASE);
}

void kite_cluster_stats_get(kite_cluster *c, kite_cluster_stats *out) {
  memset(out, 0, sizeof(*out));
  if (!c)
    return;
#define KITE__CLUSTER_STAT_LOAD(name, help) out->name = atomic_load(&c->st_##name);
  KITE_CLUSTER_STATS_MAP(KITE__CLUSTER_STAT_LOAD)
#undef KITE__CLUSTER_STAT_LOAD
}
