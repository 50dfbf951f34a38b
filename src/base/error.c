#include "kite/error.h"

const char *kite_strerror(int err) {
  switch (err) {
  case KITE_OK: return "success";
#define KITE__ERR_MSG(name, value, msg) case KITE_##name: return msg;
  KITE_ERRNO_MAP(KITE__ERR_MSG)
#undef KITE__ERR_MSG
  }
  return "unknown error";
}

const char *kite_err_name(int err) {
  switch (err) {
  case KITE_OK: return "OK";
#define KITE__ERR_NAME(name, value, msg) case KITE_##name: return #name;
  KITE_ERRNO_MAP(KITE__ERR_NAME)
#undef KITE__ERR_NAME
  }
  return "UNKNOWN";
}
