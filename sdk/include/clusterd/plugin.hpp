// clusterd plugin SDK — header-only C++17 wrapper over the C ABI: base classes, typed config,
// RAII handles for host services, and an export macro whose trampolines never let exceptions out.
// This umbrella includes every part; each part (host.hpp, config.hpp, services.hpp,
// plugin_base.hpp, export.hpp, options.hpp, backoff.hpp, node_name.hpp, files.hpp) also stands
// alone.
#ifndef CLUSTERD_PLUGIN_HPP
#define CLUSTERD_PLUGIN_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "clusterd/plugin.hpp needs C++17 or newer (use clusterd/clusterd.h from C)"
#endif

// Nothing in this header is exported: everything is inline or a template, compiled into the
// plugin with hidden visibility. The only thing that crosses into the host is the C ABI of
// clusterd.h, so the wrapper cannot break the ABI, and two plugins built with different versions
// of it coexist in one daemon.
//
// Threading: like the C ABI, every member is [loop-thread] unless marked [thread-safe].

#include "backoff.hpp"
#include "config.hpp"
#include "export.hpp"
#include "files.hpp"
#include "host.hpp"
#include "node_name.hpp"
#include "options.hpp"
#include "plugin_base.hpp"
#include "services.hpp"

#endif  // CLUSTERD_PLUGIN_HPP
