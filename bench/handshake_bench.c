/*
 * handshake_bench: a login storm. Opens N sessions to a kite server as
 * fast as it can, W handshakes in flight at a time, with kite's client
 * library: protocol version 2 with a token minted per session under the
 * game's key (minted beforehand, so the storm is handshakes alone), or
 * version 1 without --token-key, for comparison. Reads the server's CPU
 * time from /proc before the first HELLO and after the last on_connect,
 * and reports the server's CPU per handshake and handshakes per second of
 * one server core (docs/BENCHMARKS.md, "Protocol version 2"). Sessions are
 * held open until the end, then closed.
 *
 *   kite-echo --udp 127.0.0.1:7001 --threads 1 --token-key game.key \
 *             --protocol-id 7 --versions 2 &
 *   handshake_bench --udp 127.0.0.1:7001 --token-key game.key \
 *             --protocol-id 7 --sessions 20000 --server-pid $!
 *
 * Exit status: 0 when every session opened, 1 when one failed, 2 on a bad
 * option.
 */
#include "kite/kite.h"

#include "base/clock.h"
#include "bench.h" /* tools/bench: proc_read() */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static uint32_t opened, failed, reasons[0x300];

typedef struct slot {
  bool up;
} slot;

static void on_up_slot(kite_conn *c, void *u) {
  (void)u;
  ((slot *)kite_conn_user(c))->up = true;
  opened++;
}

static void on_down_slot(kite_conn *c, int reason, void *u) {
  (void)u;
  if (!((slot *)kite_conn_user(c))->up) {
    failed++;
    if (reason >= 0 && reason < 0x300)
      reasons[reason]++;
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: handshake_bench --udp|--tcp HOST:PORT [--token-key FILE --protocol-id N]\n"
          "                       [--sessions N] [--in-flight W] [--per-client K]\n"
          "                       [--server-pid PID] [--json]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *addr = NULL, *keyfile = NULL;
  bool tcp = false, json = false;
  uint64_t protocol_id = 0;
  uint32_t n = 20000, window = 256, per_client = 10000;
  int pid = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) {
      json = true;
      continue;
    }
    if (!v)
      usage();
    if (!strcmp(a, "--udp") || !strcmp(a, "--tcp"))
      addr = v, tcp = a[2] == 't';
    else if (!strcmp(a, "--token-key"))
      keyfile = v;
    else if (!strcmp(a, "--protocol-id"))
      protocol_id = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--sessions"))
      n = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--in-flight"))
      window = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--per-client"))
      per_client = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--server-pid"))
      pid = atoi(v);
    else
      usage();
    i++;
  }
  if (!addr || !n || !window || !per_client || per_client > 65536)
    usage();

  /* Tokens first, outside the storm: a backend mints them at login. */
  uint8_t (*tokens)[KITE_TOKEN_BYTES] = NULL;
  double mint_us = 0;
  if (keyfile) {
    char hex[128] = {0};
    FILE *f = fopen(keyfile, "r");
    uint8_t key[KITE_TOKEN_KEY_BYTES];
    if (!f || !fread(hex, 1, sizeof(hex) - 1, f) || kite_token_key_parse(key, hex) < 0) {
      fprintf(stderr, "handshake_bench: %s: not a key (64 hex characters)\n", keyfile);
      return 2;
    }
    fclose(f);
    tokens = malloc((size_t)n * KITE_TOKEN_BYTES);
    if (!tokens)
      return 1;
    const char *addrs[] = {addr};
    uint64_t t0 = kite__now_us();
    for (uint32_t i = 0; i < n; i++) {
      kite_token_params p = {.protocol_id = protocol_id, .client_id = i + 1,
                             .ttl_s = 300, .addrs = addrs, .naddrs = 1};
      if (kite_token_mint(tokens[i], key, &p) < 0) {
        fprintf(stderr, "handshake_bench: cannot mint a token for %s\n", addr);
        return 2;
      }
    }
    mint_us = (double)(kite__now_us() - t0) / n;
  }

  uint32_t nclients = (n + per_client - 1) / per_client;
  kite_client **cli = calloc(nclients, sizeof(*cli));
  slot *slots = calloc(n, sizeof(*slots));
  int ep = epoll_create1(0);
  for (uint32_t k = 0; k < nclients; k++) {
    kite_client_config cc;
    kite_client_config_init(&cc);
    cc.max_sessions = per_client;
    cc.on_connect = on_up_slot;
    cc.on_disconnect = on_down_slot;
    cc.ping_ms = 30000;
    cc.log_level = KITE_LOG_ERROR;
    cc.socket_buffer = 4 << 20;
    if (kite_client_create(&cli[k], &cc) < 0)
      return 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = k};
    epoll_ctl(ep, EPOLL_CTL_ADD, kite_client_fd(cli[k]), &ev);
  }

  proc_sample before = {0}, after = {0};
  if (pid && !proc_read(pid, &before)) {
    fprintf(stderr, "handshake_bench: cannot read /proc/%d\n", pid);
    return 2;
  }
  uint64_t t0 = kite__now_us(), deadline = t0 + 120000000;
  uint32_t started = 0;
  while (opened + failed < n && kite__now_us() < deadline) {
    while (started < n && started - (opened + failed) < window) {
      kite_client *c = cli[started / per_client];
      int rc = !tokens ? (tcp ? kite_client_connect_tcp(c, addr, &slots[started], NULL)
                              : kite_client_connect(c, addr, &slots[started], NULL))
               : tcp ? kite_client_connect_token_tcp(c, tokens[started], &slots[started], NULL)
                     : kite_client_connect_token(c, tokens[started], &slots[started], NULL);
      if (rc < 0) {
        fprintf(stderr, "handshake_bench: connect: %s\n", kite_strerror(rc));
        return 1;
      }
      started++;
    }
    struct epoll_event ev[16];
    epoll_wait(ep, ev, 16, 1);
    for (uint32_t k = 0; k < nclients; k++)
      kite_client_poll(cli[k], 0);
  }
  uint64_t t1 = kite__now_us();
  if (pid)
    proc_read(pid, &after);
  double wall = (double)(t1 - t0) / 1e6, cpu = after.cpu_s - before.cpu_s;
  double us_per = opened && pid ? cpu * 1e6 / opened : 0;
  double per_core = cpu > 0 ? opened / cpu : 0;
  printf("%s %s: %u sessions opened (%u failed) in %.2f s, %.0f handshakes/s;"
         " server CPU %.2f s: %.1f us per handshake, %.0f handshakes per server"
         " core-second; server RSS %llu kB%s",
         tokens ? "v2" : "v1", tcp ? "tcp" : "udp", opened, failed, wall, opened / wall,
         cpu, us_per, per_core, (unsigned long long)after.rss_kb,
         tokens ? "" : "\n");
  if (tokens)
    printf("; minting %.1f us per token (beforehand)\n", mint_us);
  for (int r = 0; r < 0x300; r++)
    if (reasons[r])
      printf("  failed: %u x %s\n", reasons[r], kite_client_reason_name(r));
  if (json)
    printf("{\"version\":%d,\"transport\":\"%s\",\"sessions\":%u,\"failed\":%u,"
           "\"wall_s\":%.3f,\"server_cpu_s\":%.3f,\"server_us_per_handshake\":%.2f,"
           "\"handshakes_per_core_s\":%.0f,\"server_rss_kb\":%llu,\"mint_us\":%.2f}\n",
           tokens ? 2 : 1, tcp ? "tcp" : "udp", opened, failed, wall, cpu, us_per,
           per_core, (unsigned long long)after.rss_kb, mint_us);
  for (uint32_t k = 0; k < nclients; k++)
    kite_client_destroy(cli[k]);
  free(tokens);
  free(slots);
  free(cli);
  return failed || opened < n ? 1 : 0;
}
