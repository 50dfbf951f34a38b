/*
 * snapshot_bench: the snapshot row of issue 18. N sessions receive S Hz
 * snapshots of B bytes through kite-chaos's relay (loss each way, delay
 * and jitter), and the client side samples each session's snapshot age
 * (now minus the send time of the newest snapshot it holds) every 5 ms.
 * Servers, each in a child process of its own so its CPU is its own:
 *   lane    kite, v2 UDP, kite_group_broadcast_unreliable(), sequenced
 *   stream  kite, v2 UDP, kite_group_broadcast(): the reliable stream
 *   enet    ENet 1.3, enet_host_broadcast() on an unreliable sequenced
 *           channel (flags 0)
 * The server ticks from its first session on; the measured window starts
 * once every session is up and the warm-up passed, and its CPU (user +
 * system, all threads, getrusage) is divided by the snapshots it sent
 * (ticks x sessions).
 *
 *   snapshot_bench [--server lane|stream|enet] [--sessions N] [--hz S]
 *                  [--bytes B] [--loss P] [--delay-ms D] [--jitter-ms J]
 *                  [--seconds T] [--warmup-s W]
 *
 * Prints one line: {"server":..., "age_p50_ms":..., "age_p99_ms":...,
 * "delivered":..., "cpu_us_per_snapshot":...}.
 */
#include "kite/kite.h"

#include "base/clock.h"
#include "relay.h"

#include <enet/enet.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_SNAP 0x10
#define PID 0x736e6170u

static const char *server_kind = "lane";
static uint32_t sessions = 1000, hz = 20, bytes = 200, seconds = 10,
                warmup_s = 2, delay_ms = 30, jitter_ms = 10;
static double loss = 0.05;
static uint8_t key[KITE_TOKEN_KEY_BYTES];

/* ---- the server's child ---- */

static kite_group *room;
static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)s, (void)u;
  kite_group_join(room, id);
}

/* A snapshot: tick, send time (µs, the machine's monotonic clock, which
 * the parent shares), then filler. */
static void fill(uint8_t *b, uint32_t tick) {
  uint64_t now = kite__now_us();
  memset(b, 0xA5, bytes);
  memcpy(b, &tick, 4);
  memcpy(b + 4, &now, 8);
}

static uint64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Control bytes from the parent: 'M' the window starts, 'S' it ends. The
 * child answers "cpu_us ticks" on |out| at 'S'. */
static int poll_ctl(int fd) {
  char c;
  return read(fd, &c, 1) == 1 ? c : 0;
}

static void serve_kite(int ctl, int out) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.versions = KITE_VERSION_2;
  cfg.token_key_set = true;
  memcpy(cfg.token_key, key, sizeof(key));
  cfg.protocol_id = PID;
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.on_connect = on_connect;
  kite_server *srv;
  if (kite_server_create(&srv, &cfg) < 0 || !(room = kite_group_create(srv)) ||
      kite_server_start(srv) < 0)
    _exit(1);
  int port = kite_server_udp_port(srv);
  if (write(out, &port, sizeof(port)) != sizeof(port))
    _exit(1);
  bool lane = !strcmp(server_kind, "lane");
  uint8_t *b = malloc(bytes);
  uint32_t tick = 0, ticks_m = 0;
  uint64_t cpu0 = 0, next = kite__now_us();
  bool measuring = false;
  for (;;) {
    int c = poll_ctl(ctl);
    if (c == 'M') {
      measuring = true;
      cpu0 = cpu_us();
      ticks_m = 0;
    } else if (c == 'S') {
      uint64_t r[2] = {cpu_us() - cpu0, ticks_m};
      if (write(out, r, sizeof(r)) != sizeof(r))
        _exit(1);
      break;
    }
    uint64_t now = kite__now_us();
    if (now < next) {
      usleep((useconds_t)(next - now < 1000 ? next - now : 1000));
      continue;
    }
    next += 1000000 / hz;
    if (kite_group_size(room) == 0)
      continue;
    fill(b, ++tick);
    if (lane)
      kite_group_broadcast_unreliable(room, MSG_SNAP, b, bytes,
                                      KITE_UNRELIABLE_SEQUENCED);
    else
      kite_group_broadcast(room, MSG_SNAP, b, bytes);
    if (measuring)
      ticks_m++;
  }
  kite_server_stop(srv);
  kite_server_destroy(srv);
  _exit(0);
}

static void serve_enet(int ctl, int out) {
  if (enet_initialize() != 0)
    _exit(1);
  ENetAddress addr = {.port = 0};
  enet_address_set_host_ip(&addr, "127.0.0.1");
  ENetHost *host = enet_host_create(&addr, sessions + 16, 1, 0, 0);
  if (!host)
    _exit(1);
  enet_socket_set_option(host->socket, ENET_SOCKOPT_RCVBUF, 4 << 20);
  enet_socket_set_option(host->socket, ENET_SOCKOPT_SNDBUF, 4 << 20);
  ENetAddress bound;
  enet_socket_get_address(host->socket, &bound);
  int port = bound.port;
  if (write(out, &port, sizeof(port)) != sizeof(port))
    _exit(1);
  uint8_t *b = malloc(bytes);
  uint32_t tick = 0, ticks_m = 0, peers = 0;
  uint64_t cpu0 = 0, next = kite__now_us();
  bool measuring = false;
  for (;;) {
    int c = poll_ctl(ctl);
    if (c == 'M') {
      measuring = true;
      cpu0 = cpu_us();
      ticks_m = 0;
    } else if (c == 'S') {
      uint64_t r[2] = {cpu_us() - cpu0, ticks_m};
      if (write(out, r, sizeof(r)) != sizeof(r))
        _exit(1);
      break;
    }
    uint64_t now = kite__now_us();
    uint32_t wait = now < next ? (uint32_t)((next - now) / 1000) : 0;
    ENetEvent ev;
    int rc = enet_host_service(host, &ev, wait > 1 ? 1 : wait);
    while (rc > 0) {
      if (ev.type == ENET_EVENT_TYPE_CONNECT)
        peers++;
      else if (ev.type == ENET_EVENT_TYPE_DISCONNECT)
        peers--;
      else if (ev.type == ENET_EVENT_TYPE_RECEIVE)
        enet_packet_destroy(ev.packet);
      rc = enet_host_check_events(host, &ev);
    }
    if (kite__now_us() < next)
      continue;
    next += 1000000 / hz;
    if (!peers)
      continue;
    fill(b, ++tick);
    /* Flags 0: unreliable and sequenced, ENet's default for a packet. */
    enet_host_broadcast(host, 0, enet_packet_create(b, bytes, 0));
    enet_host_flush(host);
    if (measuring)
      ticks_m++;
  }
  enet_host_destroy(host);
  _exit(0);
}

/* ---- the parent: relay, clients, ages ---- */

typedef struct sess {
  kite_conn *conn;
  bool up, have;
  uint32_t tick, got, backwards;
  uint64_t sent_us;
} sess;
static sess *ss;

static void take(sess *s, const uint8_t *b, size_t n) {
  if (n != bytes)
    return;
  uint32_t tick;
  uint64_t ts;
  memcpy(&tick, b, 4);
  memcpy(&ts, b + 4, 8);
  if (s->have && tick <= s->tick) {
    s->backwards++;
    return;
  }
  s->have = true;
  s->tick = tick;
  s->sent_us = ts;
  s->got++;
}

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((sess *)kite_conn_user(c))->up = true;
}
static void c_msg(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                  void *u) {
  (void)u, (void)m;
  take(kite_conn_user(c), b, n);
}
static void c_lane(kite_conn *c, uint16_t m, unsigned f, const uint8_t *b,
                   size_t n, void *u) {
  (void)f;
  c_msg(c, m, b, n, u);
}

static atomic_bool stop_relay;
static void *relay_main(void *r) {
  chaos_relay_run(r, &stop_relay);
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void usage(void) {
  fprintf(stderr, "usage: snapshot_bench [--server lane|stream|enet] "
                  "[--sessions N] [--hz S] [--bytes B] [--loss P]\n"
                  "       [--delay-ms D] [--jitter-ms J] [--seconds T] "
                  "[--warmup-s W]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      usage();
    i++;
    if (!strcmp(a, "--server"))
      server_kind = v;
    else if (!strcmp(a, "--sessions"))
      sessions = (uint32_t)atoi(v);
    else if (!strcmp(a, "--hz"))
      hz = (uint32_t)atoi(v);
    else if (!strcmp(a, "--bytes"))
      bytes = (uint32_t)atoi(v);
    else if (!strcmp(a, "--loss"))
      loss = atof(v);
    else if (!strcmp(a, "--delay-ms"))
      delay_ms = (uint32_t)atoi(v);
    else if (!strcmp(a, "--jitter-ms"))
      jitter_ms = (uint32_t)atoi(v);
    else if (!strcmp(a, "--seconds"))
      seconds = (uint32_t)atoi(v);
    else if (!strcmp(a, "--warmup-s"))
      warmup_s = (uint32_t)atoi(v);
    else
      usage();
  }
  bool enet = !strcmp(server_kind, "enet");
  if ((!enet && strcmp(server_kind, "lane") && strcmp(server_kind, "stream")) ||
      !sessions || sessions > 4000 || !hz || bytes < 12 || bytes > 1200)
    usage();
  if (kite_token_key_new(key) < 0)
    return 1;
  int ctl[2], res[2];
  if (pipe(ctl) < 0 || pipe(res) < 0)
    return 1;
  pid_t child = fork();
  if (child == 0) {
    close(ctl[1]);
    close(res[0]);
    fcntl(ctl[0], F_SETFL, O_NONBLOCK); /* polled between ticks */
    if (enet)
      serve_enet(ctl[0], res[1]);
    serve_kite(ctl[0], res[1]);
  }
  close(ctl[0]);
  close(res[1]);
  int port;
  if (read(res[0], &port, sizeof(port)) != sizeof(port)) {
    fprintf(stderr, "snapshot_bench: the server did not start\n");
    return 1;
  }
  char server[64], relay_addr[64];
  snprintf(server, sizeof(server), "127.0.0.1:%d", port);
  chaos_config cc;
  chaos_config_init(&cc);
  cc.listen_addr = "127.0.0.1:0";
  cc.server_addr = server;
  cc.seed = 18;
  chaos_profile p = {.loss = loss, .delay_ms = delay_ms, .jitter_ms = jitter_ms};
  cc.up = cc.down = p;
  char err[256];
  chaos_relay *relay = chaos_relay_create(&cc, err, sizeof(err));
  if (!relay) {
    fprintf(stderr, "snapshot_bench: relay: %s\n", err);
    kill(child, SIGKILL);
    return 1;
  }
  snprintf(relay_addr, sizeof(relay_addr), "127.0.0.1:%d",
           chaos_relay_port(relay));
  pthread_t rt;
  pthread_create(&rt, NULL, relay_main, relay);
  ss = calloc(sessions, sizeof(*ss));

  kite_client *cli = NULL;
  ENetHost *eh = NULL;
  ENetPeer **peers = NULL;
  if (enet) {
    enet_initialize();
    eh = enet_host_create(NULL, sessions, 1, 0, 0);
    enet_socket_set_option(eh->socket, ENET_SOCKOPT_RCVBUF, 4 << 20);
    enet_socket_set_option(eh->socket, ENET_SOCKOPT_SNDBUF, 4 << 20);
    peers = calloc(sessions, sizeof(*peers));
    ENetAddress ra = {.port = (enet_uint16)chaos_relay_port(relay)};
    enet_address_set_host_ip(&ra, "127.0.0.1");
    for (uint32_t i = 0; i < sessions; i++) {
      peers[i] = enet_host_connect(eh, &ra, 1, 0);
      peers[i]->data = &ss[i];
    }
  } else {
    kite_client_config ccfg;
    kite_client_config_init(&ccfg);
    ccfg.on_connect = c_up;
    ccfg.on_message = c_msg;
    ccfg.on_unreliable = c_lane;
    ccfg.log_level = KITE_LOG_ERROR;
    ccfg.retries = 30;
    if (kite_client_create(&cli, &ccfg) < 0)
      return 1;
    const char *addrs[] = {relay_addr, server};
    for (uint32_t i = 0; i < sessions; i++) {
      kite_token_params tp = {.protocol_id = PID, .client_id = i, .ttl_s = 300,
                              .addrs = addrs, .naddrs = 2};
      uint8_t token[KITE_TOKEN_BYTES];
      kite_token_mint(token, key, &tp);
      kite_client_connect_token(cli, token, &ss[i], &ss[i].conn);
    }
  }
  /* One pass of the client side: ~1 ms. */
#define PUMP()                                                               \
  do {                                                                       \
    if (enet) {                                                              \
      ENetEvent ev;                                                          \
      int rc_ = enet_host_service(eh, &ev, 1);                               \
      while (rc_ > 0) {                                                      \
        sess *s_ = ev.peer->data;                                            \
        if (ev.type == ENET_EVENT_TYPE_CONNECT)                              \
          s_->up = true;                                                     \
        else if (ev.type == ENET_EVENT_TYPE_RECEIVE) {                       \
          take(s_, ev.packet->data, ev.packet->dataLength);                  \
          enet_packet_destroy(ev.packet);                                    \
        }                                                                    \
        rc_ = enet_host_check_events(eh, &ev);                               \
      }                                                                      \
    } else {                                                                 \
      kite_client_poll(cli, 1);                                              \
    }                                                                        \
  } while (0)
  uint64_t t0 = kite__now_us(), end = t0 + 120000000;
  uint32_t up = 0;
  while (up < sessions && kite__now_us() < end) {
    PUMP();
    up = 0;
    for (uint32_t i = 0; i < sessions; i++)
      up += ss[i].up && ss[i].have;
  }
  uint64_t warm = kite__now_us() + (uint64_t)warmup_s * 1000000;
  while (kite__now_us() < warm)
    PUMP();
  uint64_t got0 = 0;
  for (uint32_t i = 0; i < sessions; i++)
    got0 += ss[i].got;
  if (write(ctl[1], "M", 1) != 1)
    return 1;
  size_t cap = (size_t)sessions * seconds * 220, nages = 0;
  uint32_t *ages = malloc(cap * sizeof(*ages));
  uint64_t start = kite__now_us(), stop = start + (uint64_t)seconds * 1000000,
           next_sample = start;
  while (kite__now_us() < stop) {
    PUMP();
    uint64_t now = kite__now_us();
    if (now >= next_sample) {
      for (uint32_t i = 0; i < sessions && nages < cap; i++)
        if (ss[i].have)
          ages[nages++] = (uint32_t)((now - ss[i].sent_us) / 1000);
      next_sample = now + 5000;
    }
  }
  if (write(ctl[1], "S", 1) != 1)
    return 1;
  uint64_t r[2] = {0, 0};
  if (read(res[0], r, sizeof(r)) != sizeof(r))
    fprintf(stderr, "snapshot_bench: no CPU figure from the server\n");
  waitpid(child, NULL, 0);
  uint64_t got = 0, backwards = 0;
  for (uint32_t i = 0; i < sessions; i++) {
    got += ss[i].got;
    backwards += ss[i].backwards;
  }
  got -= got0;
  qsort(ages, nages, sizeof(*ages), cmp_u32);
  uint64_t sent = r[1] * sessions;
  printf("{\"server\":\"%s\",\"sessions\":%u,\"hz\":%u,\"bytes\":%u,"
         "\"loss\":%.3f,\"delay_ms\":%u,\"jitter_ms\":%u,\"seconds\":%u,"
         "\"up\":%u,\"age_p50_ms\":%u,\"age_p99_ms\":%u,\"age_max_ms\":%u,"
         "\"delivered\":%.4f,\"out_of_order\":%llu,"
         "\"cpu_us_per_snapshot\":%.3f}\n",
         server_kind, sessions, hz, bytes, loss, delay_ms, jitter_ms, seconds,
         up, nages ? ages[nages / 2] : 0, nages ? ages[nages * 99 / 100] : 0,
         nages ? ages[nages - 1] : 0,
         sent ? (double)got / (double)sent : 0.0,
         (unsigned long long)backwards,
         sent ? (double)r[0] / (double)sent : 0.0);
  if (cli)
    kite_client_destroy(cli);
  if (eh)
    enet_host_destroy(eh);
  atomic_store(&stop_relay, true);
  pthread_join(rt, NULL);
  chaos_relay_destroy(relay);
  return 0;
}
