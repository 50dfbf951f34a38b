/* kite: a real-time game server framework. Include this for everything. */
#ifndef KITE_H
#define KITE_H

#include "kite/client.h"
#include "kite/error.h"
#include "kite/group.h"
#include "kite/log.h"
#include "kite/logic.h"
#include "kite/reason.h"
#include "kite/server.h"
#include "kite/timer.h"
#include "kite/token.h"
#include "kite/version.h"

#define KITE_PROTOCOL_VERSION 1

#endif
