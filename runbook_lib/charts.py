"""Charts of validation evidence, written to the run folder as PNG.

Drawn on a bare matplotlib ``Figure`` (no pyplot), so a notebook's own backend is left
alone; a :class:`Chart` displays inline in a notebook (``_repr_png_``).
"""

from __future__ import annotations

from pathlib import Path

from .evidence import parse_time


class Chart:
    """A PNG chart; a notebook (JupyterLab, papermill, the exported HTML) displays it inline.

    ``path`` is the PNG written to the run folder; ``png`` the image itself when it was drawn
    without a file. ``_repr_png_`` is what IPython's display asks for, so the cell shows the
    image, never a ``<Figure size ...>`` line.
    """

    def __init__(self, path: Path | None = None, png: bytes | None = None, figure=None):
        if path is None and png is None:
            raise ValueError("a Chart needs a PNG file or the PNG's bytes")
        self.path = Path(path) if path is not None else None
        self.png = png
        self.figure = figure  # the matplotlib Figure it was drawn from, when there is one

    def _repr_png_(self) -> bytes:
        return self.png if self.png is not None else self.path.read_bytes()

    def __repr__(self) -> str:
        return f"Chart({str(self.path)!r})" if self.path else f"Chart(<{len(self.png)} bytes of PNG>)"


def cache_chart(invocations: list[dict], rows: list[dict], path: str | Path, title: str = "") -> Chart:
    """PNG chart: cumulative invocations vs cumulative GetSecretValue calls over time.

    A cached secret shows as a flat GetSecretValue line (one step per execution
    environment) under a rising invocation line. Drawn on a bare ``Figure`` so the
    notebook's own matplotlib backend is left alone.
    """
    from matplotlib import dates as mdates
    from matplotlib import ticker as mticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    inv_times = sorted(parse_time(i["start"]) for i in invocations)
    call_times = sorted(parse_time(r["eventTime"]) for r in rows if r.get("eventTime"))
    fig = Figure(figsize=(8, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if inv_times:
        ax.step(inv_times, range(1, len(inv_times) + 1), where="post", label="invocations", marker="o")
    if call_times:
        counts = list(range(1, len(call_times) + 1))
        ends = max(inv_times[-1:] + call_times[-1:])  # carry the last count to the window's end
        ax.step(call_times + [ends], counts + counts[-1:], where="post",
                label="GetSecretValue calls (CloudTrail)", marker="s", markevery=list(range(len(counts))))
    ax.set_ylabel("cumulative count")
    # CloudTrail's eventTime has whole seconds, invocations milliseconds: a fetch inside an
    # invocation's second can plot just before it
    ax.set_xlabel("time (UTC; CloudTrail times are to the second)")
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(
        lambda x, _: mdates.num2date(x).strftime("%H:%M:%S.%f")[:-3]))
    ax.set_title(title or "Invocations vs GetSecretValue calls")
    if inv_times or call_times:
        ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return Chart(path)
