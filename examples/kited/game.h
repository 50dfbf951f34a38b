/*
 * kited's world: players, rooms, and the directory of rooms.
 *
 * Threads. kited runs in hash mode. A room has an affinity key; a player
 * who joins takes the room's key as its own, so from then on its messages,
 * its on_disconnect and the room's 20 Hz tick all run on the room's
 * worker, one at a time: room state (members, positions) has no lock. The
 * directory of rooms is the one shared structure, behind a mutex that is
 * taken on JOIN and ROOMS only, never on the tick.
 */
#ifndef KITED_GAME_H
#define KITED_GAME_H

#include "demo_proto.h"
#include "kite/cluster.h"
#include "kite/kite.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define ROOM_CAP 64 /* players per room: a STATE frame stays under 600 bytes */

typedef struct room room;

typedef struct player {
  kite_session_id sid;
  uint32_t id;                    /* 0 until LOGIN */
  char name[DEMO_NAME_MAX + 1];
  room *room;                     /* the room's executor only */
  bool joining;                   /* a JOIN is on its way to a room */
  bool gone;                      /* disconnected while joining */
  int16_t x, y;
  int8_t dx, dy;
  uint32_t slot;                  /* index in room->members */
} player;

struct room {
  char name[DEMO_NAME_MAX + 1];
  uint64_t key;                   /* its executor: kite_timer_start(key) */
  kite_group *group;
  player *members[ROOM_CAP];      /* the room's executor only */
  uint32_t n;
  _Atomic uint32_t count;         /* n, for ROOMS from any thread */
  kite_timer_id tick;             /* running while the room has players */
  uint32_t tick_no;
};

typedef struct world {
  kite_server *srv;
  pthread_mutex_t lock;           /* the directory below, not room state */
  room **rooms;
  uint32_t nrooms, max_rooms;
  _Atomic uint32_t next_id;
  /* cluster.c, with --redis: set before the server starts, cleared after
   * it stops (no player runs then); NULL without --redis. */
  kite_cluster *cl;
  kite_group *all;                /* every logged-in player here */
  kite_cluster_group *all_cl;     /* "world": all, on every node */
  char node_id[KITE_CLUSTER_ID_MAX + 1];
  _Atomic uint32_t logins_v2;     /* LOGINs over protocol version 2 */
} world;

/* cluster.c: kited's options for joining a cluster. */
typedef struct kited_cluster_opts {
  const char *redis;       /* NULL: no cluster */
  const char *public_addr; /* NULL: the UDP host and its bound port */
  const char *node_id;     /* NULL: public_addr, with ':' as '-' */
  const char *udp_addr;
  uint32_t seats;          /* 0: kite_cluster's default */
} kited_cluster_opts;

int world_init(world *w, uint32_t max_rooms);
/* After the server is stopped and destroyed: every player has gone. */
void world_free(world *w);

/* lobby.c: the server's callbacks and the lobby's handlers. */
void game_on_connect(kite_server *srv, kite_session_id id, void *user);
void game_on_disconnect(kite_server *srv, kite_session_id id, int reason,
                        void *user);
void game_route(kite_server *srv, world *w);
void game_error(const kite_request *r, const char *why);

/* cluster.c (docs/CLUSTER.md). start: 0 or a KITE_E* code. */
int kited_cluster_start(world *w, const kited_cluster_opts *o, int udp_port);
void kited_cluster_stop(world *w);
void kited_cluster_player_in(world *w, player *p);
/* The room got its first player (used) or lost its last. */
void kited_cluster_room_used(world *w, room *rm, bool used);
/* true when the line was a '!' world chat (sent, or refused). */
bool kited_cluster_chat(const kite_request *r, const player *p);

/* room.c */
room *room_find_or_create(world *w, const char *name, size_t len);
void room_join(const kite_request *r);
void room_leave(const kite_request *r);
void room_chat(const kite_request *r);
void room_move(const kite_request *r);
/* On the room's executor: |p| leaves (LEAVE, or its session ended). */
void room_remove(kite_server *srv, world *w, room *rm, player *p);

#endif
