/*
 * kite-chaos's relay: clients send to it, it sends on to the server from
 * a socket of its own per client address (a flow, so the server sees each
 * client apart, as through a NAT), and the server's replies come back the
 * same way. Every datagram passes the direction's impairment model
 * (impair.h) and waits in a time-ordered queue until it is due.
 *
 * Bounded: at most max_flows client addresses (others are dropped and
 * counted) and max_queued datagrams, max_queued_bytes bytes, waiting (the
 * rest dropped and counted as queue_full);
 * a flow idle for flow_idle_ms is closed. Optionally each flow's source
 * port (and address) toward the server changes periodically, as through a
 * NAT that rebinds (rebind_every_ms), and a copy of a datagram can race
 * the real one from a third address (spoof_every_ms). One thread.
 */
#ifndef KITE_CHAOS_RELAY_H
#define KITE_CHAOS_RELAY_H

#include "impair.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct chaos_config {
  const char *listen_addr; /* "HOST:PORT"; port 0 picks one */
  const char *server_addr;
  chaos_profile up, down;  /* client to server, server to client */
  uint64_t seed;
  uint32_t max_flows;      /* client addresses at once (4096) */
  uint32_t max_queued;     /* datagrams waiting to leave (65536) */
  uint64_t max_queued_bytes; /* and their bytes (64 MiB) */
  uint32_t flow_idle_ms;   /* a flow with no traffic this long goes (60000) */
  /* NAT rebinding: every rebind_every_ms each flow's socket toward the
   * server is replaced by a new one, so the server sees the client's
   * source port change (what a home router does when a mapping times
   * out); datagrams the server sends to the old port meanwhile are lost,
   * as through a real NAT. With rebind_addrs N > 1 (an IPv4 server only)
   * the new socket is also bound to the next of 127.0.0.1 .. 127.0.0.N
   * in turn, so the source address changes too. 0: never (0, 0). */
  uint32_t rebind_every_ms;
  uint32_t rebind_addrs;
  /* An attacker on the path: every spoof_every_ms, a copy of the next
   * datagram toward the server is sent first from spoof_addr (an IP of
   * this host, port picked by the kernel), racing the real one; what the
   * server answers there is read, counted and dropped. 0 / NULL: never. */
  uint32_t spoof_every_ms;
  const char *spoof_addr;
} chaos_config;

typedef struct chaos_stats {
  uint64_t up_in, up_out, down_in, down_out;  /* datagrams */
  uint64_t dropped, blacked_out, duplicated, reordered; /* both directions */
  uint64_t queue_full, flows_refused, flows_opened, flows_expired;
  uint64_t rebinds, rebind_failed; /* source moves made, and not made */
  uint64_t spoofed, spoofed_bytes; /* copies raced from spoof_addr */
  uint64_t spoof_replies, spoof_reply_bytes; /* what the server sent there */
  uint32_t flows;
} chaos_stats;

typedef struct chaos_relay chaos_relay;

void chaos_config_init(chaos_config *c);

/* Binds and resolves; NULL with a reason in |err| on failure. */
chaos_relay *chaos_relay_create(const chaos_config *c, char *err, size_t errlen);
int chaos_relay_port(const chaos_relay *r);
/* Relays until *stop is set (checked at least every 100 ms). 0, or -1
 * when the poll itself fails. */
int chaos_relay_run(chaos_relay *r, atomic_bool *stop);
/* A snapshot: from the relay's thread, or after chaos_relay_run()
 * returned. */
void chaos_relay_stats(chaos_relay *r, chaos_stats *out);
void chaos_relay_destroy(chaos_relay *r);

#endif
