/* Example clusterd strategy in plain C11 against the C ABI (no C++ needed): reports the node
 * names of its required `nodes` option once at start and again on every refresh. Its options
 * declare constraints, and validate() checks what they cannot, so `clusterd check` catches every
 * bad value before anything runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clusterd/clusterd.h>

/* One instance. `base` comes first so that the clusterd_plugin_t the host holds is the
 * instance itself; plugin_data points back to it as well. */
typedef struct example {
  clusterd_plugin_t base;
  const clusterd_host_t *host;
  const clusterd_strategy_sink_t *sink;
  const char **nodes; /* the strings belong to the config view: valid until destroy */
  uint32_t count;
  char error[256]; /* last_error(); "" = none */
} example_t;

static example_t *self_of(const clusterd_plugin_t *self) {
  return self != NULL ? (example_t *)self->plugin_data : NULL;
}

static clusterd_status_t fail(example_t *ex, clusterd_status_t status, const char *message) {
  snprintf(ex->error, sizeof ex->error, "%s", message);
  return status;
}

static void report(example_t *ex) {
  ex->sink->set_nodes(ex->host, ex->nodes, ex->count);
}

static clusterd_status_t CLUSTERD_ABI example_init(clusterd_plugin_t *self,
                                                   const clusterd_config_t *config) {
  example_t *ex = self_of(self);
  const char *primary = NULL;
  uint32_t i;
  if (ex == NULL || config == NULL) return CLUSTERD_E_INVALID_ARG;
  ex->error[0] = '\0';

  /* Host tables and services grow by appending: check that what we call is there. */
  ex->sink = (const clusterd_strategy_sink_t *)ex->host->get_service(
      ex->host, CLUSTERD_SERVICE_STRATEGY_SINK);
  if (ex->sink == NULL || !CLUSTERD_STRUCT_HAS(ex->sink, clusterd_strategy_sink_t, set_nodes))
    return fail(ex, CLUSTERD_E_UNSUPPORTED, "the host offers no strategy sink");

  /* `nodes` is required, so the host has already rejected a config without it. */
  if (config->get_list_size(config, "nodes", &ex->count) != CLUSTERD_OK)
    return fail(ex, CLUSTERD_E_CONFIG, "cannot read option 'nodes'");
  ex->nodes = (const char **)calloc(ex->count > 0 ? ex->count : 1, sizeof *ex->nodes);
  if (ex->nodes == NULL) return fail(ex, CLUSTERD_E_NO_MEMORY, "out of memory");
  for (i = 0; i < ex->count; ++i) {
    if (config->get_list_item(config, "nodes", i, &ex->nodes[i]) != CLUSTERD_OK)
      return fail(ex, CLUSTERD_E_CONFIG, "cannot read option 'nodes'");
  }
  /* validate() made sure primary is one of the nodes: swap it to the front. */
  if (config->get_string(config, "primary", &primary) == CLUSTERD_OK) {
    for (i = 0; i < ex->count; ++i) {
      if (strcmp(ex->nodes[i], primary) == 0) {
        ex->nodes[i] = ex->nodes[0];
        ex->nodes[0] = primary;
        break;
      }
    }
  }
  return CLUSTERD_OK;
}

static clusterd_status_t CLUSTERD_ABI example_start(clusterd_plugin_t *self) {
  example_t *ex = self_of(self);
  if (ex == NULL) return CLUSTERD_E_INVALID_ARG;
  ex->error[0] = '\0';
  report(ex);
  return CLUSTERD_OK;
}

static void CLUSTERD_ABI example_stop(clusterd_plugin_t *self) {
  (void)self; /* nothing running: no timers, threads or requests */
}

static void CLUSTERD_ABI example_destroy(clusterd_plugin_t *self) {
  example_t *ex = self_of(self);
  if (ex == NULL) return;
  free(ex->nodes);
  free(ex);
}

static const char *CLUSTERD_ABI example_last_error(const clusterd_plugin_t *self) {
  const example_t *ex = self_of(self);
  return ex != NULL && ex->error[0] != '\0' ? ex->error : NULL;
}

static clusterd_status_t CLUSTERD_ABI example_refresh(clusterd_plugin_t *self) {
  example_t *ex = self_of(self);
  if (ex == NULL) return CLUSTERD_E_INVALID_ARG;
  ex->error[0] = '\0';
  report(ex);
  return CLUSTERD_OK;
}

static const clusterd_strategy_t example_strategy = {sizeof(clusterd_strategy_t), 0,
                                                     example_refresh};

static const void *CLUSTERD_ABI example_get_interface(const clusterd_plugin_t *self,
                                                      const char *id) {
  if (self == NULL || id == NULL) return NULL;
  if (strcmp(id, CLUSTERD_INTERFACE_STRATEGY) == 0) return &example_strategy;
  return NULL;
}

/* Must not call the host: keep the table and return. */
static clusterd_plugin_t *CLUSTERD_ABI example_create(const clusterd_host_t *host) {
  example_t *ex;
  if (host == NULL) return NULL;
  ex = (example_t *)calloc(1, sizeof *ex);
  if (ex == NULL) return NULL;
  ex->host = host;
  ex->base.struct_size = sizeof(clusterd_plugin_t);
  ex->base.plugin_data = ex;
  ex->base.init = example_init;
  ex->base.start = example_start;
  ex->base.stop = example_stop;
  ex->base.destroy = example_destroy;
  ex->base.last_error = example_last_error;
  ex->base.get_interface = example_get_interface;
  return &ex->base;
}

/* Designated initializers: fields a later ABI appends are then zero, which means "none". */
static const clusterd_option_t example_options[] = {
    {.struct_size = sizeof(clusterd_option_t),
     .type = CLUSTERD_OPT_STRING_LIST,
     .flags = CLUSTERD_OPT_REQUIRED | CLUSTERD_OPT_NONEMPTY,
     .key = "nodes",
     .description = "Node names (name@host) to report",
     .format = CLUSTERD_FORMAT_NODE_NAME},
    {.struct_size = sizeof(clusterd_option_t),
     .type = CLUSTERD_OPT_STRING,
     .key = "primary",
     .description = "One of nodes, reported first"},
};

/* What the declarations cannot say: `primary`, when set, is one of `nodes`. Pure, as the ABI
 * requires: it only reads the view and reports. */
static void CLUSTERD_ABI example_validate(const clusterd_config_t *config,
                                          const clusterd_problems_t *problems) {
  const char *primary = NULL, *node = NULL;
  uint32_t count = 0, i;
  if (config->get_string(config, "primary", &primary) != CLUSTERD_OK) return; /* not set */
  if (config->get_list_size(config, "nodes", &count) != CLUSTERD_OK) return;
  for (i = 0; i < count; ++i)
    if (config->get_list_item(config, "nodes", i, &node) == CLUSTERD_OK &&
        strcmp(node, primary) == 0)
      return;
  problems->report(problems, "primary", "must be one of the nodes");
}

static const clusterd_plugin_descriptor_t example_descriptor = {
    .struct_size = sizeof(clusterd_plugin_descriptor_t),
    .kind = CLUSTERD_KIND_STRATEGY,
    .option_count = sizeof example_options / sizeof example_options[0],
    .name = "example_c",
    .version = "1.0.0",
    .description = "Example strategy in C: reports a fixed list of nodes",
    .options = example_options,
    .create = example_create,
    .validate = example_validate,
};

static const clusterd_plugin_descriptor_t *CLUSTERD_ABI example_get_descriptor(void) {
  return &example_descriptor;
}

/* The library's one exported symbol. */
CLUSTERD_PLUGIN_ENTRY = {
    sizeof(clusterd_plugin_entry_t), CLUSTERD_ABI_MAJOR, CLUSTERD_ABI_MINOR, 0, NULL, NULL,
    example_get_descriptor};
