/*
 * The Lua scripts of the Redis directory (docs/CLUSTER.md). Each runs
 * atomically on Redis: no other client's command interleaves. ARGV[1] is
 * always the key prefix. The keys are derived inside the scripts, so they
 * all must live on one Redis (not a Redis Cluster with several shards:
 * see docs/CLUSTER.md).
 */
#ifndef KITE_CLUSTER_LUA_H
#define KITE_CLUSTER_LUA_H

/* A node's renewal: its registration and every lease it holds, in one
 * step, so that a directory never sees the node back without its rooms
 * (after an outage both have lapsed). ARGV: prefix, id, addr, seats,
 * sessions, rooms (n), node_ttl_ms, lease_ttl_ms, then the n room names.
 * Its load (the sorted set's score) is its sessions plus the seats the
 * directory reserved on it since the last renewal (players on their way:
 * the earlier ones are sessions by now), which are consumed. Returns one integer per room: 1 ours
 * (taken with SET NX PX, or renewed), 0 another node's. */
#define KITE__LUA_REGISTER                                                   \
  "local P, id = ARGV[1], ARGV[2]\n"                                         \
  "local k = P .. 'node:' .. id\n"                                           \
  "redis.call('HSET', k, 'addr', ARGV[3], 'seats', ARGV[4],"                 \
  " 'sessions', ARGV[5], 'rooms', ARGV[6])\n"                                \
  "redis.call('PEXPIRE', k, ARGV[7])\n"                                      \
  "local rk = P .. 'resv:' .. id\n"                                          \
  "local r = tonumber(redis.call('GET', rk) or '0')\n"                       \
  "redis.call('DEL', rk)\n"                                                  \
  "redis.call('ZADD', P .. 'nodes', tonumber(ARGV[5]) + r, id)\n"            \
  "local out = {}\n"                                                         \
  "for i = 9, 8 + tonumber(ARGV[6]) do\n"                                    \
  "  local rk = P .. 'room:' .. ARGV[i]\n"                                   \
  "  if redis.call('SET', rk, id, 'NX', 'PX', ARGV[8]) then out[#out+1] = 1\n" \
  "  elseif redis.call('GET', rk) == id then\n"                              \
  "    redis.call('PEXPIRE', rk, ARGV[8]) out[#out+1] = 1\n"                 \
  "  else out[#out+1] = 0 end\n"                                             \
  "end\n"                                                                    \
  "return out\n"

/* A node leaving gracefully. ARGV: prefix, id. */
#define KITE__LUA_UNREGISTER                                                 \
  "redis.call('DEL', ARGV[1] .. 'node:' .. ARGV[2])\n"                       \
  "redis.call('ZREM', ARGV[1] .. 'nodes', ARGV[2])\n"                        \
  "return 1\n"

/* Takes or renews a room's lease. ARGV: prefix, room, id, lease_ttl_ms.
 * 1: ours (taken with SET NX PX, or renewed); 0: another node's. */
#define KITE__LUA_LEASE                                                      \
  "local k = ARGV[1] .. 'room:' .. ARGV[2]\n"                                \
  "if redis.call('SET', k, ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end\n" \
  "if redis.call('GET', k) == ARGV[3] then\n"                                \
  "  redis.call('PEXPIRE', k, ARGV[4]) return 1 end\n"                       \
  "return 0\n"

/* Gives a lease back if it is still ours. ARGV: prefix, room, id. */
#define KITE__LUA_RELEASE                                                    \
  "local k = ARGV[1] .. 'room:' .. ARGV[2]\n"                                \
  "if redis.call('GET', k) == ARGV[3] then redis.call('DEL', k) end\n"       \
  "return 1\n"

/* Placement (kite_directory_place). ARGV: prefix, room, lease_ms,
 * resv_ms. Returns {node id, addr, held 0/1} or an error "KITE nonode" /
 * "KITE full". A room whose holder is no longer registered is free. The
 * least-loaded node is the lowest score; entries whose node key has
 * lapsed are removed on the way (at most 64 per call). */
#define KITE__LUA_PLACE                                                      \
  "local P, room = ARGV[1], ARGV[2]\n"                                       \
  "local function reserve(id)\n"                                             \
  "  redis.call('ZINCRBY', P .. 'nodes', 1, id)\n"                           \
  "  redis.call('INCR', P .. 'resv:' .. id)\n"                               \
  "  redis.call('PEXPIRE', P .. 'resv:' .. id, ARGV[4])\n"                   \
  "end\n"                                                                    \
  "local rk = P .. 'room:' .. room\n"                                        \
  "local holder = redis.call('GET', rk)\n"                                   \
  "if holder then\n"                                                         \
  "  local addr = redis.call('HGET', P .. 'node:' .. holder, 'addr')\n"      \
  "  if addr then reserve(holder) return {holder, addr, 1} end\n"            \
  "  redis.call('DEL', rk)\n"                                                \
  "end\n"                                                                    \
  "for i = 1, 64 do\n"                                                       \
  "  local c = redis.call('ZRANGE', P .. 'nodes', 0, 0, 'WITHSCORES')\n"     \
  "  if #c == 0 then break end\n"                                            \
  "  local n = redis.call('HMGET', P .. 'node:' .. c[1], 'addr', 'seats')\n" \
  "  if n[1] then\n"                                                         \
  "    if tonumber(c[2]) >= tonumber(n[2]) then\n"                           \
  "      return redis.error_reply('KITE full') end\n"                        \
  "    redis.call('SET', rk, c[1], 'PX', ARGV[3])\n"                         \
  "    reserve(c[1])\n"                                                      \
  "    return {c[1], n[1], 0}\n"                                             \
  "  end\n"                                                                  \
  "  redis.call('ZREM', P .. 'nodes', c[1])\n"                               \
  "end\n"                                                                    \
  "return redis.error_reply('KITE nonode')\n"

#endif
