/*
 * Groups (include/kite/group.h): a locked list of session ids. A broadcast
 * encodes its frame once, then hands each shard one command with its
 * members' ids and a reference to the shared frame.
 */
#include "kite/group.h"

#include "proto/frame.h"
#include "server/server_internal.h"

#include <stdlib.h>
#include <string.h>

struct kite_group {
  kite_server *srv;
  pthread_mutex_t lock;
  kite_session_id *ids;
  size_t n, cap;
};

kite_group *kite_group_create(kite_server *srv) {
  kite_group *g = calloc(1, sizeof(*g));
  if (!g)
    return NULL;
  g->srv = srv;
  pthread_mutex_init(&g->lock, NULL);
  return g;
}

void kite_group_destroy(kite_group *g) {
  if (!g)
    return;
  pthread_mutex_destroy(&g->lock);
  free(g->ids);
  free(g);
}

static bool live(kite_server *srv, kite_session_id id) {
  kite__session *s = kite__session_by_id(srv, id);
  return s && atomic_load_explicit(&s->live, memory_order_relaxed);
}

/* Drops members whose session ended: leaving on disconnect, lazily, is
 * safe because an id is never reused. Called with the lock held. */
static void prune(kite_group *g) {
  size_t k = 0;
  for (size_t i = 0; i < g->n; i++)
    if (live(g->srv, g->ids[i]))
      g->ids[k++] = g->ids[i];
  g->n = k;
}

int kite_group_join(kite_group *g, kite_session_id id) {
  if (!live(g->srv, id))
    return KITE_ENOTFOUND;
  pthread_mutex_lock(&g->lock);
  int rc = 0;
  for (size_t i = 0; i < g->n && rc == 0; i++)
    if (g->ids[i] == id)
      rc = KITE_ESTATE;
  if (rc == 0 && g->n == g->cap) {
    prune(g);
    if (g->n == g->cap) {
      size_t cap = g->cap ? g->cap * 2 : 8;
      kite_session_id *ids = realloc(g->ids, cap * sizeof(*ids));
      if (ids) {
        g->ids = ids;
        g->cap = cap;
      } else {
        rc = KITE_ENOMEM;
      }
    }
  }
  if (rc == 0)
    g->ids[g->n++] = id;
  pthread_mutex_unlock(&g->lock);
  return rc;
}

int kite_group_leave(kite_group *g, kite_session_id id) {
  int rc = KITE_ENOTFOUND;
  pthread_mutex_lock(&g->lock);
  for (size_t i = 0; i < g->n; i++) {
    if (g->ids[i] == id) {
      g->ids[i] = g->ids[--g->n];
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&g->lock);
  return rc;
}

size_t kite_group_members(kite_group *g, kite_session_id *out, size_t cap) {
  pthread_mutex_lock(&g->lock);
  prune(g);
  size_t n = g->n;
  if (out && cap)
    memcpy(out, g->ids, (n < cap ? n : cap) * sizeof(*out));
  pthread_mutex_unlock(&g->lock);
  return n;
}

size_t kite_group_size(kite_group *g) { return kite_group_members(g, NULL, 0); }

/* Reserves room in a member's send queue as kite_session_send() does from
 * another thread; a member with no room is closed as a slow peer. */
static kite__session *reserve(kite_server *srv, kite_session_id id, uint32_t segs) {
  kite__session *s = kite__session_by_id(srv, id);
  if (!s || kite__session_reserve(s, segs))
    return s;
  kite__session_close_any(srv, id, KITE_CLOSE_SLOW_PEER);
  return NULL;
}

int kite_group_broadcast(kite_group *g, uint16_t msg_id, const void *body,
                         size_t len) {
  kite_server *srv = g->srv;
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN)
    return KITE_EINVAL;
  if (len > srv->cfg.max_frame)
    return KITE_EMSGSIZE;
  kite__shared_frame *f = malloc(sizeof(*f) + KITE__FRAME_HDR + len);
  if (!f)
    return KITE_ENOMEM;
  atomic_init(&f->refs, 1); /* ours, until every shard has its own */
  f->bytes = (uint32_t)(KITE__FRAME_HDR + len);
  kite__frame_header(f->data, msg_id, 0, body, (uint32_t)len, true);
  if (len) /* body may be NULL then */
    memcpy(f->data + KITE__FRAME_HDR, body, len);
  uint32_t segs = kite__frame_segs(srv, f->bytes);

  /* One command per shard, holding that shard's members. */
  kite__cmd *cmds[64] = {0};
  pthread_mutex_lock(&g->lock);
  prune(g);
  int queued = 0;
  for (size_t i = 0; i < g->n; i++) {
    kite_session_id id = g->ids[i];
    uint32_t shard = (uint32_t)(id >> 56);
    kite__session *s = reserve(srv, id, segs);
    if (!s)
      continue;
    kite__cmd *c = cmds[shard];
    if (!c) {
      c = calloc(1, sizeof(*c) + g->n * sizeof(kite_session_id));
      if (!c) {
        kite__session_unreserve(s, segs);
        continue;
      }
      c->type = KITE__CMD_BROADCAST;
      c->frame = f;
      c->segs = segs;
      atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
      cmds[shard] = c;
    }
    memcpy(c->data + c->count * sizeof(kite_session_id), &id, sizeof(id));
    c->count++;
    queued++;
  }
  pthread_mutex_unlock(&g->lock);

  for (uint32_t i = 0; i < srv->nshards; i++) {
    kite__cmd *c = cmds[i];
    if (!c)
      continue;
    kite__shard *sh = &srv->shards[i];
    if (kite__shard_current() == sh) {
      kite__shard_run_command(sh, c); /* we are that shard: no hand-over */
    } else if (!kite__shard_post(sh, c)) {
      kite__shard_run_abandoned(sh, c); /* counted as inbox_full */
    }
  }
  kite__shared_frame_put(f);
  return queued;
}
