"""The `autocode` command line: parse, call one function, print."""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TextIO, cast

import typer
from rich.console import Console
from rich.table import Table

from autocode import __version__
from autocode.corpus.errors import SourceError
from autocode.corpus.load import FORMATS, LoadOptions
from autocode.corpus.table import ColumnMap
from autocode.display import logged_stages, row_progress
from autocode.review.cli import review_app

if TYPE_CHECKING:
    import pyarrow as pa

    from autocode.infer.batch import BatchSummary

app = typer.Typer(help="Predict medical codes from clinical notes.", no_args_is_help=True)
data_app = typer.Typer(help="Load, inspect, prepare and synthesise note archives.")
app.add_typer(data_app, name="data")
app.add_typer(review_app, name="review")
console = Console()
error_console = Console(stderr=True)
_DEFAULT_SHOWWARNING = warnings.showwarning

FormatOption = Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")]
SplitOption = Annotated[
    str | None, typer.Option("--split", help="Split(s) to read, comma-separated.")
]
LanguageOption = Annotated[str, typer.Option("--language", help="CodiEsp text: en or es.")]
IdColOption = Annotated[str, typer.Option("--id-col")]
TextColOption = Annotated[str, typer.Option("--text-col")]
CodesColOption = Annotated[str, typer.Option("--codes-col")]
SystemOption = Annotated[
    str | None, typer.Option("--system", help="Code system of codes written without a prefix.")
]
SYNTH_FORMATS = ("parquet", "jsonl", "csv")
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
TrackingUriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking server or store for runs:/ and models:/ (default "
        "$MLFLOW_TRACKING_URI).",
    ),
]


def load_options(
    source_format: str,
    split: str | None,
    language: str,
    id_col: str,
    text_col: str,
    codes_col: str,
    system: str | None,
) -> LoadOptions:
    """The LoadOptions every note-reading command builds from its shared flags."""
    return LoadOptions(
        format=source_format,
        columns=ColumnMap(id_col=id_col, text_col=text_col, codes_col=codes_col),
        system=system,
        splits=tuple(s.strip() for s in split.split(",")) if split else None,
        language=language,
    )


def fail(message: str) -> typer.Exit:
    """One line on stderr and exit code 2: bad input is not a crash."""
    _say("error", message)
    return typer.Exit(code=2)


def _say(kind: str, message: str) -> None:
    """`kind: message` on stderr, one line as written (no markup, no highlighting)."""
    error_console.print(f"{kind}: {message}", markup=False, highlight=False, soft_wrap=True)


def print_json(report: dict[str, Any]) -> None:
    """One strict JSON object on stdout: undefined (NaN) metrics are written as null."""
    from autocode.metrics import json_compatible

    print(json.dumps(json_compatible(report), allow_nan=False))


def version_callback(value: bool) -> None:
    if value:
        console.print(f"autocode {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True)
    ] = False,
) -> None:
    """autocode: ICD-10-CM/PCS, ICD-9, CPT and HCPCS codes from note text."""
    warnings.showwarning = _show_warning
    # MLflow logs its housekeeping at INFO ("Creating initial MLflow database tables",
    # "Validating input example") between our own stage lines; it reads the level when
    # first imported, which the commands do lazily, after this. A user's own level wins.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning of ours (say, an unread file in the input) as one line, not a source dump."""
    if category.__module__.startswith("autocode"):
        _say("warning", str(message))
    else:
        _DEFAULT_SHOWWARNING(message, category, filename, lineno, file, line)


@data_app.command("stats")
def data_stats(
    path: Path,
    source_format: FormatOption = "auto",
    split: SplitOption = None,
    language: LanguageOption = "en",
    id_col: IdColOption = "note_id",
    text_col: TextColOption = "text",
    codes_col: CodesColOption = "codes",
    system: SystemOption = None,
    as_json: JsonOption = False,
) -> None:
    """Documents, codes per system, quarantined rows and text lengths of a source."""
    from autocode.corpus.stats import corpus_stats

    try:
        options = load_options(source_format, split, language, id_col, text_col, codes_col, system)
        stats = corpus_stats(path, options).to_dict()
    except (SourceError, ValueError) as error:
        raise fail(str(error)) from None
    if as_json:
        print_json(stats)
    else:
        print_stats(stats)


def print_stats(stats: dict[str, Any]) -> None:
    table = Table(title="Corpus statistics", show_header=False)
    table.add_row("documents", str(stats["documents"]))
    table.add_row("rows read", str(stats["read"]))
    table.add_row("quarantined", str(stats["quarantined"]))
    for reason, count in stats["quarantined_by_reason"].items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("skipped", str(stats["skipped"]))
    for reason, count in stats["skipped_by_reason"].items():
        table.add_row(f"  {reason}", str(count))
    for system, count in stats["code_rows"].items():
        distinct = stats["distinct_codes"][system]
        table.add_row(f"{system} codes", f"{count} rows, {distinct} distinct")
    table.add_row("documents without codes", str(stats["documents_without_codes"]))
    for split_name, count in stats["splits"].items():
        table.add_row(f"split {split_name}", str(count))
    percentiles = ", ".join(f"p{p}={v:.0f}" for p, v in stats["text_chars_percentiles"].items())
    table.add_row("text length (chars)", percentiles)
    console.print(table)


@data_app.command("prepare")
def data_prepare(
    path: Path,
    out: Annotated[Path, typer.Option("--out", "--output", help="Output directory.")],
    source_format: FormatOption = "auto",
    split: SplitOption = None,
    language: LanguageOption = "en",
    id_col: IdColOption = "note_id",
    text_col: TextColOption = "text",
    codes_col: CodesColOption = "codes",
    system: SystemOption = None,
    split_ratios: Annotated[str, typer.Option(help="train,validation,test")] = "0.8,0.1,0.1",
    seed: Annotated[int, typer.Option()] = 0,
    as_json: JsonOption = False,
) -> None:
    """Write canonical Parquet notes with a split column, quarantine.jsonl and manifest.json."""
    from autocode.corpus.prepare import prepare_dataset
    from autocode.corpus.splits import SplitRatios

    try:
        options = load_options(source_format, split, language, id_col, text_col, codes_col, system)
        ratios = SplitRatios.parse(split_ratios)
        with row_progress(error_console, "prepare (2 passes)") as progress:
            prepared = prepare_dataset(path, options, out, ratios, seed, progress)
    except (SourceError, ValueError) as error:
        raise fail(str(error)) from None
    summary = {**prepared.report.to_dict(), "splits": prepared.split_counts, "out": str(out)}
    if as_json:
        print_json(summary)
    else:
        print(_summary_line(summary))


def _summary_line(summary: dict[str, Any]) -> str:
    splits = ", ".join(f"{name} {count}" for name, count in summary["splits"].items())
    return (
        f"read {summary['read']} = kept {summary['kept']} + quarantined "
        f"{summary['quarantined']} + skipped {summary['skipped']}; splits: {splits}; "
        f"written to {summary['out']}"
    )


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option("--out", "--output", help="Output directory.")],
    notes: Annotated[int, typer.Option("--notes", min=1)] = 1000,
    seed: Annotated[int, typer.Option()] = 0,
    codes: Annotated[
        int, typer.Option("--codes", min=10, help="Size of the code vocabulary.")
    ] = 200,
    bad_row_rate: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.0,
    file_format: Annotated[str, typer.Option("--file-format")] = "parquet",
) -> None:
    """Generate a synthetic coded note archive (no real patient data)."""
    from autocode.corpus.synth import write_synthetic_archive

    if file_format not in SYNTH_FORMATS:
        raise fail(f"--file-format {file_format!r} is not one of {', '.join(SYNTH_FORMATS)}")
    try:
        summary = write_synthetic_archive(
            out,
            notes,
            seed,
            n_codes=codes,
            fmt=cast(Literal["parquet", "jsonl", "csv"], file_format),
            bad_row_rate=bad_row_rate,
        )
    except (FileExistsError, ValueError) as error:
        raise fail(str(error)) from None
    bad = sum(summary.bad_rows.values())
    console.print(
        f"wrote {summary.notes} notes and {bad} bad rows for {summary.patients} patients, "
        f"{summary.distinct_codes} distinct codes, to {out} ({len(summary.files)} files)"
    )


@app.command("train")
def train(
    config: Annotated[Path, typer.Option("--config", help="Experiment YAML.")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override: key.sub=value (repeatable).")
    ] = None,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train, calibrate, tune thresholds, evaluate on test, log and register in MLflow."""
    from pydantic import ValidationError

    from autocode.config import load_config
    from autocode.train.run import run_training

    try:
        experiment = load_config(config, overrides)
        # MLflow prints run links to stdout; keep stdout for our own output (--json).
        with redirect_stdout(sys.stderr), logged_stages(error_console):
            result = run_training(experiment, tracking_uri)
    except ValidationError as error:
        raise fail(f"{config}: {_first_validation_error(error)}") from None
    except (SourceError, ValueError, FileNotFoundError) as error:
        raise fail(str(error)) from None
    if as_json:
        payload = {"run_id": result.run_id, "model_uri": result.model_uri, **result.test_metrics}
        print_json(payload)
        return
    console.print(f"run id:    {result.run_id}")
    console.print(f"model URI: {result.model_uri}")
    _print_headline(result.test_metrics, "test")


@app.command("evaluate")
def evaluate(
    model: Annotated[str, typer.Option("--model", help="Coder dir, runs:/… or models:/…")],
    data: Annotated[Path, typer.Option("--data", help="Any source the loaders read.")],
    source_format: FormatOption = "auto",
    split: SplitOption = None,
    language: LanguageOption = "en",
    id_col: IdColOption = "note_id",
    text_col: TextColOption = "text",
    codes_col: CodesColOption = "codes",
    system: SystemOption = None,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a saved or registered Coder on any loadable labelled data."""
    from autocode.corpus.load import load_notes
    from autocode.infer.loading import load_coder
    from autocode.train.evaluation import evaluate_coder

    try:
        options = replace(
            load_options(source_format, split, language, id_col, text_col, codes_col, system),
            needs_codes_for="evaluate",
        )
        loaded = load_notes(data, options)
        notes = loaded.table
        if notes.num_rows == 0 and split:
            raise ValueError(
                f"{data}: no notes in split(s) {split}; a source without a split column has "
                "none (`autocode data prepare` assigns splits), or leave out --split"
            )
        if loaded.report.quarantined_total:
            reasons = ", ".join(f"{n} {why}" for why, n in loaded.report.quarantined.items())
            _say(
                "note",
                f"{data}: {loaded.report.quarantined_total} of {loaded.report.read} rows "
                f"quarantined, not scored ({reasons})",
            )
        scored_notes = _notes_by_split(notes)
        if split is None and "train" in scored_notes:
            others = ",".join(name for name in scored_notes if name != "train")
            _say(
                "warning",
                f"{data}: every split is scored, its train split ({scored_notes['train']} "
                "notes) too, where a Coder trained on it scores higher"
                + (f"; pass --split {others}" if others else ""),
            )
        _use_tracking_uri(tracking_uri)
        coder = load_coder(model)
        report = evaluate_coder(
            coder, notes.column("text").to_pylist(), notes.column("codes").to_pylist()
        ).report
    except (SourceError, ValueError, FileNotFoundError) as error:
        raise fail(str(error)) from None
    if as_json:
        print_json(report)
    else:
        counts = ", ".join(f"{name} {count}" for name, count in scored_notes.items())
        _print_headline(report, f"{data} ({counts or notes.num_rows} notes)")


@app.command("serve")
def serve(
    model: Annotated[str, typer.Option("--model", help="Coder dir, runs:/… or models:/…")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 5000,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001)] = 20.0,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Serve a Coder over HTTP: POST /invocations as MLflow's, with no note text in errors."""
    import uvicorn

    from autocode.infer.loading import (
        coder_digest,
        model_identity,
        resolve_coder_dir,
    )
    from autocode.infer.pyfunc import load_for_serving
    from autocode.infer.server import ServedModel, create_app

    _use_tracking_uri(tracking_uri)
    try:
        directory = resolve_coder_dir(model)
        served = ServedModel(
            load_for_serving(directory), model, model_identity(coder_digest(directory))
        )
    except (ValueError, FileNotFoundError) as error:
        raise fail(str(error)) from None
    _say("serving", f"{model} ({served.version}) on http://{host}:{port}/invocations")
    server_app = create_app(served, max_body_bytes=int(max_body_mb * 2**20))
    # No access log: request lines carry no text, but a gateway's query strings might.
    uvicorn.run(server_app, host=host, port=port, access_log=False, log_level="warning")


@app.command("predict")
def predict(
    model: Annotated[str, typer.Option("--model", help="Coder dir, runs:/… or models:/…")],
    input_path: Annotated[Path, typer.Option("--input", help="Any source the loaders read.")],
    output: Annotated[
        Path, typer.Option("--output", "--out", help="Output directory (resumable).")
    ],
    source_format: FormatOption = "auto",
    split: SplitOption = None,
    language: LanguageOption = "en",
    id_col: IdColOption = "note_id",
    text_col: TextColOption = "text",
    codes_col: CodesColOption = "codes",
    system: SystemOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 1000,
    engine: Annotated[str, typer.Option("--engine", help="local or spark")] = "local",
    spark_master: Annotated[str, typer.Option("--spark-master")] = "local[*]",
    queue: Annotated[
        str | None, typer.Option("--queue", help="Review queue SQLAlchemy URL.")
    ] = None,
    evidence: Annotated[bool, typer.Option("--evidence/--no-evidence")] = True,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Code a note archive: Parquet parts, routing, review queue; resumes where it stopped."""
    from autocode.infer.batch import BatchSettings, WorkerDiedError, predict_archive
    from autocode.infer.locking import OutputInUseError
    from autocode.infer.manifest import OutputMismatchError
    from autocode.review.store import default_queue_url, queue_location

    if engine not in ("local", "spark"):
        raise fail(f"--engine {engine!r} is not one of local, spark")
    try:
        options = replace(
            load_options(source_format, split, language, id_col, text_col, codes_col, system),
            skip_unreadable_files=True,
        )
        queue_url = queue or default_queue_url()
        settings = BatchSettings(batch_size, workers, evidence, queue_url)
        _use_tracking_uri(tracking_uri)
        if engine == "spark":
            from autocode.infer.spark import predict_archive_spark

            summary = predict_archive_spark(
                model, input_path, output, options, settings, spark_master
            )
        else:
            with row_progress(error_console, "coding", unit="notes") as progress:
                summary = predict_archive(model, input_path, output, options, settings, progress)
    except (
        SourceError,
        ValueError,
        FileNotFoundError,
        OutputMismatchError,
        OutputInUseError,
        WorkerDiedError,
    ) as error:
        raise fail(str(error)) from None
    except KeyboardInterrupt:
        kept = (
            f"the parts finished in {output} are kept; the same command resumes after them"
            if engine == "local"
            else "the Spark engine starts the job over when the same command is run again"
        )
        _say("interrupted", kept)
        _die_of_sigint()
    if as_json:
        print_json(summary.to_dict())
        return
    quarantined = sum(summary.quarantined.values())
    console.print(
        f"read {summary.read}: coded {summary.coded} (auto {summary.auto}, review "
        f"{summary.review}), quarantined {quarantined}, skipped {summary.skipped}; "
        f"{summary.seconds:.1f} s{_rate_said(summary)}; "
        f"{summary.queue_inserted} new review cases in {queue_location(queue_url)}; "
        f"parts written {summary.parts_written}, resumed past {summary.parts_resumed}",
        soft_wrap=True,
    )


def _notes_by_split(notes: pa.Table) -> dict[str, int]:
    """Notes per split, in the order they come; empty for a source without splits (no
    split column, or one that is empty: a loader's column for sources that have none)."""
    if "split" not in notes.column_names:
        return {}
    names = notes.column("split").to_pylist()
    if all(name is None for name in names):
        return {}
    return dict(Counter("no split" if name is None else str(name) for name in names))


def _die_of_sigint() -> NoReturn:
    """End as a process killed by Ctrl-C does (not exit 130), so that a shell loop calling
    autocode stops too: shells stop on a child that died of SIGINT, not on its code."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    raise typer.Exit(code=130)  # where SIGINT cannot end the process (not on POSIX)


def _rate_said(summary: BatchSummary) -> str:
    """`, N notes/s` over the rows this run coded; nothing where it only resumed."""
    if summary.rows_done_now == 0:
        return ""
    return f", {_rate(summary.notes_per_second)} notes/s"


def _rate(per_second: float) -> str:
    """A rate to two significant digits below 10 ("0.15", not "0", for 3 notes in 20 s)."""
    return f"{per_second:.0f}" if per_second >= 10 else f"{per_second:.2g}"


def _use_tracking_uri(tracking_uri: str | None) -> None:
    """Point MLflow at the store named on the command line, in this process and its workers.

    Set in the environment, not only with `mlflow.set_tracking_uri`: pool workers and
    Spark's Python workers are other processes and read the address from there.
    """
    if tracking_uri is not None:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri


def _print_headline(report: dict[str, Any], title: str) -> None:
    """The Coder's figures as it codes (label space and open part), then the label
    space's alone where the open part proposed codes (else they are the same), and the
    open part's own."""
    _print_metrics_table(report, f"Metrics on {title}")
    open_part = report.get("open_part")
    if open_part is not None and open_part["proposals"]:
        _print_metrics_table(
            report["label_space_only"], f"Label space only (no open part), on {title}"
        )
    if "ece_candidates" in report:  # all pairs' ECE is near 0: the negatives drown it
        label = "the label space's candidates (p >= 0.01 or a note's top 10)"
        console.print(_calibration_line(report["ece_candidates"], label))
    if open_part is not None:
        for line in _open_part_lines(open_part):
            console.print(line)


def _open_part_lines(open_part: dict[str, Any]) -> list[str]:
    """The open part's line, then, where more than one system's part proposed codes
    (diagnoses and procedures), each system's."""
    proposing = {
        system: counts
        for system, counts in open_part.get("per_system", {}).items()
        if counts["proposals"]
    }
    each = [f"  {_open_part_line(c, f'{s} open part')}" for s, c in proposing.items()]
    lines = [_open_part_line(open_part), *(each if len(proposing) > 1 else [])]
    if proposing and "ece_candidates" in open_part:
        lines.append(f"  {_calibration_line(open_part['ece_candidates'], 'its proposals')}")
    return lines


def _calibration_line(calibration: dict[str, Any], pairs_are: str) -> str:
    return (
        f"calibration over {pairs_are}: ECE {calibration['ece']:.3f} on "
        f"{calibration['pairs']:,} (note, code) pairs"
    )


def _open_part_line(open_part: dict[str, Any], name: str = "open part") -> str:
    """The open part's figures in words; a precision of no proposals, or a recall of no
    gold codes, is undefined, not 0."""
    proposals, outside = open_part["proposals"], open_part["unseen_gold"]
    said = (
        f"{name}: {proposals} proposals, precision {open_part['proposal_precision']:.3f}"
        if proposals
        else f"{name}: no proposals (none, or no open part)"
    )
    if not outside:
        return f"{said}; no gold codes outside the label space"
    return (
        f"{said}; recall on the {outside} gold codes outside the label space "
        f"{open_part['unseen_recall']:.3f}"
    )


def _print_metrics_table(report: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    table.add_column("scope")
    # Note level: the share of notes routed auto, and the precision of their codes.
    for key in ("micro_f1", "macro_f1", "map", "P@5", "notes auto", "auto notes' P"):
        table.add_column(key, justify="right")
    scopes = {"overall": report, **report.get("per_system", {})}
    for scope, values in scopes.items():
        table.add_row(
            scope,
            f"{values['micro_f1']:.3f}",
            f"{values['macro_f1']:.3f}",
            f"{values['map']:.3f}",
            f"{values['precision_at_k']['5']:.3f}",
            _optional(values.get("automation_rate")),
            _optional(values.get("auto_precision")),
        )
    console.print(table)
    if "code_automation_rate" in report:  # notes routed auto above; codes, over every note
        console.print(f"codes accepted without review: {_code_automation(report)}")
        for system, values in report.get("per_system", {}).items():
            if not values.get("code_accepted"):
                console.print(f"  {system}: no code accepted without review")
                continue
            console.print(f"  {system}: {_code_automation(values, 'its gold codes')}")


def _code_automation(report: dict[str, Any], of: str = "the gold codes") -> str:
    """Share and precision of the codes accepted without review; either may be undefined
    (nothing accepted; a system with no gold code in these notes)."""
    rate, precision = report["code_automation_rate"], report["code_auto_precision"]
    if precision is None:
        return "none"
    share = "-" if rate is None else f"{rate:.1%}"
    return f"{share} of {of}, precision {precision:.3f}"


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _first_validation_error(error: Any) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    value = first.get("input")
    # A wrong value is quoted (capped) so the line names it; config values are no note text.
    named = first["type"] not in ("extra_forbidden", "unknown_parameter", "missing")
    shown = f" (got {repr(value)[:60]})" if named and isinstance(value, str | int | float) else ""
    return f"{location}: {first['msg']}{shown}"
