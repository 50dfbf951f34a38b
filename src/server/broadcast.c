/*
 * Broadcast fan-out (server/port.h): one frame encoded once and shared by
 * reference, one command per shard with its members' ids. The logic
 * layer's groups decide who the members are; the runtime reaches them.
 */
#include "server/port.h"
#include "server/server_internal.h"

#include "proto/frame.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(KITE__PORT_SHARDS_MAX == KITE__SHARDS_MAX,
               "one command per shard");

int kite__bcast_begin(kite__bcast *b, kite_server *srv, uint16_t msg_id,
                      const void *body, size_t len) {
  memset(b, 0, sizeof(*b));
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
  b->srv = srv;
  b->frame = f;
  b->segs = kite__frame_segs(srv, f->bytes);
  return 0;
}

bool kite__bcast_add(kite__bcast *b, kite_session_id id, size_t members) {
  kite_server *srv = b->srv;
  kite__session *s = kite__session_by_id(srv, id);
  if (!s)
    return false;
  /* Room as kite_session_send() reserves it from another thread; a member
   * with none is closed as a slow peer rather than left with a gap. */
  if (!kite__session_reserve(s, b->segs)) {
    kite__session_close_any(srv, id, KITE_CLOSE_SLOW_PEER);
    return false;
  }
  uint32_t shard = kite__sid_shard(id);
  kite__cmd *c = b->cmds[shard];
  if (!c) {
    b->cap = members;
    c = calloc(1, sizeof(*c) + b->cap * sizeof(kite_session_id));
    if (!c) {
      kite__session_unreserve(s, b->segs);
      return false;
    }
    c->type = KITE__CMD_BROADCAST;
    c->frame = b->frame;
    c->segs = b->segs;
    atomic_fetch_add_explicit(&b->frame->refs, 1, memory_order_relaxed);
    b->cmds[shard] = c;
  }
  if (c->count == b->cap) { /* more members than the first add said */
    kite__session_unreserve(s, b->segs);
    return false;
  }
  memcpy(c->data + c->count * sizeof(kite_session_id), &id, sizeof(id));
  c->count++;
  b->queued++;
  return true;
}

int kite__bcast_end(kite__bcast *b) {
  kite_server *srv = b->srv;
  if (!srv)
    return 0;
  for (uint32_t i = 0; i < srv->nshards; i++) {
    kite__cmd *c = b->cmds[i];
    if (!c)
      continue;
    kite__shard *sh = &srv->shards[i];
    if (kite__shard_current() == sh)
      kite__shard_run_command(sh, c); /* we are that shard: no hand-over */
    else if (kite__shard_post(sh, c))
      ;
    else if (b->unreliable) { /* its members miss this one, counted */
      KITE__STAT_ADD_ANY(sh, unreliable_queue_full, c->count);
      kite__shared_frame_put(c->frame);
      free(c);
    } else
      kite__shard_run_abandoned(sh, c); /* counted as inbox_full */
  }
  kite__shared_frame_put(b->frame);
  return b->queued;
}
