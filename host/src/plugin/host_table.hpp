// The C side of the host table: the functions a plugin calls, bridged onto the host's
// services with the instance's bookkeeping (liveness checks, registration, containment).
#pragma once

#include <clusterd/clusterd.h>

namespace clusterd::plugin {

class Instance;

struct HostTable {
  // The table handed to one instance (host_data = the instance).
  static clusterd_host_t make(Instance *instance);
};

}  // namespace clusterd::plugin
