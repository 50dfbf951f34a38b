/*
 * Groups (include/kite/group.h): a locked list of session ids. A broadcast
 * gives its members to the server's fan-out (server/port.h), which encodes
 * the frame once and reaches each shard with one command.
 */
#include "kite/group.h"

#include "server/port.h"

#include <pthread.h>

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
  return kite__port_session_live(srv, id);
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

int kite_group_broadcast(kite_group *g, uint16_t msg_id, const void *body,
                         size_t len) {
  kite__bcast b;
  int rc = kite__bcast_begin(&b, g->srv, msg_id, body, len);
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&g->lock);
  prune(g);
  for (size_t i = 0; i < g->n; i++)
    kite__bcast_add(&b, g->ids[i], g->n);
  pthread_mutex_unlock(&g->lock);
  return kite__bcast_end(&b); /* outside the lock: it may run callbacks */
}

int kite_group_broadcast_unreliable(kite_group *g, uint16_t msg_id,
                                    const void *body, size_t len,
                                    unsigned flags) {
  kite__bcast b;
  int rc = kite__ubcast_begin(&b, g->srv, msg_id, body, len, flags);
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&g->lock);
  prune(g);
  for (size_t i = 0; i < g->n; i++)
    kite__ubcast_add(&b, g->ids[i], g->n);
  pthread_mutex_unlock(&g->lock);
  return kite__bcast_end(&b);
}
