"""The `command` transport of the watch benchmarks: a bash one-liner that appends
"NODE $EPOCHREALTIME" to a file, so a benchmark can tell when clusterd's connect ran for a node
(wall clock, comparable with time.time() on the same machine)."""
import harness


def transport_config(record):
    """The [transports.cmd] table lines that record each connect in the file `record`."""
    return ["[transports.cmd]", 'plugin = "command"',
            "connect = " + harness.toml_list(
                ["/bin/bash", "-c", f'echo "$1 $EPOCHREALTIME" >> {record}', "bash"])]


def connects(record):
    """{node: the time (seconds since the epoch, as text) its connect ran}."""
    try:
        with open(record) as f:
            return dict(line.split() for line in f if line.strip())
    except FileNotFoundError:
        return {}
