/*
 * kited in a cluster (docs/CLUSTER.md): with --redis, the node registers
 * in the Redis directory, holds the lease of every room that has players
 * here, and carries one cluster-wide group, "world": every logged-in
 * player is a member, and a chat line that starts with '!' reaches every
 * player on every node, as DEMO_SAID with player id 0 and the text
 * "name@node: line". Everything Redis runs on the cluster's own thread
 * (kite/cluster.h): these functions only queue, from the workers.
 */
#include "game.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int kited_cluster_start(world *w, const kited_cluster_opts *o, int udp_port) {
  char addr[KITE_CLUSTER_ADDR_MAX + 1];
  if (o->public_addr) {
    snprintf(addr, sizeof(addr), "%s", o->public_addr);
  } else { /* the UDP host with the port it was given */
    const char *colon = strrchr(o->udp_addr, ':');
    int hl = colon ? (int)(colon - o->udp_addr) : 0;
    snprintf(addr, sizeof(addr), "%.*s:%d", hl, o->udp_addr, udp_port);
  }
  snprintf(w->node_id, sizeof(w->node_id), "%.32s",
           o->node_id ? o->node_id : addr);
  for (char *p = w->node_id; *p; p++) /* "127.0.0.1:7001" -> "127.0.0.1-7001" */
    if (*p == ':' || *p == '[' || *p == ']')
      *p = '-';
  kite_cluster_config cc;
  kite_cluster_config_init(&cc);
  cc.srv = w->srv;
  cc.redis_addr = o->redis;
  cc.node_id = w->node_id;
  cc.public_addr = addr;
  if (o->seats)
    cc.seats = o->seats;
  cc.max_rooms = w->max_rooms;
  int rc = kite_cluster_create(&w->cl, &cc);
  if (rc < 0)
    return rc;
  w->all = kite_group_create(w->srv);
  if (!w->all || !(w->all_cl = kite_cluster_group_open(w->cl, "world", w->all))) {
    kited_cluster_stop(w);
    return KITE_ENOMEM;
  }
  printf("kited: node %s of the cluster on redis %s, players sent to %s\n",
         w->node_id, o->redis, addr);
  return 0;
}

void kited_cluster_stop(world *w) {
  if (w->cl) {
    kite_cluster_stats st;
    kite_cluster_stats_get(w->cl, &st);
    printf("kited cluster: renewals %" PRIu64 ", redis errors %" PRIu64
           ", rooms conflicted %" PRIu64 ", broadcasts published %" PRIu64
           ", dropped %" PRIu64 ", received %" PRIu64 ", refused %" PRIu64 "\n",
           st.renewals, st.redis_errors, st.rooms_conflict, st.published,
           st.publish_dropped, st.received, st.received_bad);
  }
  kite_cluster_destroy(w->cl); /* registration and leases go now */
  w->cl = NULL;
  w->all_cl = NULL;
  kite_group_destroy(w->all);
  w->all = NULL;
}

void kited_cluster_player_in(world *w, player *p) {
  if (w->all)
    kite_group_join(w->all, p->sid);
}

void kited_cluster_room_used(world *w, room *rm, bool used) {
  if (!w->cl)
    return;
  if (used)
    kite_cluster_room_hold(w->cl, rm->name);
  else
    kite_cluster_room_release(w->cl, rm->name);
}

bool kited_cluster_chat(const kite_request *r, const player *p) {
  world *w = r->user;
  if (!w->all_cl || r->len < 2 || r->body[0] != '!')
    return false;
  uint8_t out[4 + KITE_CLUSTER_ID_MAX + DEMO_NAME_MAX + 4 + DEMO_CHAT_MAX];
  demo_put_u32(out, 0);
  int n = snprintf((char *)out + 4, sizeof(out) - 4, "%s@%s: %.*s", p->name,
                   w->node_id, (int)(r->len - 1), (const char *)r->body + 1);
  if (n < 0)
    return true;
  size_t len = 4 + ((size_t)n < sizeof(out) - 4 ? (size_t)n : sizeof(out) - 5);
  if (kite_cluster_broadcast(w->all_cl, DEMO_SAID, out, len) == KITE_EFULL)
    game_error(r, "world chat is busy: said on this node only");
  return true;
}
