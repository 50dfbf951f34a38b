/*
 * Groups (rooms): sets of sessions that receive the same frames. A
 * broadcast encodes its frame once (header and CRC) and shares it with
 * every member's shard; each member still gets its own KCP copy, as
 * reliability needs. A session leaves its groups by itself when it
 * disconnects: members whose session has ended are dropped at the next
 * broadcast or size query, since a session id is never reused.
 *
 * Threads: every function may be called from any thread, callbacks
 * included; a group has its own lock, held only inside these calls.
 */
#ifndef KITE_GROUP_H
#define KITE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kite_server kite_server;
typedef uint64_t kite_session_id;
typedef struct kite_group kite_group;

/* A new empty group, or NULL when memory runs out. */
KITE_API
kite_group *kite_group_create(kite_server *srv);

/* Frees the group (its members are not told). No other thread may use it
 * during or after the call. NULL is ignored. */
KITE_API
void kite_group_destroy(kite_group *g);

/* 0, KITE_ENOTFOUND (no such live session), KITE_ESTATE (a member
 * already), KITE_ENOMEM. */
KITE_API
int kite_group_join(kite_group *g, kite_session_id id);

/* 0 or KITE_ENOTFOUND (not a member). */
KITE_API
int kite_group_leave(kite_group *g, kite_session_id id);

/* Live members. */
KITE_API
size_t kite_group_size(kite_group *g);

/* Copies up to |cap| live members' ids into |out|; returns how many
 * members there are (may exceed |cap|). */
KITE_API
size_t kite_group_members(kite_group *g, kite_session_id *out, size_t cap);

/* Sends one frame to every live member (msg_id and body as
 * kite_session_send). Returns the number of members it was queued for, or
 * KITE_EINVAL / KITE_EMSGSIZE / KITE_ENOMEM. A member whose send queue is
 * full is closed as a slow peer (reason 6) rather than left with a gap in
 * its stream. */
KITE_API
int kite_group_broadcast(kite_group *g, uint16_t msg_id, const void *body,
                         size_t len);

/* Sends one message on every live member's unreliable lane
 * (kite_session_send_unreliable(), |flags| KITE_UNRELIABLE_SEQUENCED or 0):
 * the body is copied once and shared by the members' shards, each sealing
 * it in its own datagram (v2 UDP), or queueing it as a frame (v2 TCP with
 * the unreliable flag; version 1 reliably). Returns the number of members
 * it was handed over for, or KITE_EINVAL (msg_id, flags), KITE_EMSGSIZE
 * (|len| over what a datagram of the server's mtu holds, or max_frame),
 * KITE_ENOMEM. Per member, nothing closes anyone: over its budget, its
 * (lower) max_unreliable, or its full send queue, the member misses this
 * one, counted (unreliable_drop_budget, unreliable_drop_size,
 * unreliable_drop_queue); a shard whose inbox is full
 * misses it, counted in unreliable_queue_full. */
KITE_API
int kite_group_broadcast_unreliable(kite_group *g, uint16_t msg_id,
                                    const void *body, size_t len,
                                    unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
