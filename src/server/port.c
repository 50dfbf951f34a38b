/*
 * The server's port for the logic layer (server/port.h): lookups, closes,
 * notices and wake-ups, each a thin call into the runtime.
 */
#include "server/port.h"
#include "server/server_internal.h"

bool kite__port_session_live(kite_server *srv, kite_session_id id) {
  kite__session *s = kite__session_by_id(srv, id);
  return s && kite__session_live(s);
}

struct kite__lsess *kite__port_lsess(kite_server *srv, kite_session_id id) {
  kite__session *s = kite__session_by_id(srv, id);
  return s ? s->app : NULL;
}

int kite__port_close(kite_server *srv, kite_session_id id, uint8_t reason) {
  return kite__session_close_any(srv, id, reason);
}

void kite__port_notice(kite_server *srv, void *host) {
  (void)srv;
  kite__shard_notice(host);
}

int kite__port_shard_current(const kite_server *srv) {
  kite__shard *sh = kite__shard_current();
  return sh && sh->srv == srv ? (int)sh->index : -1;
}

void kite__port_wake_shard(kite_server *srv, uint32_t index) {
  kite__shard_wake(&srv->shards[index]);
}

uint32_t kite__port_nshards(const kite_server *srv) { return srv->nshards; }

bool kite__port_running(const kite_server *srv) {
  return atomic_load_explicit(&srv->started, memory_order_acquire) &&
         !atomic_load_explicit(&srv->stopping, memory_order_relaxed);
}

struct kite__logic *kite__port_logic(kite_server *srv) { return srv->logic; }

struct kite__log *kite__port_log(kite_server *srv) { return &srv->log; }
