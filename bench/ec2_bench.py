#!/usr/bin/env python3
"""ec2 strategy: one discovery round of N instances over P DescribeInstances pages, in the
real daemon (the plugin built out of tree against BUILD_DIR's SDK, as tests/integration/
test_ec2.py does) against the local EC2 + IMDSv2 server of that test (SigV4 checked on every
request).

usage: bench/ec2_bench.py BUILD_DIR [--instances 1000] [--pages 1 10] [--runs 5]

Each instance is the recorded-shape instance item of test/fixtures/describe-instances-page2.xml
(about 4 KB of XML, with its network interface and tags), renumbered. A round is timed from the
server receiving the first DescribeInstances request to the daemon's status listing all N
nodes: signing, HTTP on loopback, the XML parse, set_nodes and the reconciler (the `command`
transport connects with `true`). Medians of --runs fresh daemons. Loopback only; processes
by PID.
"""
import argparse
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
import test_ec2  # noqa: E402
from harness import node_states, toml_list, toml_string  # noqa: E402


def pages_of(instances, pages):
    page2 = test_ec2.read("describe-instances-page2.xml")
    item = re.search(r"( *<item>\s*<instanceId>.*?</item>\n)(?= *</instancesSet>)", page2,
                     re.S).group(1)
    head, tail = page2.split(item)
    per_page = (instances + pages - 1) // pages
    docs, names = {}, set()
    for p in range(pages):
        items = []
        for i in range(p * per_page, min(instances, (p + 1) * per_page)):
            ip = f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}"
            names.add(f"app@{ip}")
            items.append(item.replace("i-0a1b2c3d4e5f60021", f"i-{i:017x}")
                         .replace("10.0.2.21", ip).replace("10-0-2-21", ip.replace(".", "-")))
        text = head + "".join(items) + tail
        if p + 1 < pages:
            text = text.replace("</DescribeInstancesResponse>",
                                f"    <nextToken>page{p + 1}</nextToken>\n"
                                "</DescribeInstancesResponse>")
        docs["" if p == 0 else f"page{p}"] = text
    return docs, names


class BenchAws(test_ec2.FakeAws):
    def filtered(self, page, tag_value):
        return page  # pre-rendered: no per-request filtering cost in the figure


def one_round(bin_dir, docs, names):
    aws = BenchAws()
    aws.pages = docs
    work = test_ec2.Workdir(bin_dir, prefix="clusterd-ec2-bench-")
    d = None
    try:
        config = "\n".join([
            "[clusterd]", f"plugin_path = {toml_list([test_ec2.Ec2.plugin_dir])}",
            "[transports.t]", 'plugin = "command"', 'connect = ["true"]',
            "[topologies.e]", 'strategy = "ec2"', 'transport = "t"',
            "[topologies.e.config]"] + [f"{k} = {toml_string(v)}" for k, v in {
                "ec2_tagname": "cluster", "ec2_tagvalue": "web", "region": test_ec2.REGION,
                "access_key_id": test_ec2.CONFIG_KEY[0],
                "secret_access_key": test_ec2.CONFIG_KEY[1], "polling_interval": "60s",
                "endpoint": aws.url + "/", "imds_endpoint": aws.url}.items()]) + "\n"
        first = []
        original = aws.ec2

        def timed(h, body):
            if not first:
                first.append(time.monotonic())
            return original(h, body)
        aws.ec2 = timed
        d = harness.Daemon(config, bin_dir)
        d.start()
        d.wait_until(lambda s: len(node_states(s, "e")) == len(names), 60, "all nodes",
                     interval=0.002)
        done = time.monotonic()
        if aws.seen("ec2-refused"):
            raise RuntimeError(f"signature refused: {aws.seen('ec2-refused')}")
        return (done - first[0]) * 1000
    finally:
        if d is not None:
            d.close()
        aws.stop()
        work.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    bin_dir = os.path.join(build, "bin")
    harness.ARGS = argparse.Namespace(bin_dir=bin_dir, build_dir=build, cmake="cmake")
    os.makedirs(os.path.join(build, "bench"), exist_ok=True)
    os.chdir(os.path.join(build, "bench"))  # ./ec2-work: SDK + plugin build, kept
    test_ec2.build_plugin()
    print(f"ec2 strategy, {args.instances} instances, median of {args.runs} rounds "
          "(first DescribeInstances request -> all nodes in the status)")
    for pages in args.pages:
        docs, names = pages_of(args.instances, pages)
        size = sum(len(t) for t in docs.values())
        times = [one_round(bin_dir, docs, names) for _ in range(args.runs)]
        print(f"  {pages:3d} page(s), {size / 1e6:.1f} MB of XML: median {statistics.median(times):.0f} ms"
              f" (min {min(times):.0f}, max {max(times):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
