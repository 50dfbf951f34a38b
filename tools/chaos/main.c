/*
 * kite-chaos: a UDP relay that drops, duplicates, reorders, delays and
 * blacks out traffic between clients and a server, seeded, so that a loss
 * test can be run again with the same decisions.
 *
 *   kite-chaos --server HOST:PORT [--listen HOST:PORT] [--seed N]
 *              [--loss P] [--dup P] [--reorder P] [--reorder-ms MS]
 *              [--delay MS] [--jitter MS]
 *              [--blackout-every MS --blackout-for MS]
 *              [--rebind-every MS [--rebind-addrs N]]
 *              [--spoof-every MS --spoof-addr IP]
 *              [--up-loss P] [--down-loss P] ...
 *
 * An option without a direction sets both; "--up-" (client to server) or
 * "--down-" before its name sets one. Probabilities are 0..1 ("0.05" is
 * 5%). Clients send to the listen address (default 127.0.0.1:0; the port
 * picked is printed); on SIGINT or SIGTERM it prints what it did.
 */
#include "relay.h"
#include "help.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_bool stop;

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&stop, true);
}

static void usage(void) {
  fprintf(stderr,
          "usage: kite-chaos --server HOST:PORT [--listen HOST:PORT] [--seed N]\n"
          "                  [--[up-|down-]loss P] [--[up-|down-]dup P]\n"
          "                  [--[up-|down-]reorder P] [--[up-|down-]reorder-ms MS]\n"
          "                  [--[up-|down-]delay MS] [--[up-|down-]jitter MS]\n"
          "                  [--[up-|down-]blackout-every MS] [--[up-|down-]blackout-for MS]\n"
          "                  [--rebind-every MS [--rebind-addrs N]]\n"
          "                  [--spoof-every MS --spoof-addr IP]\n");
  exit(2);
}

static double number(const char *opt, const char *s, double max) {
  char *end;
  errno = 0;
  double v = s ? strtod(s, &end) : -1;
  if (!s || *end || errno || !(v >= 0 && v <= max)) {
    fprintf(stderr, "kite-chaos: %s takes a number from 0 to %g\n", opt, max);
    usage();
  }
  return v;
}

/* Sets field |name| of |p| from |v|; false if there is no such field. */
static bool set(chaos_profile *p, const char *name, const char *opt, const char *v) {
  if (!strcmp(name, "loss"))
    p->loss = number(opt, v, 1);
  else if (!strcmp(name, "dup"))
    p->dup = number(opt, v, 1);
  else if (!strcmp(name, "reorder"))
    p->reorder = number(opt, v, 1);
  else if (!strcmp(name, "reorder-ms"))
    p->reorder_ms = (uint32_t)number(opt, v, 600000);
  else if (!strcmp(name, "delay"))
    p->delay_ms = (uint32_t)number(opt, v, 600000);
  else if (!strcmp(name, "jitter"))
    p->jitter_ms = (uint32_t)number(opt, v, 600000);
  else if (!strcmp(name, "blackout-every"))
    p->blackout_every_ms = (uint32_t)number(opt, v, 86400000);
  else if (!strcmp(name, "blackout-for"))
    p->blackout_ms = (uint32_t)number(opt, v, 86400000);
  else
    return false;
  return true;
}

int main(int argc, char **argv) {
  chaos_config cfg;
  chaos_config_init(&cfg);
  cfg.listen_addr = "127.0.0.1:0";
  cfg.up.reorder_ms = cfg.down.reorder_ms = 30;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(kite_chaos_help, stdout);
      return 0;
    }
    if (strncmp(a, "--", 2) != 0 || !v)
      usage();
    const char *name = a + 2;
    if (!strcmp(name, "server")) {
      cfg.server_addr = v;
    } else if (!strcmp(name, "listen")) {
      cfg.listen_addr = v;
    } else if (!strcmp(name, "rebind-every")) {
      cfg.rebind_every_ms = (uint32_t)number(a, v, 86400000);
    } else if (!strcmp(name, "rebind-addrs")) {
      cfg.rebind_addrs = (uint32_t)number(a, v, 254);
    } else if (!strcmp(name, "spoof-every")) {
      cfg.spoof_every_ms = (uint32_t)number(a, v, 86400000);
    } else if (!strcmp(name, "spoof-addr")) {
      cfg.spoof_addr = v;
    } else if (!strcmp(name, "seed")) {
      cfg.seed = (uint64_t)number(a, v, 1e18);
    } else if (!strncmp(name, "up-", 3)) {
      if (!set(&cfg.up, name + 3, a, v))
        usage();
    } else if (!strncmp(name, "down-", 5)) {
      if (!set(&cfg.down, name + 5, a, v))
        usage();
    } else if (!set(&cfg.up, name, a, v) || !set(&cfg.down, name, a, v)) {
      usage();
    }
    i++;
  }
  if (!cfg.server_addr || !cfg.spoof_every_ms != !cfg.spoof_addr)
    usage();

  char err[256];
  chaos_relay *r = chaos_relay_create(&cfg, err, sizeof(err));
  if (!r) {
    fprintf(stderr, "kite-chaos: %s\n", err);
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  printf("kite-chaos listening on udp %s port %d, relaying to %s (seed %" PRIu64 ")\n",
         cfg.listen_addr, chaos_relay_port(r), cfg.server_addr, cfg.seed);
  fflush(stdout);
  int rc = chaos_relay_run(r, &stop);
  chaos_stats st;
  chaos_relay_stats(r, &st);
  printf("kite-chaos stopped: up %" PRIu64 " in, %" PRIu64 " out; down %" PRIu64
         " in, %" PRIu64 " out; dropped %" PRIu64 ", blacked out %" PRIu64
         ", duplicated %" PRIu64 ", reordered %" PRIu64 ", queue full %" PRIu64
         ", flows %" PRIu64 " (refused %" PRIu64 "), rebinds %" PRIu64
         " (failed %" PRIu64 "), spoofed %" PRIu64 " (%" PRIu64 " bytes; answered %"
         PRIu64 ", %" PRIu64 " bytes)\n",
         st.up_in, st.up_out, st.down_in, st.down_out, st.dropped, st.blacked_out,
         st.duplicated, st.reordered, st.queue_full, st.flows_opened, st.flows_refused,
         st.rebinds, st.rebind_failed, st.spoofed, st.spoofed_bytes, st.spoof_replies,
         st.spoof_reply_bytes);
  chaos_relay_destroy(r);
  return rc < 0 ? 1 : 0;
}
