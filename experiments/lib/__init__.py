"""The layer every study shares: config and command line, run context, results.json, report,
figures, logs and the MNIST setups. A study imports this package and :mod:`jaxnet`, never
another study.
"""
from experiments.lib import plots
from experiments.lib.config import StudyConfig, config_hash
from experiments.lib.errors import RunError, UsageError
from experiments.lib.numbers import fmt, fmt_epoch, format_seconds
from experiments.lib.report import Report
from experiments.lib.results import check_results, divergence, read_results, run_record, to_jsonable, write_json
from experiments.lib.study import Study, main, write_report

__all__ = [
    "Report", "RunError", "Study", "StudyConfig", "UsageError", "check_results", "config_hash", "divergence", "fmt",
    "fmt_epoch", "format_seconds", "main", "plots", "read_results", "run_record", "to_jsonable", "write_json",
    "write_report",
]
