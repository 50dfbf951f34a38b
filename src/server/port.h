/*
 * The server's port for the logic layer: the few calls src/logic makes
 * down into the runtime. It names no runtime structure (sessions, shards
 * and commands stay behind it), so the logic layer builds against this
 * header and kite's public ones alone.
 */
#ifndef KITE_SERVER_PORT_H
#define KITE_SERVER_PORT_H

#include "kite/server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KITE__PORT_SHARDS_MAX 64

struct kite__cmd;
struct kite__shared_frame;
struct kite__lsess;
struct kite__logic;
struct kite__log;

/* A broadcast being built: the frame encoded once, then one command per
 * shard holding that shard's members. begin, add each member, end (always,
 * once begin succeeded); add may run under the caller's lock (it neither
 * blocks nor calls back), end must not (a member's shard may be the
 * caller's own, and run callbacks). */
typedef struct kite__bcast {
  kite_server *srv;
  struct kite__shared_frame *frame;
  uint32_t segs;   /* send-queue room each member needs */
  size_t cap;      /* ids a shard's command holds: the members' count */
  int queued;      /* members the frame was queued for */
  bool unreliable; /* kite__ubcast_begin's: the body alone, no room reserved */
  uint16_t msg_id, uflags; /* unreliable: the message's */
  struct kite__cmd *cmds[KITE__PORT_SHARDS_MAX];
} kite__bcast;

/* Encodes the frame. 0, or KITE_EINVAL, KITE_EMSGSIZE, KITE_ENOMEM (as
 * kite_session_send() would). */
int kite__bcast_begin(kite__bcast *b, kite_server *srv, uint16_t msg_id,
                      const void *body, size_t len);
/* Adds a member of |members| (the most any shard's command may hold):
 * room reserved in its send queue, or, with none, it is closed as a slow
 * peer. false: the id is stale, or it got no room. */
bool kite__bcast_add(kite__bcast *b, kite_session_id id, size_t members);
/* The unreliable lane's broadcast (kite_group_broadcast_unreliable()): the
 * body copied once, |flags| KITE_UNRELIABLE_*; then add each member (no
 * room is reserved, no one is closed) and end as above. begin returns 0,
 * KITE_EINVAL, KITE_EMSGSIZE (over what a datagram of the server's mtu
 * holds) or KITE_ENOMEM. */
int kite__ubcast_begin(kite__bcast *b, kite_server *srv, uint16_t msg_id,
                       const void *body, size_t len, unsigned flags);
bool kite__ubcast_add(kite__bcast *b, kite_session_id id, size_t members);
/* Hands each shard its command (runs it, on the caller's own shard).
 * Returns how many members it was queued for. */
int kite__bcast_end(kite__bcast *b);

/* Whether |id| names a session the application may address (open, or
 * closing for a stop). Any thread. */
bool kite__port_session_live(kite_server *srv, kite_session_id id);

/* The logic layer's state for session |id| (what kite__logic_slot() gave
 * the server for its slot), when |id| is current: the slot still holds
 * that session (closed or not). NULL for a stale or malformed id. Any
 * thread; the state may be released right after unless the caller is the
 * session's executor. */
struct kite__lsess *kite__port_lsess(kite_server *srv, kite_session_id id);

/* kite_session_close() with |reason|, from any thread: 0, KITE_ENOTFOUND,
 * KITE_EFULL, KITE_ENOMEM. */
int kite__port_close(kite_server *srv, kite_session_id id, uint8_t reason);

/* A worker's word for the shard that owns |host| (the opaque pointer
 * kite__logic_slot() was given): the session's mailbox has room again, or
 * its on_disconnect ran. The shard asks kite__logic_noticed() which. The
 * caller queues each session at most once (the mailbox's NOTICE flag).
 * Any thread. */
void kite__port_notice(kite_server *srv, void *host);

/* The index of the shard the calling thread runs, or -1. */
int kite__port_shard_current(const kite_server *srv);
/* Wakes shard |index|'s loop (its game timers have a command). Any thread. */
void kite__port_wake_shard(kite_server *srv, uint32_t index);
uint32_t kite__port_nshards(const kite_server *srv);
/* Whether game timers may start: started, and no stop begun. */
bool kite__port_running(const kite_server *srv);
/* The server's logic layer. */
struct kite__logic *kite__port_logic(kite_server *srv);
/* The server's log. */
struct kite__log *kite__port_log(kite_server *srv);

#endif
