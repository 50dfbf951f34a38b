/*
 * kited's demo login route: POST /login with a player name, answered with
 * a protocol version 2 connect token (kite/token.h) for kited's own
 * address, so kite-cli (or curl) can log in and then connect with v2.
 *
 *   POST /login HTTP/1.1
 *   Content-Type: application/x-www-form-urlencoded   (optional)
 *   Content-Length: 10
 *
 *   name=alice
 *
 *   200  application/octet-stream: the 800-byte token, raw (what
 *        kite-token writes and kite-cli --token reads)
 *   400  malformed request, or a name that is not 1 to 16 printable
 *        characters without spaces (after %XX and + decoding)
 *   404  another path    405  another method (Allow: POST)
 *   411  no Content-Length (chunked bodies are not taken)
 *   413  a head over LOGIN_HEAD_MAX or a body over LOGIN_BODY_MAX
 *   415  a Content-Type other than the form's
 *   500  the token could not be minted (logged)
 * Every answer closes the connection; every outcome has a counter.
 *
 * Plain HTTP and no password: a demo. The token's answer carries the
 * session keys in clear, so in production the login is the game's own
 * backend behind TLS, with real authentication, calling kite_token_mint();
 * the game servers only hold the key. That is why this is kited's code on
 * kite's public API and not a route in libkite.
 *
 * Threads. One thread of its own (poll, non-blocking sockets) serves
 * every connection at once. Bounded: conns_max connections (a new one
 * past it closes the oldest: evictions), deadline_ms from accept to close
 * (timeouts), LOGIN_HEAD_MAX + LOGIN_BODY_MAX bytes read per request. The
 * buffers are allocated at start; nothing per request.
 */
#ifndef KITED_LOGIN_H
#define KITED_LOGIN_H

#include "kite/token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGIN_HEAD_MAX 2048  /* request line and headers */
#define LOGIN_BODY_MAX 256   /* the form */
#define LOGIN_CONNS_MAX 16   /* default conns_max */
#define LOGIN_DEADLINE_MS 3000
#define LOGIN_TTL_S 30       /* a token's life: it is used at once */

/* The outcomes of a request, X(name, status, help): one counter each. */
#define LOGIN_OUTCOMES(X)                                                    \
  X(tokens, 200, "tokens minted and answered")                               \
  X(bad_requests, 400, "malformed requests")                                 \
  X(bad_names, 400, "names refused: 1 to 16 printable characters, no spaces") \
  X(not_found, 404, "requests for another path")                             \
  X(bad_method, 405, "requests with a method other than POST")               \
  X(no_length, 411, "POSTs without Content-Length")                          \
  X(too_large, 413, "heads or bodies over their limit")                      \
  X(bad_type, 415, "bodies that are not a form")                             \
  X(mint_failures, 500, "tokens that could not be minted")

enum login_outcome {
  LOGIN_MORE = -1, /* the request is not whole yet */
#define LOGIN_OUTCOME_ENUM(name, status, help) LOGIN_##name,
  LOGIN_OUTCOMES(LOGIN_OUTCOME_ENUM)
#undef LOGIN_OUTCOME_ENUM
  LOGIN_OUTCOME_COUNT
};

typedef struct login_stats {
  uint64_t outcome[LOGIN_OUTCOME_COUNT]; /* by enum login_outcome */
  uint64_t timeouts;  /* connections closed at the deadline, unanswered */
  uint64_t evictions; /* oldest connections closed: conns_max were open */
  uint64_t accept_backoffs; /* pauses after accept() ran out of descriptors
                               or memory (the connection waits queued) */
} login_stats;

/* Parses the |len| bytes a connection has sent so far (login_req.c; pure,
 * any thread). Returns LOGIN_MORE, or an outcome: for LOGIN_tokens |name|
 * (DEMO_NAME_MAX + 1 bytes) holds the name, NUL-terminated. A head that
 * is not whole within LOGIN_HEAD_MAX bytes is LOGIN_too_large. */
int login_parse(const char *buf, size_t len, char *name);
int login_status(int outcome);         /* 200, 400, ... */
const char *login_outcome_name(int outcome);
const char *login_outcome_help(int outcome);

typedef struct login_config {
  const char *addr;               /* "HOST:PORT" to listen on; port 0: any */
  const uint8_t *key;             /* KITE_TOKEN_KEY_BYTES; copied, wiped at stop */
  uint64_t protocol_id;
  const char *const *token_addrs; /* the servers each token names (copied) */
  size_t ntoken_addrs;            /* 1..KITE_TOKEN_ADDRS_MAX */
  uint32_t ttl_s;                 /* 0: LOGIN_TTL_S */
  uint32_t conns_max;             /* 0: LOGIN_CONNS_MAX */
  uint32_t deadline_ms;           /* 0: LOGIN_DEADLINE_MS */
} login_config;

typedef struct login login;

/* Binds and listens on cfg->addr and starts the thread. Returns 0 and
 * sets *out, or -1 with a reason printed to stderr (nothing left open).
 * From the thread that will call login_stop(). */
int login_start(login **out, const login_config *cfg);
/* The TCP port bound. Any thread. */
int login_port(const login *l);
/* The counters, each read atomically (written by the login thread only).
 * Any thread. */
void login_stats_get(const login *l, login_stats *out);
/* Stops the thread, closes every connection, wipes the key, frees. From
 * login_start()'s thread; NULL is ignored. */
void login_stop(login *l);

#endif
