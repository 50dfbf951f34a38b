/*
 * A session's mailbox between its shard (the only producer) and its
 * executor (the only consumer at any time): a bounded ring of messages and
 * the events that bracket them. The connect and disconnect events are
 * flags in the mailbox itself, so no full queue can ever lose them; the
 * disconnect is delivered once the message being handled returns (what
 * still waits then is dropped: include/kite/logic.h, "After a close").
 *
 * Scheduling: a mailbox sits in at most one worker's run queue at a time
 * (the SCHEDULED flag), so one session never runs on two workers at once,
 * and run queues sized for every session can never overflow.
 */
#ifndef KITE_LOGIC_MAILBOX_H
#define KITE_LOGIC_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Messages waiting per session: cfg.mailbox_depth, a power of two (the
 * ring's index is a free-running count) within these bounds. */
#define KITE__MAILBOX_DEPTH_MIN 2u
#define KITE__MAILBOX_DEPTH_MAX 4096u

enum {
  KITE__MB_SCHEDULED = 1 << 0,  /* in a run queue, or running */
  KITE__MB_CONNECT = 1 << 1,    /* on_connect is owed */
  KITE__MB_DISCONNECT = 1 << 2, /* on_disconnect is owed (after the rest) */
  KITE__MB_BLOCKED = 1 << 3,    /* the shard stopped reading KCP: full */
  KITE__MB_NOTICE = 1 << 4,     /* in the shard's notice queue */
  KITE__MB_DONE = 1 << 5,       /* on_disconnect ran: release the slot */
  KITE__MB_CLOSING = 1 << 6,    /* its executor asked to close it: no more
                                   handlers run, sends are refused */
};

typedef struct kite__msg {
  uint32_t len;
  uint16_t msg_id;
  uint8_t flags; /* KITE_REQ_*: the lane it came on */
  uint8_t data[];
} kite__msg;

typedef struct kite__mailbox {
  kite__msg **ring; /* |depth| slots; the shard allocates it lazily */
  uint32_t depth;   /* set with the ring, before the head that shows it */
  _Atomic uint32_t head, tail; /* produced / consumed counts */
  _Atomic uint32_t bytes;      /* message bytes waiting */
  _Atomic uint32_t flags;
  _Atomic uint64_t affinity;   /* hash mode: worker = affinity % workers */
  /* bind, dynamic: its own worker. Written by the shard (bind, unbind),
   * read by any thread that looks up a timer key (worker records live as
   * long as the server, so a stale pointer is never a freed one). */
  struct kite__worker *_Atomic bound;
  uint8_t reason;              /* for on_disconnect; set before the flag */
} kite__mailbox;

void kite__mailbox_init(kite__mailbox *mb);
/* Frees what is left (messages and the ring). Only when no executor can
 * reach the mailbox any more. */
void kite__mailbox_clear(kite__mailbox *mb);

/* Producer: queues a message of |len| bytes (copied), or returns false
 * when the mailbox holds |depth| messages or |max_bytes| bytes already
 * (the caller stops reading the session: backpressure). |depth| is a power
 * of two, the same on every call until kite__mailbox_clear(). */
bool kite__mailbox_push(kite__mailbox *mb, uint16_t msg_id, const void *body,
                        uint32_t len, uint32_t depth, uint32_t max_bytes);
/* The same, the message carrying |flags| (KITE_REQ_*) to its handler. */
bool kite__mailbox_push_flags(kite__mailbox *mb, uint16_t msg_id,
                              uint8_t flags, const void *body, uint32_t len,
                              uint32_t depth, uint32_t max_bytes);

/* Consumer: the next message, or NULL; free it with kite__mailbox_done(). */
kite__msg *kite__mailbox_peek(kite__mailbox *mb);
void kite__mailbox_done(kite__mailbox *mb, kite__msg *m);

/* Flags, head and tail are sequentially consistent: the shard sets
 * BLOCKED then looks at tail, the worker moves tail then looks at BLOCKED
 * (and likewise SCHEDULED against head), and one total order means one of
 * the two always sees the other: no wake-up is lost. */
static inline uint32_t kite__mailbox_flags(kite__mailbox *mb) {
  return atomic_load(&mb->flags);
}
static inline uint32_t kite__mailbox_set(kite__mailbox *mb, uint32_t f) {
  return atomic_fetch_or(&mb->flags, f);
}
static inline uint32_t kite__mailbox_clr(kite__mailbox *mb, uint32_t f) {
  return atomic_fetch_and(&mb->flags, ~f);
}
static inline bool kite__mailbox_empty(kite__mailbox *mb) {
  return atomic_load(&mb->head) == atomic_load(&mb->tail);
}

#endif
