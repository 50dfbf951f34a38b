/*
 * The lobby: a player connects, names itself, lists the rooms; its
 * disconnect is handled here too, wherever it is.
 */
#include "game.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void game_error(const kite_request *r, const char *why) {
  kite_reply(r, DEMO_ERROR, why, strlen(why));
}

void game_on_connect(kite_server *srv, kite_session_id id, void *user) {
  (void)user;
  player *p = calloc(1, sizeof(*p));
  if (!p) {
    kite_session_close(srv, id);
    return;
  }
  p->sid = id;
  kite_session_set_user(srv, id, p);
}

/* Runs on the player's executor: the room's, once it joined one. */
void game_on_disconnect(kite_server *srv, kite_session_id id, int reason,
                        void *user) {
  (void)reason;
  player *p = kite_session_user(srv, id);
  if (!p)
    return;
  if (p->room) {
    room_remove(srv, user, p->room, p);
  } else if (p->joining) {
    p->gone = true; /* the pending join frees it, on this same thread */
    return;
  }
  free(p);
}

static void login(const kite_request *r) {
  world *w = r->user;
  player *p = r->session_user;
  if (p->id) {
    game_error(r, "logged in already");
    return;
  }
  if (!demo_name_ok(r->body, r->len)) {
    game_error(r, "a name is 1 to 16 printable characters, no spaces");
    return;
  }
  /* Version 2: the login route sealed the name into the token (its
   * user_data), so a player logs in under that name and no other. */
  kite_session_info info;
  bool v2 = kite_session_get_info(r->srv, r->session, &info) == 0 &&
            info.version == 2;
  if (v2 && info.user_data[0] &&
      (strnlen((const char *)info.user_data, sizeof(info.user_data)) != r->len ||
       memcmp(info.user_data, r->body, r->len))) {
    game_error(r, "your login token names you otherwise");
    return;
  }
  if (v2)
    atomic_fetch_add(&w->logins_v2, 1);
  memcpy(p->name, r->body, r->len);
  p->name[r->len] = 0;
  p->id = atomic_fetch_add(&w->next_id, 1) + 1;
  uint8_t out[4 + DEMO_NAME_MAX];
  demo_put_u32(out, p->id);
  memcpy(out + 4, p->name, r->len);
  kite_reply(r, DEMO_WELCOME, out, 4 + r->len);
  kited_cluster_player_in(w, p);
}

static void list_rooms(const kite_request *r) {
  world *w = r->user;
  char text[64 * 24];
  size_t len = 0;
  pthread_mutex_lock(&w->lock);
  for (uint32_t i = 0; i < w->nrooms && len + 24 < sizeof(text); i++)
    len += (size_t)snprintf(text + len, sizeof(text) - len, "%s %u\n",
                            w->rooms[i]->name,
                            atomic_load(&w->rooms[i]->count));
  pthread_mutex_unlock(&w->lock);
  kite_reply(r, DEMO_ROOM_LIST, text, len);
}

/* Every request but LOGIN needs a name first. */
static void need_login(const kite_request *r, void (*fn)(const kite_request *)) {
  player *p = r->session_user;
  if (!p || !p->id) {
    game_error(r, "log in first");
    return;
  }
  fn(r);
}

static void on_rooms(const kite_request *r) { need_login(r, list_rooms); }
static void on_join(const kite_request *r) { need_login(r, room_join); }
static void on_leave(const kite_request *r) { need_login(r, room_leave); }
static void on_chat(const kite_request *r) { need_login(r, room_chat); }
static void on_move(const kite_request *r) { need_login(r, room_move); }

static void on_login(const kite_request *r) {
  if (r->session_user)
    login(r);
}

void game_route(kite_server *srv, world *w) {
  kite_server_route(srv, DEMO_LOGIN, on_login, w);
  kite_server_route(srv, DEMO_ROOMS, on_rooms, w);
  kite_server_route(srv, DEMO_JOIN, on_join, w);
  kite_server_route(srv, DEMO_LEAVE, on_leave, w);
  kite_server_route(srv, DEMO_CHAT, on_chat, w);
  kite_server_route(srv, DEMO_MOVE, on_move, w);
}

int world_init(world *w, uint32_t max_rooms) {
  memset(w, 0, sizeof(*w));
  w->rooms = calloc(max_rooms, sizeof(*w->rooms));
  if (!w->rooms)
    return -1;
  w->max_rooms = max_rooms;
  pthread_mutex_init(&w->lock, NULL);
  return 0;
}

void world_free(world *w) {
  for (uint32_t i = 0; i < w->nrooms; i++) {
    kite_group_destroy(w->rooms[i]->group);
    free(w->rooms[i]);
  }
  free(w->rooms);
  pthread_mutex_destroy(&w->lock);
}
