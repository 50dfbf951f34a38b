/*
 * What kite-cli prints for each message from kited: one line per event,
 * with every byte a server sent made safe for a terminal. Remembers who is
 * in the room (ids to names) and the last STATE, for /who.
 */
#ifndef KITE_CLI_RENDER_H
#define KITE_CLI_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RENDER_PLAYERS 64

typedef struct render {
  FILE *out;
  uint32_t me;                      /* our player id, from WELCOME */
  char room[24];                    /* "" when in none */
  struct {
    uint32_t id;
    char name[24];
    int16_t x, y;
    uint64_t seen_ms; /* when a STATE last placed it (0: none yet) */
  } who[RENDER_PLAYERS];
  uint32_t nwho;
  uint32_t tick;
} render;

void render_init(render *r, FILE *out);
/* One server message; prints what a person needs to see (STATE: nothing,
 * it is kept for /who). */
void render_message(render *r, uint16_t msg_id, const uint8_t *body, size_t len);
/* /who: the players of the room, where they stand, and each one's
 * snapshot age: how long ago the newest STATE that placed it arrived (20
 * Hz: about 50 ms when none is lost; STATE comes on the unreliable lane
 * over v2 UDP, so a loss ages it by a tick, never by a resend). */
void render_who(const render *r);

#endif
