"""Screenshots of the settings/status iframe page (optional; not part of the test suite).

Starts the onOffice and Mailchimp emulators and the connector (embedded mode, SQLite) on free
ports, activates a customer, connects Mailchimp, runs a full synchronisation and photographs
the iframe page in German and English with headless Chromium:

    .venv/bin/python scripts/ui_screenshots.py [--out docs/screenshots] [--addresses 400]
        [--width 1100] [--narrow 420] [--running] [--keep]

`--running` adds latency to Mailchimp and also photographs a run in progress; `--keep` leaves
the servers up and prints the iframe URLs (Ctrl-C stops them). Needs `chromium` on PATH
(Debian: `apt-get install -y chromium`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devkit import kit  # noqa: E402 (after the path set-up above)
from devkit.kit import free_port  # noqa: E402

PROVIDER_SECRET = "screenshot-provider-secret"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us1"
TOKEN = "screenshottoken00000000000000001"
SECRET = "screenshot-secret-" + "0" * 46
WEB_ID = "21345"
CUSTOMER = "Muster Immobilien GmbH"


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def servers(workdir: Path, *, latency: float) -> Iterator[dict[str, str]]:
    ports = {name: free_port() for name in ("onoffice", "mailchimp", "connector")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    python = sys.executable
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'ui.db'}",
        "PUBLIC_BASE_URL": urls["connector"],
        "ONOFFICE_API_URL": urls["onoffice"] + "/api/stable/api.php",
        "MAILCHIMP_API_URL": urls["mailchimp"] + "/3.0",
        "ONOFFICE_PROVIDER_SECRET": PROVIDER_SECRET,
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    commands = [
        [python, "-m", "emulators.onoffice", "--port", str(ports["onoffice"])],
        [
            python,
            "-m",
            "emulators.mailchimp",
            "--port",
            str(ports["mailchimp"]),
            "--api-key",
            MAILCHIMP_KEY,
            "--latency",
            str(latency),
        ],
        [str(Path(python).parent / "connector"), "serve", "--port", str(ports["connector"])],
    ]
    log = (workdir / "servers.log").open("wb")
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for cmd in commands
    ]
    try:
        wait_up(urls["onoffice"] + "/_control/state?addresses=false")
        wait_up(urls["mailchimp"] + "/_control/state")
        wait_up(urls["connector"] + "/healthz")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def signed(base: str, path: str, params: dict[str, str]) -> str:
    return kit.signed_query(base + path, params, PROVIDER_SECRET)


def iframe_url(base: str, language: str, user: str = "17") -> str:
    params = {
        "customerWebId": WEB_ID,
        "customerName": CUSTOMER,
        "userId": user,
        "apiClaim": "claim-1",
        "UserLanguage": language,
    }
    return f"{base}/onoffice/app?{signed(base, '/onoffice/app', params)}"


def prepare(client: httpx.Client, urls: dict[str, str], addresses: int) -> str:
    """Activate the customer, seed addresses, connect Mailchimp; returns a bearer token."""
    onoffice, base = urls["onoffice"], urls["connector"]
    client.post(f"{onoffice}/_control/addresses", json={"generate": addresses, "seed": 7})
    client.post(
        f"{onoffice}/_control/customers",
        json={"token": TOKEN, "secret": SECRET, "claim": "claim-1"},
    )
    client.post(f"{onoffice}/_control/parameter-caches", json={"id": "cache-1", "claim": "a-1"})
    activation = {
        "apiToken": TOKEN,
        "apiClaim": "a-1",
        "customerName": CUSTOMER,
        "customerWebId": WEB_ID,
        "userId": "17",
        "parameterCacheId": "cache-1",
    }
    query = dict(httpx.QueryParams(signed(base, "/onoffice/activate", activation)))
    answer = client.post(f"{base}/onoffice/activate", data={**query, "secret": SECRET})
    assert answer.text == "active", answer.text
    # The server commits after it has answered: give each write a moment to become visible.
    time.sleep(0.5)
    iframe_query = iframe_url(base, "DEU", user="99").split("?", 1)[1]
    session = client.post(f"{base}/api/v1/sessions", json={"query": iframe_query})
    session.raise_for_status()
    token = str(session.json()["token"])
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "provider": "mailchimp",
        "api_key": MAILCHIMP_KEY,
        "activities": {"delivered": True},
    }
    client.put(f"{base}/api/v1/connection", json=body, headers=headers).raise_for_status()
    deadline = time.monotonic() + 10
    while client.get(f"{base}/api/v1/connection", headers=headers).status_code == 404:
        if time.monotonic() > deadline:
            raise RuntimeError("the saved connection never became visible")
        time.sleep(0.1)
    return token


def run_sync(
    client: httpx.Client, base: str, token: str, *, wait: bool = True, force: bool = False
) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    started = client.post(f"{base}/api/v1/syncs", json={"force": force}, headers=headers)
    assert started.is_success, started.text
    run_id = int(started.json()["id"])
    deadline = time.monotonic() + 300
    while wait and time.monotonic() < deadline:
        run = client.get(f"{base}/api/v1/syncs/{run_id}", headers=headers).json()
        if run["status"] in ("completed", "failed"):
            break
        time.sleep(0.3)
    return run_id


class Browser:
    """Headless Chromium driven over the DevTools protocol (waits for the page's own state)."""

    def __init__(self, width: int) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            raise SystemExit("chromium not found (apt-get install -y chromium)")
        self.width = width
        self.stack = ExitStack()
        self.profile = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile.name}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        target = httpx.put(f"http://127.0.0.1:{port}/json/new?about:blank").json()
        self.ws = self.stack.enter_context(connect(target["webSocketDebuggerUrl"], max_size=None))
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def shoot(self, url: str, path: Path, *, ready: str, height: int = 900) -> None:
        """Open `url`, wait until the JS expression `ready` is true, save a full-page PNG."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while not self.evaluate(ready):
            if time.monotonic() > deadline:
                raise RuntimeError(f"page not ready ({ready}): {url}")
            time.sleep(0.2)
        time.sleep(0.5)  # let pending renders settle
        full = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=max(height, full),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path}")

    def close(self) -> None:
        self.stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.profile.cleanup()


# Page states the screenshots wait for (the element ids of onoffice_app.html).
COMPLETED = (
    "!document.getElementById('run-counts').hidden && "
    "!document.getElementById('history').hidden && "
    "document.getElementById('status-facts').children.length > 0"
)
RUNNING = (
    "!document.getElementById('run-progress').hidden && "
    "document.getElementById('p-read').textContent !== ''"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--addresses", type=int, default=400)
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--narrow", type=int, default=0, help="also shoot at this width")
    parser.add_argument("--running", action="store_true", help="also shoot a run in progress")
    parser.add_argument("--keep", action="store_true", help="keep the servers running")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(Path(tmp), latency=1.0 if args.running else 0.0) as urls,
        httpx.Client(timeout=60) as client,
    ):
        base = urls["connector"]
        token = prepare(client, urls, args.addresses)
        run_sync(client, base, token)
        browser = Browser(args.width)
        try:
            for language, code in (("de", "DEU"), ("en", "ENG")):
                shot = args.out / f"app-{language}.png"
                browser.shoot(iframe_url(base, code), shot, ready=COMPLETED)
            if args.narrow:
                narrow = Browser(args.narrow)
                try:
                    shot = args.out / "app-de-narrow.png"
                    narrow.shoot(iframe_url(base, "DEU"), shot, ready=COMPLETED)
                finally:
                    narrow.close()
            if args.running:
                run_sync(client, base, token, wait=False, force=True)
                shot = args.out / "app-de-running.png"
                browser.shoot(iframe_url(base, "DEU"), shot, ready=RUNNING)
        finally:
            browser.close()
        if args.keep:
            print("connector:", base)
            print("iframe (de):", iframe_url(base, "DEU"))
            print("signatures expire after SIGNATURE_MAX_AGE_S; Ctrl-C stops the servers")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
