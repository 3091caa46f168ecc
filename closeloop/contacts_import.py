"""``closeloop contacts import``: send a CSV or JSON-lines file of contacts to the trigger service
(``POST /v1/contacts/import``) in chunks, with a progress bar and a per-row error report.

    closeloop contacts import contacts.csv --api-key clk_… [--url http://127.0.0.1:8001]

The key needs the permission ``contacts:write``: an integration key (made in the console) or an admin key.

Columns (CSV header or JSON keys): ``external_id``, ``email``, ``name``, ``phone``, ``locale``,
``timezone``, ``country``, ``company``, ``role``, ``plan``, ``opted_out``; any other column is a
custom attribute (``attributes.<name>`` works too). Empty cells leave the stored value alone. The
service reads the rows (``services/trigger/sources/contact_rows.py``).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


def chunks(path: Path, fmt: str, size: int) -> Iterator[tuple[int, int, bytes]]:
    """Yield (first row number - 1, rows, body) for each chunk of ``size`` records of the file."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if fmt == "csv":
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            offset, batch = 0, []
            for record in reader:
                batch.append(record)
                if len(batch) == size:
                    yield offset, len(batch), _csv_bytes(header, batch)
                    offset, batch = offset + len(batch), []
            if batch:
                yield offset, len(batch), _csv_bytes(header, batch)
        else:
            offset, lines = 0, []
            for line in handle:
                if line.strip():
                    lines.append(line.rstrip("\n"))
                if len(lines) == size:
                    yield offset, len(lines), ("\n".join(lines) + "\n").encode()
                    offset, lines = offset + len(lines), []
            if lines:
                yield offset, len(lines), ("\n".join(lines) + "\n").encode()


def _csv_bytes(header: list[str], records: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(records)
    return out.getvalue().encode()


def count_records(path: Path, fmt: str) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if fmt == "csv":
            return max(sum(1 for _ in csv.reader(handle)) - 1, 0)
        return sum(1 for line in handle if line.strip())


class Progress:
    """A one-line progress bar on a terminal (a line per update otherwise)."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.started = time.monotonic()
        self.tty = stream.isatty()

    def show(self, done: int, summary: str) -> None:
        width = 30
        filled = int(width * min(done, self.total) / self.total)
        rate = done / max(time.monotonic() - self.started, 1e-6)
        line = (
            f"[{'#' * filled}{'-' * (width - filled)}] {done}/{self.total} rows  {summary}  {rate:.0f} rows/s"
        )
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("file", type=Path, help="a .csv or .jsonl file")
    parser.add_argument(
        "--url",
        default=os.environ.get("CLOSELOOP_TRIGGER_URL", "http://127.0.0.1:8001"),
        help="the trigger service (default: CLOSELOOP_TRIGGER_URL or http://127.0.0.1:8001)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("CLOSELOOP_API_KEY"),
        help="a key with the permission contacts:write: role integration (what a CRM's script holds) or "
        "admin (default: CLOSELOOP_API_KEY)",
    )
    parser.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file name")
    parser.add_argument("--chunk", type=int, default=500, help="rows per request (default 500)")
    parser.add_argument("--errors", type=Path, help="also write the per-row errors to this CSV file")
    parser.add_argument("--atomic", action="store_true", help="per chunk: apply nothing if any row fails")
    return parser


def run(args: argparse.Namespace, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Import the file; return 0 when every row was imported, 1 when some failed, 2 on a fatal error."""
    import httpx

    if not args.api_key:
        err.write("error: give --api-key or set CLOSELOOP_API_KEY\n")
        return 2
    if not args.file.is_file():
        err.write(f"error: {args.file} is not a file\n")
        return 2
    fmt = args.format or ("jsonl" if args.file.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv")
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    progress = Progress(count_records(args.file, fmt), err)
    totals = {"created": 0, "updated": 0, "failed": 0}
    errors: list[dict[str, Any]] = []
    done = 0
    url = args.url.rstrip("/") + "/v1/contacts/import" + ("?atomic=true" if args.atomic else "")
    headers = {"Authorization": f"Bearer {args.api_key}", "content-type": content_type}
    with httpx.Client(timeout=120) as http:
        for offset, rows, body in chunks(args.file, fmt, max(args.chunk, 1)):
            response = http.post(url, content=body, headers=headers)
            if response.status_code not in (200, 422) or "rows" not in response.text:
                progress.close()
                err.write(f"error: {response.status_code} {response.text[:500]}\n")
                return 2
            result = response.json()
            if response.status_code == 422 and "errors" in result and "created" not in result:
                progress.close()
                err.write(f"error: {result.get('detail')}\n")
                return 2
            for key in totals:
                totals[key] += result.get(key, 0)
            errors += [{**e, "row": e["row"] + offset} for e in result.get("errors", [])]
            done += rows
            progress.show(
                done, f"created {totals['created']}  updated {totals['updated']}  failed {totals['failed']}"
            )
    progress.close()
    out.write(
        f"{done} rows: {totals['created']} created, {totals['updated']} updated, {totals['failed']} failed\n"
    )
    for e in errors[:50]:
        out.write(f"  row {e['row']}: {e['field']}: {e['message']}\n")
    if len(errors) > 50:
        out.write(
            f"  … and {len(errors) - 50} more" + (f" (all in {args.errors})" if args.errors else "") + "\n"
        )
    if args.errors:
        with args.errors.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["row", "field", "message"])
            writer.writeheader()
            writer.writerows(errors)
    return 1 if totals["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = configure(
        argparse.ArgumentParser(
            prog="closeloop contacts import",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
