// clusterd plugin SDK — CLUSTERD_EXPORT_PLUGIN: the descriptor, vtables and noexcept trampolines of
// a plugin class, checked at compile time (options, constraints, names).
#ifndef CLUSTERD_EXPORT_HPP
#define CLUSTERD_EXPORT_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "config.hpp"
#include "host.hpp"
#include "options.hpp"
#include "plugin_base.hpp"

namespace clusterd {

// ---- Export machinery ------------------------------------------------------------------------

namespace detail {

template <class T, class = void>
struct has_options : std::false_type {};
template <class T>
struct has_options<T, std::void_t<decltype(T::kOptions)>> : std::true_type {};
template <class T, class = void>
struct has_aliases : std::false_type {};
template <class T>
struct has_aliases<T, std::void_t<decltype(T::kAliases)>> : std::true_type {};
template <class T, class = void>
struct has_read_only_commands : std::false_type {};
template <class T>
struct has_read_only_commands<T, std::void_t<decltype(T::kReadOnlyCommands)>> : std::true_type {};
template <class T, class = void>
struct has_flags : std::false_type {};
template <class T>
struct has_flags<T, std::void_t<decltype(T::kFlags)>> : std::true_type {};
template <class T, class = void>
struct has_description : std::false_type {};
template <class T>
struct has_description<T, std::void_t<decltype(T::kDescription)>> : std::true_type {};
template <class T, class = void>
struct has_validate : std::false_type {};
template <class T>
struct has_validate<T, std::void_t<decltype(&T::validate)>> : std::true_type {};

// Whether T overrides an optional operation, decided at compile time so that the C interface
// can say "not implemented" with NULL. If `&T::member` is well-formed, its type tells whether
// it is the base's; if it is ill-formed, T declares the member non-public: an override.
#define CLUSTERD_DETAIL_OVERRIDE_TRAIT(trait, member, BaseMemberPtr) \
  template <class T, class = void>                                   \
  struct trait : std::true_type {};                                  \
  template <class T>                                                 \
  struct trait<T, std::void_t<decltype(&T::member)>>                 \
      : std::bool_constant<!std::is_same_v<decltype(&T::member), BaseMemberPtr>> {};
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_refresh_t, refresh, void (Strategy::*)())
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_list_nodes_t, list_nodes, void (Transport::*)(Id))
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_cancel_t, cancel, void (Transport::*)(Id))
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_local_node_t, local_node,
                               std::optional<std::string> (Transport::*)())
CLUSTERD_DETAIL_OVERRIDE_TRAIT(overrides_control_request_t, control_request,
                               void (Plugin::*)(Id, std::string_view))
#undef CLUSTERD_DETAIL_OVERRIDE_TRAIT

// True when `key` is `base` followed by `suffix` ("token_file" = "token" + "_file").
constexpr bool is_suffixed(const char *key, const char *base, const char *suffix) noexcept {
  for (; *base != '\0'; ++key, ++base)
    if (*key != *base) return false;
  return str_equal(key, suffix);
}

// True when every '|'-separated key of `keys` (NULL: none) names another option of `options`.
template <std::size_t N>
constexpr bool keys_declared(const char *keys, const char *self,
                             const clusterd_option_t (&options)[N]) noexcept {
  while (keys != nullptr && *keys != '\0') {
    const char *end = keys;
    while (*end != '\0' && *end != '|') ++end;
    bool found = false;
    for (std::size_t j = 0; j < N && !found; ++j) {
      const char *a = keys, *b = options[j].key;
      while (a != end && *b != '\0' && *a == *b) ++a, ++b;
      found = a == end && *b == '\0' && !str_equal(options[j].key, self);
    }
    if (!found) return false;
    keys = *end == '|' ? end + 1 : end;
  }
  return true;
}

// True when the constraints of `o` fit its type (the host checks the same at load).
constexpr bool constraints_fit(const clusterd_option_t &o) noexcept {
  const bool text = o.type == CLUSTERD_OPT_STRING || o.type == CLUSTERD_OPT_STRING_LIST;
  const bool bounded = (o.flags & (CLUSTERD_OPT_MIN | CLUSTERD_OPT_MAX)) != 0;
  if (o.format > CLUSTERD_FORMAT_NODE_BASENAME || (o.format != CLUSTERD_FORMAT_ANY && !text))
    return false;
  if ((o.flags & CLUSTERD_OPT_NONEMPTY) != 0 && !text) return false;
  if ((o.flags & CLUSTERD_OPT_FINITE) != 0 && o.type != CLUSTERD_OPT_DURATION) return false;
  if (bounded && (o.type == CLUSTERD_OPT_BOOL || o.type == CLUSTERD_OPT_DOUBLE)) return false;
  if ((o.flags & CLUSTERD_OPT_MIN) != 0 && (o.flags & CLUSTERD_OPT_MAX) != 0 && o.min > o.max)
    return false;
  return o.reserved2 == 0;
}

// Checks one option array entry by entry; returns false on the first bad one.
template <std::size_t N>
constexpr bool options_valid(const clusterd_option_t (&options)[N]) noexcept {
  constexpr uint32_t kKnownFlags = CLUSTERD_OPT_REQUIRED | CLUSTERD_OPT_SECRET |
                                   CLUSTERD_OPT_NONEMPTY | CLUSTERD_OPT_FINITE | CLUSTERD_OPT_MIN |
                                   CLUSTERD_OPT_MAX;
  for (std::size_t i = 0; i < N; ++i) {
    const clusterd_option_t &o = options[i];
    if (o.struct_size != sizeof(clusterd_option_t)) return false;
    if (o.type < CLUSTERD_OPT_STRING || o.type > CLUSTERD_OPT_STRING_LIST) return false;
    if ((o.flags & ~kKnownFlags) != 0 || o.reserved != 0) return false;
    if (!constraints_fit(o) || !keys_declared(o.needs, o.key, options) ||
        !keys_declared(o.conflicts, o.key, options))
      return false;
    if (!is_snake_name(o.key) || o.description == nullptr) return false;
    if ((o.flags & CLUSTERD_OPT_REQUIRED) != 0 && o.default_value != nullptr) return false;
    for (std::size_t j = 0; j < N; ++j) {
      if (j < i && str_equal(options[j].key, o.key)) return false;
      // The host reads a secret KEY also from KEY_file / KEY_env: those names are taken.
      if ((o.flags & CLUSTERD_OPT_SECRET) != 0 && j != i && is_snake_name(options[j].key) &&
          (is_suffixed(options[j].key, o.key, "_file") ||
           is_suffixed(options[j].key, o.key, "_env")))
        return false;
    }
  }
  return true;
}

template <class T, std::size_t... I>
struct AliasList {
  static constexpr const char *value[] = {T::kAliases[I]..., nullptr};
};
template <class T, std::size_t... I>
constexpr const char *const *alias_list(std::index_sequence<I...>) noexcept {
  return AliasList<T, I...>::value;
}
template <class T, std::size_t... I>
struct ReadOnlyList {
  static constexpr const char *value[] = {T::kReadOnlyCommands[I]..., nullptr};
};
template <class T, std::size_t... I>
constexpr const char *const *read_only_list(std::index_sequence<I...>) noexcept {
  return ReadOnlyList<T, I...>::value;
}

// Emits the descriptor, the instance vtable and the kind interface of plugin class T, and the
// noexcept trampolines between them. Used by CLUSTERD_EXPORT_PLUGIN.
template <class T>
struct Exporter {
  static constexpr bool kIsStrategy = std::is_base_of_v<Strategy, T>;
  static constexpr bool kIsTransport = std::is_base_of_v<Transport, T>;

  static_assert(
      kIsStrategy != kIsTransport,
      "a plugin class derives from exactly one of clusterd::Strategy, clusterd::Transport");
  static_assert(
      std::is_default_constructible_v<T>,
      "a plugin class needs a default constructor (it must not use the host before init)");
  static_assert(!std::is_abstract_v<T>, "a plugin class must implement every pure virtual");
  static_assert(std::is_convertible_v<decltype(T::kName), const char *>,
                "define `static constexpr const char *kName = \"...\";`");
  static_assert(is_snake_name(T::kName), "kName must match [a-z0-9_]+");
  static_assert(std::is_convertible_v<decltype(T::kVersion), const char *>,
                "define `static constexpr const char *kVersion = \"1.0.0\";` (semver)");

  static constexpr const char *description() noexcept {
    if constexpr (has_description<T>::value) {
      static_assert(std::is_convertible_v<decltype(T::kDescription), const char *>,
                    "kDescription must be a string");
      return T::kDescription;
    } else {
      return "";
    }
  }
  static constexpr uint32_t flags() noexcept {
    if constexpr (has_flags<T>::value) {
      static_assert(std::is_convertible_v<decltype(T::kFlags), uint32_t>,
                    "kFlags must be a uint32_t");
      return T::kFlags;
    } else {
      return 0;
    }
  }
  static constexpr const clusterd_option_t *options() noexcept {
    if constexpr (has_options<T>::value) {
      using A = std::remove_reference_t<decltype(T::kOptions)>;
      static_assert(
          std::is_array_v<A> &&
              std::is_same_v<std::remove_cv_t<std::remove_extent_t<A>>, clusterd_option_t>,
          "kOptions must be `static constexpr clusterd_option_t kOptions[] = {...};`");
      static_assert(options_valid(T::kOptions),
                    "kOptions: an entry has a bad key ([a-z0-9_]+), type, flags, no description, "
                    "a duplicate key, is required and defaulted, is named KEY_file/KEY_env "
                    "next to a secret KEY, has constraints that do not fit its type, or "
                    "needs/conflicts with a key that is not another option");
      return T::kOptions;
    } else {
      return nullptr;
    }
  }
  static constexpr uint32_t option_count() noexcept {
    if constexpr (has_options<T>::value) {
      return static_cast<uint32_t>(std::extent_v<std::remove_reference_t<decltype(T::kOptions)>>);
    } else {
      return 0;
    }
  }
  static constexpr const char *const *aliases() noexcept {
    if constexpr (has_aliases<T>::value) {
      using A = std::remove_reference_t<decltype(T::kAliases)>;
      static_assert(
          std::is_array_v<A> && std::is_convertible_v<std::remove_extent_t<A>, const char *>,
          "kAliases must be `static constexpr const char *kAliases[] = {...};`");
      return alias_list<T>(std::make_index_sequence<std::extent_v<A>>());
    } else {
      return nullptr;
    }
  }

  // ---- trampolines: noexcept, NULL-tolerant ----
  // They reach the object through Plugin*, so that the class's own members (which may have
  // any name) never hide the wrapper's.
  static Plugin *self_of(const clusterd_plugin_t *self) noexcept {
    return self != nullptr ? static_cast<Plugin *>(self->plugin_data) : nullptr;
  }

  static clusterd_plugin_t *CLUSTERD_ABI create(const clusterd_host_t *host) noexcept {
    if (host == nullptr) return nullptr;
    try {
      T *object = new T();
      Plugin *p = object;
      p->host_.bind(host);
      p->raw_.struct_size = sizeof(clusterd_plugin_t);
      p->raw_.plugin_data = p;
      p->raw_.init = &init;
      p->raw_.start = &start;
      p->raw_.stop = &stop;
      p->raw_.destroy = &destroy;
      p->raw_.last_error = &last_error;
      p->raw_.get_interface = &get_interface;
      return &p->raw_;
    } catch (...) {
      return nullptr;
    }
  }
  static Status CLUSTERD_ABI init(clusterd_plugin_t *self,
                                  const clusterd_config_t *config) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return CLUSTERD_E_INVALID_ARG;
    return p->guard([&] {
      if (config == nullptr) throw Error(CLUSTERD_E_INVALID_ARG, "init: no configuration");
      p->init(Config(config));
    });
  }
  static Status CLUSTERD_ABI start(clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return CLUSTERD_E_INVALID_ARG;
    return p->guard([&] { p->start(); });
  }
  static void CLUSTERD_ABI stop(clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return;
    const Status status = p->guard([&] { p->stop(); });
    if (status != CLUSTERD_OK) p->host_.error("exception escaped stop(): " + p->last_error_);
    p->mark_stopped();
  }
  static void CLUSTERD_ABI destroy(clusterd_plugin_t *self) noexcept {
    delete self_of(self);  // handles still alive cancel (or, after stop, just free) here
  }
  static const char *CLUSTERD_ABI last_error(const clusterd_plugin_t *self) noexcept {
    const Plugin *p = self_of(self);
    if (p == nullptr || p->last_error_.empty()) return nullptr;
    return p->last_error_.c_str();
  }
  static const void *CLUSTERD_ABI get_interface(const clusterd_plugin_t *self,
                                                const char *id) noexcept {
    if (self_of(self) == nullptr || id == nullptr) return nullptr;
    if constexpr (kIsStrategy) {
      if (std::strcmp(id, CLUSTERD_INTERFACE_STRATEGY) == 0) return &kStrategyInterface;
    } else {
      if (std::strcmp(id, CLUSTERD_INTERFACE_TRANSPORT) == 0) return &kTransportInterface;
    }
    if constexpr (overrides_control_request_t<T>::value) {
      if (std::strcmp(id, CLUSTERD_INTERFACE_CONTROL) == 0) return &kControlInterface;
    }
    return nullptr;
  }

  // Control extension
  static Status CLUSTERD_ABI control_request(clusterd_plugin_t *self, clusterd_id_t session,
                                             const char *line, size_t length) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || session == 0 || line == nullptr) return CLUSTERD_E_INVALID_ARG;
    return p->guard([&] { p->control_request(session, std::string_view(line, length)); });
  }
  static void CLUSTERD_ABI control_closed(clusterd_plugin_t *self, clusterd_id_t session) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || session == 0) return;
    const Status status = p->guard([&] { p->control_closed(session); });
    if (status != CLUSTERD_OK)
      p->host_.error("exception escaped control_closed(): " + p->last_error_);
  }
  // kReadOnlyCommands (optional): the control commands that only report (control.h).
  static constexpr const char *const *read_only_commands() noexcept {
    if constexpr (has_read_only_commands<T>::value) {
      using A = std::remove_reference_t<decltype(T::kReadOnlyCommands)>;
      static_assert(
          std::is_array_v<A> && std::is_convertible_v<std::remove_extent_t<A>, const char *>,
          "kReadOnlyCommands must be `static constexpr const char *kReadOnlyCommands[] = "
          "{...};`");
      static_assert(overrides_control_request_t<T>::value,
                    "kReadOnlyCommands without control_request: the plugin has no control");
      return read_only_list<T>(std::make_index_sequence<std::extent_v<A>>());
    } else {
      return nullptr;
    }
  }
  static constexpr clusterd_control_t kControlInterface = {
      static_cast<uint32_t>(sizeof(clusterd_control_t)), 0, &control_request, &control_closed,
      read_only_commands()};

  // Strategy
  static Status CLUSTERD_ABI refresh(clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsStrategy) {
      return p->guard([&] { static_cast<Strategy *>(p)->refresh(); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static constexpr bool overrides_refresh() noexcept {
    if constexpr (kIsStrategy) {
      return overrides_refresh_t<T>::value;
    } else {
      return false;
    }
  }

  // Transport
  static Status CLUSTERD_ABI connect(clusterd_plugin_t *self, clusterd_id_t op,
                                     const char *node) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0 || node == nullptr) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsTransport) {
      return p->guard([&] { static_cast<Transport *>(p)->connect(op, std::string_view(node)); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static Status CLUSTERD_ABI disconnect(clusterd_plugin_t *self, clusterd_id_t op,
                                        const char *node) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0 || node == nullptr) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsTransport) {
      return p->guard([&] { static_cast<Transport *>(p)->disconnect(op, std::string_view(node)); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static Status CLUSTERD_ABI list_nodes(clusterd_plugin_t *self, clusterd_id_t op) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0) return CLUSTERD_E_INVALID_ARG;
    if constexpr (kIsTransport) {
      return p->guard([&] { static_cast<Transport *>(p)->list_nodes(op); });
    } else {
      return CLUSTERD_E_UNSUPPORTED;
    }
  }
  static void CLUSTERD_ABI cancel(clusterd_plugin_t *self, clusterd_id_t op) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr || op == 0) return;
    if constexpr (kIsTransport) {
      const Status status = p->guard([&] { static_cast<Transport *>(p)->cancel(op); });
      if (status != CLUSTERD_OK) p->host_.error("exception escaped cancel(): " + p->last_error_);
    }
  }
  static const char *CLUSTERD_ABI local_node(const clusterd_plugin_t *self) noexcept {
    Plugin *p = self_of(self);
    if (p == nullptr) return nullptr;
    if constexpr (kIsTransport) {
      bool known = false;
      const Status status = p->guard([&] {
        std::optional<std::string> name = static_cast<Transport *>(p)->local_node();
        known = name.has_value();
        if (known) p->local_node_ = std::move(*name);
      });
      if (status != CLUSTERD_OK || !known) return nullptr;
      return p->local_node_.c_str();
    } else {
      return nullptr;
    }
  }
  static constexpr bool overrides_list_nodes() noexcept {
    if constexpr (kIsTransport) {
      return overrides_list_nodes_t<T>::value;
    } else {
      return false;
    }
  }
  static constexpr bool overrides_cancel() noexcept {
    if constexpr (kIsTransport) {
      return overrides_cancel_t<T>::value;
    } else {
      return false;
    }
  }
  static constexpr bool overrides_local_node() noexcept {
    if constexpr (kIsTransport) {
      return overrides_local_node_t<T>::value;
    } else {
      return false;
    }
  }

  static constexpr clusterd_strategy_t kStrategyInterface = {
      static_cast<uint32_t>(sizeof(clusterd_strategy_t)), 0,
      overrides_refresh() ? &refresh : nullptr};
  static constexpr clusterd_transport_t kTransportInterface = {
      static_cast<uint32_t>(sizeof(clusterd_transport_t)),
      0,
      &connect,
      &disconnect,
      overrides_list_nodes() ? &list_nodes : nullptr,
      overrides_cancel() ? &cancel : nullptr,
      overrides_local_node() ? &local_node : nullptr};

  // T's `static void validate(const Config &, Problems &)`, behind a noexcept trampoline: an
  // exception becomes one more problem, so a throwing check still refuses the config.
  static void CLUSTERD_ABI validate(const clusterd_config_t *config,
                                    const clusterd_problems_t *problems) noexcept {
    if (config == nullptr || problems == nullptr) return;
    Problems out(problems);
    try {
      T::validate(Config(config), out);
    } catch (...) {
      std::string message;
      current_exception_status(message);
      try {
        message.insert(0, "the plugin's validate() failed: ");
      } catch (...) {
      }
      out.add(message);
    }
  }
  static constexpr void(CLUSTERD_ABI *validator() noexcept)(const clusterd_config_t *,
                                                            const clusterd_problems_t *) {
    if constexpr (has_validate<T>::value) {
      static_assert(std::is_same_v<decltype(&T::validate), void (*)(const Config &, Problems &)>,
                    "validate must be `static void validate(const clusterd::Config &, "
                    "clusterd::Problems &)`");
      return &validate;
    } else {
      return nullptr;
    }
  }

  static constexpr clusterd_plugin_descriptor_t kDescriptor = {
      static_cast<uint32_t>(sizeof(clusterd_plugin_descriptor_t)),
      T::kKind,
      flags(),
      option_count(),
      T::kName,
      T::kVersion,
      description(),
      aliases(),
      options(),
      &create,
      validator()};

  static const clusterd_plugin_descriptor_t *CLUSTERD_ABI get_descriptor() noexcept {
    return &kDescriptor;
  }

  /// The entry struct CLUSTERD_EXPORT_PLUGIN exports.
  static constexpr clusterd_plugin_entry_t kEntry = {
      static_cast<uint32_t>(sizeof(clusterd_plugin_entry_t)),
      CLUSTERD_ABI_MAJOR,
      CLUSTERD_ABI_MINOR,
      0,
      nullptr,
      nullptr,
      &get_descriptor};
};

}  // namespace detail

}  // namespace clusterd

/// Exports plugin class `ClassName` (a clusterd::Strategy or clusterd::Transport subclass with
/// static constexpr kName, kVersion and optionally kDescription, kFlags, kAliases, kOptions,
/// kReadOnlyCommands):
/// defines the library's one exported symbol, clusterd_plugin_entry_v1, as a constant (no
/// static constructor runs). Use it once per library, at namespace scope in one source file.
#define CLUSTERD_EXPORT_PLUGIN(ClassName) \
  CLUSTERD_PLUGIN_ENTRY = ::clusterd::detail::Exporter<ClassName>::kEntry

#endif  // CLUSTERD_EXPORT_HPP
