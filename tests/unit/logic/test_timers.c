/* One executor's game-timer table (src/logic/timers.c), with time driven by
 * hand: ids carry the executor's tag, timers_max is a hard limit that frees
 * what it refuses, one-shots fire once and periodic timers keep their
 * schedule without piling up late ticks, timers fire in expiry order, a
 * callback may stop its own timer or another one, commands posted from
 * another thread take effect at the next drain, and clear/free release
 * every timer and queued command (ASan's leak check proves the frees). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "logic/timers.h"

/* The table only hands |srv| back to callbacks; any address proves that. */
static int dummy_server;
#define SRV ((kite_server *)(void *)&dummy_server)

#define LOG_MAX 64

/* What one timer saw: when it fired (the wheel's tick), with which id. */
typedef struct probe {
  kite__timers *t;
  int tag;              /* written to the shared order log */
  int fires;
  uint32_t at[LOG_MAX];
  kite_timer_id id;     /* as started */
  kite_timer_id seen_id;
  kite_server *seen_srv;
  bool stop_self;       /* stop its own id from the callback */
  int stop_rc;
  kite_timer_id stop_other; /* stop this id from the callback, if not 0 */
  int stop_other_rc;
} probe;

static int order[LOG_MAX];
static int norder;

static void on_fire(kite_server *srv, kite_timer_id id, void *user) {
  probe *p = user;
  if (p->fires < LOG_MAX)
    p->at[p->fires] = kite__wheel_now(&p->t->wheel);
  p->fires++;
  p->seen_id = id;
  p->seen_srv = srv;
  if (norder < LOG_MAX)
    order[norder++] = p->tag;
  if (p->stop_self)
    p->stop_rc = kite__timers_stop_here(p->t, id);
  if (p->stop_other)
    p->stop_other_rc = kite__timers_stop_here(p->t, p->stop_other);
}

/* A START command as kite_timer_start() builds it. */
static kite__gtimer *mk(kite__timers *t, uint32_t delay, uint32_t period,
                        probe *p) {
  kite__gtimer *g = calloc(1, sizeof(*g));
  assert_non_null(g);
  g->op = KITE__TIMER_START;
  g->id = kite__timers_next_id(t);
  g->delay_ms = delay;
  g->period_ms = period;
  g->fn = on_fire;
  g->user = p;
  p->t = t;
  p->id = g->id;
  return g;
}

static int start(kite__timers *t, uint32_t now, uint32_t delay,
                 uint32_t period, probe *p) {
  return kite__timers_start_here(t, mk(t, delay, period, p), now);
}

static kite__gtimer *stop_cmd(kite_timer_id id) {
  kite__gtimer *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->op = KITE__TIMER_STOP;
  c->id = id;
  return c;
}

/* Tables live outside the test's frame and the teardown frees them, so a
 * failed assertion (a longjmp) does not also report them as leaks. */
static kite__timers tables[4];
static int ntables;

static kite__timers *table(uint16_t tag, uint32_t cap, uint32_t now) {
  assert_true(ntables < 4);
  kite__timers *t = &tables[ntables];
  assert_int_equal(kite__timers_init(t, SRV, tag, cap, now), 0);
  ntables++;
  return t;
}

static int setup(void **state) {
  (void)state;
  norder = 0;
  ntables = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  while (ntables > 0)
    kite__timers_free(&tables[--ntables]);
  return 0;
}

static void ids_carry_the_tag_and_are_unique(void **state) {
  (void)state;
  kite__timers *a = table(0x8003, 8, 0), *b = table(0x0101, 8, 0);
  kite_timer_id prev = 0;
  for (int i = 1; i <= 1000; i++) {
    kite_timer_id id = kite__timers_next_id(a);
    assert_true(id != 0);
    assert_int_equal(id >> 48, 0x8003); /* routes a stop to this executor */
    assert_int_equal(id & 0xFFFFFFFFFFFFull, (uint64_t)i);
    assert_true(id != prev);
    prev = id;
  }
  kite_timer_id other = kite__timers_next_id(b);
  assert_int_equal(other >> 48, 0x0101);
  assert_int_equal(other & 0xFFFFFFFFFFFFull, 1);
  /* Even tag 0 never hands out id 0, which the API reserves for failure. */
  assert_true(kite__timers_next_id(table(0, 1, 0)) != 0);
}

static void one_shot_fires_once_on_its_millisecond(void **state) {
  (void)state;
  kite__timers *t = table(7, 4, 1000);
  assert_int_equal(kite__timers_timeout_ms(t, 1000, 500), -1);
  probe p = {.tag = 1};
  assert_int_equal(start(t, 1000, 50, 0, &p), 0);
  assert_int_equal(kite__timers_timeout_ms(t, 1000, 500), 50);
  assert_int_equal(kite__timers_timeout_ms(t, 1000, 20), 20); /* capped */
  kite__timers_advance(t, 1049);
  assert_int_equal(p.fires, 0);
  kite__timers_advance(t, 1050);
  assert_int_equal(p.fires, 1);
  assert_int_equal(p.at[0], 1050);
  assert_int_equal(p.seen_id, p.id);
  assert_ptr_equal(p.seen_srv, SRV);
  kite__timers_advance(t, 100000);
  assert_int_equal(p.fires, 1);
  /* Fired means gone: its slot is back and its id unknown. */
  assert_int_equal(t->nfree, 4);
  assert_int_equal(kite__timers_stop_here(t, p.id), KITE_ENOTFOUND);
  assert_int_equal(kite__timers_timeout_ms(t, 100000, 500), -1);
}

/* include/kite/timer.h: a delay-0 one-shot is how work is handed to a
 * room, so it must run at the executor's next look, with no time passing. */
static void zero_delay_runs_at_the_next_advance(void **state) {
  (void)state;
  kite__timers *t = table(7, 4, 300);
  probe p = {.tag = 1};
  assert_true(kite__timers_post(t, mk(t, 0, 0, &p)));
  kite__timers_drain(t, 300);
  assert_int_equal(kite__timers_timeout_ms(t, 300, 1000), 0);
  kite__timers_advance(t, 300);
  assert_int_equal(p.fires, 1);
  assert_int_equal(t->nfree, 4);
}

static void stop_here_cancels(void **state) {
  (void)state;
  kite__timers *t = table(7, 4, 0);
  probe a = {.tag = 1}, b = {.tag = 2};
  assert_int_equal(start(t, 0, 10, 0, &a), 0);
  assert_int_equal(start(t, 0, 10, 5, &b), 0);
  assert_int_equal(kite__timers_stop_here(t, a.id), 0);
  assert_int_equal(kite__timers_stop_here(t, a.id), KITE_ENOTFOUND);
  assert_int_equal(kite__timers_stop_here(t, kite__timers_next_id(t)),
                   KITE_ENOTFOUND);
  kite__timers_advance(t, 12);
  assert_int_equal(a.fires, 0);
  assert_int_equal(b.fires, 1);
  assert_int_equal(kite__timers_stop_here(t, b.id), 0);
  kite__timers_advance(t, 1000);
  assert_int_equal(b.fires, 1);
  assert_int_equal(t->nfree, 4);
  assert_int_equal(kite__wheel_count(&t->wheel), 0);
}

static void timers_max_refuses_and_frees(void **state) {
  (void)state;
  enum { CAP = 4 };
  kite__timers *t = table(7, CAP, 0);
  probe p[CAP + 3] = {{0}};
  for (int i = 0; i < CAP; i++)
    assert_int_equal(start(t, 0, 100, 0, &p[i]), 0);
  /* The refused command is freed by the table (ASan: no leak). */
  assert_int_equal(start(t, 0, 10, 0, &p[CAP]), KITE_EFULL);
  assert_int_equal(kite__timers_stop_here(t, p[CAP].id), KITE_ENOTFOUND);
  /* A posted start is refused the same way when drained. */
  assert_true(kite__timers_post(t, mk(t, 10, 0, &p[CAP + 1])));
  kite__timers_drain(t, 0);
  assert_int_equal(kite__timers_stop_here(t, p[CAP + 1].id), KITE_ENOTFOUND);
  /* A stop frees a slot for the next start. */
  assert_int_equal(kite__timers_stop_here(t, p[0].id), 0);
  assert_int_equal(start(t, 0, 100, 0, &p[CAP + 2]), 0);
  kite__timers_advance(t, 1000);
  assert_int_equal(p[0].fires, 0);
  assert_int_equal(p[CAP].fires, 0);
  assert_int_equal(p[CAP + 1].fires, 0);
  for (int i = 1; i < CAP; i++)
    assert_int_equal(p[i].fires, 1);
  assert_int_equal(p[CAP + 2].fires, 1);
  /* Fired one-shots gave every slot back. */
  for (int i = 0; i < CAP; i++)
    assert_int_equal(start(t, 1000, 1, 0, &p[i]), 0);
  assert_int_equal(start(t, 1000, 1, 0, &p[CAP]), KITE_EFULL);
}

static void timers_fire_in_expiry_order(void **state) {
  (void)state;
  kite__timers *t = table(7, 16, 500);
  /* Started out of order, spread over several wheel levels. */
  static const uint32_t delays[] = {300, 7, 70000, 64, 1, 4096, 63, 250000};
  enum { N = sizeof(delays) / sizeof(delays[0]) };
  probe p[N] = {{0}};
  for (int i = 0; i < N; i++) {
    p[i].tag = (int)delays[i];
    assert_int_equal(start(t, 500, delays[i], 0, &p[i]), 0);
  }
  kite__timers_advance(t, 500 + 300000);
  assert_int_equal(norder, N);
  for (int i = 1; i < N; i++)
    assert_true(order[i - 1] < order[i]);
  for (int i = 0; i < N; i++) {
    assert_int_equal(p[i].fires, 1);
    assert_int_equal(p[i].at[0], 500 + delays[i]);
  }
}

static void periodic_keeps_its_schedule(void **state) {
  (void)state;
  kite__timers *t = table(7, 4, 0);
  probe p = {.tag = 1};
  assert_int_equal(start(t, 0, 100, 100, &p), 0);
  kite__timers_advance(t, 99);
  assert_int_equal(p.fires, 0);
  /* Serviced 30 ms late: the next tick is still due at 200, not 230. */
  kite__timers_advance(t, 130);
  assert_int_equal(p.fires, 1);
  assert_int_equal(p.at[0], 100);
  kite__timers_advance(t, 199);
  assert_int_equal(p.fires, 1);
  kite__timers_advance(t, 200);
  assert_int_equal(p.fires, 2);
  assert_int_equal(p.at[1], 200);
  /* Serviced exactly on time for a while: no drift either way. */
  for (uint32_t now = 201; now <= 1000; now++)
    kite__timers_advance(t, now);
  assert_int_equal(p.fires, 10);
  for (int i = 0; i < 10; i++)
    assert_int_equal(p.at[i], 100 * (uint32_t)(i + 1));
  assert_int_equal(p.seen_id, p.id); /* the same id every tick */
  assert_int_equal(t->nfree, 3);      /* still live */
  assert_int_equal(kite__timers_stop_here(t, p.id), 0);
  kite__timers_advance(t, 5000);
  assert_int_equal(p.fires, 10);
}

/* include/kite/timer.h: "a tick so late that the next is due already skips
 * it (no pile-up)". An executor stalled for ten periods (a slow handler)
 * must run a 20 Hz-style tick once, not ten times back to back. */
static void late_periodic_tick_does_not_pile_up(void **state) {
  (void)state;
  kite__timers *t = table(7, 4, 0);
  probe p = {.tag = 1};
  assert_int_equal(start(t, 0, 100, 100, &p), 0);
  kite__timers_advance(t, 1050); /* ticks 100..1000 were all missed */
  assert_int_equal(p.fires, 1);
  /* And the timer carries on: one more tick within the next period. */
  kite__timers_advance(t, 1150);
  assert_int_equal(p.fires, 2);
}

static void callback_stops_its_own_timer(void **state) {
  (void)state;
  kite__timers *t = table(7, 4, 0);
  /* Periodic: re-armed before the call, so the stop finds and ends it. */
  probe per = {.tag = 1, .stop_self = true, .stop_rc = 99};
  assert_int_equal(start(t, 0, 10, 10, &per), 0);
  /* One-shot: already forgotten when called, so its stop finds nothing. */
  probe one = {.tag = 2, .stop_self = true, .stop_rc = 99};
  assert_int_equal(start(t, 0, 20, 0, &one), 0);
  kite__timers_advance(t, 1000);
  assert_int_equal(per.fires, 1);
  assert_int_equal(per.stop_rc, 0);
  assert_int_equal(one.fires, 1);
  assert_int_equal(one.stop_rc, KITE_ENOTFOUND);
  assert_int_equal(t->nfree, 4);
  assert_int_equal(kite__wheel_count(&t->wheel), 0);
  assert_int_equal(kite__timers_timeout_ms(t, 1000, 500), -1);
}

/* A callback stopping a timer due later in the same advance (even the same
 * millisecond): the stopped one must not fire, and its memory is freed
 * while the wheel is mid-advance (ASan would see a use after free). */
static void callback_stops_another_due_in_the_same_advance(void **state) {
  (void)state;
  kite__timers *t = table(7, 8, 0);
  probe a = {.tag = 1}, same = {.tag = 2}, later = {.tag = 3};
  probe k = {.tag = 4}, victim = {.tag = 5};
  assert_int_equal(start(t, 0, 10, 0, &a), 0);
  assert_int_equal(start(t, 0, 10, 0, &same), 0);
  assert_int_equal(start(t, 0, 40, 7, &later), 0);
  assert_int_equal(start(t, 0, 5, 0, &k), 0);
  assert_int_equal(start(t, 0, 30, 11, &victim), 0);
  /* Whichever of the two 10 ms timers fires first stops the other. */
  a.stop_other = same.id;
  same.stop_other = a.id;
  k.stop_other = victim.id;
  kite__timers_advance(t, 35);
  assert_int_equal(a.fires + same.fires, 1);
  assert_int_equal(a.fires ? a.stop_other_rc : same.stop_other_rc, 0);
  assert_int_equal(k.stop_other_rc, 0);
  /* The rest run on: stepped 1 ms at a time so every tick is on time. */
  for (uint32_t now = 36; now <= 200; now++)
    kite__timers_advance(t, now);
  assert_int_equal(victim.fires, 0);
  assert_int_equal(later.fires, (200 - 40) / 7 + 1); /* 40, 47, ... 194 */
  assert_int_equal(kite__timers_stop_here(t, later.id), 0);
  assert_int_equal(t->nfree, 8);
}

/* ---- commands from other threads ---- */

#define POSTED 200

typedef struct poster {
  kite__timers *t;
  kite__gtimer *cmds[POSTED];
  int posted;
} poster;

/* cmocka's asserts must stay on the main thread: count, check after join. */
static void *post_all(void *arg) {
  poster *ps = arg;
  for (int i = 0; i < POSTED; i++)
    ps->posted += kite__timers_post(ps->t, ps->cmds[i]);
  return NULL;
}

static void posted_commands_apply_at_drain(void **state) {
  (void)state;
  kite__timers *t = table(7, POSTED, 0);
  static probe p[POSTED];
  static poster ps;
  memset(p, 0, sizeof(p));
  memset(&ps, 0, sizeof(ps));
  ps.t = t;
  /* Built as another thread would (ids from the shared counter). */
  for (int i = 0; i < POSTED; i++) {
    p[i].tag = i;
    ps.cmds[i] = mk(t, (uint32_t)(10 + i), 0, &p[i]);
  }
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, post_all, &ps), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(ps.posted, POSTED);
  /* Nothing is live until the executor drains. */
  assert_int_equal(kite__timers_timeout_ms(t, 0, 1000), -1);
  kite__timers_advance(t, 4000);
  assert_int_equal(p[0].fires, 0);
  /* Delays count from the drain's now, not the post or the wheel's time
   * (the executor drains, then advances to the same now). */
  kite__timers_drain(t, 5000);
  assert_int_equal(t->nfree, 0);
  kite__timers_advance(t, 5000);
  assert_int_equal(p[0].fires, 0);
  assert_int_equal(kite__timers_timeout_ms(t, 5000, 1000), 10);
  /* A posted stop, applied at the next drain. */
  assert_true(kite__timers_post(t, stop_cmd(p[5].id)));
  kite__timers_advance(t, 5000 + 14);
  assert_int_equal(p[4].fires, 1);
  assert_int_equal(p[5].fires, 0); /* due at 5015: the stop arrives first */
  kite__timers_drain(t, 5000 + 14);
  assert_int_equal(kite__timers_stop_here(t, p[5].id), KITE_ENOTFOUND);
  /* A stop of an unknown id, and a start then stop in one batch. */
  assert_true(kite__timers_post(t, stop_cmd(kite__timers_next_id(t))));
  kite__timers_advance(t, 5000 + 1000);
  probe extra = {.tag = -1};
  assert_true(kite__timers_post(t, mk(t, 1, 0, &extra)));
  assert_true(kite__timers_post(t, stop_cmd(extra.id)));
  kite__timers_drain(t, 6000);
  kite__timers_advance(t, 7000);
  assert_int_equal(extra.fires, 0);
  for (int i = 0; i < POSTED; i++) {
    assert_int_equal(p[i].fires, i == 5 ? 0 : 1);
    if (i != 5)
      assert_int_equal(p[i].at[0], 5000 + 10 + (uint32_t)i);
  }
  assert_int_equal(t->nfree, POSTED);
}

static void full_command_queue_refuses(void **state) {
  (void)state;
  kite__timers *t = table(7, 4, 0);
  size_t n = 0;
  kite__gtimer *c = stop_cmd(1);
  while (kite__timers_post(t, c)) {
    n++;
    c = stop_cmd(1);
  }
  free(c); /* refused: still the caller's */
  assert_int_equal(n, 64); /* the smallest queue: the table holds 4 */
  /* Left queued on purpose: the teardown's kite__timers_free must
   * release them (ASan's leak check). */
}

static void clear_and_free_release_everything(void **state) {
  (void)state;
  enum { CAP = 8 };
  kite__timers *t = table(7, CAP, 0);
  probe p[CAP] = {{0}};
  for (int i = 0; i < CAP; i++) {
    uint32_t delay = 5 + 1000 * (uint32_t)i, period = i % 2 ? 50 : 0;
    assert_int_equal(start(t, 0, delay, period, &p[i]), 0);
  }
  kite__timers_advance(t, 5); /* p[0] fired */
  assert_int_equal(p[0].fires, 1);
  kite__timers_clear(t);
  assert_int_equal(t->nfree, CAP);
  assert_int_equal(kite__wheel_count(&t->wheel), 0);
  assert_int_equal(kite__timers_timeout_ms(t, 5, 1000), -1);
  for (int i = 0; i < CAP; i++)
    assert_int_equal(kite__timers_stop_here(t, p[i].id), KITE_ENOTFOUND);
  kite__timers_advance(t, 100000);
  for (int i = 0; i < CAP; i++)
    assert_int_equal(p[i].fires, i == 0 ? 1 : 0);
  /* The table is whole again: a full load fits, and fires. */
  for (int i = 0; i < CAP; i++)
    assert_int_equal(start(t, 100000, 1, 0, &p[i]), 0);
  kite__timers_advance(t, 100001);
  for (int i = 0; i < CAP; i++)
    assert_int_equal(p[i].fires, i == 0 ? 2 : 1);
  /* Freed by the teardown with live timers (one-shot and periodic) and
   * queued commands still in it: ASan's leak check. */
  for (int i = 0; i < CAP; i++)
    assert_int_equal(start(t, 100001, 10, i % 2 ? 10 : 0, &p[i]), 0);
  probe q = {.tag = -1};
  assert_true(kite__timers_post(t, mk(t, 1, 0, &q)));
  assert_true(kite__timers_post(t, stop_cmd(p[0].id)));
}

/* A temporary worker's tag: a 24-bit index below the 01 prefix, a 38-bit
 * sequence below it; ids keep both. */
static void tagged_ids_keep_their_index(void **state) {
  (void)state;
  assert_true(ntables < 4);
  kite__timers *t = &tables[ntables];
  uint64_t tag = 1ULL << 62 | (uint64_t)0xABCDEF << 38;
  assert_int_equal(kite__timers_init_tagged(t, SRV, tag, 38, 8, 0), 0);
  ntables++;
  for (int i = 0; i < 100; i++) {
    kite_timer_id id = kite__timers_next_id(t);
    assert_int_equal(id >> 62, 1);
    assert_int_equal((id >> 38) & 0xFFFFFF, 0xABCDEF);
    assert_true((id & ((1ULL << 38) - 1)) != 0);
  }
}

/* A bound worker's table: a START on its way for a session that has since
 * ended (another key, or none now) is dropped at the drain, never run on
 * the worker's next session. */
static void bound_table_drops_starts_for_another_session(void **state) {
  (void)state;
  kite__timers *t = table(0x8001, 8, 0);
  t->filter = true;
  atomic_store(&t->owner, 111);
  probe mine = {.tag = 1}, stale = {.tag = 2}, late = {.tag = 3};
  kite__gtimer *g = mk(t, 1, 0, &mine);
  g->key = 111;
  assert_true(kite__timers_post(t, g));
  g = mk(t, 1, 0, &stale);
  g->key = 110; /* the session before */
  assert_true(kite__timers_post(t, g));
  kite__timers_drain(t, 0);
  kite__timers_advance(t, 5);
  assert_int_equal(mine.fires, 1);
  assert_int_equal(stale.fires, 0);
  /* Its session ends (owner 0): even its own key's starts are dropped. */
  atomic_store(&t->owner, 0);
  g = mk(t, 1, 0, &late);
  g->key = 111;
  assert_true(kite__timers_post(t, g));
  kite__timers_drain(t, 10);
  kite__timers_advance(t, 20);
  assert_int_equal(late.fires, 0);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(ids_carry_the_tag_and_are_unique),
      T(one_shot_fires_once_on_its_millisecond),
      T(zero_delay_runs_at_the_next_advance),
      T(stop_here_cancels),
      T(timers_max_refuses_and_frees),
      T(timers_fire_in_expiry_order),
      T(periodic_keeps_its_schedule),
      T(late_periodic_tick_does_not_pile_up),
      T(callback_stops_its_own_timer),
      T(callback_stops_another_due_in_the_same_advance),
      T(posted_commands_apply_at_drain),
      T(full_command_queue_refuses),
      T(clear_and_free_release_everything),
      T(tagged_ids_keep_their_index),
      T(bound_table_drops_starts_for_another_session),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
