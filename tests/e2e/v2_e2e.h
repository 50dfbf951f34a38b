/*
 * Protocol version 2 end to end, kite's own client against kite's own
 * server, public API only: the server (versions 1 and 2 on one port, UDP
 * and TCP), tokens minted with kite_token_mint(), and the server-side
 * record of each session (what on_connect saw, how it ended), shared by
 * test_v2_e2e.c and test_v2_migrate.c.
 */
#ifndef KITE_TESTS_E2E_V2_E2E_H
#define KITE_TESTS_E2E_V2_E2E_H

#include "kite/kite.h"

#include "e2e_poll.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define E2E_PROTOCOL_ID 0x4b495445ull /* "KITE" */
#define E2E_SESSIONS_MAX 64

enum { MSG_ECHO = 5, MSG_KICK = 6, MSG_BYE = 7 };

static const uint8_t e2e_key[KITE_TOKEN_KEY_BYTES] = {
    0x6b, 0x69, 0x74, 0x65, 0x2d, 0x76, 0x32, 0x2d, 0x65, 0x32, 0x65, 0x2d,
    0x6b, 0x65, 0x79, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* What the server saw of one session. Written on the session's executor
 * (its callbacks run one at a time), read by the test thread once
 * |disconnects| (or srv_connects) says the writes are done: the atomics
 * order them. */
typedef struct srv_rec {
  int version, transport;
  kite_session_id id;
  uint64_t client_id;
  char user[KITE_TOKEN_USER_DATA_MAX + 1];
  atomic_int reason; /* -1 until on_disconnect */
  atomic_bool ready; /* the fields above are written */
} srv_rec;

static srv_rec srv_recs[E2E_SESSIONS_MAX];
static atomic_int srv_slots, srv_connects, srv_disconnects, srv_errors;

static void srv_reset(void) {
  memset(srv_recs, 0, sizeof(srv_recs));
  for (int i = 0; i < E2E_SESSIONS_MAX; i++)
    atomic_store(&srv_recs[i].reason, -1);
  atomic_store(&srv_slots, 0);
  atomic_store(&srv_connects, 0);
  atomic_store(&srv_disconnects, 0);
  atomic_store(&srv_errors, 0);
}

static void srv_on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)u;
  int i = atomic_fetch_add(&srv_slots, 1); /* shards connect at once */
  kite_session_info in;
  if (i >= E2E_SESSIONS_MAX || kite_session_get_info(s, id, &in) != 0) {
    atomic_fetch_add(&srv_errors, 1); /* asserted on the test thread */
    return;
  }
  srv_rec *r = &srv_recs[i];
  r->version = in.version;
  r->transport = (int)in.transport;
  r->client_id = in.client_id;
  r->id = id;
  memcpy(r->user, in.user_data, KITE_TOKEN_USER_DATA_MAX);
  kite_session_set_user(s, id, r);
  atomic_store(&r->ready, true); /* publishes |r| */
  atomic_fetch_add(&srv_connects, 1);
}

static void srv_on_message(kite_server *s, kite_session_id id, uint16_t m,
                           const uint8_t *b, size_t n, void *u) {
  (void)u;
  if (m != MSG_KICK) {
    kite_session_send(s, id, m, b, n);
    return;
  }
  /* The reply, then the close: the reply must arrive first. */
  if (kite_session_send(s, id, MSG_BYE, "bye", 3) != 0 ||
      kite_session_close(s, id) != 0)
    atomic_fetch_add(&srv_errors, 1);
}

static void srv_on_disconnect(kite_server *s, kite_session_id id, int reason,
                              void *u) {
  (void)u;
  srv_rec *r = kite_session_user(s, id);
  if (!r) { /* a session that never reached on_connect */
    atomic_fetch_add(&srv_errors, 1);
    return;
  }
  atomic_store(&r->reason, reason);
  atomic_fetch_add(&srv_disconnects, 1);
}

/* The index of the record for |client_id|, or -1. */
static inline int srv_find(uint64_t client_id) {
  for (int i = 0; i < E2E_SESSIONS_MAX; i++)
    if (atomic_load(&srv_recs[i].ready) && srv_recs[i].client_id == client_id)
      return i;
  return -1;
}

/* A server on 127.0.0.1, UDP and TCP on one port number, versions 1 and 2,
 * the test's key; no per-source limits (every test client is 127.0.0.1). */
static void e2e_server_config(kite_server_config *cfg, kite_worker_mode mode) {
  kite_server_config_init(cfg);
  cfg->udp_addr = "127.0.0.1:0";
  cfg->tcp_addr = "127.0.0.1:0";
  cfg->threads = 2;
  cfg->worker_mode = mode;
  cfg->workers = mode == KITE_WORKERS_INLINE ? 0 : mode == KITE_WORKERS_HASH ? 4 : 8;
  cfg->max_sessions_per_addr = cfg->max_sessions_per_prefix = 0;
  cfg->max_halfopen_per_addr = cfg->max_halfopen_per_prefix = 0;
  cfg->versions = KITE_VERSION_1 | KITE_VERSION_2;
  cfg->token_key_set = true;
  memcpy(cfg->token_key, e2e_key, sizeof(e2e_key));
  cfg->protocol_id = E2E_PROTOCOL_ID;
  cfg->on_connect = srv_on_connect;
  cfg->on_message = srv_on_message;
  cfg->on_disconnect = srv_on_disconnect;
  cfg->log_level = KITE_LOG_WARN;
}

/* A token for |addr|, player |client_id| with user data "player=<id>";
 * |age_s| seconds old at minting (past its ttl: expired), under |key|. */
static int e2e_mint(uint8_t tok[KITE_TOKEN_BYTES], const uint8_t *key,
                    const char *addr, uint64_t client_id, uint64_t age_s) {
  char user[32];
  snprintf(user, sizeof(user), "player=%llu", (unsigned long long)client_id);
  const char *addrs[] = {addr};
  kite_token_params p = {.protocol_id = E2E_PROTOCOL_ID, .client_id = client_id,
                         .ttl_s = 30, .addrs = addrs, .naddrs = 1,
                         .user_data = user, .user_data_len = strlen(user),
                         .now_s = (uint64_t)time(NULL) - age_s};
  return kite_token_mint(tok, key, &p);
}

#endif
