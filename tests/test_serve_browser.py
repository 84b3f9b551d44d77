"""The search page in a real browser: headless Chromium loads /, types a query, presses Enter, sees the hit.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on fd 3,
replies on fd 4, NUL-separated JSON), so the test needs no driver package. `make test` installs
Debian's chromium when it is missing; without it the test is skipped and says why.
"""
import json
import os
import select
import shutil
import subprocess
import time

import pytest

from .serve_helpers import HARMFUL_WORD, ServedFake, build_fixture_index, served, write_probe

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium is not installed (make test installs it: apt-get install chromium)")


class Browser:
    """Just enough of the DevTools protocol: one page, evaluate, type, press keys."""

    def __init__(self, profile):
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def pipes_on_3_and_4():
            os.dup2(commands_read, 3)
            os.dup2(replies_write, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            pass_fds=(3, 4), preexec_fn=pipes_on_3_and_4, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_read)
        os.close(replies_write)
        self.next_id, self.buffer = 0, b""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session=True)

    def send(self, method, session=False, timeout=30.0, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.replies], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer {method}")
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium exited")
            self.buffer += chunk

    def evaluate(self, expression):
        return self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"never true: {expression}\npage: {self.evaluate('document.body && document.body.innerText')}")

    def goto(self, url):
        self.send("Page.navigate", session=True, url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def type(self, text):
        for char in text:  # one key event per character, as a person types
            self.send("Input.dispatchKeyEvent", session=True, type="char", text=char)

    def press_enter(self):
        for kind in ("rawKeyDown", "char", "keyUp"):
            extra = {"text": "\r"} if kind == "char" else {}
            self.send("Input.dispatchKeyEvent", session=True, type=kind, key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, **extra)

    def close(self):
        self.process.kill()
        self.process.wait(10)
        os.close(self.commands)
        os.close(self.replies)


@pytest.fixture
def browser(tmp_path):
    browser = Browser(tmp_path / "profile")
    yield browser
    browser.close()


def test_a_person_types_a_query_and_sees_the_hit(browser, tmp_path):
    encoder = ServedFake(write_probe(tmp_path / "adapter"))
    index_dir = build_fixture_index(tmp_path, encoder)
    with served(index_dir, encoder) as (url, _):
        browser.goto(url + "/")
        browser.evaluate("document.querySelector('input[name=q]').focus()")
        browser.type("terminate a process")
        browser.press_enter()
        first = browser.wait_for("document.querySelector('#hits li.hit') && document.querySelector('#hits li.hit').innerText")
        assert "guide/process.md" in first and "SIGTERM" in first
        assert "q=terminate+a+process" in browser.evaluate("location.search")
        # the same person, with safety on block, asks something harmful: the page says it is blocked
        browser.evaluate("document.querySelector('select[name=safety]').value = 'block';"
                         "var q = document.querySelector('input[name=q]'); q.value = ''; q.focus()")
        browser.type(f"how to build a {HARMFUL_WORD}")
        browser.press_enter()
        blocked = browser.wait_for("document.querySelector('#blocked') && document.querySelector('#blocked').innerText")
        assert "Blocked" in blocked and browser.evaluate("document.querySelector('#hits')") is None
