"""The HTML shell the backtest and walk-forward reports share with the live dashboard: the
same stylesheet (``api/static/solbot.css``, inlined so a report is one offline file), the
same header bar, metric tiles and chart colours."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

CSS = Path(__file__).resolve().parents[1] / "api" / "static" / "solbot.css"
COLOURS = {
    "up": "#26a69a",
    "down": "#ef5350",
    "equity": "#4fc3f7",
    "reference": "#8a92a3",
    "grid": "#262b35",
}


def style_figure(fig: Any) -> None:
    """The dashboard's chart look on a plotly figure."""
    fig.update_layout(
        template="plotly_dark",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": "#e6e8ee", "size": 11},
        hovermode="x unified",
        margin={"l": 56, "r": 16, "t": 36, "b": 32},
    )
    fig.update_xaxes(gridcolor=COLOURS["grid"])
    fig.update_yaxes(gridcolor=COLOURS["grid"])


def tile(label: str, value: str, sub: str = "", sign: float | None = None) -> str:
    cls = "" if sign is None else " pos" if sign > 0 else " neg" if sign < 0 else ""
    return (
        f'<div class="tile"><div class="label">{html.escape(label)}</div>'
        f'<div class="value{cls}">{html.escape(value)}</div>'
        f'<div class="sub">{html.escape(sub)}</div></div>'
    )


def page(title: str, subtitle: str, tiles: list[str], fig: Any, note: str = "") -> str:
    """A complete offline page: header, tiles, the figure(s) (plotly.js inlined once), a note."""
    figs = fig if isinstance(fig, list) else [fig]
    body = '</section><section class="card wide">'.join(
        f.to_html(include_plotlyjs=i == 0, full_html=False, config={"displayModeBar": False})
        for i, f in enumerate(figs)
    )
    foot = f"<footer>{html.escape(note)}</footer>" if note else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS.read_text()}</style></head><body>"
        f'<header class="bar"><h1>SOL-Bot <small>{html.escape(title)}</small></h1>'
        f'<div class="pills"><span class="pill">{html.escape(subtitle)}</span></div></header>'
        f'<main><section class="tiles">{"".join(tiles)}</section>'
        f'<section class="card wide">{body}</section></main>{foot}</body></html>\n'
    )
