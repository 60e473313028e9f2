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


#: Bars per panel of the findings chart (the functions, or rules, with the most findings).
CHART_FUNCTIONS = 20
#: Longest bar label drawn whole; a longer one ends in "…" so it cannot push its panel off the figure
#: (Lambda names reach 64 characters; the findings files carry every name whole).
LABEL_CHARACTERS = 40
_FIGURE_INCHES, _DPI = (11, 4), 100
# Margins in pixels around each panel's axes: title above, tick labels and axis label below,
# tick marks and padding left of the bar labels, room right of the last count tick.
_TOP, _BOTTOM, _LABEL_PAD, _RIGHT = 30, 46, 14, 18


def _ranked(records: list[dict], key: str) -> tuple[list[str], dict[str, int]]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record[key]] = counts.get(record[key], 0) + 1
    top = sorted(counts, key=lambda k: (-counts[k], k))[:CHART_FUNCTIONS][::-1]  # most at the top
    return top, counts


def _short(label: str) -> str:
    label = str(label)
    return label if len(label) <= LABEL_CHARACTERS else label[:LABEL_CHARACTERS - 1] + "…"


def findings_chart(records: list[dict], path: str | Path | None = None) -> Chart:
    """Findings by rule and by function, two panels of horizontal bars, as a PNG :class:`Chart`.

    Each panel draws the :data:`CHART_FUNCTIONS` rules or functions with the most findings and its
    title says how many it leaves out; counts have integer ticks only. The panels are placed from
    their labels' measured widths, so the figure is drawn once: matplotlib's constrained layout
    draws it again to measure it, which was half the chart's time.

    Examples
    --------
    >>> findings_chart([{"rule": "aws-access-key", "function": "orders-api"}]).png[:4]
    b'\\x89PNG'
    """
    import io

    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=_FIGURE_INCHES, dpi=_DPI)
    renderer = FigureCanvasAgg(fig).get_renderer()
    font = FontProperties(size=rcParams["ytick.labelsize"])  # the bar labels' font
    width, height = _FIGURE_INCHES[0] * _DPI, _FIGURE_INCHES[1] * _DPI
    for panel, (key, title) in enumerate((("rule", "Findings by rule"), ("function", "Findings by function"))):
        labels, counts = _ranked(records, key)
        shown = [_short(label) for label in labels]
        label_px = max((renderer.get_text_width_height_descent(s, font, ismath=False)[0] for s in shown), default=0)
        left = panel * width / 2 + label_px + _LABEL_PAD  # at most 40 characters: the bars keep most of the panel
        right = (panel + 1) * width / 2 - _RIGHT
        ax = fig.add_axes([left / width, _BOTTOM / height, (right - left) / width, (height - _TOP - _BOTTOM) / height])
        left_out = len(counts) - len(labels)
        ax.set_title(title + (f" (top {len(labels)} of {len(counts)})" if left_out else ""))
        if counts:
            ax.barh(range(len(labels)), [counts[k] for k in labels], color="#c0392b")
            ax.set_ylim(-0.6, len(labels) - 0.4)
            # labels as plain texts beside the axis: a matplotlib tick per bar (two lines, two markers,
            # copied properties each) cost more than drawing the bars
            ax.set_yticks([])
            beside = ax.get_yaxis_transform()  # x in axes fraction, y in data
            for y, text in enumerate(shown):
                ax.text(-0.012, y, text, transform=beside, ha="right", va="center", fontproperties=font)
            ax.set_xlabel("findings")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.text(0.5, 0.5, "no findings", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    if path:
        Path(path).write_bytes(buffer.getvalue())
    return Chart(Path(path) if path else None, png=buffer.getvalue(), figure=fig)
