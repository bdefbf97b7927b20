/* clusterd plugin SDK — umbrella header: include this to write a strategy or transport.
 * C11 and C++; no dependencies. The rules of the ABI are in sdk/docs/abi.md. */
#ifndef CLUSTERD_CLUSTERD_H
#define CLUSTERD_CLUSTERD_H

#include "common.h"
#include "config.h"
#include "control.h"
#include "host.h"
#include "node_name.h"
#include "plugin.h"
#include "process.h"
#include "services.h"
#include "strategy.h"
#include "transport.h"

#endif /* CLUSTERD_CLUSTERD_H */
