"""Progress: a throttled log line for Studio's log (no terminal), a bar on a terminal."""

import io

from gradcam.job.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_have_count_rate_and_eta():
    stream = io.StringIO()
    progress = Progress(10, "explaining", stream=stream, every=0.0)
    for _ in range(4):
        progress.update()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("explaining: 4/10 images, ")
    assert " img/s, ETA " in lines[-1]


def test_log_lines_are_throttled_after_the_first():
    stream = io.StringIO()
    progress = Progress(1000, "explaining", stream=stream, every=3600.0)
    for _ in range(1000):
        progress.update()
    [line] = stream.getvalue().splitlines()
    assert line.startswith("explaining: 1/1000 images, the first after "), "the first image is logged at once"
    assert "img/s" not in line, "no rate from one image"


def test_a_terminal_gets_a_bar():
    stream = Terminal()
    progress = Progress(5, "explaining", stream=stream)
    progress.update(5)
    progress.close()
    assert "5/5" in stream.getvalue() and "\r" in stream.getvalue()
