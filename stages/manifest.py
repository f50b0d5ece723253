"""Stage manifest: parse every corpus under data/raw into data/manifest/manifest.csv."""

from pathlib import Path

from ser.core.config import load_params
from ser.core.errors import one_line_errors
from ser.core.files import write_csv, write_json
from ser.data.manifest import build_manifest

RAW = Path("data/raw")


@one_line_errors
def main():
    params = load_params()
    manifest, excluded, stats = build_manifest(RAW, params)
    write_csv("data/manifest/manifest.csv", manifest)
    write_csv("metrics/excluded_manifest.csv", excluded)
    write_json("metrics/manifest.json", stats)
    duplicates = sum(part["duplicates"] for part in stats["per_corpus"].values())
    content = stats["content_duplicates"]
    print(f"manifest: {len(manifest)} clips from {len(stats['corpora_found'])} corpora, "
          f"{duplicates} duplicate copies skipped, {content['copies_skipped']} same-audio copies skipped, "
          f"{len(excluded)} files excluded ({content['conflicting_excluded']} of them same audio with conflicting "
          "labels; metrics/excluded_manifest.csv)")


if __name__ == "__main__":
    main()
