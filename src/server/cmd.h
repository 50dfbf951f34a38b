/*
 * What other threads hand a shard through its inbox (a bounded MPSC
 * queue): sends, closes and broadcasts from the application, datagrams
 * that reached the wrong shard, CONNECTs for the shard that will own the
 * session. A command belongs to the shard once posted.
 */
#ifndef KITE_SERVER_CMD_H
#define KITE_SERVER_CMD_H

#include "kite/server.h"

#include "net/addr.h"
#include "proto/control.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* A frame encoded once and shared by every shard a broadcast reaches.
 * Owner: whoever holds a reference; the last put frees it. */
typedef struct kite__shared_frame {
  _Atomic uint32_t refs;
  uint32_t bytes; /* header + body */
  uint8_t data[];
} kite__shared_frame;

static inline void kite__shared_frame_put(kite__shared_frame *f) {
  if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
    free(f);
}

enum kite__cmd_type {
  KITE__CMD_BROADCAST, /* a shared frame for |count| sessions (ids in data) */
  KITE__CMD_SEND,    /* a frame from another thread */
  KITE__CMD_CLOSE,   /* kite_session_close() from another thread */
  KITE__CMD_DGRAM,   /* a datagram that reached the wrong shard */
  KITE__CMD_CONNECT, /* a CONNECT whose owner is this shard */
  KITE__CMD_UNRELIABLE, /* an unreliable message from another thread, in
                           one of the shard's slots (upool.h), not malloc'd */
  KITE__CMD_UBROADCAST, /* an unreliable broadcast: a shared body for
                           |count| sessions (ids in data) */
};

typedef struct kite__cmd {
  uint8_t type;
  uint8_t fresh;  /* CONNECT: the cookie is within its lifetime */
  uint8_t reason; /* CLOSE: why */
  uint16_t msg_id;
  uint16_t fflags; /* SEND: the frame's flags; UNRELIABLE, UBROADCAST:
                      KITE_UNRELIABLE_* */
  uint32_t len;  /* bytes in data */
  uint32_t segs; /* SEND: segments reserved in the session's pending */
  kite_session_id id;
  kite__shared_frame *frame; /* BROADCAST; UBROADCAST: the body alone */
  uint32_t count;            /* BROADCAST, UBROADCAST: ids in data */
  kite__addr from;
  kite__local local;
  kite__ctrl ctrl;
  uint8_t data[];
} kite__cmd;

#endif
