/*
 * The demo game's messages (docs/DEMO.md), shared by kited and kite-cli.
 * Integers are little-endian, as in kite's own protocol; names and chat are
 * UTF-8 text without a terminating NUL (the frame gives the length).
 */
#ifndef KITE_DEMO_PROTO_H
#define KITE_DEMO_PROTO_H

#include <stdint.h>
#include <string.h>

enum {
  /* client -> server */
  DEMO_LOGIN = 1, /* name (1..16 bytes, printable) */
  DEMO_ROOMS = 2, /* (empty) */
  DEMO_JOIN = 3,  /* room name (1..16 bytes, printable) */
  DEMO_LEAVE = 4, /* (empty) */
  DEMO_CHAT = 5,  /* text (1..200 bytes) */
  DEMO_MOVE = 6,  /* i8 dx, i8 dy: a direction, each -1, 0 or 1 */

  /* server -> client */
  DEMO_WELCOME = 101,   /* u32 player id, name */
  DEMO_ROOM_LIST = 102, /* lines "name players\n", one per room */
  DEMO_JOINED = 103,    /* room name: you are in */
  DEMO_ENTER = 104,     /* u32 id, name: a player is in your room */
  DEMO_EXIT = 105,      /* u32 id: a player left your room */
  DEMO_SAID = 106,      /* u32 id, text */
  DEMO_STATE = 107,     /* u32 tick, u16 n, n x (u32 id, i16 x, i16 y) */
  DEMO_LEFT = 108,      /* (empty): you left the room */
  DEMO_ERROR = 199,     /* text: why a request was refused */
};

#define DEMO_NAME_MAX 16
#define DEMO_CHAT_MAX 200
#define DEMO_ARENA 1000 /* positions are 0..DEMO_ARENA on both axes */
#define DEMO_TICK_HZ 20
#define DEMO_SPEED 10   /* units per tick along each axis */

static inline void demo_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t demo_get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static inline void demo_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t demo_get_u16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}

/* A name is 1..DEMO_NAME_MAX printable ASCII bytes, no space: simple to
 * show in any terminal, and nothing a player can use to forge a line. */
static inline int demo_name_ok(const uint8_t *s, size_t len) {
  if (len == 0 || len > DEMO_NAME_MAX)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] <= ' ' || s[i] > '~')
      return 0;
  return 1;
}

#endif
