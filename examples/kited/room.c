/*
 * Rooms: join, leave, chat, movement, and the 20 Hz tick that moves the
 * players and broadcasts where they are (on the unreliable lane). Everything here but
 * room_find_or_create() and room_join()'s first half runs on the room's
 * executor (game.h).
 */
#include "game.h"

#include <stdlib.h>
#include <string.h>

typedef struct join_task {
  world *w;
  room *rm;
  player *p;
} join_task;

room *room_find_or_create(world *w, const char *name, size_t len) {
  room *rm = NULL;
  pthread_mutex_lock(&w->lock);
  for (uint32_t i = 0; i < w->nrooms && !rm; i++)
    if (strlen(w->rooms[i]->name) == len && !memcmp(w->rooms[i]->name, name, len))
      rm = w->rooms[i];
  if (!rm && w->nrooms < w->max_rooms && (rm = calloc(1, sizeof(*rm)))) {
    memcpy(rm->name, name, len);
    rm->key = 0x524F4F4D00000000ull | w->nrooms; /* "ROOM" | index */
    rm->group = kite_group_create(w->srv);
    if (!rm->group) {
      free(rm);
      rm = NULL;
    } else {
      w->rooms[w->nrooms++] = rm;
    }
  }
  pthread_mutex_unlock(&w->lock);
  return rm;
}

/* ENTER's body for |p|: its id and name. Returns the length. */
static size_t encode_enter(const player *p, uint8_t out[4 + DEMO_NAME_MAX]) {
  size_t n = strlen(p->name);
  demo_put_u32(out, p->id);
  memcpy(out + 4, p->name, n);
  return 4 + n;
}

/* Moves every player one step and tells the room where everyone is. */
static void tick(kite_server *srv, kite_timer_id id, void *user) {
  (void)srv; (void)id;
  room *rm = user;
  uint8_t out[6 + ROOM_CAP * 8];
  demo_put_u32(out, ++rm->tick_no);
  demo_put_u16(out + 4, (uint16_t)rm->n);
  for (uint32_t i = 0; i < rm->n; i++) {
    player *p = rm->members[i];
    int x = p->x + p->dx * DEMO_SPEED, y = p->y + p->dy * DEMO_SPEED;
    p->x = (int16_t)(x < 0 ? 0 : x > DEMO_ARENA ? DEMO_ARENA : x);
    p->y = (int16_t)(y < 0 ? 0 : y > DEMO_ARENA ? DEMO_ARENA : y);
    uint8_t *e = out + 6 + i * 8;
    demo_put_u32(e, p->id);
    demo_put_u16(e + 4, (uint16_t)p->x);
    demo_put_u16(e + 6, (uint16_t)p->y);
  }
  /* On the snapshot lane, sequenced: a lost STATE is not resent and holds
   * no newer one back, and an older one never replaces a newer (v2 over
   * UDP); v1 and WebSocket members get it as a reliable frame. A STATE
   * too big for one datagram goes on the stream. */
  size_t len = 6 + rm->n * 8;
  if (kite_group_broadcast_unreliable(rm->group, DEMO_STATE, out, len,
                                      KITE_UNRELIABLE_SEQUENCED) ==
      KITE_EMSGSIZE)
    kite_group_broadcast(rm->group, DEMO_STATE, out, len);
}

/* On the room's executor: the second half of a JOIN. */
static void join_here(kite_server *srv, kite_timer_id id, void *user) {
  (void)id;
  join_task *t = user;
  world *t_w = t->w;
  room *rm = t->rm;
  player *p = t->p;
  free(t);
  p->joining = false;
  if (p->gone) { /* it disconnected on its way here */
    free(p);
    return;
  }
  if (rm->n == ROOM_CAP || kite_group_join(rm->group, p->sid) < 0) {
    static const char full[] = "that room is full";
    kite_session_send(srv, p->sid, DEMO_ERROR, full, sizeof(full) - 1);
    return; /* its affinity goes back with its next LEAVE or JOIN */
  }
  p->room = rm;
  p->slot = rm->n;
  p->x = (int16_t)(DEMO_ARENA / 2 + (int)(p->id % 16) * 20 - 160);
  p->y = DEMO_ARENA / 2;
  p->dx = p->dy = 0;
  kite_session_send(srv, p->sid, DEMO_JOINED, rm->name, strlen(rm->name));
  uint8_t out[4 + DEMO_NAME_MAX];
  for (uint32_t i = 0; i < rm->n; i++)
    kite_session_send(srv, p->sid, DEMO_ENTER, out, encode_enter(rm->members[i], out));
  rm->members[rm->n++] = p;
  atomic_store(&rm->count, rm->n);
  if (rm->n == 1)
    kited_cluster_room_used(t_w, rm, true);
  kite_group_broadcast(rm->group, DEMO_ENTER, out, encode_enter(p, out));
  if (!rm->tick)
    kite_timer_start(srv, rm->key, 1000 / DEMO_TICK_HZ, 1000 / DEMO_TICK_HZ,
                     tick, rm, &rm->tick); /* on failure 0: the next join retries */
}

void room_join(const kite_request *r) {
  world *w = r->user;
  player *p = r->session_user;
  if (p->room || p->joining) {
    game_error(r, "leave your room first");
    return;
  }
  if (!demo_name_ok(r->body, r->len)) {
    game_error(r, "a room name is 1 to 16 printable characters, no spaces");
    return;
  }
  room *rm = room_find_or_create(w, (const char *)r->body, r->len);
  if (!rm) {
    game_error(r, "no room for another room");
    return;
  }
  join_task *t = malloc(sizeof(*t));
  if (!t) {
    game_error(r, "out of memory");
    return;
  }
  *t = (join_task){w, rm, p};
  /* From the next message on, this player runs where the room runs; the
   * join itself is handed to the room's executor. */
  kite_session_set_affinity(r->srv, r->session, rm->key);
  p->joining = true;
  if (kite_timer_start(r->srv, rm->key, 0, 0, join_here, t, NULL) < 0) {
    p->joining = false;
    kite_session_set_affinity(r->srv, r->session, r->session);
    free(t);
    game_error(r, "the server is busy");
  }
}

void room_remove(kite_server *srv, world *w, room *rm, player *p) {
  kite_group_leave(rm->group, p->sid);
  rm->members[p->slot] = rm->members[--rm->n];
  rm->members[p->slot]->slot = p->slot;
  atomic_store(&rm->count, rm->n);
  p->room = NULL;
  uint8_t out[4];
  demo_put_u32(out, p->id);
  kite_group_broadcast(rm->group, DEMO_EXIT, out, sizeof(out));
  if (rm->n == 0)
    kited_cluster_room_used(w, rm, false);
  if (rm->n == 0 && rm->tick) { /* an empty room costs nothing */
    kite_timer_stop(srv, rm->tick);
    rm->tick = 0;
  }
}

void room_leave(const kite_request *r) {
  player *p = r->session_user;
  if (!p->room) {
    game_error(r, "you are in no room");
    return;
  }
  room_remove(r->srv, r->user, p->room, p);
  kite_reply(r, DEMO_LEFT, NULL, 0);
  kite_session_set_affinity(r->srv, r->session, r->session);
}

void room_chat(const kite_request *r) {
  player *p = r->session_user;
  if (!p->room) {
    game_error(r, "join a room to chat");
    return;
  }
  if (r->len == 0 || r->len > DEMO_CHAT_MAX) {
    game_error(r, "a chat line is 1 to 200 bytes");
    return;
  }
  for (size_t i = 0; i < r->len; i++)
    if (r->body[i] < ' ' || r->body[i] == 0x7F) {
      game_error(r, "no control characters in chat");
      return;
    }
  if (kited_cluster_chat(r, p))
    return;
  uint8_t out[4 + DEMO_CHAT_MAX];
  demo_put_u32(out, p->id);
  memcpy(out + 4, r->body, r->len);
  kite_group_broadcast(p->room->group, DEMO_SAID, out, 4 + r->len);
}

void room_move(const kite_request *r) {
  player *p = r->session_user;
  if (!p->room)
    return; /* movement outside the arena means nothing: no reply at 20 Hz */
  if (r->len != 2) {
    game_error(r, "MOVE is two bytes");
    return;
  }
  int8_t dx = (int8_t)r->body[0], dy = (int8_t)r->body[1];
  p->dx = (int8_t)(dx > 0 ? 1 : dx < 0 ? -1 : 0);
  p->dy = (int8_t)(dy > 0 ? 1 : dy < 0 ? -1 : 0);
}
