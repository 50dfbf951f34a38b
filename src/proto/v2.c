#include "proto/v2.h"

#include <sodium.h>

#include "kite/error.h"

const char *kite__v2_strerror(int err) {
  switch (err) {
  case KITE__V2_EMAGIC: return "v2: wrong magic";
  case KITE__V2_ESIZE: return "v2: wrong size";
  case KITE__V2_EVERSION: return "v2: another version";
  case KITE__V2_ETYPE: return "v2: type not taken";
  case KITE__V2_EAUTH: return "v2: does not verify";
  case KITE__V2_EFORM: return "v2: ill-formed fields";
  case KITE__V2_EEXPIRED: return "v2: token expired or too far ahead";
  case KITE__V2_ENOTHERE: return "v2: server not among the token's addresses";
  case KITE__V2_ESTALE: return "v2: stale packet number";
  case KITE__V2_EDUP: return "v2: duplicate packet number";
  case KITE__V2_ELIMIT: return "v2: packet or record number past the limit";
  case KITE__V2_EBOUND: return "v2: token bound to another address";
  case KITE__V2_EUSED: return "v2: token already used from this address";
  case KITE__V2_EFULL: return "v2: token record full";
  case KITE__V2_EPROTO: return "v2: protocol error";
  }
  return "unknown";
}

int kite__v2_init(void) {
  return sodium_init() < 0 ? KITE_ESYS : 0;
}
