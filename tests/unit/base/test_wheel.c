#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "base/time.h"
#include "base/wheel.h"

#define container_of(p, type, field) \
  ((type *)(void *)((char *)(p) - offsetof(type, field)))

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (hi - lo < 2^32). */
static int64_t between(uint64_t *s, int64_t lo, int64_t hi) {
  return lo + (int64_t)(splitmix(s) % (uint64_t)(hi - lo + 1));
}

static bool wheel_is_empty(const kite__wheel *w) {
  for (int l = 0; l < KITE__WHEEL_LEVELS; l++) {
    if (w->occupied[l])
      return false;
    for (unsigned s = 0; s < KITE__WHEEL_SLOTS; s++)
      if (w->slots[l][s])
        return false;
  }
  return !w->due && !w->firing && kite__wheel_count(w) == 0;
}

/* A timer that records when it fired. */
typedef struct rec {
  kite__timer t;
  int fires;
  uint32_t fired_at;
} rec;

static void record_cb(kite__timer *t, void *user) {
  rec *r = container_of(t, rec, t);
  r->fires++;
  r->fired_at = kite__wheel_now(user);
  assert_false(kite__timer_pending(t));
}

static void empty_wheel(void **state) {
  (void)state;
  kite__wheel w;
  kite__wheel_init(&w, 123);
  assert_true(wheel_is_empty(&w));
  assert_int_equal(kite__wheel_timeout_ms(&w, 123, 1000), -1);
  assert_int_equal(kite__wheel_advance(&w, 100000, record_cb, &w), 0);
  assert_int_equal(kite__wheel_now(&w), 100000);
  /* Zeroed memory is an idle timer; deleting an idle timer is a no-op. */
  rec r;
  memset(&r, 0, sizeof(r));
  assert_false(kite__timer_pending(&r.t));
  kite__wheel_del(&w, &r.t);
  kite__wheel_add(&w, &r.t, 100005);
  assert_true(kite__timer_pending(&r.t));
  kite__wheel_del(&w, &r.t);
  kite__wheel_del(&w, &r.t);
  assert_false(kite__timer_pending(&r.t));
  assert_null(r.t.next);
  assert_null(r.t.prev);
  assert_true(wheel_is_empty(&w));
  /* A clock reading behind the wheel does not move it back. */
  assert_int_equal(kite__wheel_advance(&w, 99000, record_cb, &w), 0);
  assert_int_equal(kite__wheel_now(&w), 100000);
}

/* One timer at each level's edges, from starts that straddle boundaries and
 * the wrap, fires at exactly its millisecond whatever the advance steps. */
static void level_edges_fire_exactly(void **state) {
  (void)state;
  static const uint32_t starts[] = {0,          12345,      0xFFFFFFFFu,
                                    0xFFFF0025u, 0x3FFFFFFFu, 0xFFFFFFC0u,
                                    0x7FFFFFFFu};
  static const uint32_t offsets[] = {
      0,           1,           2,           63,          64,
      65,          127,         128,         4095,        4096,
      4097,        262143,      262144,      262145,      16777215,
      16777216,    16777217,    1073741823,  1073741824,  1073741825,
      1500000007u, 2147483646u, 2147483647u};
  for (size_t si = 0; si < sizeof(starts) / sizeof(starts[0]); si++) {
    for (size_t oi = 0; oi < sizeof(offsets) / sizeof(offsets[0]); oi++) {
      for (uint32_t pieces = 1; pieces <= 7; pieces += 3) {
        kite__wheel w;
        rec r = {0};
        uint32_t start = starts[si], off = offsets[oi], e = start + off;
        kite__wheel_init(&w, start);
        kite__wheel_add(&w, &r.t, e);
        assert_int_equal(kite__wheel_count(&w), 1);
        int to = kite__wheel_timeout_ms(&w, start, -1);
        assert_true(to >= 0 && (uint32_t)to <= off);
        if (off == 0)
          assert_int_equal(to, 0);
        /* Up to e - 1 in |pieces| steps: nothing fires. */
        for (uint32_t p = 1; off > 0 && p <= pieces; p++) {
          uint32_t upto = (uint32_t)((uint64_t)(off - 1) * p / pieces);
          assert_int_equal(kite__wheel_advance(&w, start + upto, record_cb, &w),
                           0);
          to = kite__wheel_timeout_ms(&w, start + upto, -1);
          assert_true(to >= 0 && (uint32_t)to <= off - upto);
        }
        assert_int_equal(r.fires, 0);
        assert_int_equal(kite__wheel_advance(&w, e, record_cb, &w), 1);
        assert_int_equal(r.fires, 1);
        assert_int_equal(r.fired_at, e);
        assert_true(wheel_is_empty(&w));
      }
    }
  }
}

/* ---- the random run against a reference model ---- */

#define MODEL_N 512

typedef struct mtimer {
  kite__timer t;
  bool pending;
  bool due;         /* filed at or before the wheel's time */
  uint32_t expire;  /* as added */
  uint64_t add_seq; /* when added, in model->seq */
} mtimer;

typedef struct model {
  kite__wheel w;
  mtimer tm[MODEL_N];
  uint64_t rng;
  uint64_t seq;       /* bumped by every add */
  uint32_t now;       /* the wheel's time, as the model sees it */
  bool in_advance;    /* the fields below describe the running advance */
  uint64_t adv_seq;   /* seq when it started */
  uint32_t adv_start; /* wheel time when it started */
  uint32_t target;
  uint32_t last_fire;
  size_t fired;
  size_t actions; /* callback actions in this advance, bounded */
} model;

static size_t model_count(const model *m) {
  size_t n = 0;
  for (int i = 0; i < MODEL_N; i++)
    n += m->tm[i].pending;
  return n;
}

/* Adds timer |i| at |e| while the wheel's time is |at|. */
static void model_add(model *m, int i, uint32_t e, uint32_t at) {
  mtimer *x = &m->tm[i];
  x->pending = true;
  x->expire = e;
  x->due = kite__ms_diff(e, at) <= 0;
  x->add_seq = ++m->seq;
  kite__wheel_add(&m->w, &x->t, e);
  assert_true(kite__timer_pending(&x->t));
  assert_int_equal(x->t.expire_ms, e);
}

static void model_del(model *m, int i) {
  m->tm[i].pending = false;
  kite__wheel_del(&m->w, &m->tm[i].t);
  assert_false(kite__timer_pending(&m->tm[i].t));
}

static void model_cb(kite__timer *t, void *user) {
  model *m = user;
  mtimer *x = container_of(t, mtimer, t);
  assert_true(m->in_advance);
  assert_true(x->pending); /* deleted or never added: must not fire */
  assert_false(kite__timer_pending(t));
  uint32_t when;
  if (x->due) {
    /* Due when filed: fires first in the next advance, not the one it was
     * filed in, at that advance's starting time. */
    assert_true(x->add_seq <= m->adv_seq);
    when = m->adv_start;
  } else {
    when = x->expire;
    assert_true(kite__ms_diff(when, m->adv_start) > 0);
    assert_true(kite__ms_diff(when, m->target) <= 0);
  }
  assert_int_equal(kite__wheel_now(&m->w), when);
  assert_true(kite__ms_diff(when, m->last_fire) >= 0); /* expiry order */
  m->last_fire = when;
  x->pending = false;
  m->fired++;
  if (m->actions > 4 * MODEL_N)
    return;
  /* Callbacks re-add themselves (periodic, interval 0 included: due next
   * advance), delete others (perhaps due this advance, this tick even) and
   * add others, some already due. */
  int r = (int)between(&m->rng, 0, 99);
  if (r < 30) {
    m->actions++;
    model_add(m, (int)(x - m->tm), when + (uint32_t)between(&m->rng, 0, 300),
              when);
  }
  r = (int)between(&m->rng, 0, 99);
  if (r < 25) {
    m->actions++;
    model_del(m, (int)between(&m->rng, 0, MODEL_N - 1));
  } else if (r < 45) {
    m->actions++;
    model_add(m, (int)between(&m->rng, 0, MODEL_N - 1),
              when + (uint32_t)(int32_t)between(&m->rng, -100, 400), when);
  }
}

/* timeout_ms is never later than the true earliest expiry, 0 when due,
 * -1 when empty, and at least 1 when nothing is due yet. */
static void model_check_timeout(model *m) {
  bool any = false, due = false;
  int32_t best = 0;
  for (int i = 0; i < MODEL_N; i++) {
    mtimer *x = &m->tm[i];
    if (!x->pending)
      continue;
    if (x->due) {
      due = true;
      continue;
    }
    int32_t d = kite__ms_diff(x->expire, m->now);
    assert_true(d > 0);
    if (!any || d < best)
      best = d;
    any = true;
  }
  int to = kite__wheel_timeout_ms(&m->w, m->now, -1);
  if (due) {
    assert_int_equal(to, 0);
  } else if (!any) {
    assert_int_equal(to, -1);
  } else {
    assert_true(to >= 1 && to <= best);
    assert_int_equal(kite__wheel_timeout_ms(&m->w, m->now, 7), to < 7 ? to : 7);
    /* A caller whose clock is ahead of the wheel gets less, down to 0. */
    int ahead = kite__wheel_timeout_ms(&m->w, m->now + 50, -1);
    assert_true(ahead >= 0 && ahead <= (best > 50 ? best - 50 : 0));
  }
}

static void model_advance(model *m, uint32_t target) {
  m->in_advance = true;
  m->adv_seq = m->seq;
  m->adv_start = m->now;
  m->target = target;
  m->last_fire = m->now;
  m->fired = 0;
  m->actions = 0;
  size_t n = kite__wheel_advance(&m->w, target, model_cb, m);
  m->in_advance = false;
  assert_int_equal(n, m->fired);
  if (kite__ms_diff(target, m->now) > 0)
    m->now = target;
  assert_int_equal(kite__wheel_now(&m->w), m->now);
  /* Everything due by now has fired, except what callbacks filed as due. */
  for (int i = 0; i < MODEL_N; i++) {
    mtimer *x = &m->tm[i];
    assert_int_equal(kite__timer_pending(&x->t), x->pending);
    if (!x->pending)
      continue;
    if (x->due)
      assert_true(x->add_seq > m->adv_seq);
    else
      assert_true(kite__ms_diff(x->expire, m->now) > 0);
  }
}

static uint32_t random_offset(model *m) {
  int r = (int)between(&m->rng, 0, 99);
  if (r < 10)
    return (uint32_t)(int32_t)between(&m->rng, -100, 0);
  if (r < 80)
    return (uint32_t)between(&m->rng, 1, 10000);
  if (r < 90)
    return (uint32_t)between(&m->rng, 10000, 1 << 24);
  return (uint32_t)between(&m->rng, 1 << 24, INT32_MAX);
}

static uint32_t random_step(model *m) {
  int r = (int)between(&m->rng, 0, 99);
  if (r < 90)
    return (uint32_t)between(&m->rng, 0, 5000);
  if (r < 98)
    return (uint32_t)between(&m->rng, 0, 1 << 24);
  return (uint32_t)between(&m->rng, 0, INT32_MAX); /* huge idle gap */
}

static void run_model(uint64_t seed, uint32_t start, int ops) {
  static model m;
  memset(&m, 0, sizeof(m));
  m.rng = seed;
  m.now = start;
  kite__wheel_init(&m.w, start);
  for (int op = 0; op < ops; op++) {
    int r = (int)between(&m.rng, 0, 99);
    if (r < 40) {
      int i = (int)between(&m.rng, 0, MODEL_N - 1);
      model_add(&m, i, m.now + random_offset(&m), m.now);
    } else if (r < 55) {
      model_del(&m, (int)between(&m.rng, 0, MODEL_N - 1));
    } else {
      model_advance(&m, m.now + random_step(&m));
    }
    assert_int_equal(kite__wheel_count(&m.w), model_count(&m));
    model_check_timeout(&m);
  }
  for (int i = 0; i < MODEL_N; i++)
    model_del(&m, i);
  assert_true(wheel_is_empty(&m.w));
}

static void random_ops_match_the_model(void **state) {
  (void)state;
  run_model(1, 0, 20000);
  run_model(2, 0xFFFF0000u, 20000); /* wraps within the first minute */
  run_model(3, 0x7FFFFF00u, 20000);
  run_model(4, 0xFFFFFFFFu, 20000);
  uint64_t s = 42;
  for (int i = 0; i < 6; i++)
    run_model(100 + (uint64_t)i, (uint32_t)splitmix(&s), 10000);
}

/* ---- callbacks that change the wheel ---- */

typedef struct periodic {
  kite__timer t;
  kite__wheel *w;
  uint32_t period, first, fires;
  bool exact; /* every firing at first + k * period */
} periodic;

static void periodic_cb(kite__timer *t, void *user) {
  periodic *p = container_of(t, periodic, t);
  uint32_t now = kite__wheel_now(p->w);
  if (now != p->first + p->fires * p->period)
    p->exact = false;
  p->fires++;
  kite__wheel_add(p->w, t, now + p->period);
}

static void periodic_timer_rearms_itself(void **state) {
  (void)state;
  kite__wheel w;
  uint32_t start = 0xFFFFFF00u; /* wraps after 256 ms */
  kite__wheel_init(&w, start);
  periodic p = {.w = &w, .period = 7, .first = start + 7, .exact = true};
  kite__wheel_add(&w, &p.t, start + 7);
  uint64_t s = 9;
  uint32_t now = start;
  size_t fired = 0;
  while (now - start < 100000) {
    now += (uint32_t)between(&s, 0, 300);
    fired += kite__wheel_advance(&w, now, periodic_cb, NULL);
    /* Never more than one period of slack. */
    int to = kite__wheel_timeout_ms(&w, now, -1);
    assert_true(to >= 1 && to <= 7);
  }
  assert_true(p.exact);
  assert_int_equal(p.fires, (now - start) / 7);
  assert_int_equal(fired, p.fires);
  assert_int_equal(kite__wheel_count(&w), 1);
}

typedef struct killer {
  kite__timer t;
  kite__wheel *w;
  kite__timer *victims[4];
  int fires;
} killer;

static void killer_cb(kite__timer *t, void *user) {
  killer *k = container_of(t, killer, t);
  k->fires++;
  for (int i = 0; i < 4; i++)
    if (k->victims[i])
      kite__wheel_del(k->w, k->victims[i]);
}

static void callback_deletes_timers_due_in_the_same_advance(void **state) {
  (void)state;
  kite__wheel w;
  kite__wheel_init(&w, 0xFFFFFFF0u);
  killer a = {.w = &w}, b = {.w = &w}, c = {.w = &w}, d = {.w = &w};
  /* a and b share a tick, c is later in the same advance, d is due already:
   * whichever of a, b fires first deletes the other and c. */
  a.victims[0] = &b.t;
  a.victims[1] = &c.t;
  b.victims[0] = &a.t;
  b.victims[1] = &c.t;
  d.victims[0] = &a.t; /* d fires first (due) and deletes a, b stays */
  kite__wheel_add(&w, &a.t, 0xFFFFFFFAu);
  kite__wheel_add(&w, &b.t, 0xFFFFFFFAu);
  kite__wheel_add(&w, &c.t, 0x00000005u);
  assert_int_equal(kite__wheel_count(&w), 3);
  assert_int_equal(kite__wheel_advance(&w, 0x10, killer_cb, NULL), 1);
  assert_int_equal(a.fires + b.fires, 1);
  assert_int_equal(c.fires, 0);
  assert_true(wheel_is_empty(&w));

  a.fires = b.fires = 0;
  kite__wheel_add(&w, &d.t, 0x0F); /* due: before the wheel's time */
  kite__wheel_add(&w, &a.t, 0x20);
  kite__wheel_add(&w, &b.t, 0x20);
  b.victims[0] = NULL;
  b.victims[1] = NULL;
  assert_int_equal(kite__wheel_advance(&w, 0x20, killer_cb, NULL), 2);
  assert_int_equal(d.fires, 1);
  assert_int_equal(a.fires, 0);
  assert_int_equal(b.fires, 1);
  assert_true(wheel_is_empty(&w));
}

typedef struct adder {
  kite__timer t;
  kite__wheel *w;
  rec *past, *same, *next;
  int fires;
} adder;

static void adder_cb(kite__timer *t, void *user) {
  adder *a = container_of(t, adder, t);
  uint32_t now = kite__wheel_now(a->w);
  a->fires++;
  if (a->past) {
    kite__wheel_add(a->w, &a->past->t, now - 5);
    kite__wheel_add(a->w, &a->same->t, now);
    kite__wheel_add(a->w, &a->next->t, now + 1);
    a->past = NULL;
  }
  kite__wheel_add(a->w, t, now); /* interval 0: due, next advance */
}

/* One callback for adders and recs: |user| is the adder. */
static void mixed_cb(kite__timer *t, void *user) {
  adder *a = user;
  if (t == &a->t) {
    adder_cb(t, NULL);
  } else {
    rec *r = container_of(t, rec, t);
    r->fires++;
    r->fired_at = kite__wheel_now(a->w);
  }
}

static void due_from_a_callback_waits_one_advance(void **state) {
  (void)state;
  kite__wheel w;
  kite__wheel_init(&w, 1000);
  rec past = {0}, same = {0}, next = {0};
  adder a = {.w = &w, .past = &past, .same = &same, .next = &next};
  kite__wheel_add(&w, &a.t, 1010);
  /* a fires at 1010 and files past (1005) and same (1010) as due, next at
   * 1011, and itself at 1010 (due): next fires in this advance, the due
   * ones wait for the next, so a re-arming at "now" cannot loop. */
  assert_int_equal(kite__wheel_advance(&w, 1020, mixed_cb, &a), 2);
  assert_int_equal(a.fires, 1);
  assert_int_equal(next.fires, 1);
  assert_int_equal(next.fired_at, 1011);
  assert_int_equal(past.fires + same.fires, 0);
  assert_int_equal(kite__wheel_count(&w), 3);
  assert_int_equal(kite__wheel_timeout_ms(&w, 1020, 100), 0);
  /* The next advance fires them at once, even with no time passing. */
  assert_int_equal(kite__wheel_advance(&w, 1020, mixed_cb, &a), 3);
  assert_int_equal(a.fires, 2);
  assert_int_equal(past.fires, 1);
  assert_int_equal(same.fires, 1);
  assert_int_equal(past.fired_at, 1020);
  assert_int_equal(kite__wheel_count(&w), 1); /* a, due again */
  kite__wheel_del(&w, &a.t);
  assert_true(wheel_is_empty(&w));
}

static void reentry_cb(kite__timer *t, void *user) {
  kite__wheel *w = user;
  assert_int_equal(kite__wheel_advance(w, kite__wheel_now(w) + 100,
                                       reentry_cb, w),
                   0);
}

static void advance_from_a_callback_is_refused(void **state) {
  (void)state;
  kite__wheel w;
  kite__wheel_init(&w, 0);
  kite__timer t = {0};
  kite__wheel_add(&w, &t, 10);
  assert_int_equal(kite__wheel_advance(&w, 10, reentry_cb, &w), 1);
  assert_int_equal(kite__wheel_now(&w), 10);
}

/* ---- timeouts, scale, range ---- */

/* Waking at each timeout reaches an expiry in at most one wakeup per level,
 * and never past it. */
static void following_the_timeout_reaches_each_expiry(void **state) {
  (void)state;
  uint64_t s = 5;
  for (int round = 0; round < 2000; round++) {
    kite__wheel w;
    uint32_t now = (uint32_t)splitmix(&s);
    kite__wheel_init(&w, now);
    rec r = {0};
    int64_t most = INT32_MAX >> (splitmix(&s) % 31); /* all scales */
    uint32_t e = now + (uint32_t)between(&s, 1, most);
    kite__wheel_add(&w, &r.t, e);
    int wakeups = 0;
    while (!r.fires) {
      int to = kite__wheel_timeout_ms(&w, now, -1);
      assert_true(to >= 1);
      assert_true(kite__ms_diff(now + (uint32_t)to, e) <= 0);
      now += (uint32_t)to;
      kite__wheel_advance(&w, now, record_cb, &w);
      wakeups++;
    }
    assert_int_equal(r.fired_at, e);
    assert_int_equal(now, e);
    /* Clamped ones take a few more: one re-filing per 2^30 ms. */
    assert_true(wakeups <= 2 * KITE__WHEEL_LEVELS + 2);
    assert_int_equal(kite__wheel_timeout_ms(&w, now, -1), -1);
  }
}

#define MANY 100000

static void many_timers_add_move_delete(void **state) {
  (void)state;
  static rec rs[MANY];
  memset(rs, 0, sizeof(rs));
  kite__wheel w;
  uint32_t start = 0xFFFF0000u;
  kite__wheel_init(&w, start);
  uint64_t s = 77;
  for (int i = 0; i < MANY; i++)
    kite__wheel_add(&w, &rs[i].t, start + (uint32_t)between(&s, 0, 1 << 26));
  assert_int_equal(kite__wheel_count(&w), MANY);
  for (int i = 0; i < MANY; i += 2) /* move: count unchanged */
    kite__wheel_add(&w, &rs[i].t, start + (uint32_t)between(&s, 1, 20000));
  assert_int_equal(kite__wheel_count(&w), MANY);
  for (int i = MANY - 1; i >= 0; i -= 3)
    kite__wheel_del(&w, &rs[i].t);
  for (int i = 0; i < MANY; i++)
    kite__wheel_del(&w, &rs[i].t);
  assert_true(wheel_is_empty(&w));
  assert_int_equal(kite__wheel_timeout_ms(&w, start, -1), -1);
  assert_int_equal(kite__wheel_advance(&w, start + (1u << 27), record_cb, &w),
                   0);

  /* And all of them fired, each at its own millisecond. */
  start = kite__wheel_now(&w);
  for (int i = 0; i < MANY; i++) {
    rs[i].fires = 0;
    kite__wheel_add(&w, &rs[i].t, start + (uint32_t)between(&s, 1, 600000));
  }
  uint32_t now = start;
  size_t fired = 0;
  while (kite__wheel_count(&w)) {
    int to = kite__wheel_timeout_ms(&w, now, 1000);
    assert_true(to >= 1 && to <= 1000);
    now += (uint32_t)to;
    fired += kite__wheel_advance(&w, now, record_cb, &w);
  }
  assert_int_equal(fired, MANY);
  for (int i = 0; i < MANY; i++) {
    assert_int_equal(rs[i].fires, 1);
    assert_int_equal(rs[i].fired_at, rs[i].t.expire_ms);
  }
  assert_true(wheel_is_empty(&w));
}

/* Past the 2^30 ms range: filed at its end, re-filed, fired on time. */
static void far_expiries_are_clamped_and_fire_on_time(void **state) {
  (void)state;
  static const uint32_t offs[] = {KITE__WHEEL_RANGE_MS - 1,
                                  KITE__WHEEL_RANGE_MS,
                                  KITE__WHEEL_RANGE_MS + 1,
                                  KITE__WHEEL_RANGE_MS + 12345,
                                  1500000000u,
                                  2100000001u,
                                  INT32_MAX};
  enum { N = sizeof(offs) / sizeof(offs[0]) };
  kite__wheel w;
  uint32_t start = 0xFFFF0000u;
  kite__wheel_init(&w, start);
  rec rs[N];
  memset(rs, 0, sizeof(rs));
  for (int i = 0; i < N; i++)
    kite__wheel_add(&w, &rs[i].t, start + offs[i]);
  /* Steps of ~100 million ms, each stopping one short of some expiry. */
  uint32_t now = start;
  for (int step = 0; kite__wheel_count(&w); step++) {
    uint32_t next = now + 99999989u;
    for (int i = 0; i < N; i++)
      if (!rs[i].fires && kite__ms_diff(start + offs[i] - 1, now) > 0 &&
          kite__ms_diff(start + offs[i] - 1, next) < 0)
        next = start + offs[i] - 1;
    now = next;
    kite__wheel_advance(&w, now, record_cb, &w);
    for (int i = 0; i < N; i++) {
      bool due = kite__ms_diff(start + offs[i], now) <= 0;
      assert_int_equal(rs[i].fires, due ? 1 : 0);
      if (due)
        assert_int_equal(rs[i].fired_at, start + offs[i]);
      else {
        int to = kite__wheel_timeout_ms(&w, now, -1);
        assert_true(to >= 1 &&
                    kite__ms_diff(now + (uint32_t)to, start + offs[i]) <= 0);
      }
    }
    assert_true(step < 100);
  }
}

/* A long idle gap costs a step per cascade, not one per millisecond. */
static void idle_gaps_are_skipped(void **state) {
  (void)state;
  kite__wheel w;
  kite__wheel_init(&w, 0xFFFFFFFFu - 1000);
  assert_int_equal(kite__wheel_advance(&w, kite__wheel_now(&w) + 600000,
                                       record_cb, &w),
                   0);
  assert_int_equal(w.steps, 0);
  rec r = {0};
  uint32_t now = kite__wheel_now(&w);
  kite__wheel_add(&w, &r.t, now + 300000); /* five minutes, level 3 */
  assert_int_equal(kite__wheel_advance(&w, now + 600000, record_cb, &w), 1);
  assert_int_equal(r.fired_at, now + 300000);
  assert_true(w.steps <= KITE__WHEEL_LEVELS);
  w.steps = 0;
  now = kite__wheel_now(&w);
  kite__wheel_add(&w, &r.t, now + INT32_MAX); /* clamped */
  assert_int_equal(kite__wheel_advance(&w, now + INT32_MAX, record_cb, &w), 1);
  assert_int_equal(r.fired_at, now + INT32_MAX);
  assert_true(w.steps <= 2 * KITE__WHEEL_LEVELS + 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(empty_wheel),
      cmocka_unit_test(level_edges_fire_exactly),
      cmocka_unit_test(random_ops_match_the_model),
      cmocka_unit_test(periodic_timer_rearms_itself),
      cmocka_unit_test(callback_deletes_timers_due_in_the_same_advance),
      cmocka_unit_test(due_from_a_callback_waits_one_advance),
      cmocka_unit_test(advance_from_a_callback_is_refused),
      cmocka_unit_test(following_the_timeout_reaches_each_expiry),
      cmocka_unit_test(many_timers_add_move_delete),
      cmocka_unit_test(far_expiries_are_clamped_and_fire_on_time),
      cmocka_unit_test(idle_gaps_are_skipped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
