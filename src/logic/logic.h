/*
 * The logic layer as the server runtime sees it: what src/server calls up
 * into (a session opens, a frame arrives, a session closes, a worker's
 * notice is read, a slot is bound or freed, a shard's game timers run).
 * The logic layer calls back down only through server/port.h, and never
 * sees the runtime's structures: a session is its kite__lsess here, an
 * opaque state per slot that the logic layer owns, and the server's
 * session is an opaque |host| pointer to it.
 *
 *        server (shards, sessions)
 *          |  kite__logic_open / _deliver / _close / _noticed ...
 *          v
 *        logic (routes, executors, mailboxes, groups, timers)
 *          |  kite__port_close / _notice / _lsess ... (server/port.h)
 *          v
 *        server
 *
 * Threads: every call below is the owning shard's (of the session, or of
 * the shard named), except kite__logic_create/_start/_stop/_free (the
 * server's owner thread), the stats calls (any thread), and those marked.
 */
#ifndef KITE_LOGIC_LOGIC_H
#define KITE_LOGIC_LOGIC_H

#include "kite/logic.h"
#include "kite/server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kite__logic kite__logic;
typedef struct kite__lsess kite__lsess;
struct kite__prom;

/* The layer for a server of |nshards| shards with |slots| session slots
 * each. |cfg| is the server's own copy, read-only from now on. 0, or
 * KITE_ENOMEM / KITE_ESYS. */
/* The layer's fields of |cfg| (worker_mode, workers, mailbox_depth,
 * mailbox_bytes, timers_max, unrouted): NULL when all are within their
 * bounds, else the first that is not, as the log should name it. */
const char *kite__logic_config_bad(const kite_server_config *cfg);

int kite__logic_create(kite__logic **out, kite_server *srv,
                       const kite_server_config *cfg, uint32_t nshards,
                       uint32_t slots);
int kite__logic_start(kite__logic *lg);
/* After the shards have stopped: every session has been released. */
void kite__logic_stop(kite__logic *lg);
void kite__logic_free(kite__logic *lg);

/* The state of slot |slot| of shard |shard|, for the life of the layer;
 * |host| is the server's session in that slot, handed back in notices. */
kite__lsess *kite__logic_slot(kite__logic *lg, uint32_t shard, uint32_t slot,
                              void *host);

/* Bind and dynamic modes: reserves a worker for the session the slot is
 * about to carry as |id| (dynamic: a pool worker, else a temporary one
 * started for it). NULL, or why not (a string for the log; the shard
 * counts reject_no_worker): bind's pool is all taken, or a temporary
 * worker's thread could not start. Other modes: NULL. */
const char *kite__logic_bind(kite__logic *lg, kite__lsess *ls,
                             kite_session_id id);
/* Gives the worker back when the slot is freed, and frees the mailbox
 * ring (its executor is done with it). The slot's shard thread. */
void kite__logic_unbind(kite__logic *lg, kite__lsess *ls);

/* The session |id| opened: on_connect now (inline) or on its worker. */
void kite__logic_open(kite__logic *lg, kite__lsess *ls, kite_session_id id);
/* A frame for the application (|flags| KITE_REQ_*, its handler's
 * req->flags). false: the mailbox is full (worker modes); for a reliable
 * frame the shard stops reading the session until the worker's notice;
 * an unreliable one (KITE_REQ_UNRELIABLE) is dropped by the caller, and
 * the mailbox is not marked blocked for it (no notice is owed). */
bool kite__logic_deliver(kite__logic *lg, kite__lsess *ls, uint16_t msg_id,
                         unsigned flags, const uint8_t *body, uint32_t len);
/* The opened session closed with |reason|. true: on_disconnect ran
 * (inline) and the slot may be freed now. false: its worker drops what
 * waits and runs on_disconnect; its notice then says the slot may go. */
bool kite__logic_close(kite__logic *lg, kite__lsess *ls, uint8_t reason);

enum kite__notice {
  KITE__NOTICE_NONE = 0,
  KITE__NOTICE_RESUME, /* the mailbox has room: read the session again */
  KITE__NOTICE_DONE,   /* on_disconnect ran: the slot may be freed */
};
/* The shard read a worker's notice for |ls| (kite__port_notice). */
enum kite__notice kite__logic_noticed(kite__logic *lg, kite__lsess *ls);

/* A close of session |ls| was asked for (any thread): when the caller is
 * its worker, no further handler runs for it and sends are refused from
 * now on (include/kite/logic.h, "After a close"). true: its worker had
 * asked already (a second close: nothing to do). */
bool kite__logic_close_requested(kite__logic *lg, kite__lsess *ls);
/* Whether its executor asked to close it. Any thread. */
bool kite__logic_closing(const kite__lsess *ls);

/* Inline mode's game timers, run by shard |shard| in its loop: how long
 * its wait may be (-1: nothing due), and running what is due. */
int kite__logic_shard_timeout_ms(kite__logic *lg, uint32_t shard,
                                 uint32_t now_ms, int cap);
void kite__logic_shard_run(kite__logic *lg, uint32_t shard, uint32_t now_ms);
/* Inline mode: shrinks the shard's table of live game timers once mostly
 * empty (base/map.h), from the shard's trim pass. Bytes given back. */
size_t kite__logic_shard_trim(kite__logic *lg, uint32_t shard);

/* Any thread: the layer's counters into |out| (unrouted, drop_after_close,
 * temp_workers, temp_workers_started). */
void kite__logic_stats(const kite__logic *lg, kite_server_stats *out);
/* Any thread: the workers' metrics families (docs/OPERATIONS.md). */
void kite__logic_metrics(const kite__logic *lg, struct kite__prom *p);
kite_worker_mode kite__logic_mode(const kite__logic *lg);
/* Whether the calling thread is one of this layer's workers (where every
 * callback runs in worker modes). Any thread. */
bool kite__logic_on_worker(const kite__logic *lg);
uint32_t kite__logic_workers(const kite__logic *lg);

#endif
