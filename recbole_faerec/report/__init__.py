"""Paper-style report: the bare backbone, LLMInit, LLM-ESR and FAERec (and ablations), same seed
and settings.

``python -m recbole_faerec.report --dataset D --model SASRec[,FMLPRec,...] [--methods M,...]
[--ablations]``

Every backbone is trained bare and wrapped by each chosen method (``--methods``, default all four:
``bare,llminit,llmesr,faerec``) with identical settings, each run also scored with the text prior,
and, with ``--ablations``, FAERec once more per Table 3 switch. ``DIR`` (default ``reports/D-M``)
receives:

* ``results.json``: one shape for one or several backbones, keyed by backbone then variant
  (``base``, ``llminit``, ``llmesr``, ``faerec``, each with its ``+prior`` row, and the
  ablation names ``w/o AGF``...)::

      {"metrics": {"SASRec": {"base": {"hit@10": ...}, "faerec": {...}, "w/o AGF": {...}}},
       "wall_time_s": {"SASRec": {"base": 12.3, "faerec": 20.1, ...}},
       "model_files": {"SASRec": {"base": "saved/...pth", ...}},
       "settings": {"SASRec": {effective config of the FAERec run}},
       "dataset": ..., "backbones": [...], "variants": [...], "k": 10, "seed": ...,
       "overrides": {...}, "config_files": [...], "machine": {...}, "command": "..."}

  Metrics are the test results (keys of :mod:`recbole_faerec.metrics`); undefined values are
  ``null``.
* ``results.md``: Table 2 layout (overall/tail/head H@K and N@K, a row per method, then per method
  + text prior, and the paper's ``Impr.`` row: FAERec over the best baseline), the row that
  validation picks per backbone, coverage (Table 5) and per-popularity-group H@K with
  improvement rows over the bare backbone; with ablations, Table 3 (FAERec and each switch off,
  with the change against FAERec); wall times and the command.
* ``groups.png``: per-group H@K of the methods (Figure 4).
* ``tsne.png``: t-SNE of FAERec's ID and projected LLM embeddings of sampled items (Figure 5;
  only with FAERec among the methods).

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
    BEST_BASELINE_IMPROVEMENT,
    FAEREC,
    IMPROVEMENT,
    LLMESR,
    LLMINIT,
    METHOD_ROWS,
    best_baseline_improvement,
    format_report_markdown,
    group_labels_of,
    markdown_table,
    method_variants,
    relative_improvement,
    validation_pick,
    validation_pick_text,
    variant_label,
)

__all__ = [
    "ABLATIONS",
    "BASE",
    "BEST_BASELINE_IMPROVEMENT",
    "FAEREC",
    "IMPROVEMENT",
    "LLMESR",
    "LLMINIT",
    "METHOD_ROWS",
    "PROTOCOL_KEYS",
    "best_baseline_improvement",
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
    "method_variants",
    "parse_seeds",
    "plot_groups",
    "plot_sensitivity",
    "plot_tsne",
    "relative_improvement",
    "report_command",
    "run_report",
    "run_seed_reports",
    "summarise_seeds",
    "validation_pick",
    "validation_pick_text",
    "variant_label",
]
