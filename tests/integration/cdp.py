"""Headless Chromium for integration tests, driven over its DevTools protocol (CDP) with
python3-websocket (Debian's). The browser is started here with a temporary profile, listens for
DevTools on 127.0.0.1 only, and is stopped by its PID.

    with Browser(workdir) as b:
        b.open("http://127.0.0.1:9100/")
        b.wait_for("document.querySelectorAll('#nodes tr[data-state=connected]').length == 3")
        b.screenshot("page.png")
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websocket
except ImportError:  # python3-websocket is pure Python: usable from another CPython 3 too
    sys.path.append("/usr/lib/python3/dist-packages")
    import websocket

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def available():
    return CHROMIUM is not None


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, width=1400, height=1000):
        self.width, self.height = width, height
        self.profile = None
        self.proc = None
        self.ws = None
        self.next_id = 0
        self.events = []  # CDP events received while waiting for answers

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self, timeout=30):
        self.profile = tempfile.mkdtemp(prefix="clusterd-chromium-")
        args = [CHROMIUM, "--headless=new", f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-dev-shm-usage", "--mute-audio", f"--window-size={self.width},{self.height}",
                "about:blank"]
        if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root
            args.insert(1, "--no-sandbox")
        self.log = open(os.path.join(self.profile, "chromium.log"), "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise CdpError(f"chromium did not start: {self.log_tail()}")
            time.sleep(0.05)
        port = int(open(port_file).read().split("\n")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def log_tail(self):
        try:
            with open(os.path.join(self.profile, "chromium.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def close(self):
        if self.ws:
            try:
                self.ws.close()
            except OSError:
                pass
            self.ws = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc:
            self.log.close()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def call(self, method, timeout=30, **params):
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise CdpError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message and len(self.events) < 1000:
                self.events.append(message)
        raise CdpError(f"{method}: no answer within {timeout} s")

    def open(self, url, timeout=30):
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout, f"{url} to load")

    def eval(self, expression):
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails'].get('text')} "
                           f"{result['exceptionDetails'].get('exception', {}).get('description', '')}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=10, what=None, interval=0.02):
        """Polls a JavaScript expression until it is truthy; returns its value and the time it
        took, or raises AssertionError after `timeout` s."""
        start = time.monotonic()
        last = None
        while True:
            try:
                last = self.eval(expression)
            except CdpError as e:
                last = e
            if last and not isinstance(last, CdpError):
                return last, time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(f"page: timed out after {timeout} s waiting for "
                                     f"{what or expression} (last: {last})")
            time.sleep(interval)

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            size = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1})
        data = self.call("Page.captureScreenshot", **params)["data"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
