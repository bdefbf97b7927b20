/* send_one SOCKET TRANSPORT CHANNEL NODE TEXT: sends TEXT to NODE on a binary session of the
 * transport instance TRANSPORT (a partisan overlay) and prints how it was acknowledged.
 * Exit 0 if delivered, 1 otherwise. */
#include <clusterd/client.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: send_one SOCKET TRANSPORT CHANNEL NODE TEXT\n");
    return 2;
  }
  clusterd_client_options_t options;
  memset(&options, 0, sizeof options);
  options.struct_size = sizeof options;
  options.flags = CLUSTERD_CLIENT_SEND_ONLY;
  options.socket_path = argv[1];
  options.transport = argv[2];
  options.channel = argv[3];
  char error[256];
  clusterd_client_t *client = clusterd_client_open(&options, error, sizeof error);
  if (!client) {
    fprintf(stderr, "send_one: %s\n", error);
    return 1;
  }
  int status =
      clusterd_client_send_wait(client, argv[4], argv[5], strlen(argv[5]), NULL, NULL, 5000);
  if (status == CLUSTERD_CLIENT_DELIVERED)
    printf("delivered to %s\n", argv[4]);
  else
    fprintf(stderr, "send_one: not delivered (%d): %s\n", status, clusterd_client_error(client));
  clusterd_client_close(client);
  return status == CLUSTERD_CLIENT_DELIVERED ? 0 : 1;
}
