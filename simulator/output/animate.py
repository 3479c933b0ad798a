"""``tumorsim animate OUT.h5``: the lattice snapshots beside the burden curve, as a movie.

Each frame shows one snapshot (3D runs: the middle z-slice) in the fixed cell-kind colours
of :mod:`simulator.output.plotting`, and the tumour / immune time courses with a marker at the
snapshot's time. The figure is drawn once and only the image and the marker change per
frame. GIF is written with imageio's Pillow plugin; ``.mp4`` needs imageio's ffmpeg plugin
(``pip install imageio[ffmpeg]``) or PyAV, otherwise an OutputError says so.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simulator.output import plotting
from simulator.output.plotting.run import _dose_lanes, given_drugs
from simulator.output.runfile import OutputError

__all__ = ["animate"]

_MOVIE_SUFFIXES = (".mp4", ".m4v", ".mov")


#: The optional dependency movies need, and how to get it.
MISSING_EXTRA = ("tumorsim animate needs the 'movies' extra (imageio): "
                 "pip install 'tumorsim[movies]'")


def _writer_for(out: Path) -> str:
    """The movie writer for ``out``'s suffix; OutputError, before anything is rendered, when
    its library is missing."""
    if importlib.util.find_spec("imageio") is None:
        raise OutputError(MISSING_EXTRA)
    suffix = out.suffix.lower()
    if suffix == ".gif":
        return "gif"
    if suffix in _MOVIE_SUFFIXES:
        if importlib.util.find_spec("imageio_ffmpeg") is not None:
            return "ffmpeg"
        if importlib.util.find_spec("av") is not None:
            return "pyav"
        raise OutputError(f"{out}: writing {suffix} needs imageio's ffmpeg plugin "
                          "(pip install imageio[ffmpeg]) or PyAV; write a .gif instead")
    raise OutputError(f"{out}: unknown movie format {suffix or '(no suffix)'!r}; use .gif or .mp4")


def animate(path, out, fps: float = 8, every: int = 1) -> Path:
    """Write a movie of run file ``path`` to ``out`` (one frame per ``every``-th snapshot)."""
    out = Path(out)
    if fps <= 0 or every < 1:
        raise ValueError(f"fps must be > 0 and every >= 1 (got fps={fps}, every={every})")
    writer = _writer_for(out)
    run = plotting.load_run(path)
    n = len(run.snapshot_days)
    if n == 0:
        raise OutputError(f"{path}: no lattice snapshots to animate")
    indices = list(range(0, n, every))
    frames = _render(run, indices)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial" + out.suffix)
    try:
        _write(writer, tmp, frames, fps)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _render(run, indices) -> list[np.ndarray]:
    import matplotlib
    with matplotlib.rc_context(plotting._STYLE):
        fig = Figure(figsize=(10.0, 4.0), dpi=100, layout="constrained")
        axes = fig.subplot_mosaic([["lattice", "curves"], ["lattice", "doses"]],
                                  width_ratios=(1.0, 1.25), height_ratios=(5, 1))
        lattice_ax, curve_ax, dose_ax = axes["lattice"], axes["curves"], axes["doses"]
        curve_ax.sharex(dose_ax)
        first = plotting.read_snapshot(run.path, indices[0])
        rgb, present = plotting.lattice_rgb(first["cell_type"], first["clone"],
                                            first["flag_values"], first["flag_meanings"],
                                            first["escape_bit"])
        image = plotting._show_rgb(lattice_ax, rgb, run.spacing_um)
        lattice_ax.set_xlabel("x (mm)")
        lattice_ax.set_ylabel("y (mm)")
        title = lattice_ax.set_title("")
        _draw_curves(curve_ax, dose_ax, run)
        marker = curve_ax.axvline(first["day"], color="0.45", lw=1.0, zorder=5)
        (dot,) = curve_ax.plot([], [], ls="none", marker="o", ms=5, color="k", zorder=6)
        # every kind a frame may show, so the legend does not jump between frames
        kinds = [k for k in plotting.KIND_COLOURS if k not in ("wall",)]
        if first["clone"] is None:
            kinds.remove("tumor_resistant")
        if not first["escape_bit"]:
            kinds.remove("tumor_escape")
        fig.legend(handles=plotting._kind_legend_handles(kinds, first["clone"] is not None),
                   loc="outside lower center", ncol=len(kinds), fontsize=7)
        start = run.treatment_start_day
        frames, shape = [], None
        for index in indices:
            snap = first if index == indices[0] else plotting.read_snapshot(run.path, index)
            rgb, _ = plotting.lattice_rgb(snap["cell_type"], snap["clone"], snap["flag_values"],
                                          snap["flag_meanings"], snap["escape_bit"])
            image.set_data(np.swapaxes(rgb, 0, 1))
            marker.set_xdata([snap["day"], snap["day"]])
            dot.set_data([snap["day"]], [np.interp(snap["day"], run.time_days,
                                                   run.series["tumor_cells"])])
            rel = "" if start is None else f" ({snap['day'] - start:+g} d from treatment start)"
            slice_note = " (middle z-slice)" if len(run.dimensions) == 3 else ""
            title.set_text(f"day {snap['day']:g}{rel}{slice_note}")
            frame = _grab(fig)
            if shape is None:
                shape = frame.shape
                fig.set_layout_engine("none")  # freeze the layout: no jitter between frames
            frames.append(frame[:shape[0], :shape[1]])
        return frames


def _grab(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _draw_curves(ax, dose_ax, run):
    t, s = run.time_days, run.series
    ax.plot(t, s["tumor_cells"], color="k", lw=1.6, label="tumour (total)")
    if "tumor_resistant" in s:
        ax.plot(t, s["tumor_resistant"], color=plotting.KIND_COLOURS["tumor_resistant"], lw=1.1,
                label="tumour (resistant)")
    if "t_cells" in s and np.any(s["t_cells"]):
        ax.plot(t, s["t_cells"], color=plotting.KIND_COLOURS["t_cell"], lw=1.1, label="T cells")
    if "suppressive_cells" in s and np.any(s["suppressive_cells"]):
        ax.plot(t, s["suppressive_cells"], color=plotting.KIND_COLOURS["suppressive"], lw=1.1,
                label="suppressive cells")
    ax.set_ylim(bottom=0)
    if len(t):
        ax.set_xlim(t[0], t[-1])
    plotting.mark_treatment_start(ax, run.treatment_start_day)
    _, colours = plotting.run_drug_colours(run)
    _dose_lanes(dose_ax, [run.doses] if len(run.doses) else [], given_drugs(run), colours)
    dose_ax.set_xlabel("time (days)")
    ax.tick_params(labelbottom=False)
    ax.set_ylabel("cells")
    ax.legend(handles=ax.get_legend_handles_labels()[0]
              + [Line2D([], [], color="0.45", lw=1.0, label="now")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)


def _write(writer: str, out: Path, frames, fps: float):
    import imageio.v2 as imageio_v2
    import imageio.v3 as iio
    if writer == "gif":
        # Pillow merges identical consecutive frames; the moving marker keeps them distinct
        iio.imwrite(out, np.stack(frames), extension=".gif", plugin="pillow",
                    duration=int(round(1000.0 / fps)), loop=0)
    elif writer == "ffmpeg":
        frames = [_pad_to_block(f, 16) for f in frames]
        imageio_v2.mimwrite(out, frames, format="FFMPEG", fps=fps, macro_block_size=16)
    else:
        frames = [_pad_to_block(f, 2) for f in frames]
        iio.imwrite(out, np.stack(frames), plugin="pyav", codec="libx264", fps=fps,
                    extension=out.suffix)


def _pad_to_block(frame: np.ndarray, block: int) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = (-h) % block, (-w) % block
    if ph or pw:
        frame = np.pad(frame, ((0, ph), (0, pw), (0, 0)), constant_values=255)
    return frame
