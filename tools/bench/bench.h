/*
 * kite-bench: N sessions each sending B-byte frames at R per second to an
 * echo server, every echo checked (once, intact, in order, per session),
 * round trips in a histogram, and the server's CPU and memory read from
 * /proc over the measured window. The loads share this header: kite
 * sessions through the client library over KCP or TCP (load_kite.c); bare
 * datagrams to a plain UDP echo (load_floor.c), the floor kite is compared
 * with; and, for servers that are not kite, bare KCP with one socket per
 * session (load_kcp.c) and ENet peers (load_enet.c); and kite sessions over
 * WebSocket on kite's TCP port, as a browser's (load_ws.c).
 */
#ifndef KITE_BENCH_H
#define KITE_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "histogram.h"

typedef enum bench_mode {
  BENCH_KITE_UDP, /* kite sessions over KCP (--udp) */
  BENCH_KITE_TCP, /* kite sessions over TCP (--tcp) */
  BENCH_FLOOR,    /* bare datagrams to bench/udp_echo_floor (--floor) */
  BENCH_KCP,      /* bare KCP, no kite handshake or framing (--kcp) */
  BENCH_ENET,     /* ENet peers, reliable packets on channel 0 (--enet) */
  BENCH_KITE_WS,  /* kite sessions over WebSocket, on the TCP port (--ws) */
} bench_mode;

typedef struct bench_config {
  const char *server;  /* HOST:PORT */
  const char *ws_path; /* --ws: the upgrade's request-target; NULL: /kite */
  bench_mode mode;
  uint32_t sessions;
  uint32_t per_socket; /* sessions per client socket */
  double rate;         /* frames per session per second; 0: idle (pings) */
  uint32_t ping_ms;    /* kite: the client library's ping period; 0: its default */
  uint32_t size;       /* body bytes, at least BENCH_HDR */
  double duration_s, warmup_s;
  double drain_s;      /* after the window, wait this long for echoes */
  int server_pid;      /* 0: no server readings */
  bool json, quiet;
  /* kite, protocol version 2 (--token-key, --protocol-id): each session
   * connects with a token minted here under this key, as a game's backend
   * would mint one per login. */
  bool v2;
  uint8_t token_key[32];
  uint64_t protocol_id;
} bench_config;

/* Every frame's body starts with this; the rest is a pattern of seq. */
#define BENCH_HDR 20
typedef struct bench_payload {
  uint64_t seq;
  uint64_t sent_us;
  uint32_t session;
} bench_payload;

typedef struct bench_result {
  uint32_t connected, failed;
  double connect_s;
  uint64_t sent, received, lost, out_of_order, corrupt;
  uint64_t window_received; /* echoes received in the measured window */
  double window_s;
  histogram rtt;            /* round trips of frames sent in the window */
  /* server, over the window (when server_pid) */
  double server_cpu_s;
  uint64_t server_rss_kb, server_hwm_kb;
} bench_result;

void bench_fill(uint8_t *body, uint32_t size, uint32_t session, uint64_t seq,
                uint64_t sent_us);
/* Checks an echo; returns false if it is corrupt. */
bool bench_parse(const uint8_t *body, uint32_t len, uint32_t size,
                 bench_payload *out);

int bench_run_kite(const bench_config *cfg, bench_result *res);
int bench_run_floor(const bench_config *cfg, bench_result *res);
int bench_run_kcp(const bench_config *cfg, bench_result *res);
int bench_run_enet(const bench_config *cfg, bench_result *res);
int bench_run_ws(const bench_config *cfg, bench_result *res);
const char *bench_mode_name(bench_mode m);
/* The run's name in reports: the mode's, "-v2" added for version 2. */
const char *bench_run_name(const bench_config *cfg);

/* /proc readings of another process (proc.c). */
typedef struct proc_sample {
  double cpu_s; /* user + system */
  uint64_t rss_kb, hwm_kb;
} proc_sample;
bool proc_read(int pid, proc_sample *out);

#endif
