#include "render.h"

#include "../../examples/kited/demo_proto.h"

#include <string.h>
#include <time.h>

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void render_init(render *r, FILE *out) {
  memset(r, 0, sizeof(*r));
  r->out = out;
}

/* Copies |len| bytes into |dst| (cap bytes with the NUL) with control
 * bytes turned into '?': a server's text never moves the terminal. */
static void safe(char *dst, size_t cap, const uint8_t *s, size_t len) {
  size_t n = len < cap - 1 ? len : cap - 1;
  for (size_t i = 0; i < n; i++)
    dst[i] = s[i] < ' ' || s[i] == 0x7F ? '?' : (char)s[i];
  dst[n] = 0;
}

static int find(const render *r, uint32_t id) {
  for (uint32_t i = 0; i < r->nwho; i++)
    if (r->who[i].id == id)
      return (int)i;
  return -1;
}

static const char *name_of(const render *r, uint32_t id) {
  int i = find(r, id);
  return i < 0 ? "?" : r->who[i].name;
}

void render_message(render *r, uint16_t msg_id, const uint8_t *b, size_t len) {
  char text[4 * DEMO_CHAT_MAX];
  switch (msg_id) {
  case DEMO_WELCOME:
    if (len < 4)
      break;
    r->me = demo_get_u32(b);
    safe(text, sizeof(text), b + 4, len - 4);
    fprintf(r->out, "* welcome, %s (player %u)\n", text, r->me);
    break;
  case DEMO_ROOM_LIST:
    fprintf(r->out, "* rooms (name, players):%s", len ? "\n" : " none yet\n");
    for (size_t at = 0; at < len;) {
      const uint8_t *nl = memchr(b + at, '\n', len - at);
      size_t n = nl ? (size_t)(nl - (b + at)) : len - at;
      safe(text, sizeof(text), b + at, n);
      fprintf(r->out, "*   %s\n", text);
      at += n + 1;
    }
    break;
  case DEMO_JOINED:
    safe(r->room, sizeof(r->room), b, len);
    r->nwho = 0;
    fprintf(r->out, "* you are in %s\n", r->room);
    break;
  case DEMO_ENTER:
    if (len < 4)
      break;
    if (find(r, demo_get_u32(b)) < 0 && r->nwho < RENDER_PLAYERS) {
      r->who[r->nwho].id = demo_get_u32(b);
      r->who[r->nwho].seen_ms = 0;
      safe(r->who[r->nwho].name, sizeof(r->who[0].name), b + 4, len - 4);
      r->nwho++;
    }
    if (demo_get_u32(b) != r->me)
      fprintf(r->out, "* %s is here\n", name_of(r, demo_get_u32(b)));
    break;
  case DEMO_EXIT: {
    if (len < 4)
      break;
    int i = find(r, demo_get_u32(b));
    if (i >= 0) {
      fprintf(r->out, "* %s left\n", r->who[i].name);
      r->who[i] = r->who[--r->nwho];
    }
    break;
  }
  case DEMO_LEFT:
    fprintf(r->out, "* you left %s\n", r->room);
    r->room[0] = 0;
    r->nwho = 0;
    break;
  case DEMO_SAID:
    if (len < 4)
      break;
    safe(text, sizeof(text), b + 4, len - 4);
    if (demo_get_u32(b) == 0) /* kited's world chat: "name@node: line" */
      fprintf(r->out, "[world] %s\n", text);
    else
      fprintf(r->out, "<%s> %s\n", name_of(r, demo_get_u32(b)), text);
    break;
  case DEMO_STATE:
    if (len < 6)
      break;
    r->tick = demo_get_u32(b);
    for (size_t k = 0, n = demo_get_u16(b + 4); k < n && 6 + k * 8 + 8 <= len; k++) {
      const uint8_t *e = b + 6 + k * 8;
      int i = find(r, demo_get_u32(e));
      if (i >= 0) {
        r->who[i].x = (int16_t)demo_get_u16(e + 4);
        r->who[i].y = (int16_t)demo_get_u16(e + 6);
        r->who[i].seen_ms = now_ms();
      }
    }
    break;
  case DEMO_ERROR:
    safe(text, sizeof(text), b, len);
    fprintf(r->out, "! %s\n", text);
    break;
  default:
    fprintf(r->out, "! message %u from the server, unknown to this client\n", msg_id);
  }
  fflush(r->out);
}

void render_who(const render *r) {
  if (!r->room[0]) {
    fprintf(r->out, "* you are in no room\n");
    return;
  }
  fprintf(r->out, "* in %s at tick %u:\n", r->room, r->tick);
  uint64_t now = now_ms();
  for (uint32_t i = 0; i < r->nwho; i++) {
    char age[32] = "no snapshot yet";
    if (r->who[i].seen_ms)
      snprintf(age, sizeof(age), "snapshot %llu ms old",
               (unsigned long long)(now - r->who[i].seen_ms));
    fprintf(r->out, "*   %s at (%d, %d), %s%s\n", r->who[i].name, r->who[i].x,
            r->who[i].y, age, r->who[i].id == r->me ? " (you)" : "");
  }
  fflush(r->out);
}
