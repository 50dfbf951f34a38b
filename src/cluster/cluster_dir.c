/*
 * kite_directory: where a login service sends a player. One synchronous
 * Redis connection with every exchange bounded by timeout_ms; the caller's
 * thread is the directory's (include/kite/cluster.h).
 */
#include "cluster/cluster_internal.h"
#include "cluster/cluster_lua.h"

#include "kite/error.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seats a directory reserves count in a node's load until its next
 * renewal consumes them (the players count as its sessions by then); this
 * bounds how long they count if the node never renews (it died). */
#define RESV_MS 10000

struct kite_directory {
  char host[256];
  int port;
  char prefix[33];
  uint32_t timeout_ms;
  redisContext *rc; /* NULL until connected, and after a failure */
};

int kite_directory_open(kite_directory **out, const char *redis_addr,
                        const char *prefix, uint32_t timeout_ms) {
  if (!out)
    return KITE_EINVAL;
  *out = NULL;
  if (!prefix)
    prefix = "kite:";
  if (!*prefix || strlen(prefix) > 32)
    return KITE_EINVAL;
  kite_directory *d = calloc(1, sizeof(*d));
  if (!d)
    return KITE_ENOMEM;
  if (kite__cl_split_addr(redis_addr, d->host, sizeof(d->host), &d->port) < 0) {
    free(d);
    return KITE_EINVAL;
  }
  snprintf(d->prefix, sizeof(d->prefix), "%s", prefix);
  d->timeout_ms = timeout_ms ? timeout_ms : 500;
  *out = d;
  return 0;
}

void kite_directory_close(kite_directory *d) {
  if (!d)
    return;
  if (d->rc)
    redisFree(d->rc);
  free(d);
}

static void drop(kite_directory *d) {
  if (d->rc)
    redisFree(d->rc);
  d->rc = NULL;
}

static bool ensure(kite_directory *d) {
  if (d->rc)
    return true;
  struct timeval tv = {.tv_sec = d->timeout_ms / 1000,
                       .tv_usec = (d->timeout_ms % 1000) * 1000};
  d->rc = redisConnectWithTimeout(d->host, d->port, tv);
  if (!d->rc || d->rc->err) {
    drop(d);
    return false;
  }
  redisSetTimeout(d->rc, tv);
  return true;
}

static void copy_str(char *dst, size_t cap, const redisReply *r) {
  size_t n = r->len < cap - 1 ? r->len : cap - 1;
  memcpy(dst, r->str, n);
  dst[n] = 0;
}

int kite_directory_place(kite_directory *d, const char *name,
                         uint32_t lease_ms, kite_placement *out) {
  if (!d || !out || !kite__cl_name_ok(name))
    return KITE_EINVAL;
  memset(out, 0, sizeof(*out));
  if (!ensure(d))
    return KITE_EAGAIN;
  redisReply *r = redisCommand(d->rc, "EVAL %s 0 %s %s %u %u", KITE__LUA_PLACE,
                               d->prefix, name, lease_ms ? lease_ms : 3000,
                               RESV_MS);
  if (!r) { /* timed out or lost: the next call reconnects */
    drop(d);
    return KITE_EAGAIN;
  }
  int rc = 0;
  if (r->type == REDIS_REPLY_ERROR) {
    rc = strstr(r->str, "KITE full")     ? KITE_EFULL
         : strstr(r->str, "KITE nonode") ? KITE_ENOTFOUND
                                         : KITE_EAGAIN;
  } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
             r->element[0]->type != REDIS_REPLY_STRING ||
             r->element[1]->type != REDIS_REPLY_STRING ||
             r->element[2]->type != REDIS_REPLY_INTEGER) {
    rc = KITE_EAGAIN;
  } else {
    copy_str(out->node_id, sizeof(out->node_id), r->element[0]);
    copy_str(out->addr, sizeof(out->addr), r->element[1]);
    out->held = r->element[2]->integer == 1;
  }
  freeReplyObject(r);
  return rc;
}
