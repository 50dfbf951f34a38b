#include "logic/timers.h"

#include "base/time.h"
#include "kite/error.h"

#include <stdlib.h>
#include <string.h>

/* The map wants hashed keys; ids count up. */
static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* Commands in flight: a start and a stop for every timer the table can
 * hold. Sized by the table, not fixed: a bound worker's 256 timers need
 * 8 KB of queue, and a thousand bound workers must not cost a gigabyte. */
static size_t cmd_queue_size(uint32_t cap) { return cap < 32 ? 64 : (size_t)cap * 2; }

int kite__timers_init(kite__timers *t, kite_server *srv, uint16_t tag,
                      uint32_t cap, uint32_t now_ms) {
  return kite__timers_init_tagged(t, srv, (uint64_t)tag << 48, 48, cap, now_ms);
}

int kite__timers_init_tagged(kite__timers *t, kite_server *srv, uint64_t tag,
                             unsigned seq_bits, uint32_t cap, uint32_t now_ms) {
  memset(t, 0, sizeof(*t));
  t->srv = srv;
  t->tag = tag;
  t->seq_mask = (1ULL << seq_bits) - 1;
  t->cap = cap;
  atomic_init(&t->seq, 1);
  atomic_init(&t->owner, 0);
  kite__wheel_init(&t->wheel, now_ms);
  t->slots = calloc(cap, sizeof(*t->slots));
  t->free_slots = malloc(cap * sizeof(*t->free_slots));
  if (!t->slots || !t->free_slots || kite__map_init(&t->live, cap) < 0 ||
      kite__mpsc_init(&t->cmds, cmd_queue_size(cap)) < 0)
    return KITE_ENOMEM;
  for (uint32_t i = cap; i-- > 0;)
    t->free_slots[t->nfree++] = i;
  return 0;
}

void kite__timers_clear(kite__timers *t) {
  for (uint32_t i = 0; i < t->cap; i++) {
    kite__gtimer *g = t->slots[i];
    if (!g)
      continue;
    kite__wheel_del(&t->wheel, &g->node);
    kite__map_del(&t->live, mix(g->id));
    free(g);
    t->slots[i] = NULL;
    t->free_slots[t->nfree++] = i;
  }
}

void kite__timers_free(kite__timers *t) {
  if (t->slots)
    kite__timers_clear(t);
  kite__gtimer *g;
  if (t->cmds.slots) {
    while ((g = kite__mpsc_pop(&t->cmds)))
      free(g);
    kite__mpsc_free(&t->cmds);
  }
  kite__map_free(&t->live);
  free(t->slots);
  free(t->free_slots);
}

kite_timer_id kite__timers_next_id(kite__timers *t) {
  uint64_t n = atomic_fetch_add_explicit(&t->seq, 1, memory_order_relaxed);
  return t->tag | (n & t->seq_mask);
}

bool kite__timers_post(kite__timers *t, kite__gtimer *cmd) {
  return kite__mpsc_push(&t->cmds, cmd);
}

int kite__timers_start_here(kite__timers *t, kite__gtimer *g, uint32_t now_ms) {
  if (t->nfree == 0) {
    free(g);
    return KITE_EFULL;
  }
  uint32_t i = t->free_slots[--t->nfree];
  if (kite__map_put(&t->live, mix(g->id), i) < 0) {
    t->free_slots[t->nfree++] = i;
    free(g);
    return KITE_EFULL;
  }
  t->slots[i] = g;
  kite__timer_init(&g->node);
  kite__wheel_add(&t->wheel, &g->node, now_ms + g->delay_ms);
  return 0;
}

static void forget(kite__timers *t, kite__gtimer *g) {
  uint32_t i;
  if (kite__map_get(&t->live, mix(g->id), &i)) {
    kite__map_del(&t->live, mix(g->id));
    t->slots[i] = NULL;
    t->free_slots[t->nfree++] = i;
  }
  kite__wheel_del(&t->wheel, &g->node);
  free(g);
}

int kite__timers_stop_here(kite__timers *t, kite_timer_id id) {
  uint32_t i;
  if (!kite__map_get(&t->live, mix(id), &i))
    return KITE_ENOTFOUND;
  forget(t, t->slots[i]);
  return 0;
}

void kite__timers_drain(kite__timers *t, uint32_t now_ms) {
  kite__gtimer *cmd;
  while ((cmd = kite__mpsc_pop(&t->cmds))) {
    if (cmd->op == KITE__TIMER_START) {
      if (t->filter && cmd->key != atomic_load_explicit(&t->owner, memory_order_acquire))
        free(cmd); /* for a session that has ended: its timers end with it */
      else
        kite__timers_start_here(t, cmd, now_ms);
    } else {
      kite__timers_stop_here(t, cmd->id);
      free(cmd);
    }
  }
}

static void fire(kite__timer *node, void *user) {
  kite__timers *t = user;
  kite__gtimer *g = (kite__gtimer *)((char *)node - offsetof(kite__gtimer, node));
  kite_timer_id id = g->id;
  if (g->period_ms) {
    /* Re-armed before the call, so the callback may stop it. Ticks keep
     * to their schedule (a late one does not push the rest back); the
     * ticks missed while the executor was busy are skipped, not run back
     * to back: the next is the first on the schedule after the real time
     * of this advance (the wheel's own time is this tick's). */
    uint32_t expired = g->node.expire_ms, period = g->period_ms;
    uint32_t next = expired + period;
    if ((int32_t)(next - t->advance_to) <= 0)
      next = expired + period * ((t->advance_to - expired) / period + 1);
    kite__wheel_add(&t->wheel, &g->node, next);
    g->fn(t->srv, id, g->user);
  } else {
    kite_timer_fn fn = g->fn;
    void *u = g->user;
    forget(t, g); /* gone before the call: a stop from it finds nothing */
    fn(t->srv, id, u);
  }
}

void kite__timers_advance(kite__timers *t, uint32_t now_ms) {
  t->advance_to = now_ms;
  kite__wheel_advance(&t->wheel, now_ms, fire, t);
}

int kite__timers_timeout_ms(const kite__timers *t, uint32_t now_ms, int cap) {
  return kite__wheel_timeout_ms(&t->wheel, now_ms, cap);
}
