"""Paper-style report: bare backbone vs FAERec (and ablations), same seed and settings.

``python -m recbole_faerec.report --dataset D --model SASRec[,FMLPRec,...] [--ablations]``

Every backbone is trained bare (``base=True``) and wrapped by FAERec with identical settings, and,
with ``--ablations``, once more per Table 3 switch. ``DIR`` (default ``reports/D-M``) receives:

* ``results.json``: one shape for one or several backbones, keyed by backbone then variant
  (``base``, ``faerec`` and the ablation names ``w/o AGF``...)::

      {"metrics": {"SASRec": {"base": {"hit@10": ...}, "faerec": {...}, "w/o AGF": {...}}},
       "wall_time_s": {"SASRec": {"base": 12.3, "faerec": 20.1, ...}},
       "model_files": {"SASRec": {"base": "saved/...pth", ...}},
       "settings": {"SASRec": {effective config of the FAERec run}},
       "dataset": ..., "backbones": [...], "variants": [...], "k": 10, "seed": ...,
       "overrides": {...}, "config_files": [...], "machine": {...}, "command": "..."}

  Metrics are the test results (keys of :mod:`recbole_faerec.metrics`); undefined values are
  ``null``.
* ``results.md``: Table 2 layout (overall/tail/head H@K and N@K), coverage (Table 5) and
  per-popularity-group H@K, each with a relative-improvement row; with ablations, Table 3 (FAERec
  and each switch off, with the change against FAERec); wall times and the command.
* ``groups.png``: per-group H@K, base vs FAERec (Figure 4).
* ``tsne.png``: t-SNE of the ID and projected LLM embeddings of sampled items (Figure 5).

With ``--seeds S1,S2,...`` the report runs once per seed (``DIR/seed-<S>/``) and ``seeds.md`` /
``seeds.json`` give each figure's spread over the seeds (:mod:`.seeds`).
"""

from recbole_faerec.report.cli import build_parser, main
from recbole_faerec.report.plots import item_views, plot_groups, plot_sensitivity, plot_tsne
from recbole_faerec.report.runner import (
    ABLATIONS,
    PROTOCOL_KEYS,
    effective_settings,
    finished_runs,
    machine_info,
    report_command,
    run_report,
)
from recbole_faerec.report.seeds import (
    format_seeds_markdown,
    parse_seeds,
    run_seed_reports,
    summarise_seeds,
)
from recbole_faerec.report.tables import (
    BASE,
    FAEREC,
    IMPROVEMENT,
    format_report_markdown,
    group_labels_of,
    markdown_table,
    relative_improvement,
    variant_label,
)

__all__ = [
    "ABLATIONS",
    "BASE",
    "FAEREC",
    "IMPROVEMENT",
    "PROTOCOL_KEYS",
    "build_parser",
    "effective_settings",
    "finished_runs",
    "format_report_markdown",
    "format_seeds_markdown",
    "group_labels_of",
    "item_views",
    "machine_info",
    "main",
    "markdown_table",
    "parse_seeds",
    "plot_groups",
    "plot_sensitivity",
    "plot_tsne",
    "relative_improvement",
    "report_command",
    "run_report",
    "run_seed_reports",
    "summarise_seeds",
    "variant_label",
]
