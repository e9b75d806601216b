import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from dedup.exports import write_matches


class Command(BaseCommand):
    help = "Write one row per scored pair: a,b,score,label first, then the breakdown and segments."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument("--output", type=Path, help="File to write (default: standard output).")

    def handle(self, *args, format: str, output: Path | None, **options):
        if output:
            with open(output, "w", newline="", encoding="utf-8") as fh:
                n = write_matches(fh, fmt=format)
            self.stderr.write(f"{n} pairs written to {output}")
        else:
            write_matches(sys.stdout, fmt=format)
