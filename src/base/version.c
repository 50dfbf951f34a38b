#include "kite/version.h"

unsigned kite_version(void) { return KITE_VERSION_HEX; }

const char *kite_version_string(void) { return KITE_VERSION_STRING; }
