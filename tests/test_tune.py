"""The tuning page: its server's API over HTTP, and the page itself in headless Chromium.

Every server here is the real ``videodeblur tune`` command, started by the test on 127.0.0.1
and stopped with Ctrl-C (SIGINT), which must end it with exit 130 within a bounded time. The
browser is Debian's chromium driven by Playwright (its own browser download does not work
here), with the flags the project uses everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from imaging import blurred_frames, moving_window, write_luma_clip
from media import decode_frames
from videodeblur import psf
from videodeblur.config import load_config
from videodeblur.preview import Previewer

pytest.importorskip("aiohttp")

CHROMIUM = os.environ.get("VIDEODEBLUR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


@pytest.fixture(scope="module")
def clip(camera, tmp_path_factory):
    """24 frames of a moving photograph blurred by a disk of radius 3 px, lossless, 320x240."""
    sharp = moving_window(camera, 24, 320, 240, step=(4, 2))
    blurred = blurred_frames(sharp, [psf.disk(3.0)] * 24)
    return write_luma_clip(tmp_path_factory.mktemp("tune") / "soft.mkv", blurred)


class Server:
    """``videodeblur tune`` in a subprocess: its URL (first line of stdout), stopped by SIGINT."""

    def __init__(self, arguments: list[str], cwd: Path):
        self.process = subprocess.Popen([sys.executable, "-m", "videodeblur", "tune", *arguments],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not line or not line[0].startswith("http://"):
            self.process.kill()
            raise AssertionError(f"tune did not print its address: {line} {self.process.stderr.read()}")
        self.url = line[0].strip()
        parsed = urllib.parse.urlparse(self.url)
        self.base = f"{parsed.scheme}://{parsed.netloc}"
        self.token = urllib.parse.parse_qs(parsed.query)["token"][0]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def get(self, path: str, params=(), token: bool = True, headers=None):
        """(status, headers, body) of a GET; ``params`` a list of (name, value)."""
        query = list(params) + ([("token", self.token)] if token else [])
        request = urllib.request.Request(f"{self.base}{path}?{urllib.parse.urlencode(query)}", headers=headers or {})
        return self._send(request)

    def post(self, path: str, body: dict, header: bool = True):
        request = urllib.request.Request(
            f"{self.base}{path}?token={self.token}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", **({"X-Tune-Token": self.token} if header else {})})
        return self._send(request)

    @staticmethod
    def _send(request):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture
def server(clip, tmp_path):
    running = Server([str(clip), "--save", str(tmp_path / "tuned.toml")], tmp_path)
    yield running
    assert running.stop() == 130  # Ctrl-C: exit 130, nothing left running
    assert running.process.poll() is not None


def decode_image(body: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# -- the server's API --------------------------------------------------------------------------


def test_every_request_needs_the_token(server):
    assert server.get("/", token=False)[0] == 403
    assert server.get("/api/session", token=False)[0] == 403
    assert server.get("/api/image", [("frame", "0")], token=False)[0] == 403
    wrong = server.get("/api/session", [("token", "0" * 32)], token=False)
    assert wrong[0] == 403
    status, headers, body = server.get("/api/session")
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert "SameSite=Strict" in cookie and "HttpOnly" in cookie
    # The cookie alone then serves.
    value = cookie.split(";")[0]
    assert server.get("/api/session", token=False, headers={"Cookie": value})[0] == 200
    assert len(server.token) == 32 and int(server.token, 16) >= 0  # 128 bits


def test_it_listens_on_loopback_only_and_checks_the_host(server):
    assert server.base.startswith("http://127.0.0.1:")
    assert server.get("/api/session", headers={"Host": "evil.example:80"})[0] == 403


def test_the_session_describes_the_clip_and_the_controls_from_the_registry(server):
    from videodeblur import registry

    status, _, body = server.get("/api/session")
    session = json.loads(body)
    assert (session["width"], session["height"], session["frame_count"]) == (320, 240, 24)
    controls = {c["key"]: c for c in session["controls"]}
    assert set(controls["psf.kind"]["choices"]) == set(registry.psf_kind_names())
    assert set(controls["deconvolution.method"]["choices"]) == set(registry.METHODS)
    radius = registry.psf_kind("defocus").parameter("radius")
    assert (controls["psf.radius"]["step"], controls["psf.radius"]["max"]) == (radius.step, radius.typical[1])
    assert "psf.path" not in controls  # the page never names a file for the server to read
    assert session["values"]["psf.radius"] == 3.0


def test_the_exact_png_is_the_frame_a_run_restores(server, clip):
    settings = [("set", "psf.radius=2.5"), ("set", "deconvolution.strength=0.8")]
    status, headers, body = server.get("/api/image", [("frame", "7"), ("format", "png"), *settings])
    assert status == 200 and headers["Content-Type"] == "image/png"
    with Previewer(clip, load_config(None, ["psf.radius=2.5", "deconvolution.strength=0.8"])) as previewer:
        _, restored = previewer.planes(7)
        expected = previewer.to_rgb(restored)
    assert np.array_equal(decode_image(body), expected)
    # The JPEG view is the same picture, lossy.
    status, headers, body = server.get("/api/image", [("frame", "7"), *settings])
    assert headers["Content-Type"] == "image/jpeg"
    view = decode_image(body).astype(float)
    assert view.shape == expected.shape and np.abs(view - expected).mean() < 3.0
    assert "radius 2.5 px" in headers["X-Label"] and "strength 0.8" in headers["X-Label"]


def test_original_diff_and_a_crop(server):
    status, _, body = server.get("/api/image", [("frame", "3"), ("view", "original"), ("format", "png")])
    original = decode_image(body)
    status, _, body = server.get("/api/image", [("frame", "3"), ("view", "diff"), ("format", "png")])
    difference = decode_image(body)
    assert original.shape == difference.shape == (240, 320, 3)
    assert abs(float(np.median(difference)) - 128) <= 2 and difference.std() > 3  # around mid grey
    status, _, body = server.get("/api/image", [("frame", "3"), ("view", "original"), ("format", "png"),
                                                ("crop", "41,31,100,60")])
    cropped = decode_image(body)
    # The crop starts on whole chroma samples (4:2:0): 40,30 .. 142,92.
    assert cropped.shape == (62, 102, 3)
    assert np.array_equal(cropped, original[30:92, 40:142])


@pytest.mark.parametrize("params, message", [
    ([("frame", "0"), ("set", "psf.radius=-1")], "psf.radius: must be a number > 0"),
    ([("frame", "999")], "frame 999"),
    ([("frame", "x")], "frame must be a whole number"),
    ([("frame", "0"), ("view", "nope")], "view must be one of"),
    ([("frame", "0"), ("crop", "0,0,9999,10")], "does not fit"),
    ([("frame", "0"), ("set", "psf.path=/etc/passwd")], "psf.path cannot be set"),
    ([("frame", "0"), ("set", "output.codec=ffv1")], "output.codec cannot be set"),
])
def test_bad_parameters_get_a_message_and_the_server_lives_on(server, params, message):
    status, headers, body = server.get("/api/image", params)
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert message in json.loads(body)["error"]
    assert b"Traceback" not in body
    assert server.get("/api/image", [("frame", "0")])[0] == 200


def test_only_its_own_assets_are_served(server):
    assert server.get("/static/tune.js")[0] == 200
    for path in ("/static/..%2F..%2Fsession.py", "/static/index.html", "/static/%2Fetc%2Fpasswd", "/etc/passwd"):
        assert server.get(path)[0] == 404


def test_an_older_view_request_is_dropped_once_a_newer_one_arrived(server):
    assert server.get("/api/image", [("frame", "0"), ("seq", "5")])[0] == 200
    status, _, body = server.get("/api/image", [("frame", "0"), ("seq", "4")])
    assert status == 409
    assert server.get("/api/image", [("frame", "0"), ("seq", "6")])[0] == 200


def test_saving_writes_the_config_a_run_reads(server, tmp_path):
    assert server.post("/api/save", {"settings": ["psf.radius=2.75"]}, header=False)[0] == 403
    status, _, body = server.post("/api/save", {"settings": ["psf.radius=2.75", "deconvolution.nsr=0.02"]})
    saved = json.loads(body)
    assert status == 200 and saved["path"] == str(tmp_path / "tuned.toml")
    config = load_config(saved["path"])
    assert (config.psf.value("radius"), config.deconvolution.nsr) == (2.75, 0.02)
    assert "--config" in saved["command"] and saved["path"] in saved["command"]
    # Without a confirmation there is no --config to overwrite.
    status, _, body = server.post("/api/save", {"settings": [], "to_config": True})
    assert status == 400 and "no --config file" in json.loads(body)["error"]


def test_the_track_of_an_estimated_kind(server):
    params = [("set", "psf.kind=auto-defocus"), ("set", "psf.smoothing_frames=3")]
    deadline = time.monotonic() + 120
    while True:
        body = json.loads(server.get("/api/track", params)[2])
        if body["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert body["state"] == "done", body
    rows = body["rows"]
    assert [row["frame"] for row in rows] == list(range(24))
    found = [row["value"] for row in rows if row["kind"] == "defocus"]
    assert len(found) >= 20 and abs(float(np.median(found)) - 3.0) <= 0.5
    # Every other frame is estimated (the default, which 3 frames of smoothing allow): the
    # others have no raw estimate of their own.
    assert all(0 <= row["confidence"] <= 1 and row["raw_kind"] is not None for row in rows[::2])
    assert all(row["confidence"] is None and row["raw"] is None for row in rows[1::2])
    assert json.loads(server.get("/api/track")[2])["state"] == "none"  # a fixed kernel has no track


def test_a_port_in_use_is_a_clear_error(clip, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "videodeblur", "tune", str(clip), "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"--port {port}: cannot listen" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# -- the page, in headless Chromium ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    required = bool(os.environ.get("VIDEODEBLUR_REQUIRE_BROWSER"))  # CI: run, never skip
    if not required:
        pytest.importorskip("playwright.sync_api")
        if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
            pytest.skip(f"no chromium at {CHROMIUM} (scripts/install-chromium)")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=60_000)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: the page forbids eval, and Playwright's wait_for_function evaluates strings.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    wait_for_view(page, 1)
    yield page
    context.close()
    assert not errors


def wait_for_view(page, sequence: int) -> None:
    """Until the restored image of request ``sequence`` (or a later one) has loaded."""
    page.wait_for_function(
        f"(() => {{ const img = document.getElementById('restored');"
        f" return Number(img.dataset.seq || 0) >= {sequence} && img.complete && img.naturalWidth > 0; }})()")


def view_sequence(page) -> int:
    return page.evaluate("Number(document.getElementById('restored').dataset.seq || 0)")


def test_moving_the_radius_shows_a_new_restored_image(page):
    first = page.get_attribute("#restored", "src")
    assert "radius 3 px" in page.text_content("#label")
    radius = page.get_by_label("psf.radius", exact=True)
    radius.focus()
    before = view_sequence(page)
    for _ in range(10):
        page.keyboard.press("ArrowRight")  # ten steps of 0.05 px
    wait_for_view(page, before + 10)
    page.wait_for_function("document.getElementById('label').textContent.includes('radius 3.5 px')")
    assert page.get_attribute("#restored", "src") != first
    assert page.input_value("[aria-label='psf.radius value']") == "3.5"
    # Only the newest image was shown last: its number is the last request's.
    assert view_sequence(page) == before + 10


def test_scrubbing_steps_one_frame_per_key(page):
    scrubber = page.get_by_label("frame", exact=True)
    scrubber.focus()
    before = view_sequence(page)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    wait_for_view(page, before + 3)
    assert page.text_content("#frame-label").startswith("frame 3 / 23")
    assert page.text_content("#label").startswith("frame 3 ")
    page.click("#previous")
    wait_for_view(page, before + 4)
    assert page.text_content("#label").startswith("frame 2 ")


def test_the_split_view_shows_two_halves_that_differ(page, server, tmp_path):
    assert page.get_attribute("#stage", "class") == "split"
    page.wait_for_function("document.getElementById('original').complete"
                           " && document.getElementById('original').naturalWidth > 0")
    box = page.locator("#restored").bounding_box()
    shot = decode_image(page.screenshot(clip=box)).astype(np.float64)
    cv2.imwrite(str(tmp_path / "split.png"), cv2.cvtColor(shot.astype(np.uint8), cv2.COLOR_RGB2BGR))
    height, width = shot.shape[:2]
    frames = {}
    for view in ("original", "restored"):
        body = server.get("/api/image", [("frame", "0"), ("view", view), ("format", "png")])[2]
        frames[view] = cv2.resize(decode_image(body), (width, height), interpolation=cv2.INTER_AREA).astype(np.float64)
    halves = {"left": np.s_[:, 4 : width // 2 - 4], "right": np.s_[:, width // 2 + 4 : -4]}

    def error(half, view):
        return float(np.abs(shot[halves[half]] - frames[view][halves[half]]).mean())

    # The left half is the blurred input, the right half the restored frame, and they differ.
    assert error("left", "original") < 0.5 * error("left", "restored")
    assert error("right", "restored") < 0.5 * error("right", "original")
    # Side by side shows both whole frames; the difference view hides the original.
    page.select_option("#view", "side")
    assert page.locator("#original").is_visible() and page.locator("#restored").is_visible()
    page.select_option("#view", "diff")
    before = view_sequence(page)
    wait_for_view(page, before)
    assert not page.locator("#original").is_visible()


def test_saving_from_the_page_gives_a_config_that_runs(page, server, clip, tmp_path):
    number = page.locator("[aria-label='psf.radius value']")
    number.fill("2.8")
    number.press("Enter")
    page.wait_for_function("document.getElementById('label').textContent.includes('radius 2.8 px')")
    page.click("#save")
    page.wait_for_function("document.getElementById('command').textContent.length > 0")
    command = page.text_content("#command")
    saved = tmp_path / "tuned.toml"
    assert f"--config {saved}" in command
    assert load_config(saved).psf.value("radius") == 2.8
    output = tmp_path / "restored.mkv"
    result = subprocess.run([sys.executable, "-m", "videodeblur", "run", str(clip), "-o", str(output),
                             "--config", str(saved), "--set", "output.codec=ffv1", "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(decode_frames(output)) == 24


def test_without_the_token_the_page_is_refused(browser, server):
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(server.base + "/")
    assert response.status == 403 and "token" in page.text_content("body")
    context.close()


def test_a_bad_value_is_shown_on_the_page(page):
    number = page.locator("[aria-label='psf.radius value']")
    number.fill("0")
    number.press("Enter")
    page.wait_for_function("document.getElementById('error').textContent.includes('psf.radius')")
    assert "must be a number > 0" in page.text_content("#error")
    number.fill("3")
    number.press("Enter")
    page.wait_for_function("document.getElementById('error').textContent === ''")
