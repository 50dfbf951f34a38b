/*
 * enet_echo: an ENet echo server for bench/compare, written the way the
 * ENet tutorial writes a server: one host, enet_host_service() in a loop,
 * every received packet sent back to its peer on its channel (reliable,
 * as the load generator sends it). The received packet is sent as it is,
 * so the echo copies nothing.
 *
 *   enet_echo [--addr HOST:PORT] [--peers N]
 *
 * ENet tells peers apart by a 12-bit id, so one host serves at most 4,095
 * peers (--peers, the default). Socket buffers are 4 MiB, as kite-echo's.
 * Prints "enet_echo listening on port N (HOST)" once bound; exits on
 * SIGINT or SIGTERM.
 */
#include <enet/enet.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOCK_BUF (4 << 20)

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static int parse_addr(const char *s, ENetAddress *out) {
  char host[256];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof(host))
    return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || enet_address_set_host_ip(out, host) < 0)
    return -1;
  out->port = (enet_uint16)port;
  return 0;
}

int main(int argc, char **argv) {
  const char *addr_s = "127.0.0.1:0";
  long peers = ENET_PROTOCOL_MAXIMUM_PEER_ID;
  bool bad = argc % 2 == 0;
  for (int i = 1; i + 1 < argc && !bad; i += 2) {
    if (!strcmp(argv[i], "--addr"))
      addr_s = argv[i + 1];
    else if (!strcmp(argv[i], "--peers"))
      peers = strtol(argv[i + 1], NULL, 10);
    else
      bad = true;
  }
  if (bad || peers < 1 || peers > ENET_PROTOCOL_MAXIMUM_PEER_ID) {
    fprintf(stderr, "usage: enet_echo [--addr HOST:PORT] [--peers 1..%d]\n",
            ENET_PROTOCOL_MAXIMUM_PEER_ID);
    return 2;
  }
  ENetAddress addr;
  if (parse_addr(addr_s, &addr) < 0) {
    fprintf(stderr, "enet_echo: bad address %s\n", addr_s);
    return 2;
  }
  if (enet_initialize() != 0) {
    fprintf(stderr, "enet_echo: enet_initialize failed\n");
    return 1;
  }
  ENetHost *host = enet_host_create(&addr, (size_t)peers, 1, 0, 0);
  if (!host) {
    fprintf(stderr, "enet_echo: cannot bind %s\n", addr_s);
    return 1;
  }
  enet_socket_set_option(host->socket, ENET_SOCKOPT_RCVBUF, SOCK_BUF);
  enet_socket_set_option(host->socket, ENET_SOCKOPT_SNDBUF, SOCK_BUF);
  ENetAddress bound;
  enet_socket_get_address(host->socket, &bound);
  char ip[64] = "?";
  enet_address_get_host_ip(&bound, ip, sizeof(ip));
  printf("enet_echo listening on port %u (%s)\n", bound.port, ip);
  fflush(stdout);

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  unsigned long long echoed = 0;
  while (!stopping) {
    ENetEvent ev;
    int rc = enet_host_service(host, &ev, 100);
    if (rc < 0)
      break;
    if (rc == 0 || ev.type != ENET_EVENT_TYPE_RECEIVE)
      continue;
    if (enet_peer_send(ev.peer, ev.channelID, ev.packet) < 0)
      enet_packet_destroy(ev.packet);
    else
      echoed++;
  }
  printf("enet_echo: %llu echoed\n", echoed);
  enet_host_destroy(host);
  enet_deinitialize();
  return 0;
}
