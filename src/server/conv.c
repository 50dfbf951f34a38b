#include "server/conv.h"

#include "proto/control.h"

#include <sodium.h>

bool kite__conv_usable(const kite__map *live, uint32_t conv) {
  uint32_t slot;
  return conv != KITE__CTRL_MAGIC && !kite__map_get(live, kite__conv_key(conv), &slot);
}

uint32_t kite__conv_new(const kite__map *live, uint32_t shard) {
  for (;;) {
    uint32_t conv = kite__conv_make(shard, randombytes_random());
    if (kite__conv_usable(live, conv))
      return conv;
  }
}
